"""IoU-family box-regression losses: IoU, GIoU, DIoU, CIoU (torchvision's formulas).

All take two aligned sets of corner boxes ``(..., 4)`` as ``(x1, y1, x2, y2)`` and compute, per
pair, ``1 - IoU`` plus a penalty: the empty part of the smallest enclosing box (GIoU), the
normalised centre distance (DIoU), and in addition the aspect-ratio term (CIoU). They follow
``torchvision.ops`` (``eps=1e-7`` in the same places), computed in float32 for half-precision
boxes; unlike torchvision, ``reduction`` defaults to ``"mean"`` and boxes are validated.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import NonNegative
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import check_floating, check_same_shape
from lossatlas.detection.boxes import check_corner_boxes

__all__ = ["ciou_loss", "diou_loss", "giou_loss", "iou_loss"]


def _prepare(input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Checked boxes in the compute dtype (float32 for half precision)."""
    check_floating("input", input)
    check_floating("target", target)
    check_same_shape("input", input, "target", target)
    if input.dim() == 0 or input.shape[-1] != 4:
        raise ValueError(
            f"input must have shape (..., 4) of boxes (x1, y1, x2, y2), got {tuple(input.shape)}"
        )
    check_corner_boxes("input", input)
    check_corner_boxes("target", target)
    dtype = compute_dtype(input, target)
    return upcast(input, dtype), upcast(target, dtype)


def _inter_union(input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Intersection and union areas of aligned boxes (torchvision's ``_loss_inter_union``)."""
    x1, y1, x2, y2 = input.unbind(-1)
    x1g, y1g, x2g, y2g = target.unbind(-1)
    xk1, yk1 = torch.maximum(x1, x1g), torch.maximum(y1, y1g)
    xk2, yk2 = torch.minimum(x2, x2g), torch.minimum(y2, y2g)
    overlap = (yk2 > yk1) & (xk2 > xk1)
    inter = torch.where(overlap, (xk2 - xk1) * (yk2 - yk1), torch.zeros_like(x1))
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    return inter, union


def _enclosing(input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Width and height of the smallest box enclosing both boxes."""
    lo = torch.minimum(input[..., :2], target[..., :2])
    hi = torch.maximum(input[..., 2:], target[..., 2:])
    size = hi - lo
    return size[..., 0], size[..., 1]


def _diou_iou(input: Tensor, target: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    inter, union = _inter_union(input, target)
    iou = inter / (union + eps)
    cw, ch = _enclosing(input, target)
    diagonal = cw**2 + ch**2 + eps
    centre = (input[..., :2] + input[..., 2:]) / 2 - (target[..., :2] + target[..., 2:]) / 2
    distance = (centre**2).sum(dim=-1)
    return 1 - iou + distance / diagonal, iou


def _aspect(w: Tensor, h: Tensor) -> Tensor:
    """``atan(w / h)`` as ``atan2(w, h)``: pi/2 for ``h = 0``; a point box counts as square."""
    point = (w == 0) & (h == 0)
    one = torch.ones_like(w)
    return torch.atan2(torch.where(point, one, w), torch.where(point, one, h))


# --------------------------------------------------------------------------- declarations


def random_boxes(
    generator: torch.Generator, batch: int, *, dtype: torch.dtype, scale: float = 1.0
) -> Tensor:
    """``(batch, 4)`` corner boxes with corners in ``[0, 10) * scale`` and sizes ``>= 0.5``."""
    corner = ex.uniform(generator, batch, 2, dtype=torch.float64, low=0.0, high=10.0)
    size = ex.uniform(generator, batch, 2, dtype=torch.float64, low=0.5, high=5.0)
    return (torch.cat((corner, corner + size), dim=1) * scale).to(dtype)


def _box_pair(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    # ``scale`` spreads the boxes over larger coordinates (1e4: boxes of thousands of pixels).
    target = random_boxes(generator, batch, dtype=dtype, scale=scale)
    # Predictions: the targets moved and resized, so most pairs overlap and some do not.
    shift = ex.normal(generator, batch, 2, dtype=torch.float64, scale=2.0 * scale)
    grow = ex.uniform(generator, batch, 2, dtype=torch.float64, low=0.5, high=1.5)
    t = target.double()
    centre = (t[:, :2] + t[:, 2:]) / 2 + shift
    size = (t[:, 2:] - t[:, :2]) * grow
    pred = torch.cat((centre - size / 2, centre + size / 2), dim=1).to(dtype)
    return Example((pred, target))


# Identical boxes give eps / (area + eps), not exactly 0, so zero_at_perfect is not claimed
# (tests/test_iou_losses.py checks the value against that bound instead).
_IOU = Family(
    tasks=("detection",),
    input_kind="boxes (x1, y1, x2, y2)",
    target_kind="boxes (x1, y1, x2, y2)",
    target_type=TargetKind.BOXES,
    # symmetric: every term is symmetric in the two boxes (torchvision says so too);
    # bounded: IoU <= 1, GIoU < 2, DIoU < 2, CIoU < 3.
    properties={"non_negative", "symmetric", "bounded"},
    examples=_box_pair,
    same_shape=(0, 1),
)


# --------------------------------------------------------------------------- functionals


@_IOU.loss(formula=r"1 - \frac{|B \cap B^{gt}|}{|B \cup B^{gt}| + \epsilon}")
def iou_loss(
    input: Tensor, target: Tensor, *, eps: NonNegative = 1e-7, reduction: Reduction = "mean"
) -> Tensor:
    r"""IoU loss ``1 - IoU`` of aligned boxes, with torchvision's ``eps`` in the union.

    0 for identical boxes (up to ``eps / area``), 1 for disjoint boxes whatever their distance
    (its gradient vanishes there: GIoU, DIoU and CIoU add a penalty that does not).

    .. math::
        \ell = 1 - \frac{|B \cap B^{gt}|}{|B \cup B^{gt}| + \epsilon}

    Args:
        input: Predicted boxes ``(..., 4)`` as ``(x1, y1, x2, y2)``, ``x2 >= x1``, ``y2 >= y1``.
        target: Ground-truth boxes, same shape and format.
        eps: Added to the union, ``>= 0``; zero-area pairs then give IoU 0, not NaN.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of box
            pairs (0 for none).

    Returns:
        Shape ``input.shape[:-1]`` for ``"none"``, else a scalar; in ``[0, 1]``.

    Raises:
        TypeError: Non-floating boxes.
        ValueError: Shapes that differ or do not end in 4, boxes with ``x2 < x1`` or
            ``y2 < y1``, a bad option.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> pred = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
        >>> gt = torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 2.0, 3.0, 3.0]])
        >>> la.iou_loss(pred, gt, reduction="none")  # 1 - 1/7, and 1 for disjoint boxes
        tensor([0.8571, 1.0000])

    References:
        J. Yu, Y. Jiang, Z. Wang, Z. Cao, T. Huang, "UnitBox: An Advanced Object Detection
        Network", ACM MM 2016, https://arxiv.org/abs/1608.01471

        torchvision.ops: https://pytorch.org/vision/stable/ops.html
    """
    input, target = _prepare(input, target)
    inter, union = _inter_union(input, target)
    return reduce_loss(1 - inter / (union + eps), reduction)


@_IOU.loss(formula=r"1 - \mathrm{IoU} + \frac{|C| - |B \cup B^{gt}|}{|C| + \epsilon}")
def giou_loss(
    input: Tensor, target: Tensor, *, eps: NonNegative = 1e-7, reduction: Reduction = "mean"
) -> Tensor:
    r"""Generalized IoU loss of aligned boxes (``torchvision.ops.generalized_box_iou_loss``).

    Adds to ``1 - IoU`` the fraction of the smallest enclosing box ``C`` not covered by the
    union, so disjoint boxes still get a gradient that pulls them together; in ``[0, 2)``.

    .. math::
        \ell = 1 - \operatorname{IoU} + \frac{|C| - |B \cup B^{gt}|}{|C| + \epsilon}

    Args:
        input: Predicted boxes ``(..., 4)`` as ``(x1, y1, x2, y2)``, ``x2 >= x1``, ``y2 >= y1``.
        target: Ground-truth boxes, same shape and format.
        eps: Added to the union and to ``|C|``, ``>= 0``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of box
            pairs (0 for none).

    Returns:
        Shape ``input.shape[:-1]`` for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating boxes.
        ValueError: Shapes that differ or do not end in 4, boxes with ``x2 < x1`` or
            ``y2 < y1``, a bad option.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> pred = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
        >>> gt = torch.tensor([[2.0, 2.0, 3.0, 3.0]])
        >>> la.giou_loss(pred, gt)  # 1 - 0 + (9 - 2) / 9
        tensor(1.7778)

    References:
        H. Rezatofighi, N. Tsoi, J. Gwak, A. Sadeghian, I. Reid, S. Savarese, "Generalized
        Intersection over Union: A Metric and A Loss for Bounding Box Regression", CVPR 2019,
        https://arxiv.org/abs/1902.09630

        torchvision.ops: https://pytorch.org/vision/stable/ops.html
    """
    input, target = _prepare(input, target)
    inter, union = _inter_union(input, target)
    iou = inter / (union + eps)
    cw, ch = _enclosing(input, target)
    area_c = cw * ch
    return reduce_loss(1 - (iou - (area_c - union) / (area_c + eps)), reduction)


@_IOU.loss(formula=r"1 - \mathrm{IoU} + \frac{\rho^2(b, b^{gt})}{c^2 + \epsilon}")
def diou_loss(
    input: Tensor, target: Tensor, *, eps: NonNegative = 1e-7, reduction: Reduction = "mean"
) -> Tensor:
    r"""Distance-IoU loss of aligned boxes (``torchvision.ops.distance_box_iou_loss``).

    Adds to ``1 - IoU`` the squared distance of the box centres over the squared diagonal
    ``c`` of the smallest enclosing box, which keeps pulling the centres together; in
    ``[0, 2)``.

    .. math::
        \ell = 1 - \operatorname{IoU} + \frac{\rho^2(b, b^{gt})}{c^2 + \epsilon}

    Args:
        input: Predicted boxes ``(..., 4)`` as ``(x1, y1, x2, y2)``, ``x2 >= x1``, ``y2 >= y1``.
        target: Ground-truth boxes, same shape and format.
        eps: Added to the union and to ``c^2``, ``>= 0``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of box
            pairs (0 for none).

    Returns:
        Shape ``input.shape[:-1]`` for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating boxes.
        ValueError: Shapes that differ or do not end in 4, boxes with ``x2 < x1`` or
            ``y2 < y1``, a bad option.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> pred = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
        >>> gt = torch.tensor([[2.0, 2.0, 3.0, 3.0]])
        >>> la.diou_loss(pred, gt)  # 1 - 0 + 8 / 18
        tensor(1.4444)

    References:
        Z. Zheng, P. Wang, W. Liu, J. Li, R. Ye, D. Ren, "Distance-IoU Loss: Faster and Better
        Learning for Bounding Box Regression", AAAI 2020, https://arxiv.org/abs/1911.08287

        torchvision.ops: https://pytorch.org/vision/stable/ops.html
    """
    input, target = _prepare(input, target)
    loss, _ = _diou_iou(input, target, eps)
    return reduce_loss(loss, reduction)


@_IOU.loss(
    formula=r"1 - \mathrm{IoU} + \frac{\rho^2(b, b^{gt})}{c^2 + \epsilon} + \alpha v",
    # CIoU's alpha is a constant in its gradient (the paper, torchvision), so autograd is
    # not the derivative of the value; tests/test_iou_losses.py checks that gradient.
    exact_gradient=False,
)
def ciou_loss(
    input: Tensor, target: Tensor, *, eps: NonNegative = 1e-7, reduction: Reduction = "mean"
) -> Tensor:
    r"""Complete-IoU loss of aligned boxes (``torchvision.ops.complete_box_iou_loss``).

    DIoU plus an aspect-ratio term ``alpha * v``; ``alpha`` is a weight computed without
    gradient, as in the paper and torchvision. The angle ``atan(w / h)`` is taken as
    ``atan2(w, h)``: equal for ``h > 0``, ``pi / 2`` for a zero-height box (as torchvision), and
    a point box (``w = h = 0``, where torchvision gives NaN) counts as square.

    .. math::
        v = \frac{4}{\pi^2}\left(\arctan\frac{w^{gt}}{h^{gt}} - \arctan\frac{w}{h}\right)^2,
        \quad \alpha = \frac{v}{1 - \operatorname{IoU} + v + \epsilon},
        \quad \ell = \ell_{DIoU} + \alpha v

    Args:
        input: Predicted boxes ``(..., 4)`` as ``(x1, y1, x2, y2)``, ``x2 >= x1``, ``y2 >= y1``.
        target: Ground-truth boxes, same shape and format.
        eps: As in DIoU, and in ``alpha``'s denominator, ``>= 0``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of box
            pairs (0 for none).

    Returns:
        Shape ``input.shape[:-1]`` for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating boxes.
        ValueError: Shapes that differ or do not end in 4, boxes with ``x2 < x1`` or
            ``y2 < y1``, a bad option.

    Example:
        Same centre, same area overlap, different aspect ratio:

        >>> import torch
        >>> import lossatlas as la
        >>> pred = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
        >>> gt = torch.tensor([[0.0, 0.5, 2.0, 1.5]])
        >>> la.ciou_loss(pred, gt), la.diou_loss(pred, gt)
        (tensor(0.5032), tensor(0.5000))

    References:
        Z. Zheng, P. Wang, W. Liu, J. Li, R. Ye, D. Ren, "Distance-IoU Loss: Faster and Better
        Learning for Bounding Box Regression", AAAI 2020, https://arxiv.org/abs/1911.08287

        torchvision.ops: https://pytorch.org/vision/stable/ops.html
    """
    input, target = _prepare(input, target)
    diou, iou = _diou_iou(input, target, eps)
    w, h = input[..., 2] - input[..., 0], input[..., 3] - input[..., 1]
    wg, hg = target[..., 2] - target[..., 0], target[..., 3] - target[..., 1]
    v = (4 / math.pi**2) * (_aspect(wg, hg) - _aspect(w, h)) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return reduce_loss(diou + alpha * v, reduction)


# --------------------------------------------------------------------------- modules


class IoULoss(LossModule, functional=iou_loss):
    """Module form of :func:`lossatlas.iou_loss`."""


class GIoULoss(LossModule, functional=giou_loss):
    """Module form of :func:`lossatlas.giou_loss`."""


class DIoULoss(LossModule, functional=diou_loss):
    """Module form of :func:`lossatlas.diou_loss`."""


class CIoULoss(LossModule, functional=ciou_loss):
    """Module form of :func:`lossatlas.ciou_loss`."""
