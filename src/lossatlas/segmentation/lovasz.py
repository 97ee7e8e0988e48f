"""Lovász hinge and Lovász-Softmax losses (Berman, Rannen Triki, Blaschko, CVPR 2018).

Both are the Lovász extension of the Jaccard loss ``1 - IoU``, a convex surrogate that is
exact on hard predictions: sort the per-pixel errors in decreasing order and weight each by
the increase of the Jaccard loss when that pixel joins the set of mistakes. The sort is
differentiable almost everywhere (the gradient flows through the gathered errors) and
``torch.compile(fullgraph=True)`` captures it.

``ignore_index`` pixels are not removed (a data-dependent shape would break compilation); their
error and label are set to 0, which sorts them behind every pixel with a positive error and
leaves the weights of those pixels unchanged, so the value equals the reference code's, which
removes them.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, safe_divide, upcast
from lossatlas._validation import (
    check_class_indices,
    check_floating,
    check_index_target,
    check_integer,
    check_same_shape,
    index_target,
)
from lossatlas.distributed import ProcessGroup, active_group, gather_rows
from lossatlas.segmentation._overlap import (
    SOFTMAX_EXAMPLE,
    check_overlap_weight,
    class_one_hot,
    index_parts,
)

__all__ = ["lovasz_hinge_loss", "lovasz_softmax_loss"]

#: Which classes Lovász-Softmax averages over.
LovaszClasses = Literal["present", "all"]


def _hinge_examples(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    logits = ex.normal(generator, batch, 4, 4, dtype=dtype, scale=scale)
    return Example((logits, ex.class_indices(generator, batch, 4, 4, num_classes=2)))


def _hinge_perfect(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    labels = ex.class_indices(generator, batch, 4, 4, num_classes=2)
    return Example(((labels * 4.0 - 2.0).to(dtype), labels))  # margin 2 > 1: zero hinge


_LOVASZ = Family(
    tasks=("segmentation",),
    input_kind="logits",
    target_kind="class indices",
    target_type=TargetKind.CLASS_INDICES,
    properties={"non_negative", "bounded", "zero_at_perfect"},
    examples=ex.segmentation_logits,
    perfect=ex.segmentation_perfect,
    args={
        "per_image": 'One loss per image (averaged by ``"mean"``) instead of one over all pixels '
        "of the batch.",
        "ignore_index": "Pixels with this label are left out.",
        "reduction": '``"none"`` | ``"mean"`` | ``"sum"``. With ``per_image`` the values are the '
        '``N`` image losses and ``"mean"`` divides by ``N`` (an image whose pixels are all '
        "ignored scores 0 and still counts, as in the reference code); without, the batch's "
        "single loss is returned by every reduction.",
        "process_group": "``None`` (this process only) or a ``torch.distributed`` group. With "
        "``per_image`` the image losses are reduced over every rank's images; without, the "
        "pixels of every rank are gathered (with gradient) and each rank computes the one loss "
        "of the whole batch -- the Lovász extension sorts all pixels, so nothing less is exact. "
        "The value on every rank and, after DDP's gradient averaging, the gradients equal one "
        "process on the concatenated batch (see :mod:`lossatlas.distributed`). Gathering reads "
        "the shard sizes on the host: ``torch.compile`` breaks the graph there "
        "(``fullgraph=True`` refuses it).",
    },
    returns='``(N,)`` for ``"none"`` with ``per_image``, else a scalar.',
    raises={"TypeError": "Non-floating input, a non-integer target."},
)
#: Lovász-Softmax takes the softmax overlap losses' example inputs.
_LOVASZ_SOFTMAX = _LOVASZ.derive(example=SOFTMAX_EXAMPLE)


def _one_image(values: Tensor, labels: Tensor, group: ProcessGroup | None) -> tuple[Tensor, Tensor]:
    """The whole batch (every rank's, with a group) as one image, pixels on the last dim.

    ``values`` ``(N, S)`` or ``(N, C, S)`` becomes ``(1, N S)`` or ``(1, C, N S)``, ``labels``
    ``(N, S)`` becomes ``(1, N S)``; the pixels are gathered with gradient.
    """
    pixels = values.movedim(-1, 1).reshape(-1, *values.shape[1:-1])
    pixels, _ = gather_rows(pixels, group, name="input")
    labels, _ = gather_rows(labels.reshape(-1), group, name="target")
    return pixels.movedim(0, -1).unsqueeze(0), labels.reshape(1, -1)


def _lovasz_weights(labels_sorted: Tensor) -> Tensor:
    """Increments of the Jaccard loss along sorted labels (the Lovász extension's weights)."""
    total = labels_sorted.sum(dim=-1, keepdim=True)
    intersection = total - labels_sorted.cumsum(dim=-1)
    union = total + (1.0 - labels_sorted).cumsum(dim=-1)  # >= 1 at every position
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=-1)


def _lovasz_extension(errors: Tensor, labels: Tensor) -> Tensor:
    """``sum_i errors_sorted_i * weights_i`` over the last dimension (errors already >= 0)."""
    errors_sorted, order = torch.sort(errors, dim=-1, descending=True)
    return (errors_sorted * _lovasz_weights(labels.gather(-1, order))).sum(dim=-1)


@_LOVASZ.loss(
    tasks=("segmentation", "binary"),
    target_kind="binary labels {0, 1} (torch.long), same shape",
    formula=r"\sum_i \max(0, e_{\pi(i)})\, g_i(\Delta_J),\quad e = 1 - x(2y - 1)",
    properties={"non_negative", "zero_at_perfect"},
    examples=_hinge_examples,
    perfect=_hinge_perfect,
    same_shape=(0, 1),
    use_when="binary segmentation scored by IoU; fine-tuning",
)
def lovasz_hinge_loss(
    input: Tensor,
    target: Tensor,
    *,
    per_image: bool = True,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Lovász hinge loss for binary segmentation, on logits (Berman et al., CVPR 2018).

    The hinge errors ``max(0, 1 - x s)`` with signs ``s = 2y - 1`` are sorted in decreasing
    order and weighted by the Lovász extension of the Jaccard loss of the foreground. Correct
    logits of magnitude at least 1 give 0. Per image (the default) or over the whole batch.

    .. math::
        \ell = \sum_{i} \max(0, e_{\pi(i)})\, \left[\Delta_J(\{\pi(1..i)\})
            - \Delta_J(\{\pi(1..i-1)\})\right],\quad e = 1 - x\,(2y - 1)

    Args:
        input: Logits ``(N, d1, ...)`` (e.g. ``(N, H, W)``).
        target: Labels of the same shape, ``torch.long``: 1 foreground, 0 background, or
            ``ignore_index``.

    Raises:
        ValueError: Shapes that differ, a label other than 0, 1 or ``ignore_index``, a bad
            option.

    Example:
        >>> logits = torch.tensor([[[2.0, -0.5], [0.3, -3.0]]])
        >>> labels = torch.tensor([[[1, 0], [0, 0]]])
        >>> la.lovasz_hinge_loss(logits, labels)
        tensor(0.7333)

    References:
        M. Berman, A. Rannen Triki, M. B. Blaschko, "The Lovász-Softmax loss: A tractable
        surrogate for the optimization of the intersection-over-union measure in neural
        networks", CVPR 2018, https://arxiv.org/abs/1705.08790
    """
    check_floating("input", input)
    target = index_target(target)
    check_integer("target", target)
    if input.dim() < 2:
        raise ValueError(
            f"input must be logits of shape (N, d1, ...) with at least one pixel dimension, "
            f"got shape {tuple(input.shape)}"
        )
    check_same_shape("input", input, "target", target)
    check_class_indices("target", target, 2, ignore_index=ignore_index)
    dtype = compute_dtype(input)
    logits = upcast(input, dtype).flatten(1)
    labels = target.flatten(1)
    group = active_group(process_group)
    if not per_image:
        logits, labels = _one_image(logits, labels, group)
        group = None
    labels, keep = index_parts(labels, ignore_index)
    labels = labels.to(dtype)
    errors = torch.relu(1.0 - logits * (2.0 * labels - 1.0))
    if keep is not None:
        errors = errors * keep.to(dtype)
    loss = _lovasz_extension(errors, labels)
    return reduce_loss(loss if per_image else loss.squeeze(0), reduction, process_group=group)


@_LOVASZ_SOFTMAX.loss(
    formula=r"\frac{1}{|\mathcal{C}|}\sum_{c} \sum_i e_{c,\pi_c(i)}\, g_i(\Delta_{J_c}),"
    r"\quad e_c = |g_c - p_c|",
    use_when="multi-class segmentation scored by mean IoU",
    peers={
        "kornia": "lovasz_softmax_loss: per_image=True, classes='all'; weight multiplies each "
        "class's term, the mean still over C (as here)"
    },
)
def lovasz_softmax_loss(
    input: Tensor,
    target: Tensor,
    *,
    classes: LovaszClasses = "present",
    per_image: bool = False,
    weight: Tensor | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Lovász-Softmax loss for multi-class segmentation, on logits (Berman et al., CVPR 2018).

    For each class the errors ``|g_c - p_c|`` of the softmax probabilities are sorted and
    weighted by the Lovász extension of that class's Jaccard loss; the classes are averaged.
    The reference code takes probabilities; this takes logits and applies the softmax over
    dim 1 (as kornia does). kornia's ``lovasz_softmax_loss(pred, target, weight)`` is
    ``per_image=True, classes="all"`` here (its images are scored one by one, every class
    averaged).

    .. math::
        \ell = \frac{1}{|\mathcal{C}|} \sum_{c \in \mathcal{C}} \sum_i
            e_{c,\pi_c(i)}\, \left[\Delta_{J_c}(\pi_c(1..i)) - \Delta_{J_c}(\pi_c(1..i-1))
            \right],\quad e_c = |g_c - p_c|

    Args:
        input: Logits ``(N, C, d1, ...)``, ``C >= 2``.
        target: Class indices ``(N, d1, ...)`` in ``[0, C)`` or ``ignore_index``.
        classes: ``"present"`` averages over the classes present in the ground truth (of the
            image with ``per_image``, else of the batch); ``"all"`` over all ``C`` classes.
            With no class present (every pixel ignored) the loss is 0.
        weight: Per-class weights ``(C,)``, non-negative, as kornia's: class ``c``'s term is
            multiplied by ``w_c`` and the average still divides by the number of classes
            averaged (``C``, or the classes present), not by the weights' sum (unlike
            :func:`lossatlas.dice_loss`'s weighted mean): a uniform weight of 2 doubles the
            loss, and the weight of an absent class is unused with ``"present"``.

    Raises:
        ValueError: A class index out of range (value and position named), a target of
            another shape, ``C < 2``, a ``weight`` that is not ``C`` non-negative values, a
            bad option.

    Example:
        >>> la.lovasz_softmax_loss(logits, target)
        tensor(0.3208)
        >>> la.lovasz_softmax_loss(logits, target, weight=torch.tensor([1.0, 3.0]))
        tensor(0.6049)

    References:
        M. Berman, A. Rannen Triki, M. B. Blaschko, "The Lovász-Softmax loss: A tractable
        surrogate for the optimization of the intersection-over-union measure in neural
        networks", CVPR 2018, https://arxiv.org/abs/1705.08790
    """
    check_floating("input", input)
    if input.dim() < 3 or input.shape[1] < 2:
        raise ValueError(
            "input must be logits of shape (N, C, d1, ...) with C >= 2 and at least one "
            f"spatial dimension, got shape {tuple(input.shape)}; for binary masks use "
            "lovasz_hinge_loss"
        )
    target = index_target(target)
    check_index_target(input, target)
    num_classes = input.shape[1]
    check_overlap_weight(weight, num_classes)
    check_class_indices("target", target, num_classes, ignore_index=ignore_index)
    dtype = compute_dtype(input)
    probs = torch.softmax(upcast(input, dtype), dim=1).flatten(2)
    labels = target.flatten(1)
    group = active_group(process_group)
    if not per_image:
        probs, labels = _one_image(probs, labels, group)
        group = None
    labels, kept = index_parts(labels, ignore_index)
    keep = None if kept is None else kept.to(dtype).unsqueeze(1)
    foreground = class_one_hot(labels, num_classes, dtype)
    errors = (foreground - probs).abs()
    if keep is not None:
        foreground = foreground * keep
        errors = errors * keep
    per_class = _lovasz_extension(errors, foreground)  # (rows, C)
    if weight is not None:
        per_class = per_class * upcast(weight, dtype)
    if classes == "all":
        loss = per_class.mean(dim=1)
    else:
        present = (foreground.sum(dim=-1) > 0).to(dtype)
        loss = safe_divide((per_class * present).sum(dim=1), present.sum(dim=1))
    return reduce_loss(loss if per_image else loss.squeeze(0), reduction, process_group=group)


# --------------------------------------------------------------------------- modules


class LovaszHingeLoss(LossModule, functional=lovasz_hinge_loss):
    """Module form of :func:`lossatlas.lovasz_hinge_loss`."""


class LovaszSoftmaxLoss(LossModule, functional=lovasz_softmax_loss):
    """Module form of :func:`lossatlas.lovasz_softmax_loss`; ``weight`` is a buffer."""
