r"""Point-wise regression losses: functions of the residual ``r = input - target``.

``mse_loss``, ``l1_loss``, ``smooth_l1_loss`` and ``huber_loss`` have torch parity (torch's
kernels, plus exact-shape validation and the safe empty mean). ``rmse_loss``,
``pseudo_huber_loss`` and ``log_cosh_loss`` are the smooth or robust neighbours torch lacks,
each computed in a form that stays finite for residuals of any size.

Input and target must have exactly the same shape: ``(N, 1)`` against ``(N,)`` is an error,
not a silent ``(N, N)`` broadcast.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import NonNegative, Positive
from lossatlas._reduction import Reduction, reduce_loss, safe_sqrt
from lossatlas.regression._pair import PAIR_DOCS, prepare_pair

__all__ = [
    "huber_loss",
    "l1_loss",
    "log_cosh_loss",
    "mse_loss",
    "pseudo_huber_loss",
    "rmse_loss",
    "smooth_l1_loss",
]

_LOG2 = math.log(2.0)


_POINTWISE = Family(
    tasks=("regression",),
    input_kind="predictions",
    target_kind="real values",
    target_type=TargetKind.REAL,
    properties={"non_negative", "zero_at_perfect", "symmetric"},
    examples=ex.residual_example,
    perfect=ex.residual_perfect,
    same_shape=(0, 1),
    curve="residual",
    **PAIR_DOCS,
)


def _torch_kernel(
    kernel: Callable[..., Tensor],
    input: Tensor,
    target: Tensor,
    reduction: Reduction,
    **options: float,
) -> Tensor:
    """The element-wise torch ``kernel`` on the checked pair, then lossatlas's reduction."""
    input, target = prepare_pair(input, target)
    return reduce_loss(kernel(input, target, reduction="none", **options), reduction)


# L1, smooth L1, Huber and RMSE have a kink or a jump in the second derivative, so they are not
# declared twice differentiable.

# --------------------------------------------------------------------------- functionals


@_POINTWISE.loss(
    formula=r"(x - y)^2",
    oracle=F.mse_loss,
    twice_differentiable=True,
    use_when="Gaussian noise; the default for clean regression",
    peers={"torch": "F.mse_loss: same values; an empty mean is NaN there, 0 here"},
)
def mse_loss(input: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""Mean squared error (squared L2), torch parity.

    The maximum-likelihood loss for Gaussian noise; it punishes large errors quadratically, so
    one outlier can dominate (see :func:`huber_loss` and :func:`log_cosh_loss`).

    .. math::
        \ell_n = (x_n - y_n)^2

    Returns:
        The input's shape for ``"none"``, else a scalar (float32 for half-precision input).

    Example:
        >>> la.mse_loss(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 0.0, 1.0]))
        tensor(4.3333)

    References:
        torch.nn.functional.mse_loss,
        https://pytorch.org/docs/stable/generated/torch.nn.functional.mse_loss.html
    """
    return _torch_kernel(F.mse_loss, input, target, reduction)


@_POINTWISE.loss(
    formula=r"|x - y|",
    oracle=F.l1_loss,
    use_when="outliers in the targets; predicts the median",
    peers={"torch": "F.l1_loss: same values"},
)
def l1_loss(input: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""Mean absolute error (L1, MAE), torch parity.

    Robust to outliers (the gradient is ``sign(r)`` whatever the error's size), but that
    constant gradient does not shrink near the minimum; the median minimises it.

    .. math::
        \ell_n = |x_n - y_n|

    Returns:
        Values in the target's units, the input's shape for ``"none"``, else a scalar.

    Example:
        >>> residual = torch.tensor([1.0, -2.0, 3.0])
        >>> la.l1_loss(residual, torch.zeros(3), reduction="sum")  # 1 + 2 + 3
        tensor(6.)

    References:
        torch.nn.functional.l1_loss,
        https://pytorch.org/docs/stable/generated/torch.nn.functional.l1_loss.html
    """
    return _torch_kernel(F.l1_loss, input, target, reduction)


@_POINTWISE.loss(
    tasks=("regression", "detection"),
    formula=r"\begin{cases} 0.5\, r^2 / \beta & |r| < \beta \\ |r| - 0.5\, \beta "
    r"& \text{otherwise} \end{cases}",
    oracle=F.smooth_l1_loss,
    use_when="box regression (Fast R-CNN); bounded gradient",
    peers={"torch": "F.smooth_l1_loss: same values"},
)
def smooth_l1_loss(
    input: Tensor, target: Tensor, *, beta: NonNegative = 1.0, reduction: Reduction = "mean"
) -> Tensor:
    r"""Smooth L1 (Fast R-CNN's box loss), torch parity.

    Quadratic ``0.5 r^2 / beta`` below ``beta`` and linear ``|r| - beta / 2`` above, so the
    gradient is bounded by 1. ``beta=0`` is exactly :func:`l1_loss` (with finite gradients);
    ``huber_loss(delta=d) == d * smooth_l1_loss(beta=d)``.

    .. math::
        \ell_n = \begin{cases} 0.5\, r_n^2 / \beta & |r_n| < \beta \\
                 |r_n| - 0.5\, \beta & \text{otherwise} \end{cases}, \quad r_n = x_n - y_n

    Args:
        beta: Where the quadratic part ends, ``>= 0``.

    Example:
        >>> r = torch.tensor([0.5, -2.0, 3.0])
        >>> la.smooth_l1_loss(r, torch.zeros(3), reduction="none")
        tensor([0.1250, 1.5000, 2.5000])

    References:
        R. Girshick, "Fast R-CNN", ICCV 2015, https://arxiv.org/abs/1504.08083

        torch.nn.functional.smooth_l1_loss,
        https://pytorch.org/docs/stable/generated/torch.nn.functional.smooth_l1_loss.html
    """
    return _torch_kernel(F.smooth_l1_loss, input, target, reduction, beta=beta)


@_POINTWISE.loss(
    tasks=("regression", "detection"),
    formula=r"\begin{cases} 0.5\, r^2 & |r| \le \delta \\ \delta (|r| - 0.5\, \delta) "
    r"& \text{otherwise} \end{cases}",
    oracle=F.huber_loss,
    use_when="a few outliers; MSE near 0, MAE far away",
    peers={"torch": "F.huber_loss: same values"},
)
def huber_loss(
    input: Tensor, target: Tensor, *, delta: Positive = 1.0, reduction: Reduction = "mean"
) -> Tensor:
    r"""Huber loss: quadratic for small errors, linear for large ones, torch parity.

    Equals ``delta * smooth_l1_loss(beta=delta)``; with ``delta=1`` the two coincide. Small
    ``delta`` approaches ``delta * |r|`` (MAE), large ``delta`` approaches ``r^2 / 2`` (MSE).

    .. math::
        \ell_n = \begin{cases} 0.5\, r_n^2 & |r_n| \le \delta \\
                 \delta\,(|r_n| - 0.5\, \delta) & \text{otherwise} \end{cases}

    Args:
        delta: Where the quadratic part ends, ``> 0``.

    Example:
        >>> r = torch.tensor([0.5, -2.0, 3.0])
        >>> la.huber_loss(r, torch.zeros(3), delta=2.0, reduction="none")
        tensor([0.1250, 2.0000, 4.0000])

    References:
        P. J. Huber, "Robust Estimation of a Location Parameter", The Annals of Mathematical
        Statistics 35(1), 1964, https://doi.org/10.1214/aoms/1177703732

        torch.nn.functional.huber_loss,
        https://pytorch.org/docs/stable/generated/torch.nn.functional.huber_loss.html
    """
    return _torch_kernel(F.huber_loss, input, target, reduction, delta=delta)


@_POINTWISE.loss(
    formula=r"\sqrt{\tfrac{1}{N} \sum_n (x_n - y_n)^2}",
    mean_of_none=False,
    use_when="an MSE reported in the target's units",
)
def rmse_loss(input: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""Root mean squared error, with a finite (zero) gradient at zero error.

    ``reduction="mean"`` is the RMSE, ``sqrt(mean(r^2))``, in the target's units. The root is
    not an element-wise function, so the other reductions are defined element-wise: for
    ``"none"`` each element is its own one-element RMSE, ``sqrt(r_n^2) = |r_n|``, and ``"sum"``
    adds those. Hence ``"mean"`` is *not* ``"none"`` followed by ``.mean()`` (that would be the
    MAE). To accumulate an RMSE over micro-batches or ranks, sum
    ``mse_loss(reduction="sum")`` and the element counts, and take the root at the end.

    The root's derivative is infinite at 0; here the gradient at exactly zero error is 0 (the
    minimum's subgradient), so a perfect fit never produces NaN.

    .. math::
        \mathrm{RMSE} = \sqrt{\frac{1}{N} \sum_n (x_n - y_n)^2}

    Args:
        reduction: ``"mean"`` (the RMSE; 0 for an empty input) | ``"none"`` (``|r|``) |
            ``"sum"`` (``sum |r|``).

    Example:
        >>> la.rmse_loss(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 0.0, 1.0]))
        tensor(2.0817)

    References:
        R. J. Hyndman and A. B. Koehler, "Another look at measures of forecast accuracy",
        International Journal of Forecasting 22(4), 2006,
        https://doi.org/10.1016/j.ijforecast.2006.03.001
    """
    input, target = prepare_pair(input, target)
    residual = input - target
    if reduction != "mean":
        return reduce_loss(residual.abs(), reduction)
    return safe_sqrt(reduce_loss(residual.square(), "mean"))


@_POINTWISE.loss(
    formula=r"\delta^2 \left(\sqrt{1 + (r / \delta)^2} - 1\right)",
    twice_differentiable=True,
    use_when="a Huber with second derivatives (boosting)",
    peers={"XGBoost": "reg:pseudohubererror: same loss, huber_slope is delta"},
)
def pseudo_huber_loss(
    input: Tensor, target: Tensor, *, delta: Positive = 1.0, reduction: Reduction = "mean"
) -> Tensor:
    r"""Pseudo-Huber loss: a smooth Huber, ``r^2 / 2`` near 0 and ``delta |r|`` far away.

    Twice differentiable everywhere (XGBoost's ``reg:pseudohubererror``). For ``|r| << delta``
    it is ``r^2 / 2`` (half the MSE); for ``|r| >> delta`` it grows like ``delta |r|``. It is
    computed as ``r^2 / (1 + sqrt(1 + (r / delta)^2))``, which equals the textbook form but
    does not cancel for small ``r``.

    .. math::
        \ell_n = \delta^2 \left(\sqrt{1 + (r_n / \delta)^2} - 1\right)

    Args:
        delta: Scale where the loss turns from quadratic to linear, ``> 0``.

    Example:
        >>> r = torch.tensor([0.0, 1.0, -3.0])
        >>> la.pseudo_huber_loss(r, torch.zeros(3), reduction="none")
        tensor([0.0000, 0.4142, 2.1623])

    References:
        P. J. Huber, "Robust Estimation of a Location Parameter", The Annals of Mathematical
        Statistics 35(1), 1964, https://doi.org/10.1214/aoms/1177703732

        P. Charbonnier et al., "Deterministic edge-preserving regularization in computed
        imaging", IEEE Transactions on Image Processing 6(2), 1997,
        https://doi.org/10.1109/83.551699
    """
    input, target = prepare_pair(input, target)
    residual = input - target
    root = torch.hypot(torch.ones_like(residual), residual / delta)
    return reduce_loss(residual.square() / (1.0 + root), reduction)


@_POINTWISE.loss(
    formula=r"\log\cosh(x - y)",
    twice_differentiable=True,
    use_when="smooth and robust; MSE near 0, MAE far away",
)
def log_cosh_loss(input: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""Log-cosh loss: ``r^2 / 2`` for small errors, ``|r| - log 2`` for large ones.

    Smooth (twice differentiable, gradient ``tanh(r)`` bounded by 1) and robust to outliers.
    The naive ``log(cosh(r))`` overflows once ``|r|`` passes about 89 in float32 (710 in
    float64); this computes ``|r| + softplus(-2|r|) - log 2``, which is finite for any finite
    residual. It is evaluated branch-wise (``r + softplus(-2r)`` for ``r >= 0``, its mirror for
    ``r < 0``) so that autograd gives the exact first and second derivatives at ``r = 0`` too.

    .. math::
        \ell_n = \log\cosh(r_n) = |r_n| + \log\left(1 + e^{-2|r_n|}\right) - \log 2

    Returns:
        Values ``>= 0`` (finite for every finite residual): the input's shape for ``"none"``,
        else a scalar.

    Example:
        >>> r = torch.tensor([0.0, 1.0, -1e4])
        >>> la.log_cosh_loss(r, torch.zeros(3), reduction="none")
        tensor([0.0000e+00, 4.3378e-01, 9.9993e+03])

    References:
        P. Chen et al., "Log Hyperbolic Cosine Loss Improves Variational Auto-Encoder",
        ICLR 2019 submission, https://openreview.net/forum?id=rkglvsC9Ym
    """
    input, target = prepare_pair(input, target)
    residual = input - target
    positive = residual + F.softplus(-2.0 * residual)
    negative = -residual + F.softplus(2.0 * residual)
    return reduce_loss(torch.where(residual >= 0, positive, negative) - _LOG2, reduction)


# --------------------------------------------------------------------------- modules


class MSELoss(LossModule, functional=mse_loss):
    """Module form of :func:`lossatlas.mse_loss`."""


class L1Loss(LossModule, functional=l1_loss):
    """Module form of :func:`lossatlas.l1_loss`."""


class SmoothL1Loss(LossModule, functional=smooth_l1_loss):
    """Module form of :func:`lossatlas.smooth_l1_loss`."""


class HuberLoss(LossModule, functional=huber_loss):
    """Module form of :func:`lossatlas.huber_loss`."""


class RMSELoss(LossModule, functional=rmse_loss):
    """Module form of :func:`lossatlas.rmse_loss`."""


class PseudoHuberLoss(LossModule, functional=pseudo_huber_loss):
    """Module form of :func:`lossatlas.pseudo_huber_loss`."""


class LogCoshLoss(LossModule, functional=log_cosh_loss):
    """Module form of :func:`lossatlas.log_cosh_loss`."""
