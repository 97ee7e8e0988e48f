"""Small builders of valid example inputs, shared by every declaration's ``examples`` function.

They take an explicit ``torch.Generator`` so every example is reproducible from a seed.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor

from lossatlas._catalog import Example, ExampleFactory, TargetKind, input_form


def normal(
    generator: torch.Generator, *shape: int, dtype: torch.dtype, scale: float = 1.0
) -> Tensor:
    """Standard normal values times ``scale``, made in float64 then cast (same draw per dtype)."""
    values = torch.randn(*shape, generator=generator, dtype=torch.float64) * scale
    return values.to(dtype)


def uniform(
    generator: torch.Generator, *shape: int, dtype: torch.dtype, low: float = 0.0, high: float = 1.0
) -> Tensor:
    """Uniform values in ``[low, high)``."""
    values = torch.rand(*shape, generator=generator, dtype=torch.float64) * (high - low) + low
    return values.to(dtype)


def class_indices(generator: torch.Generator, *shape: int, num_classes: int) -> Tensor:
    """Random class indices in ``[0, num_classes)`` as ``torch.long``."""
    return torch.randint(0, num_classes, shape, generator=generator)


def binary_labels(generator: torch.Generator, *shape: int, dtype: torch.dtype) -> Tensor:
    """Random {0, 1} labels in a floating dtype."""
    return torch.randint(0, 2, shape, generator=generator).to(dtype)


def sign_labels(generator: torch.Generator, *shape: int, dtype: torch.dtype) -> Tensor:
    """Random {-1, +1} labels in a floating dtype."""
    return (torch.randint(0, 2, shape, generator=generator) * 2 - 1).to(dtype)


def sign_scores(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    """An example of margin losses: normal scores ``(batch, 3)`` and {-1, +1} labels."""
    scores = normal(generator, batch, 3, dtype=dtype, scale=scale)
    return Example((scores, sign_labels(generator, batch, 3, dtype=dtype)))


def class_logits(num_classes: int, **options: Any) -> ExampleFactory:
    """An examples function: normal logits ``(batch, num_classes)`` and class indices.

    ``options`` are the keyword options every example passes (``samples_per_class=...``).
    """

    def example(
        generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
    ) -> Example:
        logits = normal(generator, batch, num_classes, dtype=dtype, scale=scale)
        target = class_indices(generator, batch, num_classes=num_classes)
        return Example((logits, target), dict(options))

    return example


def residual_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    """An example of regression losses: predictions ``(batch, 3)`` at ``scale``, targets at 1."""
    input = normal(generator, batch, 3, dtype=dtype, scale=scale)
    target = normal(generator, batch, 3, dtype=dtype)
    return Example((input, target))


def residual_perfect(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    """Predictions equal to their targets."""
    target = normal(generator, batch, 3, dtype=dtype, scale=scale)
    return Example((target.clone(), target))


def probability_rows(
    generator: torch.Generator, *shape: int, dtype: torch.dtype, dim: int = 1
) -> Tensor:
    """Random probability vectors (softmax of normal draws) along ``dim``."""
    return torch.softmax(normal(generator, *shape, dtype=torch.float64), dim=dim).to(dtype)


# --------------------------------------------------------------------------- segmentation

_SEG_CLASSES = 3
_SEG_SIDE = 4


def segmentation_logits(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    """Logits ``(batch, 3, 4, 4)`` and class indices ``(batch, 4, 4)``."""
    logits = normal(generator, batch, _SEG_CLASSES, _SEG_SIDE, _SEG_SIDE, dtype=dtype, scale=scale)
    target = class_indices(generator, batch, _SEG_SIDE, _SEG_SIDE, num_classes=_SEG_CLASSES)
    return Example((logits, target))


def segmentation_perfect(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    """Logits that put ``1 - 2e-26`` on the target class (softmax of a +-30 logit gap of 60)."""
    target = class_indices(generator, batch, _SEG_SIDE, _SEG_SIDE, num_classes=_SEG_CLASSES)
    onehot = torch.nn.functional.one_hot(target, _SEG_CLASSES).movedim(-1, 1)
    return Example(((onehot * 60.0 - 30.0).to(dtype), target))


def binary_mask_logits(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    """Logits ``(batch, 2, 4, 4)`` and {0, 1} masks of the same shape."""
    logits = normal(generator, batch, 2, _SEG_SIDE, _SEG_SIDE, dtype=dtype, scale=scale)
    return Example((logits, binary_labels(generator, batch, 2, _SEG_SIDE, _SEG_SIDE, dtype=dtype)))


def binary_mask_perfect(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    """Logits of +-40 on the mask (sigmoid within 5e-18 of it)."""
    mask = binary_labels(generator, batch, 2, _SEG_SIDE, _SEG_SIDE, dtype=dtype)
    return Example(((mask * 80.0 - 40.0).to(dtype), mask))


# --------------------------------------------------------------------------- from the kinds

#: Classes of the class-index examples built from a registration's kinds.
_KIND_CLASSES = 4


def _from_kinds(
    generator: torch.Generator,
    *,
    batch: int,
    dtype: torch.dtype,
    scale: float,
    form: str,
    target_type: TargetKind,
) -> Example:
    """Scores of shape ``(batch, 3)`` (``(batch, 4)`` over classes) in ``form``, and a target.

    The scores are normal draws times ``scale``; probabilities are their sigmoid (softmax over
    dim 1 against class indices), log-probabilities the log of those.
    """
    classes = target_type is TargetKind.CLASS_INDICES
    scores = normal(generator, batch, _KIND_CLASSES if classes else 3, dtype=torch.float64)
    scores = scores * scale
    if form == "probabilities":
        scores = torch.softmax(scores, dim=1) if classes else torch.sigmoid(scores)
    elif form == "log-probabilities":
        scores = (
            torch.log_softmax(scores, dim=1) if classes else torch.nn.functional.logsigmoid(scores)
        )
    target: Tensor
    if classes:
        target = class_indices(generator, batch, num_classes=_KIND_CLASSES)
    elif target_type is TargetKind.PROBABILITIES:
        target = binary_labels(generator, batch, 3, dtype=dtype)
    elif target_type is TargetKind.SIGNS:
        target = sign_labels(generator, batch, 3, dtype=dtype)
    else:
        target = normal(generator, batch, 3, dtype=dtype)
    return Example((scores.to(dtype), target))


#: The target types :func:`examples_for_kinds` can build.
BUILDABLE_TARGETS = (
    TargetKind.REAL,
    TargetKind.CLASS_INDICES,
    TargetKind.PROBABILITIES,
    TargetKind.SIGNS,
)


def examples_for_kinds(
    input_kind: str, target_type: TargetKind
) -> tuple[ExampleFactory | None, ExampleFactory | None]:
    """``(examples, perfect)`` factories for a registration that declares only its kinds.

    Inputs ``(batch, 3)`` -- logits, predictions or scores at ``scale``, or probabilities /
    log-probabilities as ``input_kind`` says -- against real values, {0, 1} labels (for a
    target of probabilities), {-1, +1} labels or class indices (with ``(batch, 4)`` inputs and
    a ``(batch,)`` target). ``perfect`` (prediction equal to the target) exists for real-valued
    targets only. ``(None, None)`` for other targets (boxes, embeddings, sequences...).

    Examples:
        >>> import torch
        >>> from lossatlas._catalog import TargetKind
        >>> examples, _ = examples_for_kinds("logits", TargetKind.CLASS_INDICES)
        >>> example = examples(torch.Generator().manual_seed(0), batch=2, dtype=torch.float32,
        ...                    scale=1.0)
        >>> [tuple(a.shape) for a in example.args], example.args[1].dtype
        ([(2, 4), (2,)], torch.int64)
    """
    if target_type not in BUILDABLE_TARGETS:
        return None, None
    examples = functools.partial(_from_kinds, form=input_form(input_kind), target_type=target_type)
    perfect = residual_perfect if target_type is TargetKind.REAL else None
    return examples, perfect
