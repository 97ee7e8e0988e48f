"""Balanced L1 loss (Libra R-CNN) for box regression, as mmdetection's ``balanced_l1_loss``."""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import math

import torch
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._options import Positive
from lossatlas._reduction import Reduction, compute_dtype, upcast
from lossatlas._validation import check_floating, check_same_shape
from lossatlas.detection._weighted import (
    WEIGHTED_ARGS,
    AvgFactor,
    WeightedModule,
    check_weight,
    weighted_reduce,
)

__all__ = ["balanced_l1_loss"]


def balance_constant(alpha: float, gamma: float) -> float:
    """``b`` with ``alpha * log(b + 1) = gamma`` (the gradients meet at ``|x| = 1``).

    Raises:
        ValueError: ``gamma / alpha`` so large that ``e^(gamma / alpha)`` overflows.
    """
    try:
        return math.expm1(gamma / alpha)
    except OverflowError:
        raise ValueError(
            f"gamma / alpha must be at most ~709 (b = exp(gamma / alpha) - 1 overflows), got "
            f"gamma={gamma!r}, alpha={alpha!r}"
        ) from None


def _weighted_residuals(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    # box deltas (batch, 4) around the threshold beta = 1, and mmdetection's (N, 4) bbox weights
    input = ex.normal(generator, batch, 4, dtype=dtype, scale=scale)
    target = ex.normal(generator, batch, 4, dtype=dtype)
    weight = ex.uniform(generator, batch, 4, dtype=dtype, low=0.5, high=1.5)
    return Example((input, target), {"weight": weight})


_BOX_DELTAS = Family(
    tasks=("detection",),
    input_kind="predictions",
    target_kind="real values: box regression targets",
    target_type=TargetKind.REAL,
    # non-negative for beta <= 1 (the default); see the docstring for beta > 1
    properties={"non_negative", "zero_at_perfect", "symmetric"},
    perfect=ex.residual_perfect,
    same_shape=(0, 1),
    curve="residual",
    args=WEIGHTED_ARGS,
)


@_BOX_DELTAS.loss(
    formula=r"\frac{\alpha}{b}(b|x| + 1)\ln\left(\frac{b|x|}{\beta} + 1\right) - \alpha|x|"
    r"\ (|x| < \beta);\ \gamma|x| + \frac{\gamma}{b} - \alpha\beta",
    examples=_weighted_residuals,
    use_when="box regression: promote the inliers' gradients",
    peers={"mmdetection": "balanced_l1_loss: same values; it asserts on an empty batch"},
)
def balanced_l1_loss(
    input: Tensor,
    target: Tensor,
    *,
    alpha: Positive = 0.5,
    gamma: Positive = 1.5,
    beta: Positive = 1.0,
    weight: Tensor | None = None,
    avg_factor: AvgFactor = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Balanced L1 loss (Libra R-CNN): a larger gradient for inliers than smooth L1's.

    Below ``beta`` the gradient is :math:`\alpha \ln(b|x| + 1)` (for ``beta = 1``), which
    rises faster than smooth L1's for small errors; above it the loss is linear with slope
    ``gamma``, as L1. The constant ``b`` is not an option: it is computed from
    :math:`\alpha \ln(b + 1) = \gamma` (``b = e^{\gamma/\alpha} - 1``, 19.09 for the defaults)
    so that the two gradients meet at ``|x| = 1``, and the constant of the linear part makes the
    value continuous at ``|x| = beta``. mmdetection's ``beta`` scales only the logarithm's
    argument, so for ``beta != 1`` the value is still continuous at ``beta`` but the gradient
    jumps there, and for ``beta > 1`` the loss dips below 0 just above ``|x| = 0`` (its slope
    at 0 is :math:`\alpha(1/\beta - 1)`); this is mmdetection's formula as it is.

    .. math::
        \ell = \begin{cases}
            \frac{\alpha}{b}(b|x| + 1)\ln\left(\frac{b|x|}{\beta} + 1\right) - \alpha|x|
                & |x| < \beta \\
            \gamma|x| + \frac{\gamma}{b} - \alpha\beta & \text{otherwise}
        \end{cases},\quad x = \hat y - y,\quad b = e^{\gamma/\alpha} - 1

    Args:
        input: Predicted box deltas, any shape (mmdetection's ``(N, 4)``).
        target: Regression targets of the same shape.
        alpha: ``> 0``; smaller values promote the inliers' gradients more (the paper's 0.5).
        gamma: ``> 0``, the slope of the linear part (the paper's 1.5).
        beta: ``> 0``, where the logarithmic part meets the linear one (mmdetection's 1.0).
        weight: Element weights broadcasting to ``input`` without changing its shape
            (mmdetection's ``(N, 4)`` ``bbox_weights``, or ``(N, 1)`` per box).

    Returns:
        The shape of ``input`` for ``"none"``, else a scalar; float32 for half precision.

    Raises:
        TypeError: Non-floating tensors.
        ValueError: Shapes that differ, a bad ``weight``, ``gamma / alpha`` too large for
            ``b``, ``avg_factor`` with ``reduction="sum"``, a bad option.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> delta = torch.tensor([0.0, 0.1, 1.0, 3.0])
        >>> la.balanced_l1_loss(delta, torch.zeros(4), reduction="none")
        tensor([0.0000, 0.0314, 1.0786, 4.0786])

    References:
        J. Pang, K. Chen, J. Shi, H. Feng, W. Ouyang, D. Lin, `Libra R-CNN: Towards Balanced
        Learning for Object Detection <https://arxiv.org/abs/1904.02701>`_, CVPR 2019.

        mmdetection, ``mmdet/models/losses/balanced_l1_loss.py``,
        https://github.com/open-mmlab/mmdetection
    """
    check_floating("input", input)
    check_floating("target", target)
    check_same_shape("input", input, "target", target)
    check_weight(weight, input, tuple(input.shape), "an element weight")
    b = balance_constant(alpha, gamma)
    dtype = compute_dtype(input, target, weight)
    diff = (upcast(input, dtype) - upcast(target, dtype)).abs()
    inlier = alpha / b * (b * diff + 1) * torch.log1p(b * diff / beta) - alpha * diff
    outlier = gamma * diff + gamma / b - alpha * beta
    loss = torch.where(diff < beta, inlier, outlier)
    return weighted_reduce(loss, reduction, weight=weight, avg_factor=avg_factor)


class BalancedL1Loss(WeightedModule, functional=balanced_l1_loss):
    """Module form of :func:`lossatlas.balanced_l1_loss`; forward takes a weight too."""
