"""IoU-family box-regression losses: IoU, GIoU, DIoU, CIoU (torchvision's), EIoU, SIoU (mmdet's).

All take two aligned sets of corner boxes ``(..., 4)`` as ``(x1, y1, x2, y2)`` and compute, per
pair, ``1 - IoU`` plus a penalty: the empty part of the smallest enclosing box (GIoU), the
normalised centre distance (DIoU), and in addition the aspect-ratio term (CIoU). They follow
``torchvision.ops`` (``eps=1e-7`` in the same places), computed in float32 for half-precision
boxes; unlike torchvision, ``reduction`` defaults to ``"mean"`` and boxes are validated. EIoU
(the extended-IoU loss) and SIoU follow mmdetection's ``mmdet/models/losses/iou_loss.py``.

Every loss takes mmdetection's per-box ``weight`` and ``avg_factor``
(:mod:`lossatlas.detection._weighted`); one core (:func:`_box_loss`) checks the boxes, calls
the variant's per-box formula and reduces, so a variant is only its formula.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._options import NonNegative, Positive
from lossatlas._reduction import Reduction, compute_dtype, safe_divide, safe_sqrt, upcast
from lossatlas._validation import check_floating, check_same_shape
from lossatlas.detection._weighted import (
    WEIGHTED_ARGS,
    AvgFactor,
    WeightedModule,
    check_weight,
    weighted_reduce,
)
from lossatlas.detection.boxes import check_corner_boxes

__all__ = ["ciou_loss", "diou_loss", "eiou_loss", "giou_loss", "iou_loss", "siou_loss"]


# --------------------------------------------------------------------------- the core


def _box_loss(
    per_box: Callable[..., Tensor],
    input: Tensor,
    target: Tensor,
    weight: Tensor | None,
    avg_factor: float | None,
    reduction: str,
    **options: Any,
) -> Tensor:
    """Check the boxes and the weight, ``per_box(input, target, **options)``, then reduce."""
    check_floating("input", input)
    check_floating("target", target)
    check_same_shape("input", input, "target", target)
    if input.dim() == 0 or input.shape[-1] != 4:
        raise ValueError(
            f"input must have shape (..., 4) of boxes (x1, y1, x2, y2), got {tuple(input.shape)}"
        )
    check_corner_boxes("input", input)
    check_corner_boxes("target", target)
    check_weight(
        weight,
        input,
        tuple(input.shape[:-1]),
        "one weight per box; a (..., 4) weight is averaged by mmdetection's modules: pass "
        "weight.mean(-1)",
    )
    dtype = compute_dtype(input, target, weight)
    loss = per_box(upcast(input, dtype), upcast(target, dtype), **options)
    return weighted_reduce(loss, reduction, weight=weight, avg_factor=avg_factor)


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


def _centre_offset(input: Tensor, target: Tensor) -> Tensor:
    """``(..., 2)``: the target's centre minus the prediction's."""
    return (target[..., :2] + target[..., 2:] - input[..., :2] - input[..., 2:]) / 2


def _size(boxes: Tensor) -> tuple[Tensor, Tensor]:
    return boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]


def _aspect(w: Tensor, h: Tensor) -> Tensor:
    """``atan(w / h)`` as ``atan2(w, h)``: pi/2 for ``h = 0``; a point box counts as square."""
    point = (w == 0) & (h == 0)
    one = torch.ones_like(w)
    return torch.atan2(torch.where(point, one, w), torch.where(point, one, h))


# --------------------------------------------------------------------------- per-box formulas


def _iou(input: Tensor, target: Tensor, eps: float) -> Tensor:
    inter, union = _inter_union(input, target)
    return 1 - inter / (union + eps)


def _giou(input: Tensor, target: Tensor, eps: float) -> Tensor:
    inter, union = _inter_union(input, target)
    cw, ch = _enclosing(input, target)
    area_c = cw * ch
    return 1 - inter / (union + eps) + (area_c - union) / (area_c + eps)


def _diou_iou(input: Tensor, target: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    inter, union = _inter_union(input, target)
    iou = inter / (union + eps)
    cw, ch = _enclosing(input, target)
    distance = (_centre_offset(input, target) ** 2).sum(dim=-1)
    return 1 - iou + distance / (cw**2 + ch**2 + eps), iou


def _diou(input: Tensor, target: Tensor, eps: float) -> Tensor:
    return _diou_iou(input, target, eps)[0]


def _ciou(input: Tensor, target: Tensor, eps: float) -> Tensor:
    diou, iou = _diou_iou(input, target, eps)
    v = (4 / math.pi**2) * (_aspect(*_size(target)) - _aspect(*_size(input))) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return diou + alpha * v


def _eiou(input: Tensor, target: Tensor, eps: float, smooth_point: float) -> Tensor:
    # The overlap's corners ``(ix1, iy1)``-``(ix2, iy2)`` may be "inverted" (disjoint boxes);
    # the signed area below is the true intersection when they overlap and negative when not,
    # measured from the enclosing box's low corner ``(ex1, ey1)``.
    low = torch.minimum(input[..., :2], target[..., :2])
    i1 = torch.maximum(input[..., :2], target[..., :2]) - low
    i2 = torch.minimum(input[..., 2:], target[..., 2:]) - low
    small, large = torch.minimum(i1, i2), torch.maximum(i1, i2)
    inter = (
        i2[..., 0] * i2[..., 1]
        + small[..., 0] * small[..., 1]
        - i1[..., 0] * large[..., 1]
        - large[..., 0] * i1[..., 1]
    )
    w, h = _size(input)
    wg, hg = _size(target)
    loss = 1 - inter / (w * h + wg * hg - inter + eps)
    return torch.where(loss < smooth_point, 0.5 * loss**2 / smooth_point, loss - 0.5 * smooth_point)


def _siou(input: Tensor, target: Tensor, eps: float, neg_gamma: bool) -> Tensor:
    inter, union = _inter_union(input, target)
    iou = inter / (union + eps)
    cw, ch = (side.clamp(min=eps) for side in _enclosing(input, target))
    offset = _centre_offset(input, target) + eps
    sigma = safe_sqrt((offset**2).sum(dim=-1))
    sin_x, sin_y = (safe_divide(side.abs(), sigma) for side in offset.unbind(-1))
    # The angle to the nearer axis (both give the same cost: it is symmetric about 45 degrees).
    sin_alpha = torch.where(sin_x > math.sqrt(0.5), sin_y, sin_x)
    angle_cost = torch.cos(2 * torch.asin(sin_alpha) - math.pi / 2)
    gamma = angle_cost - 2 if neg_gamma else 2 - angle_cost
    rho_x, rho_y = (offset[..., 0] / cw) ** 2, (offset[..., 1] / ch) ** 2
    distance_cost = 2 - torch.exp(gamma * rho_x) - torch.exp(gamma * rho_y)
    w, h = _size(input)
    wg, hg = _size(target)
    shape_cost = torch.zeros_like(w)
    for a, b in ((w, wg), (h + eps, hg + eps)):
        omega = safe_divide((a - b).abs(), torch.maximum(a, b))
        shape_cost = shape_cost + (1 - torch.exp(-omega)) ** 4
    siou = iou - 0.5 * (distance_cost + shape_cost)
    return 1 - siou.clamp(min=-1.0, max=1.0)


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
    weight = ex.uniform(generator, batch, dtype=dtype, low=0.5, high=1.5)
    return Example((pred, target), {"weight": weight})


# Identical boxes give eps / (area + eps), not exactly 0, so zero_at_perfect is not claimed
# (tests/test_iou_losses.py checks the value against that bound instead).
_IOU = Family(
    tasks=("detection",),
    input_kind="boxes (x1, y1, x2, y2)",
    target_kind="boxes (x1, y1, x2, y2)",
    target_type=TargetKind.BOXES,
    # symmetric: every term is symmetric in the two boxes (torchvision says so too);
    # bounded: IoU <= 1, GIoU < 2, DIoU < 2, CIoU < 3, EIoU < 2, SIoU <= 2.
    properties={"non_negative", "symmetric", "bounded"},
    examples=_box_pair,
    same_shape=(0, 1),
    args={
        **WEIGHTED_ARGS,
        "input": "Predicted boxes ``(..., 4)`` as ``(x1, y1, x2, y2)``, ``x2 >= x1``,"
        " ``y2 >= y1``.",
        "target": "Ground-truth boxes, same shape and format.",
        "weight": "Per-box weights broadcasting to ``input.shape[:-1]`` (mmdetection's ``weight``"
        ' of shape ``(N,)``), multiplying each box\'s loss; ``"mean"`` still divides by the'
        " number of boxes (or ``avg_factor``), not by the weights' sum.",
    },
    returns='Shape ``input.shape[:-1]`` for ``"none"``, else a scalar.',
    raises={
        "TypeError": "Non-floating boxes or weight, an option of the wrong type.",
        "ValueError": "Shapes that differ or do not end in 4, boxes with ``x2 < x1`` or"
        " ``y2 < y1``, a weight that does not broadcast to one per box, ``avg_factor`` with"
        ' ``reduction="sum"``, an option outside its range.',
    },
)

#: The four losses torchvision also has (and is checked against).
_TORCHVISION_IOU = _IOU.derive(
    references=("torchvision.ops: https://pytorch.org/vision/stable/ops.html",)
)

_MMDET = {"mmdetection": "same values (eps default 1e-7); weight and avg_factor likewise"}


# --------------------------------------------------------------------------- functionals


@_TORCHVISION_IOU.loss(formula=r"1 - \frac{|B \cap B^{gt}|}{|B \cup B^{gt}| + \epsilon}")
def iou_loss(
    input: Tensor,
    target: Tensor,
    *,
    eps: NonNegative = 1e-7,
    weight: Tensor | None = None,
    avg_factor: AvgFactor = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""IoU loss ``1 - IoU`` of aligned boxes, with torchvision's ``eps`` in the union.

    In ``[0, 1]``: 0 for identical boxes (up to ``eps / area``), 1 for disjoint boxes whatever
    their distance (its gradient vanishes there: GIoU, DIoU and CIoU add a penalty that does
    not).
    mmdetection's ``IoULoss`` is ``-log IoU`` by default (its ``mode="linear"`` is this one).

    .. math::
        \ell = 1 - \frac{|B \cap B^{gt}|}{|B \cup B^{gt}| + \epsilon}

    Args:
        eps: Added to the union, ``>= 0``; zero-area pairs then give IoU 0, not NaN.

    Example:
        >>> pred = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
        >>> gt = torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 2.0, 3.0, 3.0]])
        >>> la.iou_loss(pred, gt, reduction="none")  # 1 - 1/7, and 1 for disjoint boxes
        tensor([0.8571, 1.0000])
        >>> la.iou_loss(pred, gt, weight=torch.tensor([1.0, 0.0]), avg_factor=1.0)
        tensor(0.8571)

    References:
        J. Yu, Y. Jiang, Z. Wang, Z. Cao, T. Huang, "UnitBox: An Advanced Object Detection
        Network", ACM MM 2016, https://arxiv.org/abs/1608.01471
    """
    return _box_loss(_iou, input, target, weight, avg_factor, reduction, eps=eps)


@_TORCHVISION_IOU.loss(formula=r"1 - \mathrm{IoU} + \frac{|C| - |B \cup B^{gt}|}{|C| + \epsilon}")
def giou_loss(
    input: Tensor,
    target: Tensor,
    *,
    eps: NonNegative = 1e-7,
    weight: Tensor | None = None,
    avg_factor: AvgFactor = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Generalized IoU loss of aligned boxes (``torchvision.ops.generalized_box_iou_loss``).

    Adds to ``1 - IoU`` the fraction of the smallest enclosing box ``C`` not covered by the
    union, so disjoint boxes still get a gradient that pulls them together; in ``[0, 2)``.

    .. math::
        \ell = 1 - \operatorname{IoU} + \frac{|C| - |B \cup B^{gt}|}{|C| + \epsilon}

    Args:
        eps: Added to the union and to ``|C|``, ``>= 0``.

    Example:
        >>> pred = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
        >>> gt = torch.tensor([[2.0, 2.0, 3.0, 3.0]])
        >>> la.giou_loss(pred, gt)  # 1 - 0 + (9 - 2) / 9
        tensor(1.7778)

    References:
        H. Rezatofighi, N. Tsoi, J. Gwak, A. Sadeghian, I. Reid, S. Savarese, "Generalized
        Intersection over Union: A Metric and A Loss for Bounding Box Regression", CVPR 2019,
        https://arxiv.org/abs/1902.09630
    """
    return _box_loss(_giou, input, target, weight, avg_factor, reduction, eps=eps)


@_TORCHVISION_IOU.loss(formula=r"1 - \mathrm{IoU} + \frac{\rho^2(b, b^{gt})}{c^2 + \epsilon}")
def diou_loss(
    input: Tensor,
    target: Tensor,
    *,
    eps: NonNegative = 1e-7,
    weight: Tensor | None = None,
    avg_factor: AvgFactor = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Distance-IoU loss of aligned boxes (``torchvision.ops.distance_box_iou_loss``).

    Adds to ``1 - IoU`` the squared distance of the box centres over the squared diagonal
    ``c`` of the smallest enclosing box, which keeps pulling the centres together; in
    ``[0, 2)``.

    .. math::
        \ell = 1 - \operatorname{IoU} + \frac{\rho^2(b, b^{gt})}{c^2 + \epsilon}

    Args:
        eps: Added to the union and to ``c^2``, ``>= 0``.

    Example:
        >>> pred = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
        >>> gt = torch.tensor([[2.0, 2.0, 3.0, 3.0]])
        >>> la.diou_loss(pred, gt)  # 1 - 0 + 8 / 18
        tensor(1.4444)

    References:
        Z. Zheng, P. Wang, W. Liu, J. Li, R. Ye, D. Ren, "Distance-IoU Loss: Faster and Better
        Learning for Bounding Box Regression", AAAI 2020, https://arxiv.org/abs/1911.08287
    """
    return _box_loss(_diou, input, target, weight, avg_factor, reduction, eps=eps)


@_TORCHVISION_IOU.loss(
    formula=r"1 - \mathrm{IoU} + \frac{\rho^2(b, b^{gt})}{c^2 + \epsilon} + \alpha v",
    # CIoU's alpha is a constant in its gradient (the paper, torchvision), so autograd is
    # not the derivative of the value; tests/test_iou_losses.py checks that gradient.
    exact_gradient=False,
    peers={"mmdetection": "CIoULoss (3.x): alpha = 0 where IoU <= 0.5, and the CIoU clamped"},
)
def ciou_loss(
    input: Tensor,
    target: Tensor,
    *,
    eps: NonNegative = 1e-7,
    weight: Tensor | None = None,
    avg_factor: AvgFactor = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Complete-IoU loss of aligned boxes (``torchvision.ops.complete_box_iou_loss``).

    DIoU plus an aspect-ratio term ``alpha * v``, below 3; ``alpha`` is a weight computed
    without gradient, as in the paper and torchvision. The angle ``atan(w / h)`` is taken as
    ``atan2(w, h)``: equal for ``h > 0``, ``pi / 2`` for a zero-height box (as torchvision), and
    a point box (``w = h = 0``, where torchvision gives NaN) counts as square. mmdetection 3.x
    sets ``alpha = 0`` where ``IoU <= 0.5`` and clamps the CIoU to ``[-1, 1]``; this does not.

    .. math::
        v = \frac{4}{\pi^2}\left(\arctan\frac{w^{gt}}{h^{gt}} - \arctan\frac{w}{h}\right)^2,
        \quad \alpha = \frac{v}{1 - \operatorname{IoU} + v + \epsilon},
        \quad \ell = \ell_{DIoU} + \alpha v

    Args:
        eps: As in DIoU, and in ``alpha``'s denominator, ``>= 0``.

    Example:
        >>> pred = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
        >>> gt = torch.tensor([[0.0, 0.5, 2.0, 1.5]])
        >>> la.ciou_loss(pred, gt), la.diou_loss(pred, gt)
        (tensor(0.5032), tensor(0.5000))

        Same centre, same area overlap, different aspect ratio.

    References:
        Z. Zheng, P. Wang, W. Liu, J. Li, R. Ye, D. Ren, "Distance-IoU Loss: Faster and Better
        Learning for Bounding Box Regression", AAAI 2020, https://arxiv.org/abs/1911.08287
    """
    return _box_loss(_ciou, input, target, weight, avg_factor, reduction, eps=eps)


@_IOU.loss(
    formula=r"\mathrm{smooth}(1 - \widetilde{\mathrm{IoU}}),\ "
    r"\widetilde{\mathrm{IoU}} \text{ signed for disjoint boxes}",
    peers=_MMDET,
    use_when="IoU loss that still pulls disjoint boxes, Huber-smoothed",
)
def eiou_loss(
    input: Tensor,
    target: Tensor,
    *,
    smooth_point: Positive = 0.1,
    eps: NonNegative = 1e-7,
    weight: Tensor | None = None,
    avg_factor: AvgFactor = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Extended-IoU loss (mmdetection's ``EIoULoss``): a signed overlap, Huber-smoothed.

    The intersection is extended to disjoint boxes as a signed area: with the overlap's
    corners ``i_1 = max(b_1, b^{gt}_1)``, ``i_2 = min(b_2, b^{gt}_2)`` taken from the
    enclosing box's low corner ``e``, it is the true intersection when the boxes overlap and
    negative when they do not, so ``l = 1 - \widetilde{IoU}`` grows past 1 as the boxes move
    apart (a gradient where the IoU loss has none; ``l < 2``). ``l`` is then smoothed like a
    Huber loss below ``smooth_point``; the loss is in ``[0, 2)``.

    Not Zhang et al.'s "Efficient IoU" (EIoU, 2021: DIoU plus width and height penalties),
    which shares the acronym: mmdetection's ``EIoULoss`` and this are Peng and Yu's.

    .. math::
        \widetilde{I} = i_{2x} i_{2y} + \min(i_{1x}, i_{2x}) \min(i_{1y}, i_{2y})
            - i_{1x} \max(i_{1y}, i_{2y}) - \max(i_{1x}, i_{2x})\, i_{1y},\quad
        l = 1 - \frac{\widetilde{I}}{|B| + |B^{gt}| - \widetilde{I} + \epsilon},\quad
        \ell = \begin{cases} l^2 / (2 s) & l < s \\ l - s / 2 & l \ge s \end{cases}

    Args:
        smooth_point: ``s > 0``, where the quadratic part meets the linear one (mmdetection's
            0.1).
        eps: Added to the union, ``>= 0`` (mmdetection's function default; its module's is
            ``1e-6``).

    Example:
        >>> pred = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
        >>> gt = torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 0.0, 3.0, 1.0]])
        >>> la.eiou_loss(pred, gt, reduction="none")  # 6/7 - 0.05, 1 + 1/3 - 0.05
        tensor([0.8071, 1.2833])

        Overlapping boxes (``l = 6/7``), then disjoint ones (signed intersection ``-1``).

    References:
        H. Peng, S. Yu, `A Systematic IoU-Related Method: Beyond Simplified Regression for
        Better Localization <https://ieeexplore.ieee.org/abstract/document/9429909>`_, IEEE
        Transactions on Image Processing 30, 2021.

        mmdetection, ``mmdet/models/losses/iou_loss.py`` (``eiou_loss``),
        https://github.com/open-mmlab/mmdetection
    """
    return _box_loss(
        _eiou, input, target, weight, avg_factor, reduction, eps=eps, smooth_point=smooth_point
    )


@_IOU.loss(
    formula=r"1 - \mathrm{IoU} + \frac{\Delta + \Omega}{2}",
    # the eps added to the centre offset makes it symmetric only up to eps
    properties={"non_negative", "bounded"},
    peers={"mmdetection": "siou_loss: its default is neg_gamma=False (YOLOv6's sign)"},
    use_when="IoU loss with angle, distance and shape costs (YOLOv6)",
)
def siou_loss(
    input: Tensor,
    target: Tensor,
    *,
    neg_gamma: bool = True,
    eps: NonNegative = 1e-7,
    weight: Tensor | None = None,
    avg_factor: AvgFactor = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""SIoU loss: ``1 - IoU`` plus angle-aware distance and shape costs (mmdetection's formula).

    The centre offset ``(c_w, c_h)`` (target minus prediction, plus ``eps``) at angle
    ``alpha`` to the nearer axis gives the angle cost :math:`\Lambda = \sin 2\alpha`; the
    distance cost :math:`\Delta` sums :math:`1 - e^{-\gamma \rho_t}` over the offsets relative
    to the enclosing box, with :math:`\gamma = 2 - \Lambda`; the shape cost :math:`\Omega` sums
    :math:`(1 - e^{-\omega_t})^4` over the relative width and height differences. The SIoU is
    clamped to ``[-1, 1]``, so the loss is in ``[0, 2]``.

    Sign pitfall: mmdetection's ``siou_loss`` defaults to ``neg_gamma=False``, YOLOv6's
    ``2 - e^{\gamma\rho_x} - e^{\gamma\rho_y}``, a distance cost ``<= 0`` that lowers the loss as
    the centres move apart. ``neg_gamma=True`` (the default here) is the paper's
    :math:`\Delta \ge 0`; pass ``neg_gamma=False`` for mmdetection's default values.

    .. math::
        \Delta = \sum_{t = x, y} \left(1 - e^{-(2 - \Lambda)\rho_t}\right),\
        \rho_x = \left(\frac{c_w}{C_w}\right)^2,\quad
        \Omega = \sum_{t = w, h} \left(1 - e^{-\omega_t}\right)^4,\
        \omega_w = \frac{|w - w^{gt}|}{\max(w, w^{gt})},\quad
        \ell = 1 - \operatorname{clamp}\left(\operatorname{IoU} - \frac{\Delta + \Omega}{2},
        -1, 1\right)

    Args:
        neg_gamma: ``True``: the paper's distance cost; ``False``: mmdetection's default (see
            above).
        eps: In the union, the centre offset, the heights and the enclosing box's floor, as
            mmdetection, ``>= 0``.

    Example:
        >>> pred = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
        >>> gt = torch.tensor([[1.0, 1.0, 3.0, 3.0]])  # offset at 45 degrees: angle cost 1
        >>> la.siou_loss(pred, gt), la.siou_loss(pred, gt, neg_gamma=False)
        (tensor(0.9623), tensor(0.7396))

    References:
        Z. Gevorgyan, `SIoU Loss: More Powerful Learning for Bounding Box Regression
        <https://arxiv.org/abs/2205.12740>`_, arXiv 2022.

        mmdetection, ``mmdet/models/losses/iou_loss.py`` (``siou_loss``),
        https://github.com/open-mmlab/mmdetection
    """
    return _box_loss(
        _siou, input, target, weight, avg_factor, reduction, eps=eps, neg_gamma=neg_gamma
    )


# --------------------------------------------------------------------------- modules


class IoULoss(WeightedModule, functional=iou_loss):
    """Module form of :func:`lossatlas.iou_loss`; forward takes weight and avg_factor too."""


class GIoULoss(WeightedModule, functional=giou_loss):
    """Module form of :func:`lossatlas.giou_loss`; forward takes weight and avg_factor too."""


class DIoULoss(WeightedModule, functional=diou_loss):
    """Module form of :func:`lossatlas.diou_loss`; forward takes weight and avg_factor too."""


class CIoULoss(WeightedModule, functional=ciou_loss):
    """Module form of :func:`lossatlas.ciou_loss`; forward takes weight and avg_factor too."""


class EIoULoss(WeightedModule, functional=eiou_loss):
    """Module form of :func:`lossatlas.eiou_loss`; forward takes weight and avg_factor too."""


class SIoULoss(WeightedModule, functional=siou_loss):
    """Module form of :func:`lossatlas.siou_loss`; forward takes weight and avg_factor too."""
