"""Docstring text, input checks and example inputs the classification families share.

A family passes the texts to :class:`lossatlas._catalog.Family` (``args=``, ``returns=``,
``raises=``); each loss's ``__doc__`` gets the text where its docstring leaves it out, so
``help()`` shows the whole description (:mod:`lossatlas._docs`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._reduction import compute_dtype, kept_weight, reduce_loss
from lossatlas._validation import check_class_target, check_floating
from lossatlas.distributed import ProcessGroup, check_shards

#: ``process_group`` of a loss whose ``"mean"`` and ``"sum"`` are exact over a group.
PROCESS_GROUP = (
    '``None`` (this process only) or a ``torch.distributed`` group over which ``"mean"`` and'
    ' ``"sum"`` are exact: the value on every rank and, after DDP\'s gradient averaging, the'
    " gradients equal one process on the concatenated batch (see :mod:`lossatlas.distributed`)."
    ' ``"none"`` stays per element.'
)

#: ``input`` of a softmax loss over dim 1 that also takes an unbatched ``(C,)`` input.
LOGITS = "Logits ``(N, C)``, ``(C,)`` or ``(N, C, d1, ...)``."

#: ``input`` of a softmax loss over dim 1 that needs a batch dimension.
BATCHED_LOGITS = "Logits ``(N, C)`` or ``(N, C, d1, ...)``."

#: ``target`` of a batched class-index loss with ``ignore_index``.
INDEX_TARGET = "Class indices ``(N,)`` or ``(N, d1, ...)`` in ``[0, C)`` or ``ignore_index``."

#: ``TypeError`` of a loss on logits and class indices.
INDEX_TYPE_ERROR = "Non-floating input, non-integer target."

#: ``ignore_index`` of a loss whose ``"mean"`` counts the kept targets.
IGNORE_INDEX = 'Targets equal to it contribute 0 and are not counted by ``"mean"``.'

#: The docstring text of a loss on ``(N, C)`` logits and ``(N,)`` class indices
#: (``Family(**ROW_DOCS)``): the noisy-label losses.
ROW_DOCS: dict[str, Any] = {
    "args": {"input": "Logits ``(N, C)``.", "target": "Class indices ``(N,)`` in ``[0, C)``."},
    "returns": '``(N,)`` for ``"none"``, else a scalar.',
    "raises": {"TypeError": INDEX_TYPE_ERROR},
}

#: The docstring text of a softmax cross-entropy that takes class indices or class
#: probabilities (``Family(**SOFT_TARGET_DOCS)``): cross-entropy and Poly-1.
SOFT_TARGET_DOCS: dict[str, Any] = {
    "args": {
        "input": LOGITS,
        "weight": "Per-class weights ``(C,)``.",
        "reduction": '``"none"`` | ``"mean"`` | ``"sum"``. With index targets, ``"mean"`` divides'
        " by the sum of ``weight[target]`` over non-ignored elements (the count when no weight);"
        " with probability targets by the number of elements ``N * d1 * ...``. Zero kept"
        " elements give 0.",
        "process_group": PROCESS_GROUP,
    },
    "returns": 'Shape ``(N, d1, ...)`` for ``"none"``, else a scalar; float32 for half precision.',
    "raises": {"TypeError": "Non-floating input, a float target shaped like class indices."},
}


def check_batched_logits(input: Tensor) -> None:
    """``input`` is floating, ``(N, C)`` or ``(N, C, d1, ...)`` (classes along dim 1)."""
    check_floating("input", input)
    if input.dim() < 2:
        raise ValueError(
            f"input must have shape (N, C) or (N, C, d1, ...), got {tuple(input.shape)}"
        )


#: What the softmax losses on logits and class indices declare alike: the families of the
#: long-tailed, noisy-label and Poly-1 losses derive from it.
SOFTMAX_CLASSES = Family(
    tasks=("multiclass",),
    input_kind="logits",
    target_kind="class indices",
    target_type=TargetKind.CLASS_INDICES,
    properties={"non_negative"},
    curve="class-logit",
)


def binary_logits(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    """The examples of a binary loss on logits: normal logits ``(batch, 3)``, soft targets."""
    logits = ex.normal(generator, batch, 3, dtype=dtype, scale=scale)
    return Example((logits, ex.uniform(generator, batch, 3, dtype=dtype)))


def check_class_call(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None,
    ignore_index: int,
    process_group: ProcessGroup | None,
    *,
    allow_probabilities: bool,
) -> tuple[bool, torch.dtype]:
    """The checks of a softmax loss with torch's class options; (index target?, compute dtype).

    The target against the input (:func:`lossatlas._validation.check_class_target`), the
    input's shards over ``process_group`` (classes along dim 1), then the dtype of the input
    and ``weight``.
    """
    is_index = check_class_target(
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        allow_probabilities=allow_probabilities,
    )
    check_shards(process_group, "input", input, dims=(1,))
    return is_index, compute_dtype(input, weight)


def reduce_kept(
    loss: Tensor,
    reduction: str,
    target: Tensor,
    weight: Tensor | None,
    ignore_index: int,
    dtype: torch.dtype,
    process_group: ProcessGroup | None,
) -> Tensor:
    """``loss`` reduced as torch's cross-entropy: ``"mean"`` by the kept targets' class weight."""
    denominator = kept_weight(target, weight=weight, ignore_index=ignore_index, dtype=dtype).sum()
    return reduce_loss(loss, reduction, denominator=denominator, process_group=process_group)


#: What the losses on logits with a target in [0, 1] per element declare alike: the binary focal,
#: asymmetric and binary bi-tempered families derive from it.
SIGMOID_TARGETS = Family(
    tasks=("binary", "multilabel"),
    input_kind="logits",
    target_kind="probabilities in [0, 1]",
    target_type=TargetKind.PROBABILITIES,
    properties={"non_negative"},
    examples=binary_logits,
    same_shape=(0, 1),
    curve="binary-logit",
    args={"input": "Logits, any shape."},
    raises={"TypeError": "Non-floating tensors."},
)
