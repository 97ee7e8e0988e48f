r"""Barron's general robust loss and its named special cases (Charbonnier, Cauchy, ...).

``general_robust_loss`` is the one-parameter family of J. T. Barron (CVPR 2019),
``rho(r, alpha, c)`` of the scaled residual ``r / c``; its shape parameter ``alpha`` runs from
the quadratic (``alpha = 2``, half the squared error) through Charbonnier (``1``) and Cauchy
(``0``) to the redescending Geman-McClure (``-2``) and Welsch (``-inf``). The named losses are
those special cases in closed form; each equals kornia's function of the same name at
``scale=1`` (kornia has no scale: ``ours(x, y, scale=c) == kornia(x / c, y / c)``).

Relation to :func:`lossatlas.pseudo_huber_loss`: ``charbonnier_loss(scale=c)`` is
``pseudo_huber_loss(delta=c) / c**2`` (the same curve, divided by ``c^2`` so that it is
``r^2 / (2 c^2)`` near 0 and ``|r| / c`` far away); it is computed by that function.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import math
from typing import Annotated, Any

import torch
from torch import Tensor

from lossatlas._module import LossModule
from lossatlas._options import Check, Positive
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_broadcasts_to,
    check_floating,
    check_same_device,
    describe,
    value_checks_enabled,
)
from lossatlas.regression._pair import prepare_pair
from lossatlas.regression.pointwise import _POINTWISE, pseudo_huber_loss

__all__ = [
    "cauchy_loss",
    "charbonnier_loss",
    "geman_mcclure_loss",
    "general_robust_loss",
    "welsch_loss",
]


def _check_alpha(name: str, value: Any) -> None:
    """A real number or ``-inf``: NaN and ``+inf`` are rejected (a tensor is checked later)."""
    if isinstance(value, Tensor):
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, -inf or a tensor, got {describe(value)}")
    if value != value or value == math.inf:
        raise ValueError(f"{name} must be a real number or -inf, got {value!r}")


#: Barron's shape parameter: a real number or ``-inf`` (Welsch), or a floating tensor of them
#: that broadcasts to the input (one ``alpha`` per dimension or per element).
Alpha = Tensor | Annotated[Any, Check(_check_alpha, (math.nan, math.inf), "[-inf, inf)")]


#: The point-wise family (residual curve, symmetric, zero at a perfect fit), all smooth.
_ROBUST = _POINTWISE.derive(
    twice_differentiable=True,
    references=(
        'J. T. Barron, "A General and Adaptive Robust Loss Function", CVPR 2019,'
        " https://arxiv.org/abs/1701.03077",
    ),
)


def _scaled_square(input: Tensor, target: Tensor, scale: float) -> Tensor:
    """``((input - target) / scale)^2`` after the pair checks, in the compute dtype."""
    input, target = prepare_pair(input, target)
    return ((input - target) / scale).square()


def _exprel(t: Tensor) -> Tensor:
    """``expm1(t) / t`` (1 at 0), with a Taylor series near 0 for exact values and gradients.

    Below ``|t| < (840 eps)^(1/6)`` the series to ``t^5`` is used: there its error and the
    rounding of the direct quotient's autograd derivative (about ``eps / |t|``) balance.
    """
    threshold = (840.0 * torch.finfo(t.dtype).eps) ** (1.0 / 6.0)
    small = t.abs() < threshold
    safe = torch.where(small, torch.ones_like(t), t)
    series = 1 + t / 2 * (1 + t / 3 * (1 + t / 4 * (1 + t / 5 * (1 + t / 6))))
    return torch.where(small, series, torch.expm1(safe) / safe)


def _rho(z: Tensor, alpha: Tensor) -> Tensor:
    r"""Barron's ``rho`` of the squared scaled residual ``z = (r / c)^2``, element-wise in alpha.

    ``(b / alpha) expm1((alpha / 2) log1p(z / b))`` with ``b = |alpha - 2|``, evaluated as
    ``b (L / 2) exprel(alpha L / 2)`` (``L = log1p(z / b)``), which is exact at ``alpha = 0``
    (``log1p(z / 2)``) and near it. ``b`` is floored at the dtype's smallest normal number,
    ``L`` becomes ``log z - log b`` once ``z / b > 1 / eps`` and the value is taken in log space
    once ``expm1`` is ``exp`` to rounding, so nothing overflows near ``alpha = 2`` before the
    true value does. ``alpha = 2`` (``z / 2``) and ``-inf`` (``-expm1(-z / 2)``) are exact.
    Every branch gets arguments that are finite where it is not taken (no NaN gradients).
    """
    finfo = torch.finfo(z.dtype)
    two = alpha == 2
    neg_inf = alpha == -math.inf
    a = torch.where(neg_inf, torch.zeros_like(alpha), alpha)
    b = (a - 2).abs().clamp_min(finfo.tiny)
    huge = z * finfo.eps > b
    log_term = torch.log(torch.where(huge, z, torch.ones_like(z))) - torch.log(b)
    L = torch.where(huge, log_term, torch.log1p(torch.where(huge, torch.zeros_like(z), z) / b))
    t = 0.5 * a * L
    large = t > -math.log(finfo.eps)  # expm1(t) == exp(t) to rounding, and alpha > 0 there
    a_pos = torch.where(large, a, torch.ones_like(a))
    in_log_space = torch.exp(torch.where(large, t, torch.zeros_like(t)) + b.log() - a_pos.log())
    direct = b * (0.5 * L) * _exprel(torch.where(large, torch.zeros_like(t), t))
    general = torch.where(large, in_log_space, direct)
    return torch.where(two, 0.5 * z, torch.where(neg_inf, -torch.expm1(-0.5 * z), general))


# --------------------------------------------------------------------------- functionals


@_ROBUST.loss(
    formula=r"\frac{|\alpha - 2|}{\alpha} \left(\left(\frac{(r / c)^2}{|\alpha - 2|} + 1"
    r"\right)^{\alpha / 2} - 1\right)",
    use_when="one knob from L2 through L1-like to redescending",
    peers={
        "robust_loss_pytorch": "general.lossfun(x, alpha, scale): same rho; it nudges alpha "
        "off 0 and 2 by epsilon, here those points are exact",
        "kornia": "no general form; its charbonnier/cauchy/geman_mcclure/welsch are alpha = 1, "
        "0, -2, -inf at scale 1",
    },
)
def general_robust_loss(
    input: Tensor,
    target: Tensor,
    *,
    alpha: Alpha = 1.0,
    scale: Positive = 1.0,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Barron's general robust loss ``rho(r, alpha, c)``, finite and smooth for every alpha.

    One shape parameter covers the common robust losses of the residual ``r = x - y`` at scale
    ``c``: ``alpha = 2`` is ``(r / c)^2 / 2`` (``mse_loss / (2 c^2)``), ``alpha = 1`` is
    :func:`charbonnier_loss`, ``alpha = 0`` :func:`cauchy_loss`, ``alpha = -2``
    :func:`geman_mcclure_loss` and ``alpha = -inf`` :func:`welsch_loss`. Below ``alpha = 0`` the
    loss is bounded (outliers stop pulling); near ``r = 0`` it is always ``(r / c)^2 / 2``.

    The formula is singular at ``alpha = 0`` and ``2``; it is evaluated as
    ``|alpha - 2| (L / 2) expm1(alpha L / 2) / (alpha L / 2)`` with
    ``L = log1p((r / c)^2 / |alpha - 2|)`` (the quotient by a Taylor series near 0), so the
    value and its gradients are continuous through both points and exact at them (Barron's
    reference code instead moves alpha away from them by ``1e-6``).

    ``alpha`` may be a floating tensor that broadcasts to the input without changing its shape
    (one ``alpha`` per output dimension, as in Barron's adaptive loss, or per element); the
    loss is differentiable in it. The derivative in ``alpha`` grows like
    ``log(1 / |alpha - 2|)`` near ``alpha = 2`` (the value is continuous there, its slope in
    ``alpha`` is not finite). Minimising ``rho`` over ``alpha`` drives it to ``-inf``; Barron's
    *adaptive* loss learns ``alpha`` through the negative log-likelihood ``rho + log Z(alpha)``
    with a tabulated partition function, which is not part of this function.

    .. math::
        \rho(r, \alpha, c) = \frac{|\alpha - 2|}{\alpha}
        \left(\left(\frac{(r / c)^2}{|\alpha - 2|} + 1\right)^{\alpha / 2} - 1\right)

    Args:
        alpha: The shape, a real number or ``-inf`` (``float("-inf")``), or a floating tensor of
            them that broadcasts to the input; ``+inf`` and NaN are rejected.
        scale: ``c``, the residual size where the loss leaves its quadratic bowl, ``> 0``.

    Raises:
        TypeError: A non-floating tensor, an alpha that is neither a number nor a tensor.
        ValueError: A NaN or ``+inf`` alpha, an alpha tensor that does not broadcast to the
            input, ``scale <= 0``, shapes that differ, an unknown reduction.

    Example:
        >>> r = torch.tensor([0.0, 1.0, 10.0])
        >>> la.general_robust_loss(r, torch.zeros(3), alpha=0.0, reduction="none")
        tensor([0.0000, 0.4055, 3.9318])
        >>> la.general_robust_loss(r, torch.zeros(3), alpha=torch.tensor([2.0, 1.0, -2.0]),
        ...                        reduction="none")
        tensor([0.0000, 0.4142, 1.9231])

    References:
        J. T. Barron, "A General and Adaptive Robust Loss Function", CVPR 2019,
        https://arxiv.org/abs/1701.03077

        J. T. Barron, robust_loss_pytorch (``general.lossfun``),
        https://github.com/jonbarron/robust_loss_pytorch
    """
    if isinstance(alpha, Tensor):
        check_floating("alpha", alpha)
        check_same_device(("input", input), ("alpha", alpha))
        check_broadcasts_to("alpha", alpha, input)
        if value_checks_enabled() and bool((alpha.isnan() | (alpha == math.inf)).any()):
            raise ValueError("alpha must hold real numbers or -inf, got NaN or +inf")
    z = _scaled_square(input, target, scale)
    if isinstance(alpha, Tensor):
        dtype = compute_dtype(z, alpha)
        z, a = upcast(z, dtype), upcast(alpha, dtype)
    else:
        a = torch.full((), float(alpha), dtype=z.dtype, device=z.device)
    return reduce_loss(_rho(z, a), reduction)


@_ROBUST.loss(
    formula=r"\sqrt{(r / c)^2 + 1} - 1",
    use_when="smooth L1 (optical flow, super-resolution)",
    peers={"kornia": "losses.charbonnier_loss: the same at scale=1; default reduction 'none'"},
)
def charbonnier_loss(
    input: Tensor, target: Tensor, *, scale: Positive = 1.0, reduction: Reduction = "mean"
) -> Tensor:
    r"""Charbonnier (L1-L2) loss: Barron's ``rho`` at ``alpha = 1``.

    ``(r / c)^2 / 2`` near 0 and ``|r| / c`` far away. It is :func:`pseudo_huber_loss` with
    ``delta = c`` divided by ``c^2`` (computed by it, in its cancellation-free form): the two
    differ only in scale, so for ``c = 1`` they are equal.

    .. math::
        \ell_n = \sqrt{(r_n / c)^2 + 1} - 1

    Args:
        scale: ``c = delta`` of :func:`pseudo_huber_loss`, ``> 0``.

    Returns:
        Values in ``[0, inf)``: the input's shape for ``"none"``, else a scalar.

    Example:
        >>> r = torch.tensor([2.0, -6.0])
        >>> la.charbonnier_loss(r, torch.zeros(2), scale=2.0, reduction="none")
        tensor([0.4142, 2.1623])

    References:
        P. Charbonnier et al., "Two deterministic half-quadratic regularization algorithms for
        computed imaging", ICIP 1994, https://doi.org/10.1109/ICIP.1994.413553
    """
    return pseudo_huber_loss(input, target, delta=scale, reduction=reduction) / scale**2


@_ROBUST.loss(
    formula=r"\log\left(\tfrac{1}{2} (r / c)^2 + 1\right)",
    use_when="heavy-tailed noise; outliers pull only logarithmically",
    peers={"kornia": "losses.cauchy_loss: the same at scale=1; its default reduction is 'none'"},
)
def cauchy_loss(
    input: Tensor, target: Tensor, *, scale: Positive = 1.0, reduction: Reduction = "mean"
) -> Tensor:
    r"""Cauchy (Lorentzian) loss: Barron's ``rho`` at ``alpha = 0``.

    The negative log-likelihood of a Cauchy distribution (up to a constant); the gradient
    ``r / (c^2 + r^2 / 2)`` falls off like ``1 / r``, so large residuals pull little.

    .. math::
        \ell_n = \log\left(\tfrac{1}{2} (r_n / c)^2 + 1\right)

    Args:
        scale: ``c``, the Cauchy distribution's scale times ``sqrt(2)``, ``> 0``.

    Returns:
        Unbounded but logarithmic values: the input's shape for ``"none"``, else a scalar.

    Example:
        >>> la.cauchy_loss(torch.tensor([2.0, -20.0]), torch.zeros(2), scale=2.0)
        tensor(2.1686)

    References:
        M. J. Black and P. Anandan, "The robust estimation of multiple motions: Parametric and
        piecewise-smooth flow fields", CVIU 63(1), 1996, https://doi.org/10.1006/cviu.1996.0006
    """
    return reduce_loss(torch.log1p(0.5 * _scaled_square(input, target, scale)), reduction)


@_ROBUST.loss(
    formula=r"\frac{2 (r / c)^2}{(r / c)^2 + 4}",
    properties={"non_negative", "zero_at_perfect", "symmetric", "bounded"},
    use_when="gross outliers to be ignored (redescending, bounded by 2)",
    peers={
        "kornia": "losses.geman_mcclure_loss: the same at scale=1; its default reduction is 'none'"
    },
)
def geman_mcclure_loss(
    input: Tensor, target: Tensor, *, scale: Positive = 1.0, reduction: Reduction = "mean"
) -> Tensor:
    r"""Geman-McClure loss: Barron's ``rho`` at ``alpha = -2``, bounded by 2.

    Redescending: the gradient peaks at ``|r| = 2 c / sqrt(3)`` and falls back to 0, so a
    residual far outside the scale stops pulling. Non-convex: start from a good fit.

    .. math::
        \ell_n = \frac{2 (r_n / c)^2}{(r_n / c)^2 + 4}

    Args:
        scale: ``c``; the loss is half its bound at ``|r| = 2 c``, ``> 0``.

    Returns:
        Values in ``[0, 2)``, of the input's shape for ``"none"``, else a scalar.

    Example:
        >>> x, y = torch.tensor([0.0, 2.0, 100.0]), torch.zeros(3)
        >>> la.geman_mcclure_loss(x, y, reduction="none")
        tensor([0.0000, 1.0000, 1.9992])

    References:
        S. Geman and D. E. McClure, "Bayesian image analysis: An application to single photon
        emission tomography", Proceedings of the American Statistical Association, 1985
    """
    z = _scaled_square(input, target, scale)
    return reduce_loss(2.0 * z / (z + 4.0), reduction)


@_ROBUST.loss(
    formula=r"1 - \exp\left(-\tfrac{1}{2} (r / c)^2\right)",
    properties={"non_negative", "zero_at_perfect", "symmetric", "bounded"},
    use_when="gross outliers to be ignored (redescending, bounded by 1)",
    peers={"kornia": "losses.welsch_loss: the same at scale=1; its default reduction is 'none'"},
)
def welsch_loss(
    input: Tensor, target: Tensor, *, scale: Positive = 1.0, reduction: Reduction = "mean"
) -> Tensor:
    r"""Welsch (Leclerc) loss: Barron's ``rho`` as ``alpha -> -inf``, bounded by 1.

    An inverted Gaussian: the gradient ``(r / c^2) exp(-(r / c)^2 / 2)`` vanishes fastest of the
    family for large residuals. Computed as ``-expm1(-(r / c)^2 / 2)`` (exact near 0).

    .. math::
        \ell_n = 1 - \exp\left(-\tfrac{1}{2} (r_n / c)^2\right)

    Args:
        scale: ``c``, the width of the inverted Gaussian, ``> 0``.

    Returns:
        Values in ``[0, 1)`` (``1.0`` once rounded), the input's shape for ``"none"``, else a
        scalar.

    Example:
        >>> la.welsch_loss(torch.tensor([1.0, 5.0]), torch.zeros(2), reduction="sum")
        tensor(1.3935)

    References:
        J. E. Dennis and R. E. Welsch, "Techniques for nonlinear least squares and robust
        regression", Communications in Statistics - Simulation and Computation 7(4), 1978,
        https://doi.org/10.1080/03610917808812083
    """
    z = _scaled_square(input, target, scale)
    return reduce_loss(-torch.expm1(-0.5 * z), reduction)


# --------------------------------------------------------------------------- modules


class GeneralRobustLoss(LossModule, functional=general_robust_loss):
    """Module form of :func:`lossatlas.general_robust_loss`; a tensor ``alpha`` is a buffer."""


class CharbonnierLoss(LossModule, functional=charbonnier_loss):
    """Module form of :func:`lossatlas.charbonnier_loss`."""


class CauchyLoss(LossModule, functional=cauchy_loss):
    """Module form of :func:`lossatlas.cauchy_loss`."""


class GemanMcClureLoss(LossModule, functional=geman_mcclure_loss):
    """Module form of :func:`lossatlas.geman_mcclure_loss`."""


class WelschLoss(LossModule, functional=welsch_loss):
    """Module form of :func:`lossatlas.welsch_loss`."""
