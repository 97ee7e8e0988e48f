"""Candidates of ``lossatlas compare``: a catalog loss and the adapter that fits it to a task.

An *adapter* (a :data:`Builder`) turns a catalog loss into ``loss_fn(output, target)`` for a
task's model output: it computes what the loss needs from the training data (``pos_weight``,
``samples_per_class``), builds the pairs of a batch (metric learning), or builds a module
with its own parameters (ArcFace). Builders are module-level functions or ``functools.partial``
of them, so a :class:`Candidate` can be pickled and shipped to a worker process; the
``loss_fn`` they return is built where the run happens.

Any other catalog loss that carries a task's catalog task can be compared too:
:func:`generic_candidate` calls it on the model's output, turned into what its declaration asks
for (:func:`output_and_target_forms`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossatlas._catalog import InputForm, LossSpec, TargetKind, input_form
from lossatlas.compose import LossParts
from lossatlas.lab.batching import PK_SAMPLES
from lossatlas.lab.data import Dataset
from lossatlas.lab.models import EMBEDDING_DIM

__all__ = [
    "Builder",
    "Candidate",
    "Kind",
    "LossFn",
    "MarginSoftmaxHead",
    "balanced_bce",
    "bce_pos_weight",
    "class_balanced",
    "class_balanced_sigmoid",
    "contrastive_all_pairs",
    "generic_candidate",
    "info_nce_pairs",
    "margin_softmax_head",
    "output_and_target_forms",
    "plain",
    "quantile_median",
    "total_loss",
    "with_options",
]

LossFn = Callable[[Tensor, Tensor], Any]
#: ``build(spec, data, device) -> loss_fn``; an ``nn.Module`` loss_fn is trained with the model.
Builder = Callable[[LossSpec, Dataset, torch.device], LossFn]
Kind = Literal["binary", "multiclass", "regression", "segmentation", "metric", "ranking"]


def total_loss(value: Any) -> Tensor:
    """The tensor to back-propagate from a loss's return value (a composite's ``total``)."""
    if isinstance(value, LossParts):
        return value.total
    if isinstance(value, tuple):
        return value[0]
    return value


def _bind(spec: LossSpec, **options: Any) -> LossFn:
    if "return_parts" in spec.options:  # composite losses: log their parts per epoch too
        options.setdefault("return_parts", True)

    def loss_fn(output: Tensor, target: Tensor) -> Any:
        return spec.function(output, target, **options)

    return loss_fn


def plain(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
    """The loss at its library defaults, on the model's output and the target."""
    return _bind(spec)


@dataclass(frozen=True)
class Candidate:
    """One loss to compare on a task.

    Attributes:
        key: Its row label in the report (unique within the task).
        loss: The catalog name it uses.
        build: The adapter, ``build(spec, data, device) -> loss_fn(output, target)``
            (default :func:`plain`: the loss at its library defaults).
        setting: What the adapter sets, for the report (``"pos_weight = #neg / #pos"``).
        why: Why it is a candidate here (for your own data: what in the data called for it).
    """

    key: str
    loss: str
    build: Builder = plain
    setting: str = "library defaults"
    why: str = ""


def _with_options(spec: LossSpec, data: Dataset, device: torch.device, **options: Any) -> LossFn:
    return _bind(spec, **options)


def with_options(**options: Any) -> Builder:
    """The loss with fixed ``options`` (``with_options(epsilon=0.1)``)."""
    return partial(_with_options, **options)


def _binary_counts(data: Dataset) -> tuple[int, int]:
    positives = int(data.train.y.sum())
    return len(data.train) - positives, positives


def bce_pos_weight(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
    """BCE with ``pos_weight = #negatives / #positives`` of the training split."""
    negatives, positives = _binary_counts(data)
    return _bind(spec, pos_weight=torch.tensor(negatives / max(positives, 1), device=device))


def balanced_bce(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
    """Alpha-balanced BCE with ``alpha`` = the negatives' share (weight of the positives)."""
    negatives, positives = _binary_counts(data)
    return _bind(spec, alpha=negatives / (negatives + positives))


def class_balanced_sigmoid(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
    """Class-balanced sigmoid loss on one logit ``z``, given as two logits ``[-z, z]``.

    With two classes, sigmoid BCE on ``[-z, z]`` against one-hot targets is twice BCE on ``z``,
    so this is the paper's sigmoid loss for a single-logit binary model.
    """
    negatives, positives = _binary_counts(data)

    def loss_fn(output: Tensor, target: Tensor) -> Any:
        logits = torch.stack([-output, output], dim=1)
        return spec.function(
            logits, target.long(), samples_per_class=[negatives, positives], loss_type="sigmoid"
        )

    return loss_fn


def _class_counts(data: Dataset) -> list[int]:
    return torch.bincount(data.train.y.flatten().long(), minlength=data.num_classes or 0).tolist()


def _class_balanced(
    spec: LossSpec, data: Dataset, device: torch.device, *, loss_type: str
) -> LossFn:
    return _bind(spec, samples_per_class=_class_counts(data), loss_type=loss_type)


def with_class_counts(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
    """The loss with ``samples_per_class`` from the training split (long-tail losses)."""
    return _bind(spec, samples_per_class=_class_counts(data))


def class_balanced(loss_type: str) -> Builder:
    """Class-balanced loss of ``loss_type`` with the training split's class counts."""
    return partial(_class_balanced, loss_type=loss_type)


def quantile_median(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
    """Pinball loss at the median (0.5), whatever the option is called."""
    for option in ("quantile", "quantiles", "tau", "q"):
        if option in spec.options:
            return _bind(spec, **{option: 0.5})
    raise TypeError(f"{spec.name} has no quantile option (options: {list(spec.options)})")


# --------------------------------------------------------------------------- metric learning


def contrastive_all_pairs(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
    """Contrastive loss over every pair ``i < j`` of the batch; ``same`` from the labels."""

    def loss_fn(embeddings: Tensor, labels: Tensor) -> Any:
        i, j = torch.triu_indices(len(labels), len(labels), offset=1, device=labels.device)
        same = (labels[i] == labels[j]).to(embeddings.dtype)
        return spec.function(embeddings[i], embeddings[j], same)

    return loss_fn


def info_nce_pairs(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
    """InfoNCE with queries and keys from the same class (samples 2g and 2g+1 of each class).

    The P classes x K samples batch gives K/2 groups of P (query, key) pairs; the other
    classes' keys are the in-batch negatives, so no negative shares the query's class.
    """

    def loss_fn(embeddings: Tensor, labels: Tensor) -> Any:
        grouped = embeddings.reshape(-1, PK_SAMPLES, embeddings.shape[1])
        losses = [
            spec.function(grouped[:, g], grouped[:, g + 1]) for g in range(0, PK_SAMPLES - 1, 2)
        ]
        return torch.stack([torch.as_tensor(v) for v in losses]).mean()

    return loss_fn


class MarginSoftmaxHead(nn.Module):
    """The class centres of a margin-softmax loss (ArcFace...), trained with the model.

    Calls ``loss(embeddings, weight, target)`` with ``weight`` a ``(num_classes, dim)``
    parameter initialised as ``nn.Linear`` initialises its weight.
    """

    def __init__(self, loss: Callable[..., Any], num_classes: int, dim: int) -> None:
        super().__init__()
        self.loss = loss
        self.weight = nn.Parameter(torch.empty(num_classes, dim))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)

    def forward(self, embeddings: Tensor, target: Tensor) -> Any:
        return self.loss(embeddings, self.weight, target)


def margin_softmax_head(spec: LossSpec, data: Dataset, device: torch.device) -> LossFn:
    """ArcFace-style loss whose class centres are a parameter trained with the model."""
    return MarginSoftmaxHead(spec.function, data.num_classes or 2, EMBEDDING_DIM).to(device)


# --------------------------------------------------------------------------- any catalog loss

TargetForm = Literal["as is", "signs", "long"]


def output_and_target_forms(spec: LossSpec) -> tuple[InputForm, TargetForm]:
    """What a loss's declaration asks its input and target to be, read from its kinds.

    Probabilities or log-probabilities instead of logits (the prose ``input_kind``, read by
    :func:`lossatlas._catalog.input_form`); targets in {-1, +1} (margin losses) or
    ``torch.long`` labels.
    """
    output: InputForm = input_form(spec.input_kind)
    target: TargetForm = "as is"
    declared = getattr(spec, "target_type", TargetKind.OTHER)
    if declared is TargetKind.SIGNS or "{-1, +1}" in spec.target_kind:
        target = "signs"
    elif declared is TargetKind.CLASS_INDICES or "torch.long" in spec.target_kind:
        target = "long"
    return output, target


def _generic(spec: LossSpec, data: Dataset, device: torch.device, *, kind: Kind) -> LossFn:
    output_form, target_form = output_and_target_forms(spec)

    def loss_fn(output: Tensor, target: Tensor) -> Any:
        if target_form == "signs":
            target = target * 2 - 1
        elif target_form == "long":
            target = target.long()
        if output_form == "log-probabilities":
            output = F.log_softmax(output, dim=1)
        elif output_form == "probabilities":
            output = torch.sigmoid(output) if kind == "binary" else F.softmax(output, dim=1)
        return spec.function(output, target)

    return loss_fn


def generic_candidate(spec: LossSpec, kind: Kind) -> Candidate:
    """A candidate for any catalog loss of the task, called on the model's output as is.

    Probability and log-probability losses get ``sigmoid``/``softmax``/``log_softmax`` of the
    model's logits first; margin losses (targets in {-1, +1}) get the {0, 1} labels as
    ``2 y - 1``; losses that want ``torch.long`` labels get them.
    """
    return Candidate(
        key=spec.name,
        loss=spec.name,
        build=partial(_generic, kind=kind),
        setting="library defaults",
        why="asked for with --losses",
    )
