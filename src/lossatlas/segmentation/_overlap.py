r"""The shared core of the overlap losses: Dice, Jaccard, Tversky and focal Tversky.

Each overlap loss reduces the prediction ``p`` (softmax or sigmoid of the logits) and the ground
truth ``g`` to three sums per sample and class over the spatial positions,

.. math::
    I = \sum_s p\,g, \qquad P = \sum_s p \;(\text{or } p^2), \qquad
    G = \sum_s g \;(\text{or } g^2),

and scores those ``(N, C)`` sums. This module validates the inputs, computes the sums and
finishes the per-class loss (background dropped, batch summed, classes averaged "macro" or
"micro", class weights, reduction). Every public overlap loss hands its own arguments to one
function, :func:`overlap_loss`, which names the activation (``"softmax"``, ``"sigmoid"``, or
``"identity"`` for the probability forms of :mod:`lossatlas.segmentation.from_probs`) and the
score (``"dice"``, ``"jaccard"``, ``"tversky"``): the logit and probability forms share every
line of the computation.

The sums come from one of two paths with the same values:

* the **fused path** (default in eager mode): a custom autograd function that keeps only the
  logits and the target for backward and computes the gradient of the logits in one pass from
  the upstream gradients of ``I`` and ``P``, recomputing the activation;
* the **plain path**: ordinary differentiable ops, used while ``torch.compile`` traces, under
  functorch transforms, when the target itself requires a gradient, and when the fused paths
  are switched off (``lossatlas.set_fused(False)``, ``with lossatlas.fused(False)``,
  ``LOSSATLAS_FUSED=0``) -- the choice for a user who prefers time to memory.

What the fused path buys is memory between forward and backward, not time: it keeps no
tensor of its own for backward (the plain ops keep the softmax / sigmoid output, one
input-sized tensor; MONAI's ``DiceLoss`` two), at the price of recomputing the activation in
backward. In a training step that is an input-sized tensor less while the network's
activations are held; the loss's own peak (inside backward) is the same. On CPU
(``benchmarks/bench_dice.py``) its forward+backward time is within about 25% of MONAI's and of
the plain ops' (either side, run to run, on a loaded 2-core machine). Neither path
materialises a one-hot target for class indices (gather / scatter-add instead).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._fused import fused_enabled, use_custom_autograd
from lossatlas._reduction import compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    binary_target,
    check_class_weight,
    check_floating,
    check_in_range,
    check_probabilities,
    check_probability_shape,
    check_same_shape,
    check_target_values,
    check_tensor,
    index_target,
)
from lossatlas.distributed import ProcessGroup, active_group, all_sum, check_shards

Sums = tuple[Tensor, Tensor, Tensor]

#: What turns the first input into probabilities: a softmax over dim 1, a sigmoid per channel,
#: or nothing (the input already holds probabilities).
Activation = Literal["softmax", "sigmoid", "identity"]

#: How the classes of a sample combine: ``"macro"``, one ratio per class (then averaged by the
#: reduction); ``"micro"``, one ratio per sample over the sums of every class (kornia's
#: ``dice_loss(average="micro")``).
Average = Literal["macro", "micro"]

#: The score of the sums: Dice, Jaccard (both :func:`dice_score`) or Tversky
#: (:func:`tversky_score`, focal with ``gamma``).
ScoreName = Literal["dice", "jaccard", "tversky"]

# --------------------------------------------------------------------------- families

_OVERLAP_PROPERTIES = {"non_negative", "bounded", "zero_at_perfect"}

#: The options of the overlap losses, described once: each loss's ``help()`` shows this text
#: for every option its docstring leaves out (:mod:`lossatlas._docs`).
_SOFTMAX_ARGS = {
    "input": "Logits ``(N, C, d1, ...)`` with ``C >= 2`` and at least one spatial dimension.",
    "target": "Class indices ``(N, d1, ...)`` in ``[0, C)`` or ``ignore_index`` (any integer "
    "dtype or bool, read as ``torch.long``), or a target of the input's shape: one-hot "
    "(integer or bool masks allowed) or soft, class probabilities in [0, 1] per pixel "
    "(MONAI's ``to_onehot_y=False``; the sums are then ``I = sum_s p g`` and ``G = sum_s g``, "
    "nothing rounded).",
    "include_background": "``False`` leaves class 0 out (of the loss, the weights and the "
    "mean); the output then has ``C - 1`` class columns.",
    "squared_pred": "Sum ``p^2`` and ``g^2`` in the denominator (V-Net).",
    "smooth_nr": "Added to the numerator, ``>= 0``.",
    "smooth_dr": "Added to the denominator, ``> 0`` (so an empty class is never 0/0).",
    "batch": "Sum the intersection and the sizes over the batch before the ratio.",
    "weight": "Per-class weights ``(C,)``, non-negative; each class's loss is multiplied by its "
    "weight. Indexed by class id (``weight[0]`` is unused when ``include_background=False``; "
    "MONAI wants ``C - 1`` weights there).",
    "ignore_index": "Class-index targets equal to it are excluded from every sum: their "
    "prediction and target count nowhere, so their logits do not change the loss. Only for "
    "class-index targets. An image whose pixels are all ignored scores 0 for every class and "
    "still counts in the mean (as in MONAI).",
    "average": '``"macro"`` (MONAI): one ratio per sample and class. ``"micro"`` (kornia\'s '
    "default): one ratio per sample over all classes kept, ``1 - (2 sum_c w_c I_c + s_nr) / "
    "(sum_c w_c (P_c + G_c) + s_dr)``, the weights (if any) inside the sums and the ``N`` "
    'values averaged plainly (``batch=True``: one ratio in all); ``"none"`` then returns '
    "``(N,)`` (``()`` with ``batch=True``). "
    '``dice_loss(x, y, average="micro", smooth_nr=0, smooth_dr=eps)`` equals kornia\'s '
    '``dice_loss(x, y, average="micro", eps=eps)``; kornia\'s ``"macro"`` averages only the '
    "classes present in each sample's target, this (as MONAI) all of them.",
    "reduction": '``"none"`` | ``"mean"`` | ``"sum"``. ``"mean"`` averages the ``(N, C\')`` '
    "values; with ``weight`` it divides their weighted sum by the sum of the weights, "
    "``N * sum_c w_c`` (MONAI divides by ``N * C'``: equal when the weights sum to ``C'``; "
    '``"none"`` and ``"sum"`` equal MONAI\'s).',
    "process_group": "``None`` (this process only) or a ``torch.distributed`` group over which "
    "the loss is exact: with ``batch=True`` the class sums are all-summed before the ratio, "
    'otherwise ``"mean"`` and ``"sum"`` run over every rank\'s samples. The value on every rank '
    "and, after DDP's gradient averaging, the gradients equal one process on the concatenated "
    "batch (see :mod:`lossatlas.distributed`).",
}

#: The inputs the softmax and sigmoid families' examples share (after the package's imports).
SOFTMAX_EXAMPLE = """>>> logits = torch.tensor([[[[2.0, -1.0], [0.5, 0.0]],
...                         [[-1.0, 2.0], [0.0, 1.5]]]])  # (N=1, C=2, 2, 2)
>>> target = torch.tensor([[[0, 1], [1, 1]]])"""
_SIGMOID_EXAMPLE = """>>> logits = torch.tensor([[[[3.0, -2.0], [1.0, -1.0]]]])  # (N=1, C=1, 2, 2)
>>> mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])"""

#: The option checks state each option's range in its description.
BAD_OPTION = "an option outside the range its description states"

#: The softmax overlap losses (Dice, Jaccard, Tversky and their compounds): logits over dim 1
#: against class indices or one-hot / probability targets.
SOFTMAX_OVERLAP = Family(
    tasks=("segmentation", "imbalanced"),
    input_kind="logits",
    target_kind="class indices or one-hot / class probabilities",
    target_type=TargetKind.CLASS_INDICES,
    properties=_OVERLAP_PROPERTIES,
    examples=ex.segmentation_logits,
    perfect=ex.segmentation_perfect,
    args=_SOFTMAX_ARGS,
    example=SOFTMAX_EXAMPLE,
    returns="``(N, C')`` for ``\"none\"`` (``(C',)`` with ``batch=True``), ``C' = C`` or "
    "``C - 1`` without background; else a scalar. Float32 for half-precision input.",
    raises={
        "TypeError": "Non-floating input; a float target shaped like class indices; a non-bool "
        "flag.",
        "ValueError": "A class index outside ``[0, C)`` that is not ``ignore_index`` (value and "
        "position named); a target of another shape; ``C < 2``; no spatial dimension; "
        f"``ignore_index`` with a one-hot target; {BAD_OPTION}.",
    },
)

#: The sigmoid overlap losses: one binary mask per channel, same shape as the logits.
SIGMOID_OVERLAP = SOFTMAX_OVERLAP.derive(
    tasks=("segmentation", "binary", "imbalanced"),
    target_kind="binary masks (or soft labels) in [0, 1], same shape",
    target_type=TargetKind.PROBABILITIES,
    examples=ex.binary_mask_logits,
    perfect=ex.binary_mask_perfect,
    same_shape=(0, 1),
    example=_SIGMOID_EXAMPLE,
    args={
        "input": "Logits ``(N, C, d1, ...)``, at least one spatial dimension.",
        "target": "Same shape, values in ``[0, 1]`` (masks in {0, 1}, float, bool or integer, "
        "or soft labels).",
        "include_background": "``False`` leaves channel 0 out (needs ``C >= 2``).",
        "batch": "One ratio per channel over the whole batch.",
        "weight": "Per-channel weights ``(C,)``, non-negative; each channel's loss is multiplied "
        "by its weight (``weight[0]`` is unused when ``include_background=False``).",
    },
    raises={
        "TypeError": "Non-floating tensors, a non-bool flag.",
        "ValueError": "Shapes that differ, a target outside [0, 1], no spatial dimension, "
        f"``include_background=False`` with one channel, {BAD_OPTION}.",
    },
)


def _probability_examples(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    """Softmax probabilities ``(batch, 3, 4, 4)`` of the segmentation logits, class indices."""
    logits, target = ex.segmentation_logits(
        generator, batch=batch, dtype=torch.float64, scale=scale
    ).args
    return Example((torch.softmax(logits, dim=1).to(dtype), target))


def _probability_perfect(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    """The one-hot of the class indices as the probabilities."""
    target = ex.class_indices(generator, batch, 4, 4, num_classes=3)
    onehot = torch.nn.functional.one_hot(target, 3).movedim(-1, 1)
    return Example((onehot.to(dtype), target))


#: The overlap losses of probabilities (no activation): any ``(N, C, d1, ...)`` in [0, 1]
#: against class indices or a target of the input's shape.
PROBABILITY_OVERLAP = SOFTMAX_OVERLAP.derive(
    input_kind="probabilities (N, C, d1, ...) in [0, 1], no activation applied",
    target_kind="class indices, or one-hot / class probabilities / binary masks of the "
    "input's shape",
    examples=_probability_examples,
    perfect=_probability_perfect,
    example=None,
    args={
        "input": "Probabilities ``(N, C, d1, ...)`` in ``[0, 1]`` (``C >= 1``), at least one "
        "spatial dimension; rows need not sum to 1.",
        "target": "Class indices ``(N, d1, ...)`` in ``[0, C)`` or ``ignore_index``, or a target "
        "of the input's shape: one-hot, soft class probabilities or one binary mask per "
        "channel, in ``[0, 1]`` (integer or bool masks allowed; nothing rounded).",
        "include_background": "``False`` leaves class 0 out (of the loss, the weights and the "
        "mean; needs ``C >= 2``); the output then has ``C - 1`` class columns.",
    },
    raises={
        "ValueError": "A class index outside ``[0, C)`` that is not ``ignore_index``, or an "
        "input value outside ``[0, 1]`` (value and position named); a target of another shape; "
        "no spatial dimension; ``include_background=False`` with one channel; ``ignore_index`` "
        f"with a one-hot target; {BAD_OPTION}.",
    },
)

#: The options of the Tversky losses (softmax, sigmoid and probability forms) beyond Dice's.
TVERSKY_ARGS = {
    "alpha": "Weight of false positives, ``>= 0``.",
    "beta": "Weight of false negatives, ``>= 0``.",
    "gamma": "The exponent, ``> 0``: each sample's and class's ``(1 - TI)^gamma``, before the "
    "class weights and the mean.",
    "average": '``"macro"`` (MONAI): one index per sample and class. ``"micro"``: one index '
    "per sample, ``(sum_c w_c I_c + s_nr) / (sum_c w_c (I_c + alpha FP_c + beta FN_c) + "
    's_dr)``, the weights (if any) inside the sums; ``"none"`` then returns ``(N,)`` (``()`` '
    "with ``batch=True``). kornia's ``tversky_loss`` has no ``average``; its per-class index "
    'is ``"macro"``, over the classes present.',
}

# --------------------------------------------------------------------------- inputs


def check_overlap_weight(weight: Tensor | None, num_classes: int) -> None:
    """Raise unless ``weight`` is ``None`` or ``num_classes`` non-negative floating weights."""
    check_class_weight("weight", weight, num_classes)
    if weight is not None:
        check_in_range("weight", weight, 0.0, math.inf, what="non-negative class weights")


def _check_logits_shape(input: Tensor, *, what: str = "logits") -> int:
    """Raise unless ``input`` is floating ``(N, C, d1, ...)``; return ``C``."""
    check_floating("input", input)
    if input.dim() < 3:
        raise ValueError(
            f"input must be {what} of shape (N, C, d1, ...) with at least one spatial "
            f"dimension, got shape {tuple(input.shape)}"
        )
    return input.shape[1]


def _check_background(input: Tensor, include_background: bool) -> None:
    if not include_background and input.shape[1] < 2:
        raise ValueError(
            "include_background=False drops channel 0, which leaves no channel for input "
            f"of shape {tuple(input.shape)}; it needs C >= 2 channels"
        )


def _check_class_target(input: Tensor, target: Tensor, *, ignore_index: int | None) -> bool:
    """Class indices or a float target of the input's shape; ``True`` for class indices."""
    check_tensor("target", target)
    if target.is_floating_point():
        check_probability_shape(input, target, what="one-hot or probability targets")
        if ignore_index is not None:
            raise ValueError(
                f"ignore_index={ignore_index} applies to class-index targets only, got a "
                f"{target.dtype} one-hot / probability target; pass class indices to leave "
                "void pixels out"
            )
    return check_target_values(input, target, input.shape[1], ignore_index=ignore_index)


def overlap_target(target: Any, input: Any) -> Any:
    """A bool / integer target as the overlap losses read it.

    Of the input's full shape ``(N, C, d1, ...)`` it is a one-hot or a mask per channel: the
    input's floating dtype (:func:`lossatlas._validation.binary_target`; values other than 0
    and 1 then fail the probability check). Otherwise it holds class indices: ``torch.long``
    (:func:`lossatlas._validation.index_target`). Float targets are returned unchanged.
    """
    if isinstance(target, Tensor) and isinstance(input, Tensor) and target.shape == input.shape:
        return binary_target(target, input)
    return index_target(target)


def check_softmax_inputs(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None,
    ignore_index: int | None,
) -> bool:
    """Validate logits ``(N, C, d1, ...)`` and class indices or class probabilities.

    Returns:
        ``True`` when ``target`` holds class indices, ``False`` for probabilities.
    """
    num_classes = _check_logits_shape(input)
    check_tensor("target", target)
    if num_classes < 2:
        raise ValueError(
            f"input must hold C >= 2 class logits along dim 1 for a softmax loss, got C = "
            f"{num_classes}; for a single foreground channel use the binary_ (sigmoid) form"
        )
    check_overlap_weight(weight, num_classes)
    return _check_class_target(input, target, ignore_index=ignore_index)


def check_sigmoid_inputs(
    input: Tensor, target: Tensor, *, weight: Tensor | None, include_background: bool
) -> None:
    """Validate logits ``(N, C, d1, ...)`` and a same-shape target in [0, 1]."""
    _check_logits_shape(input)
    check_floating("target", target)
    check_same_shape("input", input, "target", target)
    _check_background(input, include_background)
    check_overlap_weight(weight, input.shape[1])
    check_probabilities("target", target)


def check_probability_inputs(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None,
    ignore_index: int | None,
    include_background: bool,
) -> bool:
    """Validate probabilities ``(N, C, d1, ...)`` in [0, 1] and a target as the softmax forms'.

    ``C = 1`` is allowed (one binary channel against a mask of the input's shape); the range
    of ``input`` is a value check (:func:`lossatlas.set_value_checks`).

    Returns:
        ``True`` when ``target`` holds class indices, ``False`` for a float target.
    """
    _check_logits_shape(input, what="probabilities")
    _check_background(input, include_background)
    check_overlap_weight(weight, input.shape[1])
    check_probabilities("input", input)
    return _check_class_target(input, target, ignore_index=ignore_index)


# --------------------------------------------------------------------------- sums


def _activate(logits: Tensor, activation: str) -> Tensor:
    if activation == "identity":
        return logits
    return torch.softmax(logits, dim=1) if activation == "softmax" else torch.sigmoid(logits)


def class_one_hot(target: Tensor, num_classes: int, dtype: torch.dtype) -> Tensor:
    """Class indices ``(N, d1, ...)`` as a one-hot ``(N, C, d1, ...)`` of ``dtype``.

    A position whose index is not in ``[0, C)`` (an ``ignore_index``) is 0 for every class.
    """
    classes = torch.arange(num_classes, device=target.device)
    return (target.unsqueeze(1) == classes.view(1, -1, *([1] * (target.dim() - 1)))).to(dtype)


def index_parts(target: Tensor, ignore_index: int | None) -> tuple[Tensor, Tensor | None]:
    """Class indices safe to gather with (ignored -> 0) and the keep mask (or ``None``)."""
    if ignore_index is None:
        return target, None
    keep = target != ignore_index
    return torch.where(keep, target, torch.zeros_like(target)), keep


def _sums(probs: Tensor, target: Tensor, *, ignore_index: int | None, squared: bool) -> Sums:
    """``(I, P, G)`` of shape ``(N, C)`` from probabilities ``(N, C, S)``.

    ``target`` is class indices ``(N, S)`` (ignored positions excluded from every sum) or
    probabilities ``(N, C, S)``. Differentiable in ``probs`` (and a float ``target``).
    """
    if target.is_floating_point():
        inter = torch.einsum("ncs,ncs->nc", probs, target)
        if squared:
            pred = torch.einsum("ncs,ncs->nc", probs, probs)
            truth = torch.einsum("ncs,ncs->nc", target, target)
        else:
            pred = probs.sum(dim=-1)
            truth = target.sum(dim=-1)
        return inter, pred, truth
    safe, keep = index_parts(target, ignore_index)
    p_true = probs.gather(1, safe.unsqueeze(1)).squeeze(1)
    if keep is None:
        counts = torch.ones_like(p_true)
        pred = (probs * probs if squared else probs).sum(dim=-1)
    else:
        counts = keep.to(probs.dtype)
        p_true = p_true * counts
        pred = torch.einsum("ncs,ns->nc", probs * probs if squared else probs, counts)
    zeros = probs.new_zeros(probs.shape[:2])
    inter = zeros.scatter_add(1, safe, p_true)
    truth = zeros.scatter_add(1, safe, counts)
    return inter, pred, truth


class _FusedOverlapSums(torch.autograd.Function):
    """``(I, P, G)`` from logits; saves only the inputs, gradient in one pass."""

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        logits: Tensor,
        target: Tensor,
        activation: str,
        ignore_index: int | None,
        squared: bool,
    ) -> Sums:
        probs = _activate(logits, activation)
        sums = _sums(probs, target, ignore_index=ignore_index, squared=squared)
        ctx.save_for_backward(logits, target)
        ctx.activation = activation  # type: ignore[attr-defined]
        ctx.ignore_index = ignore_index  # type: ignore[attr-defined]
        ctx.squared = squared  # type: ignore[attr-defined]
        ctx.mark_non_differentiable(sums[2])
        return sums

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, grad_inter: Tensor, grad_pred: Tensor, _grad_truth: Tensor
    ) -> tuple[Tensor | None, None, None, None, None]:
        logits, target = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        probs = _activate(logits, ctx.activation)
        return (
            _fused_grad(
                probs,
                target,
                grad_inter,
                grad_pred,
                activation=ctx.activation,
                ignore_index=ctx.ignore_index,
                squared=ctx.squared,
            ),
            None,
            None,
            None,
            None,
        )


def _fused_grad(
    probs: Tensor,
    target: Tensor,
    grad_inter: Tensor,
    grad_pred: Tensor,
    *,
    activation: str,
    ignore_index: int | None,
    squared: bool,
) -> Tensor:
    """Gradient of the logits given the upstream gradients of ``I`` and ``P``.

    ``dL/dp = gI * g + gP * (1 or 2p)``, then torch's own softmax / sigmoid backward kernels
    (one pass each).
    """
    g_pred = grad_pred.unsqueeze(-1)
    if target.is_floating_point():
        # A product then an in-place add: twice as fast as addcmul with two broadcast operands
        grad_p = target * grad_inter.unsqueeze(-1)
        grad_p.add_(probs * (2.0 * g_pred) if squared else g_pred)
    else:  # class indices: gP everywhere plus a spike gI[n, t] at the true class t
        safe, keep = index_parts(target, ignore_index)
        grad_p = (2.0 * g_pred) * probs if squared else g_pred.expand_as(probs).clone()
        grad_p.scatter_add_(1, safe.unsqueeze(1), grad_inter.gather(1, safe).unsqueeze(1))
        if keep is not None:
            grad_p.mul_(keep.unsqueeze(1).to(grad_p.dtype))
    if activation == "sigmoid":  # written over grad_p: one input-sized buffer fewer
        return torch.ops.aten.sigmoid_backward.grad_input(grad_p, probs, grad_input=grad_p)
    return torch.ops.aten._softmax_backward_data(grad_p, probs, 1, probs.dtype)


def overlap_sums(
    input: Tensor,
    target: Tensor,
    *,
    activation: str,
    ignore_index: int | None = None,
    squared: bool = False,
    fused: bool | None = None,
) -> Sums:
    """Per-sample, per-class sums ``(I, P, G)`` of shape ``(N, C)`` for validated inputs.

    Args:
        input: Logits ``(N, C, d1, ...)`` (probabilities with ``activation="identity"``).
        target: Class indices ``(N, d1, ...)`` (not with the sigmoid) or a float tensor of the
            input's shape.
        activation: ``"softmax"`` (over dim 1), ``"sigmoid"`` or ``"identity"`` (none: the
            plain ops, which keep no tensor of their own, the fused path has nothing to
            recompute).
        ignore_index: Class-index targets equal to it are left out of every sum.
        squared: Sum ``p^2`` and ``g^2`` for ``P`` and ``G`` (V-Net).
        fused: Force the fused custom-autograd path (``True``) or the plain ops (``False``);
            ``None`` takes the fused path when :func:`lossatlas.fused_enabled` and
            :func:`lossatlas._fused.use_custom_autograd` allow it (not while
            ``torch.compile`` traces, under functorch transforms, or when the target requires a
            gradient).

    Returns:
        ``(I, P, G)`` in the compute dtype (float32 for half-precision input).
    """
    dtype = compute_dtype(input, target)
    logits = upcast(input, dtype).flatten(2)
    if target.is_floating_point():
        flat_target = upcast(target, dtype).reshape(logits.shape)
    else:
        flat_target = target.flatten(1)
    if activation == "identity":
        fused = False
    elif fused is None:
        fused = fused_enabled() and use_custom_autograd(input, target)
    # The sums are reductions that autocast would run in half precision (einsum -> bmm).
    with torch.autocast(input.device.type, enabled=False):
        if fused:
            inter, pred, truth = _FusedOverlapSums.apply(
                logits, flat_target, activation, ignore_index, squared
            )
            return inter, pred, truth
        probs = _activate(logits, activation)
        return _sums(probs, flat_target, ignore_index=ignore_index, squared=squared)


# --------------------------------------------------------------------------- scores


def finish(
    score: Callable[[Tensor, Tensor, Tensor], Tensor],
    sums: Sums,
    *,
    include_background: bool,
    batch: bool,
    weight: Tensor | None,
    reduction: str,
    process_group: ProcessGroup | None = None,
    average: Average = "macro",
) -> Tensor:
    """The per-class loss from the sums, weighted and reduced.

    Drops class 0 unless ``include_background``; sums over the batch when ``batch``; applies
    ``score`` to get the ``(N, C')`` (or ``(C',)``) loss; multiplies by ``weight``; reduces.
    ``"mean"`` divides by the number of values, or with ``weight`` by the sum of the weights
    of the values (``N * sum(weight[classes kept])``).

    With ``average="micro"`` the weighted sums of the classes kept, ``sum_c w_c I_c`` (and
    ``P``, ``G``), are scored instead: one value per sample, ``(N,)`` (``()`` with ``batch``),
    reduced without weights (kornia's weighted micro Dice).

    With ``process_group`` the batch is every rank's: with ``batch`` the ``(3, C')`` class
    sums are all-summed before the ratio (one collective; the ``(C',)`` loss is then the same
    on every rank and is reduced locally), without it the per-sample values are reduced over
    the group.
    """
    inter, pred, truth = sums
    if not include_background:
        inter, pred, truth = inter[:, 1:], pred[:, 1:], truth[:, 1:]
        weight = None if weight is None else weight[1:]
    group = active_group(process_group)
    if batch:
        totals = torch.stack([inter.sum(dim=0), pred.sum(dim=0), truth.sum(dim=0)])
        inter, pred, truth = all_sum(totals, group).unbind(0)
        group = None
    if average == "micro":
        if weight is not None:
            weight = upcast(weight, inter.dtype)
            inter, pred, truth = inter * weight, pred * weight, truth * weight
        inter, pred, truth, weight = inter.sum(-1), pred.sum(-1), truth.sum(-1), None
    loss = score(inter, pred, truth)
    if weight is None:
        return reduce_loss(loss, reduction, process_group=group)
    weight = upcast(weight, loss.dtype)
    loss = loss * weight
    rows = 1 if batch else loss.shape[0]
    return reduce_loss(loss, reduction, denominator=weight.sum() * rows, process_group=group)


def dice_score(
    *, smooth_nr: float, smooth_dr: float, jaccard: bool
) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """``1 - (2I + s_nr) / (P + G + s_dr)`` (Dice) or ``/ (2(P + G - I) + s_dr)`` (Jaccard)."""

    def score(inter: Tensor, pred: Tensor, truth: Tensor) -> Tensor:
        total = pred + truth
        denominator = 2.0 * (total - inter) if jaccard else total
        return 1.0 - (2.0 * inter + smooth_nr) / (denominator + smooth_dr)

    return score


def tversky_index(
    inter: Tensor,
    pred: Tensor,
    truth: Tensor,
    *,
    alpha: float,
    beta: float,
    smooth_nr: float,
    smooth_dr: float,
) -> Tensor:
    """``(I + s_nr) / (I + alpha FP + beta FN + s_dr)`` with ``FP = P - I``, ``FN = G - I``."""
    false_pos = pred - inter
    false_neg = truth - inter
    return (inter + smooth_nr) / (inter + alpha * false_pos + beta * false_neg + smooth_dr)


Score = Callable[[Tensor, Tensor, Tensor], Tensor]


def tversky_score(
    *, alpha: float, beta: float, smooth_nr: float, smooth_dr: float, gamma: float | None
) -> Score:
    """``1 - TI`` (:func:`tversky_index`), raised to ``gamma`` unless it is ``None`` (focal)."""

    def score(inter: Tensor, pred: Tensor, truth: Tensor) -> Tensor:
        loss = 1.0 - tversky_index(
            inter, pred, truth, alpha=alpha, beta=beta, smooth_nr=smooth_nr, smooth_dr=smooth_dr
        )
        if gamma is None:
            return loss
        # The clamp keeps pow's derivative finite where the index is exactly 1 (gamma < 1);
        # there the clamp passes a zero gradient, the correct limit of the product.
        return loss.clamp_min(torch.finfo(loss.dtype).tiny) ** gamma

    return score


def overlap_loss(
    input: Tensor,
    target: Tensor,
    *,
    activation: Activation,
    score: ScoreName,
    smooth_nr: float,
    smooth_dr: float,
    alpha: float = 0.5,
    beta: float = 0.5,
    gamma: float | None = None,
    **options: Any,
) -> Tensor:
    """One overlap loss, named by its activation and score; the options already checked.

    Each public overlap loss's body is ``return overlap_loss(activation=..., score=...,
    **locals())``: its own arguments by name, so its options are written once, in its
    signature. ``score`` with ``smooth_*`` (and ``alpha``, ``beta``, ``gamma`` for Tversky)
    makes the score of the sums; ``options`` are those of :func:`run_overlap_loss`.
    """
    if score == "tversky":
        scorer = tversky_score(
            alpha=alpha, beta=beta, smooth_nr=smooth_nr, smooth_dr=smooth_dr, gamma=gamma
        )
    else:
        scorer = dice_score(smooth_nr=smooth_nr, smooth_dr=smooth_dr, jaccard=score == "jaccard")
    return run_overlap_loss(input, target, scorer, activation=activation, **options)


def checked_target(
    input: Tensor,
    target: Tensor,
    *,
    activation: Activation,
    weight: Tensor | None,
    ignore_index: int | None,
    include_background: bool,
) -> Tensor:
    """The target as an overlap loss of ``activation`` reads it, both inputs checked.

    The target is read by :func:`overlap_target` (:func:`lossatlas._validation.binary_target`
    for the sigmoid), the inputs checked by :func:`check_softmax_inputs`,
    :func:`check_sigmoid_inputs` or :func:`check_probability_inputs`.
    """
    if activation == "sigmoid":
        target = binary_target(target, input)
        check_sigmoid_inputs(input, target, weight=weight, include_background=include_background)
    elif activation == "softmax":
        target = overlap_target(target, input)
        check_softmax_inputs(input, target, weight=weight, ignore_index=ignore_index)
    else:
        target = overlap_target(target, input)
        check_probability_inputs(
            input,
            target,
            weight=weight,
            ignore_index=ignore_index,
            include_background=include_background,
        )
    return target


def run_overlap_loss(
    input: Tensor,
    target: Tensor,
    score: Score,
    *,
    activation: Activation,
    include_background: bool,
    batch: bool,
    weight: Tensor | None,
    reduction: str,
    squared_pred: bool = False,
    ignore_index: int | None = None,
    average: Average = "macro",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    """Validate, sum (after ``activation``) and :func:`finish` an overlap loss with ``score``.

    The inputs are read and checked by :func:`checked_target`.
    """
    target = checked_target(
        input,
        target,
        activation=activation,
        weight=weight,
        ignore_index=ignore_index,
        include_background=include_background,
    )
    check_shards(process_group, "input", input, dims=(1,))
    sums = overlap_sums(
        input, target, activation=activation, ignore_index=ignore_index, squared=squared_pred
    )
    return finish(
        score,
        sums,
        include_background=include_background,
        batch=batch,
        weight=weight,
        reduction=reduction,
        process_group=process_group,
        average=average,
    )
