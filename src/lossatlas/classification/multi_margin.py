"""torch's margin losses beyond the binary ones: multi-class and multi-label hinges, soft margin.

These equal ``torch.nn.functional`` where torch is finite (``soft_margin_loss``,
``multilabel_soft_margin_loss``, ``multilabel_margin_loss``, ``multi_margin_loss``); lossatlas
adds exact-shape and label checks, float32 accumulation of half-precision inputs, an empty
``"mean"`` of 0, and (for ``soft_margin_loss``) a softplus form that stays finite where torch's
``log(1 + exp(-y x))`` overflows. The binary losses of the margin ``y f`` are in
:mod:`lossatlas.classification.margin`.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import Check
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_class_indices,
    check_class_weight,
    check_floating,
    check_index_target,
    check_integer,
    check_probabilities,
    check_same_device,
    check_same_shape,
    check_shape,
    value_checks_enabled,
)
from lossatlas.classification.margin import SIGN_DOCS, logistic_loss

__all__ = [
    "multi_margin_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "soft_margin_loss",
]


# --------------------------------------------------------------------------- shared checks


def _one_or_two(name: str, value: Any) -> None:
    if value not in (1, 2):
        raise ValueError(f"{name} must be 1 or 2, got {value!r}")


#: The power of the multi-class hinge: 1 or 2 (an int, as torch requires).
MultiMarginPower = Annotated[int, Check(_one_or_two, invalid=(0, 3), description="1 or 2")]


def _check_rows(input: Tensor, target: Tensor | None = None, *, labels: bool = False) -> None:
    """Raise unless ``input`` holds floating scores ``(N, C)`` or ``(C,)``.

    A ``target``, when given, must have their shape and be floating (integer with ``labels``).
    """
    check_floating("input", input)
    if target is not None:
        (check_integer if labels else check_floating)("target", target)
    if input.dim() not in (1, 2):
        raise ValueError(f"input must have shape (N, C) or (C,), got {tuple(input.shape)}")
    if target is not None:
        check_same_shape("input", input, "target", target)


def _check_padded_labels(target: Tensor, num_classes: int) -> None:
    """Every entry must be a class index in ``[0, C)`` or the end-of-labels marker ``-1``."""
    if not value_checks_enabled() or target.numel() == 0:
        return
    bad = (target < -1) | (target >= num_classes)
    if bool(bad.any()):
        position = tuple(int(i) for i in bad.nonzero()[0])
        value = int(target[position])
        raise ValueError(
            f"target has class index {value} at position {position}; expected values in "
            f"[0, {num_classes}) or -1 (the end-of-labels marker)"
        )


# --------------------------------------------------------------------------- declarations

_NUM_CLASSES = 5


def _multilabel_logits(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    logits = ex.normal(generator, batch, _NUM_CLASSES, dtype=dtype, scale=scale)
    labels = ex.binary_labels(generator, batch, _NUM_CLASSES, dtype=dtype)
    weight = ex.uniform(generator, _NUM_CLASSES, dtype=dtype, low=0.5, high=2.0)
    return Example((logits, labels), {"weight": weight})


def _padded_labels(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    scores = ex.normal(generator, batch, _NUM_CLASSES, dtype=dtype, scale=scale)
    order = torch.rand(batch, _NUM_CLASSES, generator=generator).argsort(dim=1)
    count = torch.randint(0, _NUM_CLASSES, (batch, 1), generator=generator)
    target = torch.where(torch.arange(_NUM_CLASSES) < count, order, torch.full_like(order, -1))
    return Example((scores, target))


_class_scores = ex.class_logits(_NUM_CLASSES)


_TORCH_MARGIN = Family(
    tasks=("multilabel",),
    input_kind="scores",
    properties={"non_negative"},
    same_shape=(0, 1),
    args={"input": "Scores ``(N, C)`` or ``(C,)``.", "weight": "Per-class weights ``(C,)``."},
    returns='Shape ``(N,)`` (or ``()``) for ``"none"``, else a scalar.',
)
_TORCH_SIGNS = _TORCH_MARGIN.derive(
    tasks=("binary",),
    target_kind="labels in {-1, +1}",
    target_type=TargetKind.SIGNS,
    examples=ex.sign_scores,
    **SIGN_DOCS,
)

# --------------------------------------------------------------------------- losses


@_TORCH_SIGNS.loss(
    formula=r"\log(1 + e^{-y x})",
    oracle=F.soft_margin_loss,
    twice_differentiable=True,
    use_when="torch's SoftMarginLoss, finite for any score",
    peers={"torch": "F.soft_margin_loss: same value; overflows to inf at -y x > 88.7"},
)
def soft_margin_loss(input: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""Torch's two-class logistic loss ``log(1 + exp(-y x))`` on scores and {-1, +1} labels.

    The value of ``torch.nn.functional.soft_margin_loss`` (the same loss as
    :func:`logistic_loss`, under torch's name), computed as ``softplus(-y x)``: torch's kernel
    evaluates ``log1p(exp(-y x))`` and returns ``inf`` (and a NaN gradient) once ``-y x``
    passes about 88.7 in float32; this stays finite.

    .. math::
        \ell_n = \log\left(1 + e^{-y_n x_n}\right)

    Args:
        input: Real scores, any shape.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> la.soft_margin_loss(torch.tensor([2.0, -100.0]), torch.tensor([1.0, 1.0]),
        ...                     reduction="none")
        tensor([  0.1269, 100.0000])

    References:
        torch.nn.functional.soft_margin_loss,
        https://pytorch.org/docs/stable/generated/torch.nn.SoftMarginLoss.html
    """
    return logistic_loss(input, target, reduction=reduction)


@_TORCH_MARGIN.loss(
    input_kind="logits",
    target_kind="multi-hot labels in [0, 1]",
    target_type=TargetKind.PROBABILITIES,
    formula=r"-\frac{1}{C}\sum_c w_c [y_c \log \sigma(x_c) + (1 - y_c) \log \sigma(-x_c)]",
    examples=_multilabel_logits,
    oracle=F.multilabel_soft_margin_loss,
    twice_differentiable=True,
    use_when="multi-label tags, one sigmoid per class, mean over C",
    peers={"torch": "F.multilabel_soft_margin_loss: same values"},
)
def multilabel_soft_margin_loss(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Multi-label one-versus-all logistic loss: the per-class sigmoid BCE averaged over classes.

    Torch semantics: each sample's loss is the mean over its C classes of
    ``binary_cross_entropy_with_logits`` (times ``weight[c]``), so it equals
    ``binary_cross_entropy_with_logits(input, target, weight=weight, reduction="none")
    .mean(-1)``. Targets may be soft (in [0, 1]).

    .. math::
        \ell_n = -\frac{1}{C} \sum_c w_c \left[y_{nc} \log \sigma(x_{nc})
                 + (1 - y_{nc}) \log \sigma(-x_{nc})\right]

    Args:
        input: Logits ``(N, C)`` or ``(C,)``.
        target: Labels in [0, 1] (usually {0, 1}), same shape.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            samples ``N`` (the weights are not in the denominator, as in torch).

    Raises:
        TypeError: Non-floating tensors.
        ValueError: Shapes that differ, ``input`` not 1-D or 2-D, a ``weight`` not ``(C,)``,
            a target outside [0, 1].

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> logits = torch.tensor([[2.0, -1.0, 0.0], [0.5, 0.5, -3.0]])
        >>> labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
        >>> la.multilabel_soft_margin_loss(logits, labels, reduction="none")
        tensor([0.3778, 0.4989])

    References:
        torch.nn.functional.multilabel_soft_margin_loss,
        https://pytorch.org/docs/stable/generated/torch.nn.MultiLabelSoftMarginLoss.html
    """
    _check_rows(input, target)
    check_class_weight("weight", weight, input.shape[-1])
    check_same_device(("input", input), ("weight", weight))
    check_probabilities("target", target)
    dtype = compute_dtype(input, target, weight)
    loss = F.multilabel_soft_margin_loss(
        upcast(input, dtype),
        upcast(target, dtype),
        weight=None if weight is None else upcast(weight, dtype),
        reduction="none",
    )
    return reduce_loss(loss, reduction)


@_TORCH_MARGIN.loss(
    target_kind="class indices padded with -1",
    formula=r"\frac{1}{C}\sum_{j \in Y}\sum_{i \notin Y} \max(0, 1 - (x_j - x_i))",
    examples=_padded_labels,
    oracle=F.multilabel_margin_loss,
    use_when="multi-label ranking: true classes above all others",
    peers={"torch": "F.multilabel_margin_loss: same values and target format"},
)
def multilabel_margin_loss(
    input: Tensor, target: Tensor, *, reduction: Reduction = "mean"
) -> Tensor:
    r"""Multi-label hinge: every target class must outscore every non-target class by 1.

    Torch semantics, including its target format: ``target`` has the input's shape and lists
    each sample's target class indices first, ended by ``-1`` (entries after the first ``-1``
    are ignored, though, as torch checks, they too must be in ``[-1, C)``): ``[3, 0, -1, 1]``
    means classes {3, 0}. A sample with no target class costs 0.

    .. math::
        \ell_n = \frac{1}{C} \sum_{j \in Y_n} \sum_{i \notin Y_n}
                 \max(0,\ 1 - (x_{n, j} - x_{n, i}))

    Args:
        target: Class indices (``torch.long``), same shape, in ``[0, C)`` up to the first
            ``-1``; every entry in ``[-1, C)``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            samples.

    Raises:
        TypeError: Non-floating ``input``, a non-integer ``target``.
        ValueError: Shapes that differ, ``input`` not 1-D or 2-D, an entry outside ``[-1, C)``
            (value and position named).

    Example:
        The example of ``torch.nn.MultiLabelMarginLoss``:

        >>> import torch
        >>> import lossatlas as la
        >>> scores = torch.tensor([[0.1, 0.2, 0.4, 0.8]])
        >>> la.multilabel_margin_loss(scores, torch.tensor([[3, 0, -1, 1]]))
        tensor(0.8500)

    References:
        torch.nn.functional.multilabel_margin_loss,
        https://pytorch.org/docs/stable/generated/torch.nn.MultiLabelMarginLoss.html
    """
    _check_rows(input, target, labels=True)
    _check_padded_labels(target, input.shape[-1])
    dtype = compute_dtype(input)
    return reduce_loss(_multilabel_margin(upcast(input, dtype), target), reduction)


def _multilabel_margin(x: Tensor, target: Tensor) -> Tensor:
    """Torch's multilabel margin written with ``relu`` over all (target slot, class) pairs.

    Not ``F.multilabel_margin_loss``: its kernel skips NaN scores (``if (z > 0)``) and its
    compiled decomposition gives a wrong value (2.05 instead of 0.85 for ``[[.1, .2, .4, .8]]``
    and ``[[3, 0, -1, 1]]`` in torch 2.13). Like torch, a class listed twice counts twice.
    Memory is ``N x C x C``, as the pairs are.
    """
    squeeze = x.dim() == 1
    if squeeze:
        x, target = x.unsqueeze(0), target.unsqueeze(0)
    num_classes = x.shape[-1]
    listed = torch.cumprod((target >= 0).to(torch.int64), dim=-1) > 0  # slots before the first -1
    safe = torch.where(listed, target, 0)
    is_target = torch.zeros_like(x).scatter_add(-1, safe, listed.to(x.dtype)) > 0
    x_listed = x.gather(-1, safe)  # (N, S)
    margins = F.relu(1.0 - x_listed.unsqueeze(-1) + x.unsqueeze(-2))  # (N, S, C)
    pairs = listed.unsqueeze(-1) & ~is_target.unsqueeze(-2)
    loss = torch.where(pairs, margins, 0.0).sum(dim=(-2, -1)) / num_classes
    return loss.squeeze(0) if squeeze else loss


@_TORCH_MARGIN.loss(
    tasks=("multiclass",),
    target_kind="class indices",
    target_type=TargetKind.CLASS_INDICES,
    formula=r"\frac{1}{C}\sum_{i \ne y} \max(0, w_y (m - x_y + x_i))^p",
    examples=_class_scores,
    same_shape=None,
    oracle=F.multi_margin_loss,
    use_when="multi-class SVM (Weston-Watkins) on raw scores",
    peers={"torch": "F.multi_margin_loss: same values; mean is over N here too"},
)
def multi_margin_loss(
    input: Tensor,
    target: Tensor,
    *,
    p: MultiMarginPower = 1,
    margin: float = 1.0,
    weight: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Multi-class hinge summed over the wrong classes (Weston-Watkins), torch's semantics.

    Each wrong class ``i`` that comes within ``margin`` of the true class's score costs the
    shortfall (``p=1``) or its square (``p=2``), summed over wrong classes and divided by C.
    ``weight[y]`` multiplies the shortfall after the power, as torch's kernel does.

    .. math::
        \ell_n = \frac{1}{C} \sum_{i \ne y_n}
                 w_{y_n} \max\left(0,\ \mathrm{margin} - x_{n, y_n} + x_{n, i}\right)^p

    Args:
        target: Class indices ``(N,)`` (or ``()``) in ``[0, C)``.
        p: 1 or 2.
        margin: The required margin (any finite real; torch's default 1).
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            samples ``N`` (not by the weights' sum, as in torch).

    Raises:
        TypeError: Non-floating ``input``, a non-integer ``target``, a non-integer ``p``.
        ValueError: ``p`` not 1 or 2, a class index out of range (value and position named),
            ``input`` not 1-D or 2-D, a target of the wrong shape, a ``weight`` not ``(C,)``.

    Example:
        The example of ``torch.nn.MultiMarginLoss``:

        >>> import torch
        >>> import lossatlas as la
        >>> scores = torch.tensor([[0.1, 0.2, 0.4, 0.8]])
        >>> la.multi_margin_loss(scores, torch.tensor([3]))
        tensor(0.3250)

    References:
        J. Weston, C. Watkins, "Support Vector Machines for Multi-Class Pattern Recognition",
        ESANN 1999.

        torch.nn.functional.multi_margin_loss,
        https://pytorch.org/docs/stable/generated/torch.nn.MultiMarginLoss.html
    """
    _check_rows(input)
    if input.dim() == 1:
        check_integer("target", target)
        check_shape("target", target, (), "(one class index for a (C,) input)")
    else:
        check_index_target(input, target)
    num_classes = input.shape[-1]
    check_class_weight("weight", weight, num_classes)
    check_class_indices("target", target, num_classes)
    dtype = compute_dtype(input, weight)
    loss = _multi_margin(
        upcast(input, dtype), target, p, margin, None if weight is None else upcast(weight, dtype)
    )
    return reduce_loss(loss, reduction)


def _multi_margin(
    x: Tensor, target: Tensor, p: int, margin: float, weight: Tensor | None
) -> Tensor:
    """Torch's multi-class hinge with ``relu``: a NaN score gives NaN (torch's kernel skips it)."""
    squeeze = x.dim() == 1
    if squeeze:
        x, target = x.unsqueeze(0), target.reshape(1)
    index = target.unsqueeze(-1)
    hinge = F.relu(margin - x.gather(-1, index) + x)  # (N, C)
    if p == 2:
        hinge = hinge.square()
    if weight is not None:  # after the power, as torch's kernel applies it
        hinge = weight[target].unsqueeze(-1) * hinge
    wrong = torch.arange(x.shape[-1], device=x.device) != index
    loss = torch.where(wrong, hinge, 0.0).sum(-1) / x.shape[-1]
    return loss.squeeze(0) if squeeze else loss


# --------------------------------------------------------------------------- modules


class SoftMarginLoss(LossModule, functional=soft_margin_loss):
    """Module form of :func:`lossatlas.soft_margin_loss`."""


class MultiLabelSoftMarginLoss(LossModule, functional=multilabel_soft_margin_loss):
    """Module form of :func:`lossatlas.multilabel_soft_margin_loss`; ``weight`` is a buffer."""


class MultiLabelMarginLoss(LossModule, functional=multilabel_margin_loss):
    """Module form of :func:`lossatlas.multilabel_margin_loss`."""


class MultiMarginLoss(LossModule, functional=multi_margin_loss):
    """Module form of :func:`lossatlas.multi_margin_loss`; ``weight`` is a buffer."""
