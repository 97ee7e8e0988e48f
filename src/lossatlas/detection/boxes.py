"""Box helpers for detection losses: format conversion, IoU, prior matching, box encoding.

Two box formats are used, as in SSD: ground-truth and predicted boxes as corners
``(x1, y1, x2, y2)``, and priors (default boxes, anchors) as centre and size
``(cx, cy, w, h)``. :func:`encode_boxes` turns a box into the offsets an SSD head regresses
relative to a prior, and :func:`decode_boxes` inverts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import torch
from torch import Tensor

from lossatlas._options import Check, Positive
from lossatlas._reduction import safe_divide
from lossatlas._validation import check_floating, check_number, value_checks_enabled

__all__ = [
    "box_cxcywh_to_xyxy",
    "box_iou",
    "box_xyxy_to_cxcywh",
    "decode_boxes",
    "encode_boxes",
    "match_priors",
]


# --------------------------------------------------------------------------- checks


def check_box_shape(name: str, boxes: Tensor, *, batched: bool = False) -> None:
    """Raise unless ``boxes`` is a floating tensor of shape ``(M, 4)`` (``(..., 4)`` if batched)."""
    check_floating(name, boxes)
    if (boxes.dim() != 2 and not batched) or boxes.dim() == 0 or boxes.shape[-1] != 4:
        expected = "(..., 4)" if batched else "(M, 4)"
        raise ValueError(f"{name} must have shape {expected}, got {tuple(boxes.shape)}")


def check_corner_boxes(name: str, boxes: Tensor, *, strict: bool = False) -> None:
    """Raise if a corner box has ``x2 < x1`` or ``y2 < y1`` (``<=`` when ``strict``).

    A value check (it reads the tensor): skipped when value checks are off or under
    ``torch.compile``. The message names the first bad box and its position.
    """
    if not value_checks_enabled() or boxes.numel() == 0:
        return
    width = boxes[..., 2] - boxes[..., 0]
    height = boxes[..., 3] - boxes[..., 1]
    bad = (width <= 0) | (height <= 0) if strict else (width < 0) | (height < 0)
    bad |= ~torch.isfinite(boxes).all(dim=-1)
    if bool(bad.any()):
        position = tuple(int(i) for i in bad.nonzero()[0])
        box = [round(float(v), 6) for v in boxes[position].detach()]
        rule = "x2 > x1 and y2 > y1" if strict else "x2 >= x1 and y2 >= y1"
        raise ValueError(
            f"{name} must hold finite (x1, y1, x2, y2) boxes with {rule}, got {box} at "
            f"position {position}"
        )


def check_prior_boxes(name: str, priors: Tensor) -> None:
    """Raise unless ``priors`` is ``(A, 4)`` as ``(cx, cy, w, h)`` with positive sizes."""
    check_floating(name, priors)
    if priors.dim() != 2 or priors.shape[1] != 4:
        raise ValueError(
            f"{name} must have shape (A, 4) as (cx, cy, w, h), got {tuple(priors.shape)}"
        )
    if value_checks_enabled() and priors.numel() > 0:
        bad = ~((priors[:, 2] > 0) & (priors[:, 3] > 0) & torch.isfinite(priors).all(dim=1))
        if bool(bad.any()):
            index = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"{name} must hold finite (cx, cy, w, h) priors with w > 0 and h > 0, got "
                f"{[round(float(v), 6) for v in priors[index]]} at position ({index},)"
            )


def check_variances(variances: Sequence[float]) -> tuple[float, float]:
    """Raise unless ``variances`` is two positive numbers; return them as floats."""
    if not isinstance(variances, Sequence) or isinstance(variances, str) or len(variances) != 2:
        raise TypeError(
            f"variances must be a pair (center variance, size variance), got {variances!r}"
        )
    check_number("variances[0]", variances[0], low=0.0, low_inclusive=False)
    check_number("variances[1]", variances[1], low=0.0, low_inclusive=False)
    return float(variances[0]), float(variances[1])


def _check_variances_option(name: str, value: Any) -> None:
    check_variances(value)


#: The SSD encoding variances ``(v0, v1)``: a pair of positive numbers.
Variances = Annotated[
    Sequence[Positive],
    Check(
        _check_variances_option,
        invalid=((0.1,), (0.0, 0.2), (0.1, 0.2, 0.3)),
        description="a pair (v0, v1) of positive numbers",
    ),
]


# --------------------------------------------------------------------------- conversions


def box_cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """Centre-size boxes ``(..., 4)`` as ``(cx, cy, w, h)`` to corners ``(x1, y1, x2, y2)``.

    Example:
        >>> import torch
        >>> box_cxcywh_to_xyxy(torch.tensor([[2.0, 3.0, 2.0, 4.0]]))
        tensor([[1., 1., 3., 5.]])
    """
    centre, half = boxes[..., :2], boxes[..., 2:] / 2
    return torch.cat((centre - half, centre + half), dim=-1)


def box_xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """Corner boxes ``(..., 4)`` as ``(x1, y1, x2, y2)`` to ``(cx, cy, w, h)``.

    The inverse of :func:`box_cxcywh_to_xyxy`: ``box_xyxy_to_cxcywh(box_cxcywh_to_xyxy(b))``
    is ``b`` (up to rounding).

    >>> import torch
    >>> box_xyxy_to_cxcywh(torch.tensor([[1.0, 1.0, 3.0, 5.0]]))
    tensor([[2., 3., 2., 4.]])
    """
    low, high = boxes[..., :2], boxes[..., 2:]
    return torch.cat(((low + high) / 2, high - low), dim=-1)


# --------------------------------------------------------------------------- IoU


def _pairwise_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """IoU of every box in ``boxes1 (..., M, 4)`` with every box in ``boxes2 (..., K, 4)``."""
    area1 = (boxes1[..., 2] - boxes1[..., 0]) * (boxes1[..., 3] - boxes1[..., 1])
    area2 = (boxes2[..., 2] - boxes2[..., 0]) * (boxes2[..., 3] - boxes2[..., 1])
    a, b = boxes1[..., :, None, :], boxes2[..., None, :, :]
    # Widths and heights of the overlaps, (..., M, K) each, without a (..., M, K, 2) temporary.
    width = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    height = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(
        min=0
    )
    inter = width * height
    union = area1[..., :, None] + area2[..., None, :] - inter
    return safe_divide(inter, union)


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    r"""Intersection over union of every pair of corner boxes.

    .. math::
        \operatorname{IoU}(a, b) = \frac{|a \cap b|}{|a| + |b| - |a \cap b|}

    Two zero-area boxes (empty union) have IoU 0 (``torchvision.ops.box_iou`` gives NaN).

    Args:
        boxes1: ``(M, 4)`` boxes ``(x1, y1, x2, y2)`` with ``x2 >= x1``, ``y2 >= y1``.
        boxes2: ``(K, 4)`` boxes in the same format.

    Returns:
        ``(M, K)`` IoU values in ``[0, 1]``.

    Raises:
        TypeError: Non-floating boxes.
        ValueError: A shape other than ``(M, 4)``, or a box with ``x2 < x1`` or ``y2 < y1``.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
        >>> b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0]])
        >>> la.box_iou(a, b)
        tensor([[0.1429, 1.0000]])
    """
    check_box_shape("boxes1", boxes1)
    check_box_shape("boxes2", boxes2)
    check_corner_boxes("boxes1", boxes1)
    check_corner_boxes("boxes2", boxes2)
    return _pairwise_iou(boxes1, boxes2)


# --------------------------------------------------------------------------- encoding


def _check_coding(
    name: str, boxes: Tensor, priors: Tensor, variances: Sequence[float]
) -> tuple[float, float]:
    """The checks :func:`encode_boxes` and :func:`decode_boxes` share; the checked variances."""
    v = check_variances(variances)
    check_box_shape(name, boxes, batched=True)
    check_box_shape("priors", priors, batched=True)
    if boxes.shape != priors.shape:
        raise ValueError(
            f"priors must have the same shape as {name} {tuple(boxes.shape)}, "
            f"got {tuple(priors.shape)}"
        )
    return v


def _encode(boxes: Tensor, priors: Tensor, variances: tuple[float, float]) -> Tensor:
    center = (boxes[..., :2] + boxes[..., 2:]) / 2
    size = boxes[..., 2:] - boxes[..., :2]
    offset = (center - priors[..., :2]) / (variances[0] * priors[..., 2:])
    scale = torch.log(size / priors[..., 2:]) / variances[1]
    return torch.cat((offset, scale), dim=-1)


def _decode(offsets: Tensor, priors: Tensor, variances: tuple[float, float]) -> Tensor:
    center = priors[..., :2] + offsets[..., :2] * variances[0] * priors[..., 2:]
    size = priors[..., 2:] * torch.exp(offsets[..., 2:] * variances[1])
    return torch.cat((center - size / 2, center + size / 2), dim=-1)


def encode_boxes(
    boxes: Tensor, priors: Tensor, *, variances: Sequence[float] = (0.1, 0.2)
) -> Tensor:
    r"""SSD regression targets: corner boxes encoded as offsets from their priors.

    With centre variance :math:`v_0` and size variance :math:`v_1` (SSD's ``(0.1, 0.2)``):

    .. math::
        t_{cx} = \frac{g_{cx} - p_{cx}}{v_0\, p_w},\quad
        t_{cy} = \frac{g_{cy} - p_{cy}}{v_0\, p_h},\quad
        t_w = \frac{1}{v_1}\log\frac{g_w}{p_w},\quad
        t_h = \frac{1}{v_1}\log\frac{g_h}{p_h}

    :func:`decode_boxes` inverts it.

    Args:
        boxes: ``(..., 4)`` boxes ``(x1, y1, x2, y2)`` with positive width and height.
        priors: ``(..., 4)`` priors ``(cx, cy, w, h)`` of the same shape, positive ``w, h``.
        variances: ``(v0, v1)``, both positive.

    Returns:
        ``(..., 4)`` offsets ``(t_cx, t_cy, t_w, t_h)``.

    Raises:
        TypeError: Non-floating tensors or a bad ``variances``.
        ValueError: Shapes that differ or do not end in 4; boxes without positive size.

    Example:
        A box 3 times wider than its prior, moved right by half the prior's width:

        >>> import torch
        >>> import lossatlas as la
        >>> prior = torch.tensor([[0.5, 0.5, 0.25, 0.25]])
        >>> box = torch.tensor([[0.25, 0.375, 1.0, 0.625]])
        >>> la.encode_boxes(box, prior)  # (0.125 / (0.1 * 0.25), 0, log(3) / 0.2, 0)
        tensor([[5.0000, 0.0000, 5.4931, 0.0000]])

    References:
        W. Liu et al., "SSD: Single Shot MultiBox Detector", ECCV 2016,
        https://arxiv.org/abs/1512.02325 (equation 2).
    """
    v = _check_coding("boxes", boxes, priors, variances)
    check_corner_boxes("boxes", boxes, strict=True)
    check_prior_boxes("priors", priors.reshape(-1, 4))
    return _encode(boxes, priors, v)


def decode_boxes(
    offsets: Tensor, priors: Tensor, *, variances: Sequence[float] = (0.1, 0.2)
) -> Tensor:
    r"""Boxes ``(x1, y1, x2, y2)`` from SSD offsets and their priors (inverse of encoding).

    .. math::
        g_{cx} = p_{cx} + v_0\, p_w\, t_{cx},\quad g_w = p_w \exp(v_1 t_w)
        \quad (\text{likewise } y, h)

    Args:
        offsets: ``(..., 4)`` offsets ``(t_cx, t_cy, t_w, t_h)`` (a head's ``loc_preds``).
        priors: ``(..., 4)`` priors ``(cx, cy, w, h)`` of the same shape.
        variances: ``(v0, v1)`` used when encoding.

    Returns:
        ``(..., 4)`` boxes ``(x1, y1, x2, y2)``.

    Raises:
        TypeError: Non-floating tensors or a bad ``variances``.
        ValueError: Shapes that differ or do not end in 4.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> prior = torch.tensor([[0.5, 0.5, 0.25, 0.25]])
        >>> la.decode_boxes(torch.tensor([[1.0, 0.0, 0.0, 0.0]]), prior)  # moved by 0.1 * 0.25
        tensor([[0.4000, 0.3750, 0.6500, 0.6250]])

    References:
        W. Liu et al., "SSD: Single Shot MultiBox Detector", ECCV 2016,
        https://arxiv.org/abs/1512.02325
    """
    return _decode(offsets, priors, _check_coding("offsets", offsets, priors, variances))


# --------------------------------------------------------------------------- matching


def match_batch(
    gt_boxes: Tensor,
    gt_labels: Tensor,
    gt_valid: Tensor,
    priors: Tensor,
    iou_threshold: float,
) -> tuple[Tensor, Tensor]:
    """Vectorised SSD matching over a padded batch (no host sync).

    Args:
        gt_boxes: ``(N, M, 4)`` corner boxes, padded rows holding any finite positive box.
        gt_labels: ``(N, M)`` labels, padded rows ignored.
        gt_valid: ``(N, M)`` bool, ``False`` on padded rows.
        priors: ``(A, 4)`` priors ``(cx, cy, w, h)``.
        iou_threshold: A prior whose best IoU is below it is background (label 0).

    Returns:
        ``(matched (N, A, 4), labels (N, A))``: each prior's matched ground-truth box (for
        background priors, their best-overlap box, unused by the loss) and its label.
    """
    n, m = gt_labels.shape
    num_priors = priors.shape[0]
    prior_corners = box_cxcywh_to_xyxy(priors)
    overlaps = _pairwise_iou(gt_boxes, prior_corners.expand(n, num_priors, 4))  # (N, M, A)
    overlaps = torch.where(gt_valid[..., None], overlaps, torch.full_like(overlaps, -1.0))
    # Each prior's best ground truth; each ground truth's best prior.
    best_truth_overlap, best_truth_idx = overlaps.max(dim=1)  # (N, A)
    best_prior_idx = overlaps.argmax(dim=2)  # (N, M)
    # Force every real ground truth onto its best prior; when two share one, the later ground
    # truth wins (the reference implementations' loop order), hence amax over indices.
    truth_ids = torch.arange(m, device=gt_labels.device).expand(n, m)
    truth_ids = torch.where(gt_valid, truth_ids, torch.full_like(truth_ids, -1))
    forced = torch.full((n, num_priors), -1, dtype=truth_ids.dtype, device=truth_ids.device)
    forced = forced.scatter_reduce(1, best_prior_idx, truth_ids, reduce="amax")
    is_forced = forced >= 0
    best_truth_idx = torch.where(is_forced, forced, best_truth_idx)
    best_truth_overlap = torch.where(
        is_forced, torch.full_like(best_truth_overlap, 2.0), best_truth_overlap
    )
    matched = gt_boxes.gather(1, best_truth_idx[..., None].expand(n, num_priors, 4))
    labels = gt_labels.gather(1, best_truth_idx)
    labels = torch.where(best_truth_overlap < iou_threshold, torch.zeros_like(labels), labels)
    return matched, labels


def pad_ground_truth(
    gt_boxes: Sequence[Tensor],
    gt_labels: Sequence[Tensor],
    *,
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[Tensor, Tensor, Tensor]:
    """Stack per-image ground truths into ``(N, M, 4)``, ``(N, M)``, ``(N, M)`` valid mask.

    ``M`` is at least 1; padded rows hold the unit box ``(0, 0, 1, 1)`` and label 0 so every
    encoded target stays finite.
    """
    counts = [int(b.shape[0]) for b in gt_boxes]
    n, m, total = len(counts), max([1, *counts]), sum(counts)
    filler = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=dtype, device=device)
    boxes = filler.repeat(n, m, 1)
    labels = torch.zeros(n, m, dtype=torch.long, device=device)
    valid = torch.arange(m, device=device) < torch.tensor(counts, device=device).view(n, 1)
    if total > 0:
        # Scatter every box into its (image, slot) cell in one indexing operation.
        image = torch.repeat_interleave(
            torch.arange(n, device=device),
            torch.tensor(counts, device=device),
            output_size=total,
        )
        starts = torch.tensor([sum(counts[:i]) for i in range(n)], device=device)
        slot = torch.arange(total, device=device) - starts[image]
        all_boxes = torch.cat([b.to(device=device, dtype=dtype) for b in gt_boxes])
        all_labels = torch.cat([lab.to(device=device, dtype=torch.long) for lab in gt_labels])
        boxes = boxes.index_put((image, slot), all_boxes)
        labels = labels.index_put((image, slot), all_labels)
    return boxes, labels, valid


def match_priors(
    gt_boxes: Tensor, gt_labels: Tensor, priors: Tensor, *, iou_threshold: float = 0.5
) -> tuple[Tensor, Tensor]:
    """SSD's matching of priors to the ground truth of one image.

    Every ground truth is first matched to the prior with which it has the highest IoU (so each
    object has at least one prior, whatever its overlap); then every other prior is matched to
    the ground truth it overlaps most, if that IoU is at least ``iou_threshold``, else it is
    background (label 0). When two ground truths share a best prior, the later one keeps it.

    Args:
        gt_boxes: ``(M, 4)`` ground-truth boxes ``(x1, y1, x2, y2)``, positive sizes.
        gt_labels: ``(M,)`` integer labels in ``[1, C)`` (0 is background).
        priors: ``(A, 4)`` priors ``(cx, cy, w, h)``.
        iou_threshold: Minimum IoU for a positive match, in ``[0, 1]``.

    Returns:
        ``(matched_boxes (A, 4), labels (A,))``: each prior's ground-truth box (for background
        priors the box it overlaps most, or ``(0, 0, 1, 1)`` when the image has none) and its
        label, 0 for background.

    Raises:
        TypeError: Non-floating boxes or priors, non-integer labels.
        ValueError: Bad shapes, labels of another length than the boxes, degenerate boxes.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> priors = torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]])
        >>> boxes, labels = la.match_priors(torch.tensor([[0.5, 0.5, 1.0, 1.0]]),
        ...                                 torch.tensor([3]), priors)
        >>> labels
        tensor([0, 3])

    References:
        W. Liu et al., "SSD: Single Shot MultiBox Detector", ECCV 2016,
        https://arxiv.org/abs/1512.02325 (section 2.2, matching strategy).
    """
    check_number("iou_threshold", iou_threshold, low=0.0, high=1.0)
    check_prior_boxes("priors", priors)
    check_ground_truth("gt_boxes", gt_boxes, "gt_labels", gt_labels)
    check_corner_boxes("gt_boxes", gt_boxes, strict=True)
    boxes, labels, valid = pad_ground_truth(
        [gt_boxes], [gt_labels], dtype=priors.dtype, device=priors.device
    )
    matched, matched_labels = match_batch(boxes, labels, valid, priors, iou_threshold)
    return matched[0], matched_labels[0]


def check_ground_truth(boxes_name: str, boxes: Tensor, labels_name: str, labels: Tensor) -> None:
    """Shapes and dtypes of one image's ground truth: ``(M, 4)`` floats and ``(M,)`` ints."""
    check_box_shape(boxes_name, boxes)
    if not isinstance(labels, Tensor):
        raise TypeError(f"{labels_name} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(
            f"{labels_name} must be an integer tensor of class labels, got a {labels.dtype} tensor"
        )
    if labels.shape != (boxes.shape[0],):
        raise ValueError(
            f"{labels_name} must have shape ({boxes.shape[0]},) (one label per box of "
            f"{boxes_name}), got {tuple(labels.shape)}"
        )
