r"""Landmark losses: Wing (coordinate regression) and Adaptive Wing (heatmap regression).

Both amplify small errors with a logarithm near 0 and turn linear for large ones, so training
keeps pulling on the residuals that are already small (face alignment). The constants that
join the two pieces are computed from the options, never typed in: Wing's ``C`` makes the
value continuous at ``|r| = omega``; Adaptive Wing's ``A`` and ``C`` make the value and the
first derivative continuous at ``|r| = theta``, per target pixel.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import math
from typing import Annotated

import torch
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example
from lossatlas._module import LossModule
from lossatlas._options import Interval, Positive
from lossatlas._reduction import Reduction, reduce_loss
from lossatlas._validation import check_in_range
from lossatlas.regression._pair import prepare_pair
from lossatlas.regression.pointwise import _POINTWISE

__all__ = ["adaptive_wing_loss", "wing_loss"]

#: Adaptive Wing's exponent offset: ``alpha - y`` must stay positive for targets in [0, 1].
AboveOne = Annotated[float, Interval(1.0, None, low_inclusive=False)]


def _heatmap_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    """Heatmap targets in [0, 1] and predictions around them (``scale`` widens the noise)."""
    target = ex.uniform(generator, batch, 3, dtype=dtype, low=0.0, high=1.0)
    return Example((target + ex.normal(generator, batch, 3, dtype=dtype, scale=scale), target))


def _heatmap_perfect(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    target = ex.uniform(generator, batch, 3, dtype=dtype, low=0.0, high=1.0)
    return Example((target.clone(), target))


# --------------------------------------------------------------------------- functionals


@_POINTWISE.loss(
    target_kind="real values (landmark coordinates)",
    formula=r"\begin{cases} \omega \ln(1 + |r| / \epsilon) & |r| < \omega \\ |r| - C "
    r"& \text{otherwise} \end{cases}",
    use_when="landmark coordinates: small and medium errors matter",
    peers={
        "mmpose": "WingLoss(omega, epsilon): same per-coordinate loss; it sums over keypoints "
        "and coordinates and averages over the batch (here the mean is over all elements)"
    },
)
def wing_loss(
    input: Tensor,
    target: Tensor,
    *,
    omega: Positive = 10.0,
    epsilon: Positive = 2.0,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Wing loss (Feng et al.): logarithmic for ``|r| < omega``, linear beyond.

    ``C = omega - omega ln(1 + omega / epsilon)`` joins the pieces so the value is continuous at
    ``|r| = omega``; the slope jumps there from ``omega / (omega + epsilon)`` to 1 (the paper
    only joins the values). At ``r = 0`` the slope is ``+-omega / epsilon``: a kink, as in L1,
    but steeper, so small errors keep a large gradient.

    .. math::
        \ell_n = \begin{cases} \omega \ln(1 + |r_n| / \epsilon) & |r_n| < \omega \\
                 |r_n| - C & \text{otherwise} \end{cases}, \quad
        C = \omega - \omega \ln(1 + \omega / \epsilon)

    Args:
        input: Predicted coordinates, any shape (e.g. ``(N, 2 L)`` for ``L`` landmarks).
        omega: ``w``, the width of the logarithmic part, ``> 0``.
        epsilon: ``epsilon``, its curvature (smaller is sharper), ``> 0``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            elements; for mmpose's value use ``"sum"`` divided by the batch size.

    Example:
        >>> r = torch.tensor([0.0, 2.0, 10.0, 30.0])
        >>> la.wing_loss(r, torch.zeros(4), reduction="none")
        tensor([ 0.0000,  6.9315, 17.9176, 37.9176])

    References:
        Z.-H. Feng et al., "Wing Loss for Robust Facial Landmark Localisation with
        Convolutional Neural Networks", CVPR 2018, https://arxiv.org/abs/1711.06753
    """
    input, target = prepare_pair(input, target)
    error = (input - target).abs()
    joint = omega - omega * math.log1p(omega / epsilon)
    logarithmic = omega * torch.log1p(error / epsilon)
    return reduce_loss(torch.where(error < omega, logarithmic, error - joint), reduction)


@_POINTWISE.loss(
    input_kind="predicted heatmaps",
    target_kind="heatmaps in [0, 1]",
    formula=r"\begin{cases} \omega \ln(1 + |r / \epsilon|^{\alpha - y}) & |r| < \theta \\ "
    r"A |r| - C & \text{otherwise} \end{cases}",
    properties={"non_negative", "zero_at_perfect"},
    examples=_heatmap_example,
    perfect=_heatmap_perfect,
    use_when="heatmap regression (face alignment, keypoints)",
    peers={
        "mmpose": "AdaptiveWingLoss(alpha, omega, epsilon, theta): the same element-wise loss "
        "and mean; the much-copied snippet dividing by omega (not epsilon) in the log piece is "
        "not the paper's and is discontinuous at theta"
    },
)
def adaptive_wing_loss(
    input: Tensor,
    target: Tensor,
    *,
    alpha: AboveOne = 2.1,
    omega: Positive = 14.0,
    epsilon: Positive = 1.0,
    theta: Positive = 0.5,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Adaptive Wing loss (Wang et al.) for heatmaps: its shape adapts to each target pixel.

    The exponent ``alpha - y`` depends on the target: on the background (``y ~ 0``) it is about
    2.1 and the loss is MSE-like near 0 (small errors on the many background pixels are
    tolerated); at the landmark (``y ~ 1``) it is about 1.1 and the loss is L1-like, so errors
    there keep a strong gradient. Beyond ``theta`` it is linear. ``A`` and ``C`` are computed
    per element from the continuity of the value and of the first derivative at
    ``|r| = theta``. The paper's weighted loss map (``M``, ``W``) is not included: multiply
    ``reduction="none"`` by your weights.

    .. math::
        \ell_n = \begin{cases} \omega \ln\left(1 + |r_n / \epsilon|^{\alpha - y_n}\right)
                 & |r_n| < \theta \\ A_n |r_n| - C_n & \text{otherwise} \end{cases}

        A_n = \omega \frac{(\alpha - y_n) (\theta / \epsilon)^{\alpha - y_n - 1} / \epsilon}
              {1 + (\theta / \epsilon)^{\alpha - y_n}}, \quad
        C_n = \theta A_n - \omega \ln\left(1 + (\theta / \epsilon)^{\alpha - y_n}\right)

    Args:
        input: Predicted heatmaps, any shape.
        target: Heatmaps in ``[0, 1]``, the input's shape.
        alpha: The exponent's offset, ``> 1`` so that ``alpha - y > 0``; ``> 2`` (the paper's
            2.1) keeps the loss smooth at ``r = 0`` for every target.
        omega: The height of the logarithmic part, ``> 0``.
        epsilon: Its curvature, ``> 0``.
        theta: Where it turns linear, ``> 0``.

    Raises:
        ValueError: A target outside [0, 1] (a value check), ``alpha <= 1``, a non-positive
            ``omega``, ``epsilon`` or ``theta``, shapes that differ, an unknown reduction.

    Example:
        >>> target = torch.tensor([0.0, 0.0, 1.0, 1.0])
        >>> la.adaptive_wing_loss(torch.tensor([0.1, 0.9, 0.9, 0.0]), target, reduction="none")
        tensor([ 0.1108,  7.3838,  1.0701, 10.2594])

    References:
        X. Wang, L. Bo and L. Fuxin, "Adaptive Wing Loss for Robust Face Alignment via Heatmap
        Regression", ICCV 2019, https://arxiv.org/abs/1904.07399
    """
    input, target = prepare_pair(input, target)
    check_in_range("target", target, 0.0, 1.0, what="heatmap values")
    error = (input - target).abs()
    power = alpha - target
    ratio = theta / epsilon
    slope = omega * power * ratio ** (power - 1) / epsilon / (1 + ratio**power)
    joint = theta * slope - omega * torch.log1p(ratio**power)
    # |r / epsilon|^(alpha - y) as exp(p log u), 0 at u = 0: finite gradients in y there too.
    scaled = error / epsilon
    positive = scaled > 0
    safe_log = torch.log(torch.where(positive, scaled, torch.ones_like(scaled)))
    raised = torch.where(positive, torch.exp(power * safe_log), torch.zeros_like(scaled))
    logarithmic = omega * torch.log1p(raised)
    return reduce_loss(torch.where(error < theta, logarithmic, slope * error - joint), reduction)


# --------------------------------------------------------------------------- modules


class WingLoss(LossModule, functional=wing_loss):
    """Module form of :func:`lossatlas.wing_loss`."""


class AdaptiveWingLoss(LossModule, functional=adaptive_wing_loss):
    """Module form of :func:`lossatlas.adaptive_wing_loss`."""
