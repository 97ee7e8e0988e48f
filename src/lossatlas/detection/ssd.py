"""SSD MultiBox loss: prior matching, box encoding, Smooth-L1 and mined softmax CE."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._module import LossModule, shown
from lossatlas._options import NonNegative, NonNegativeInt, UnitInterval
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_floating,
    check_same_device,
    describe,
    value_checks_enabled,
)
from lossatlas.compose import LossParts, weighted_sum
from lossatlas.detection.boxes import (
    Variances,
    _encode,
    check_corner_boxes,
    check_ground_truth,
    check_prior_boxes,
    match_batch,
    pad_ground_truth,
)
from lossatlas.distributed import ProcessGroup, active_group, all_sum, check_shards

__all__ = ["ssd_loss"]


def _check_inputs(
    loc_preds: Tensor,
    conf_logits: Tensor,
    priors: Tensor,
    gt_boxes: Any,
    gt_labels: Any,
) -> None:
    check_floating("loc_preds", loc_preds)
    check_floating("conf_logits", conf_logits)
    check_same_device(("loc_preds", loc_preds), ("conf_logits", conf_logits), ("priors", priors))
    if loc_preds.dim() != 3 or loc_preds.shape[2] != 4:
        raise ValueError(f"loc_preds must have shape (N, A, 4), got {tuple(loc_preds.shape)}")
    if conf_logits.dim() != 3 or conf_logits.shape[:2] != loc_preds.shape[:2]:
        n, a = loc_preds.shape[:2]
        raise ValueError(
            f"conf_logits must have shape ({n}, {a}, C) to match loc_preds "
            f"{tuple(loc_preds.shape)}, got {tuple(conf_logits.shape)}"
        )
    num_classes = conf_logits.shape[2]
    if num_classes < 2:
        raise ValueError(
            f"conf_logits must have C >= 2 classes (class 0 is background), got C={num_classes}"
        )
    check_prior_boxes("priors", priors)
    if priors.shape[0] != loc_preds.shape[1]:
        raise ValueError(
            f"priors must have shape ({loc_preds.shape[1]}, 4), one per prediction of "
            f"loc_preds {tuple(loc_preds.shape)}, got {tuple(priors.shape)}"
        )
    batch = loc_preds.shape[0]
    for name, value in (("gt_boxes", gt_boxes), ("gt_labels", gt_labels)):
        if isinstance(value, Tensor) or not isinstance(value, Sequence):
            raise TypeError(f"{name} must be a list of per-image tensors, got {describe(value)}")
        if len(value) != batch:
            raise ValueError(
                f"{name} must hold one tensor per image ({batch}, the batch size of "
                f"loc_preds), got {len(value)}"
            )
    for i, (boxes, labels) in enumerate(zip(gt_boxes, gt_labels, strict=True)):
        check_ground_truth(f"gt_boxes[{i}]", boxes, f"gt_labels[{i}]", labels)
    if not value_checks_enabled() or batch == 0:
        return
    # One pass over the whole batch (one host sync each); images are only visited to name the
    # first bad one.
    all_boxes = torch.cat([b.detach().to(priors.dtype) for b in gt_boxes])
    width = all_boxes[:, 2] - all_boxes[:, 0]
    height = all_boxes[:, 3] - all_boxes[:, 1]
    if bool(((width <= 0) | (height <= 0) | ~torch.isfinite(all_boxes).all(dim=1)).any()):
        for i, boxes in enumerate(gt_boxes):
            check_corner_boxes(f"gt_boxes[{i}]", boxes, strict=True)
    all_labels = torch.cat([lab.reshape(-1) for lab in gt_labels])
    if bool(((all_labels < 1) | (all_labels >= num_classes)).any()):
        for i, labels in enumerate(gt_labels):
            bad = (labels < 1) | (labels >= num_classes)
            if bool(bad.any()):
                position = int(bad.nonzero()[0, 0])
                raise ValueError(
                    f"gt_labels[{i}] has label {int(labels[position])} at position "
                    f"({position},); expected values in [1, {num_classes}) "
                    f"(0 is the background class)"
                )


# --------------------------------------------------------------------------- declaration


_GRID = 4  # priors on a 4 x 4 grid, two sizes each
_NUM_CLASSES = 4


def example_priors(dtype: torch.dtype) -> Tensor:
    """``2 * 4 * 4`` priors ``(cx, cy, w, h)`` on a 4 x 4 grid over the unit square."""
    centres = (torch.arange(_GRID, dtype=torch.float64) + 0.5) / _GRID
    cy, cx = torch.meshgrid(centres, centres, indexing="ij")
    priors = []
    for size in (0.25, 0.5):
        wh = torch.full_like(cx, size)
        priors.append(torch.stack((cx, cy, wh, wh), dim=-1).reshape(-1, 4))
    return torch.cat(priors).to(dtype)


def _ssd_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    priors = example_priors(dtype)
    num_priors = priors.shape[0]
    loc = ex.normal(generator, batch, num_priors, 4, dtype=dtype, scale=0.5 * scale)
    logits = ex.normal(generator, batch, num_priors, _NUM_CLASSES, dtype=dtype, scale=scale)
    boxes, labels = [], []
    for i in range(batch):
        count = 0 if i == 1 else int(torch.randint(1, 4, (), generator=generator))
        corner = ex.uniform(generator, count, 2, dtype=torch.float64, low=0.0, high=0.6)
        size = ex.uniform(generator, count, 2, dtype=torch.float64, low=0.15, high=0.4)
        boxes.append(torch.cat((corner, corner + size), dim=1).to(dtype))
        labels.append(torch.randint(1, _NUM_CLASSES, (count,), generator=generator))
    return Example((loc, logits, priors, boxes, labels), grad_args=(0, 1))


_SSD = Family(
    tasks=("detection",),
    input_kind="box offsets and class logits per prior",
    target_kind="per-image lists of boxes (x1, y1, x2, y2) and labels in [1, C)",
    target_type=TargetKind.BOXES,
)


# --------------------------------------------------------------------------- functional


@_SSD.loss(
    formula=(
        r"\frac{1}{\max(P,1)}\Big(\sum_{i \in pos \cup neg} \mathrm{CE}(c_i, y_i)"
        r" + \lambda \sum_{i \in pos} \mathrm{smooth}_{L1}(l_i - \hat g_i)\Big)"
    ),
    properties={"non_negative"},
    examples=_ssd_example,
    # "mean" divides the batch sums by the number of positives, not by N: not none.mean().
    mean_of_none=False,
    # Offsets of priors matched to no box are never read: a NaN there is ignored (the family
    # tests check that a NaN offset of a matched prior gives NaN).
    nan_exempt=(0,),
    dynamic_shapes=False,
    dynamic_shapes_reason="the ground truth is a Python list per image (its length is static)",
)
def ssd_loss(
    loc_preds: Tensor,
    conf_logits: Tensor,
    priors: Tensor,
    gt_boxes: Sequence[Tensor],
    gt_labels: Sequence[Tensor],
    *,
    iou_threshold: UnitInterval = 0.5,
    neg_pos_ratio: NonNegativeInt = 3,
    variances: Variances = (0.1, 0.2),
    loc_weight: NonNegative = 1.0,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
    return_parts: bool = False,
) -> Tensor | LossParts:
    r"""SSD MultiBox loss: Smooth-L1 localisation plus softmax confidence with hard negatives.

    For each image the priors are matched to the ground truth (:func:`match_priors`: each
    object's best prior is forced, every other prior is positive when its best IoU is at least
    ``iou_threshold``); positives regress the encoded offsets (:func:`encode_boxes`) with
    Smooth-L1 (``beta=1``) and classify their object's label; among the negatives (label 0,
    background) only the ``neg_pos_ratio * P_i`` with the highest cross-entropy are kept, where
    ``P_i`` is the image's number of positives. Both parts are divided by the batch's number
    of positives ``P`` floored at 1.

    An image without objects (``P_i = 0``) mines ``neg_pos_ratio`` negatives, as if it had one
    positive (the same floor as the normaliser), so background-only images still train the
    background class; torchvision's SSD, ssd.pytorch and mmdetection mine none there. With
    ``neg_pos_ratio=0`` no negative is ever used.

    .. math::
        L = \frac{1}{\max(P, 1)}\Big(
            \sum_{i \in \text{pos} \cup \text{neg}} \operatorname{CE}(c_i, y_i)
            + \lambda \sum_{i \in \text{pos}} \sum_{k} \operatorname{smooth}_{L1}(l_{ik} - t_{ik})
        \Big)

    Args:
        loc_preds: ``(N, A, 4)`` predicted offsets for the ``A`` priors.
        conf_logits: ``(N, A, C)`` class logits; class 0 is background.
        priors: ``(A, 4)`` priors ``(cx, cy, w, h)``, positive sizes.
        gt_boxes: ``N`` tensors ``(M_i, 4)`` of boxes ``(x1, y1, x2, y2)`` with ``x2 > x1`` and
            ``y2 > y1`` (``M_i = 0`` for an image without objects).
        gt_labels: ``N`` integer tensors ``(M_i,)`` with labels in ``[1, C)``.
        iou_threshold: IoU at which a prior becomes positive, in ``[0, 1]``.
        neg_pos_ratio: Negatives kept per positive, an int ``>= 0``.
        variances: Encoding variances ``(v0, v1)`` (see :func:`encode_boxes`).
        loc_weight: ``lambda``, the weight of the localisation part, ``>= 0``.
        reduction: ``"mean"`` divides the sums by ``max(P, 1)`` (the paper's loss); ``"sum"``
            returns the sums over the batch, to be normalised by the caller; ``"none"``
            returns each image's sums, shape ``(N,)``.
        process_group: ``None`` (this process only) or a ``torch.distributed`` group: ``P``
            and the sums are then every rank's (one all-sum of three numbers), so the value
            on every rank and, after DDP's gradient averaging, the gradients equal one
            process on the concatenated batch (see :mod:`lossatlas.distributed`). Hard
            negatives are mined per image, so they need nothing from the other ranks.
        return_parts: Return :class:`lossatlas.LossParts` ``(total, {"loc": ..., "conf":
            ...})`` instead of the total alone (the same single computation).

    Returns:
        The total ``conf + loc_weight * loc``, a scalar, or ``(N,)`` for ``"none"``; with
        ``return_parts=True``, :class:`lossatlas.LossParts` ``(total, {"loc": ..., "conf":
        ...})``, the parts unweighted. Float32 for half-precision inputs.

    Raises:
        TypeError: Non-floating predictions or boxes, non-integer labels, ground truth that is
            not a list of tensors.
        ValueError: ``priors`` not ``(A, 4)``, shapes that do not agree, lists whose length is
            not ``N``, labels of another length than their boxes or outside ``[1, C)``, boxes
            with ``x2 <= x1`` or ``y2 <= y1``, a bad option.

    Example:
        Two priors, one object on the second one, zero predictions:

        >>> import torch
        >>> import lossatlas as la
        >>> priors = torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]])
        >>> out = la.ssd_loss(torch.zeros(1, 2, 4), torch.zeros(1, 2, 3), priors,
        ...                   [torch.tensor([[0.5, 0.5, 1.0, 1.0]])], [torch.tensor([2])],
        ...                   return_parts=True)
        >>> out.total, out.parts["conf"]  # 2 log 3: one positive and one mined negative
        (tensor(2.1972), tensor(2.1972))

    References:
        W. Liu, D. Anguelov, D. Erhan, C. Szegedy, S. Reed, C.-Y. Fu, A. C. Berg, "SSD: Single
        Shot MultiBox Detector", ECCV 2016, https://arxiv.org/abs/1512.02325 (section 2.2,
        training objective and hard negative mining).
    """
    v = (float(variances[0]), float(variances[1]))
    _check_inputs(loc_preds, conf_logits, priors, gt_boxes, gt_labels)

    dtype = compute_dtype(loc_preds, conf_logits, priors)
    loc_preds = upcast(loc_preds, dtype)
    conf_logits = upcast(conf_logits, dtype)
    priors = upcast(priors, dtype)
    batch, num_priors, num_classes = conf_logits.shape

    with torch.no_grad():  # the targets are constants, whatever produced the ground truth
        boxes, labels, valid = pad_ground_truth(
            gt_boxes, gt_labels, dtype=dtype, device=conf_logits.device
        )
        matched, target = match_batch(boxes, labels, valid, priors, iou_threshold)
        loc_target = _encode(matched, priors.expand(batch, num_priors, 4), v)
    positive = target > 0

    # Localisation: Smooth-L1 summed over the four offsets of each positive prior.
    loc_all = F.smooth_l1_loss(loc_preds, loc_target, reduction="none", beta=1.0).sum(dim=2)
    loc = torch.where(positive, loc_all, torch.zeros_like(loc_all)).sum(dim=1)

    # Confidence: CE of positives plus the hardest negatives, ranked per image.
    ce = F.cross_entropy(
        conf_logits.reshape(-1, num_classes), target.reshape(-1), reduction="none"
    ).view(batch, num_priors)
    with torch.no_grad():
        num_pos = positive.sum(dim=1, keepdim=True)
        num_neg = torch.minimum(neg_pos_ratio * num_pos.clamp(min=1), num_priors - num_pos)
        ranking = torch.where(positive, torch.full_like(ce, -float("inf")), ce)
        order = ranking.argsort(dim=1, descending=True, stable=True)
        rank = order.argsort(dim=1)
        negative = (rank < num_neg) & ~positive
    kept = positive | negative
    conf = torch.where(kept, ce, torch.zeros_like(ce)).sum(dim=1)

    group = active_group(process_group)
    if group is not None and reduction != "none":
        check_shards(group, "conf_logits", conf_logits, dims=(1, 2))
        totals = torch.stack([loc.sum(), conf.sum(), positive.sum().to(dtype)])
        loc, conf, count = all_sum(totals, group).unbind(0)
        if reduction == "mean":
            loc, conf = loc / count.clamp(min=1.0), conf / count.clamp(min=1.0)
    else:
        denominator = positive.sum().to(dtype).clamp(min=1.0)
        loc = reduce_loss(loc, reduction, denominator=denominator)
        conf = reduce_loss(conf, reduction, denominator=denominator)
    return weighted_sum(
        {"loc": loc, "conf": conf}, {"loc": loc_weight, "conf": 1.0}, return_parts=return_parts
    )


class SSDLoss(LossModule, functional=ssd_loss):
    """Module form of :func:`lossatlas.ssd_loss`; optional ``priors`` kept as a buffer.

    Built with ``priors``, it is called as ``loss(loc_preds, conf_logits, gt_boxes,
    gt_labels)`` and the priors move with ``.to(device)``; built without, it is called like the
    functional, ``loss(loc_preds, conf_logits, priors, gt_boxes, gt_labels)``.
    """

    priors: Tensor | None
    variances: tuple[float, float]

    def init_state(self, *, priors: Tensor | None = None) -> None:
        """Keep ``priors`` (checked) as a buffer; ``variances`` as a tuple of floats."""
        if priors is not None:
            check_prior_boxes("priors", priors)
        self.keep("priors", priors)
        self.variances = (float(self.variances[0]), float(self.variances[1]))

    def forward(self, *inputs: Any) -> Tensor | LossParts:
        options, priors = self.options(), self.priors
        expected = 4 if priors is not None else 5
        if len(inputs) != expected:
            form = (
                "(loc_preds, conf_logits, gt_boxes, gt_labels) since it holds priors"
                if priors is not None
                else "(loc_preds, conf_logits, priors, gt_boxes, gt_labels)"
            )
            raise TypeError(f"SSDLoss takes {form}, got {len(inputs)} inputs")
        if priors is not None:
            inputs = (inputs[0], inputs[1], priors, *inputs[2:])
        return ssd_loss(*inputs, **options)

    def extra_repr(self) -> str:
        return f"priors={shown(self.priors)}, {super().extra_repr()}"
