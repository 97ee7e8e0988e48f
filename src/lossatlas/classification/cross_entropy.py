"""Cross-entropy family: softmax cross-entropy, NLL, label smoothing, binary cross-entropy.

These have torch parity: values equal ``torch.nn.functional`` for every option torch has. What
lossatlas adds: exact-shape and dtype validation, class indices checked with their value and
position, probability ranges checked, half-precision inputs accumulated in float32, and a
``"mean"`` over zero kept elements that is ``0`` (torch gives NaN).
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import UnitInterval
from lossatlas._reduction import Reduction, compute_dtype, kept_weight, reduce_loss, upcast
from lossatlas._validation import (
    check_broadcasts_to,
    check_floating,
    check_probabilities,
    check_same_shape,
)
from lossatlas.classification._shared import (
    LOGITS,
    PROCESS_GROUP,
    SOFT_TARGET_DOCS,
    binary_logits,
    check_class_call,
    reduce_kept,
)
from lossatlas.distributed import ProcessGroup

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "label_smoothing_cross_entropy",
    "nll_loss",
]


_NUM_CLASSES = 5


_class_logits = ex.class_logits(_NUM_CLASSES)


def _class_log_probs(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    example = _class_logits(generator, batch=batch, dtype=dtype, scale=scale)
    logits, target = example.args
    return Example((torch.log_softmax(logits.double(), dim=1).to(dtype), target))


def _binary_probs(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    probs = torch.sigmoid(ex.normal(generator, batch, 3, dtype=torch.float64, scale=scale))
    return Example((probs.to(dtype), ex.uniform(generator, batch, 3, dtype=dtype)))


def _binary_perfect(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    labels = ex.binary_labels(generator, batch, 3, dtype=dtype)
    return Example((labels.clone(), labels))


def _torch_label_smoothing(
    input: Tensor, target: Tensor, *, epsilon: float = 0.1, **options: Any
) -> Tensor:
    """Torch's built-in label smoothing (an independent implementation of the same loss)."""
    return F.cross_entropy(input, target, label_smoothing=epsilon, **options)


_CLASSES = Family(
    tasks=("multiclass",),
    input_kind="logits",
    target_kind="class indices",
    target_type=TargetKind.CLASS_INDICES,
    examples=_class_logits,
    args={
        "input": LOGITS,
        "target": "Class indices ``(N,)``, ``()`` or ``(N, d1, ...)``.",
        "weight": SOFT_TARGET_DOCS["args"]["weight"],
        "ignore_index": "Targets equal to it contribute nothing.",
        "process_group": PROCESS_GROUP,
    },
    returns='Shape ``(N, d1, ...)`` for ``"none"``, else a scalar.',
    raises={"TypeError": "Non-floating input or non-integer target."},
)
#: Cross-entropy proper: class indices or class probabilities.
_SOFT_TARGETS = _CLASSES.derive(**SOFT_TARGET_DOCS)
_BINARY = Family(
    tasks=("binary", "multilabel"),
    target_kind="probabilities in [0, 1]",
    target_type=TargetKind.PROBABILITIES,
    properties={"non_negative"},
    same_shape=(0, 1),
    args={
        "target": "Same shape, values in ``[0, 1]``.",
        "weight": "Rescaling weight broadcastable to ``input`` (torch semantics).",
        "reduction": '``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of'
        " elements.",
        "process_group": PROCESS_GROUP,
    },
    returns='Same shape as ``input`` for ``"none"``, else a scalar.',
    raises={"TypeError": "Non-floating tensors."},
)


# --------------------------------------------------------------------------- functionals


@_SOFT_TARGETS.loss(
    tasks=("multiclass", "segmentation", "language"),
    target_kind="class indices or class probabilities",
    formula=r"-w_{y} \log \operatorname{softmax}(x)_{y}",
    properties={"non_negative"},
    oracle=F.cross_entropy,
    curve="class-logit",
    twice_differentiable=True,
    use_when="the default for single-label multi-class problems",
    peers={"torch": "F.cross_entropy: same values; an all-ignored mean is NaN there, 0 here"},
)
def cross_entropy(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: UnitInterval = 0.0,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Softmax cross-entropy between logits and class indices or class probabilities.

    The negative log-likelihood of the target class under ``softmax(input)`` over dim 1. With
    ``label_smoothing=epsilon`` the target becomes ``(1 - epsilon) * onehot + epsilon / C``
    (epsilon spread over all C classes, torch's definition); with probability targets it is
    ``-sum_c y_c log p_c``.

    .. math::
        \ell_n = -w_{y_n} \log \frac{\exp x_{n, y_n}}{\sum_c \exp x_{n, c}}

    Args:
        target: Class indices (``torch.long``) of shape ``(N,)``, ``()`` or ``(N, d1, ...)``
            with values in ``[0, C)`` or ``ignore_index``; or class probabilities with the
            input's shape.
        ignore_index: Index targets equal to it contribute nothing (not to the mean's
            denominator either).
        label_smoothing: ``epsilon`` in ``[0, 1]``.

    Raises:
        ValueError: A class index out of range (value and position named), shapes that do not
            match, a bad option.

    Example:
        Three samples, two classes:

        >>> import torch
        >>> import lossatlas as la
        >>> logits = torch.tensor([[1.0, 2.0], [1.0, 3.0], [1.0, 3.0]])
        >>> target = torch.tensor([0, 1, 1])
        >>> la.cross_entropy(logits, target, reduction="none")
        tensor([1.3133, 0.1269, 0.1269])
        >>> la.cross_entropy(logits, target, weight=torch.tensor([1.0, 2.0]))
        tensor(0.3642)

    References:
        C. M. Bishop, *Pattern Recognition and Machine Learning*, Springer, 2006, section 4.3.4.

        torch.nn.functional.cross_entropy,
        https://pytorch.org/docs/stable/generated/torch.nn.functional.cross_entropy.html
    """
    is_index, dtype = check_class_call(
        input, target, weight, ignore_index, process_group, allow_probabilities=True
    )
    input = upcast(input, dtype)
    weight = None if weight is None else upcast(weight, dtype)
    if not is_index:
        target = upcast(target, dtype)
    loss = F.cross_entropy(
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        reduction="none",
    )
    if not is_index:
        return reduce_loss(loss, reduction, process_group=process_group)
    return reduce_kept(loss, reduction, target, weight, ignore_index, dtype, process_group)


@_CLASSES.loss(
    input_kind="log-probabilities",
    formula=r"-w_{y} x_{y}",
    examples=_class_log_probs,
    oracle=F.nll_loss,
    use_when="the model already outputs log-probabilities",
    peers={"torch": "F.nll_loss: same values; an all-ignored mean is NaN there, 0 here"},
)
def nll_loss(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Negative log-likelihood of class indices given log-probabilities.

    ``nll_loss(log_softmax(x), y)`` is ``cross_entropy(x, y)``. The input is taken as it is
    (torch semantics): it is not checked to be a log-probability, so raw scores give torch's
    (negative) values.

    .. math::
        \ell_n = -w_{y_n} x_{n, y_n}

    Args:
        input: Log-probabilities ``(N, C)``, ``(C,)`` or ``(N, C, d1, ...)``.
        target: Class indices ``(N,)``, ``()`` or ``(N, d1, ...)`` in ``[0, C)`` or
            ``ignore_index``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the sum of
            ``weight[target]`` over non-ignored elements (0 when there are none).

    Raises:
        ValueError: A class index out of range, mismatched shapes, a bad option.

    Example:
        Raw scores, as torch takes them:

        >>> import torch
        >>> import lossatlas as la
        >>> scores = torch.tensor([[1.0, 2.0], [1.0, 3.0], [1.0, 3.0]])
        >>> la.nll_loss(scores, torch.tensor([0, 1, 1]))
        tensor(-2.3333)

    References:
        torch.nn.functional.nll_loss,
        https://pytorch.org/docs/stable/generated/torch.nn.functional.nll_loss.html
    """
    _, dtype = check_class_call(
        input, target, weight, ignore_index, process_group, allow_probabilities=False
    )
    input = upcast(input, dtype)
    weight = None if weight is None else upcast(weight, dtype)
    loss = F.nll_loss(input, target, weight=weight, ignore_index=ignore_index, reduction="none")
    return reduce_kept(loss, reduction, target, weight, ignore_index, dtype, process_group)


@_CLASSES.loss(
    formula=r"(1-\epsilon)(-\log p_{y}) + \frac{\epsilon}{C}\sum_c (-\log p_c)",
    properties={"non_negative"},
    oracle=_torch_label_smoothing,
    curve="class-logit",
    twice_differentiable=True,
    use_when="over-confident classifiers; calibration",
    peers={"torch": "F.cross_entropy(label_smoothing=epsilon): same values"},
)
def label_smoothing_cross_entropy(
    input: Tensor,
    target: Tensor,
    *,
    epsilon: UnitInterval = 0.1,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Cross-entropy with label smoothing, written out term by term.

    The smoothed target puts ``1 - epsilon + epsilon / C`` on the true class and
    ``epsilon / C`` on every class (torch's definition, so this equals
    ``cross_entropy(..., label_smoothing=epsilon)``). ``epsilon=0`` is plain cross-entropy.

    .. math::
        \ell_n = (1 - \epsilon)\,(-w_{y_n} \log p_{n, y_n})
                 + \frac{\epsilon}{C} \sum_c (-w_c \log p_{n, c})

    Args:
        epsilon: Smoothing in ``[0, 1]``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the sum of
            ``weight[target]`` over non-ignored elements, as torch does.

    Raises:
        ValueError: ``epsilon`` outside [0, 1], a class index out of range, mismatched shapes.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> logits = torch.tensor([[1.0, 2.0], [1.0, 3.0], [1.0, 3.0]])
        >>> la.label_smoothing_cross_entropy(logits, torch.tensor([0, 1, 1]), epsilon=0.1)
        tensor(0.5724)

    References:
        C. Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
        CVPR 2016, https://arxiv.org/abs/1512.00567
    """
    _, dtype = check_class_call(
        input, target, weight, ignore_index, process_group, allow_probabilities=False
    )
    log_p = torch.log_softmax(upcast(input, dtype), dim=1 if input.dim() >= 2 else 0)
    weight = None if weight is None else upcast(weight, dtype)
    kept = target != ignore_index
    safe_target = torch.where(kept, target, torch.zeros_like(target))
    class_dim = 1 if input.dim() >= 2 else 0
    log_p_true = log_p.gather(class_dim, safe_target.unsqueeze(class_dim)).squeeze(class_dim)
    class_weight_shape = [1] * log_p.dim()
    class_weight_shape[class_dim] = -1
    weighted_log_p = log_p if weight is None else log_p * weight.view(class_weight_shape)
    w_true = kept_weight(target, weight=weight, ignore_index=ignore_index, dtype=dtype)
    nll = -log_p_true * w_true
    smooth = -weighted_log_p.mean(dim=class_dim) * kept.to(dtype)
    loss = (1.0 - epsilon) * nll + epsilon * smooth
    return reduce_loss(loss, reduction, denominator=w_true.sum(), process_group=process_group)


@_BINARY.loss(
    input_kind="probabilities",
    formula=r"-[y \log x + (1 - y) \log(1 - x)]",
    properties={"non_negative", "zero_at_perfect"},
    examples=_binary_probs,
    perfect=_binary_perfect,
    oracle=F.binary_cross_entropy,
    use_when="the model outputs probabilities (prefer the logits form)",
    peers={"torch": "F.binary_cross_entropy: same values, logs clamped at -100 too"},
)
def binary_cross_entropy(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Binary cross-entropy between probabilities and (soft) targets in [0, 1].

    Takes probabilities (torch parity); for logits use
    :func:`binary_cross_entropy_with_logits`, which is stable for any logit. Logs are clamped
    at -100, as torch does, so ``input`` of exactly 0 or 1 stays finite.

    .. math::
        \ell_n = -w_n \left[y_n \log x_n + (1 - y_n) \log(1 - x_n)\right]

    Args:
        input: Probabilities in ``[0, 1]``, any shape.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            elements (the weight is not in the denominator, as in torch).

    Raises:
        ValueError: ``input`` or ``target`` outside [0, 1], shapes that differ, a ``weight``
            that would change the shape.

    Example:
        The sigmoid of four score pairs against one-hot targets:

        >>> import torch
        >>> import lossatlas as la
        >>> scores = torch.tensor([[1.0, 2.0], [2.0, 2.0], [3.0, 4.0], [4.0, 5.0]])
        >>> target = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
        >>> la.binary_cross_entropy(torch.sigmoid(scores), target, reduction="sum")
        tensor(11.7856)

    References:
        C. M. Bishop, *Pattern Recognition and Machine Learning*, Springer, 2006, section 4.3.2.

        torch.nn.functional.binary_cross_entropy,
        https://pytorch.org/docs/stable/generated/torch.nn.functional.binary_cross_entropy.html
    """
    _check_binary_pair(input, target, weight)
    check_probabilities("input", input)
    check_probabilities("target", target)
    dtype = compute_dtype(input, target, weight)
    loss = F.binary_cross_entropy(
        upcast(input, dtype),
        upcast(target, dtype),
        weight=None if weight is None else upcast(weight, dtype),
        reduction="none",
    )
    return reduce_loss(loss, reduction, process_group=process_group)


@_BINARY.loss(
    tasks=("binary", "multilabel", "segmentation", "detection"),
    input_kind="logits",
    formula=r"-[p\,y \log \sigma(x) + (1 - y) \log(1 - \sigma(x))]",
    examples=binary_logits,
    oracle=F.binary_cross_entropy_with_logits,
    curve="binary-logit",
    twice_differentiable=True,
    use_when="the default for binary and multi-label targets",
    peers={"torch": "F.binary_cross_entropy_with_logits: same values"},
)
def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    pos_weight: Tensor | None = None,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Binary cross-entropy on logits (sigmoid inside, computed stably), soft targets allowed.

    With ``pos_weight`` ``p_c`` the positive term of class ``c`` is multiplied by ``p_c`` (more
    than 1 raises recall).

    .. math::
        \ell_n = -w_n \left[p\, y_n \log \sigma(x_n) + (1 - y_n) \log(1 - \sigma(x_n))\right]

    Args:
        input: Logits, any shape.
        pos_weight: Weight of positives, broadcastable to ``input`` along the last dimension
            (e.g. ``(C,)`` for ``(N, C)``).

    Raises:
        ValueError: ``target`` outside [0, 1], shapes that differ, weights that would change
            the shape.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> scores = torch.tensor([[1.0, 2.0], [2.0, 2.0], [3.0, 4.0], [4.0, 5.0]])
        >>> target = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
        >>> la.binary_cross_entropy_with_logits(scores, target)
        tensor(1.4732)

    References:
        C. M. Bishop, *Pattern Recognition and Machine Learning*, Springer, 2006, section 4.3.2.

        torch.nn.functional.binary_cross_entropy_with_logits, https://pytorch.org/docs/stable/
        generated/torch.nn.functional.binary_cross_entropy_with_logits.html
    """
    _check_binary_pair(input, target, weight)
    if pos_weight is not None:
        check_floating("pos_weight", pos_weight)
        check_broadcasts_to("pos_weight", pos_weight, input)
    check_probabilities("target", target)
    dtype = compute_dtype(input, target, weight, pos_weight)
    loss = F.binary_cross_entropy_with_logits(
        upcast(input, dtype),
        upcast(target, dtype),
        weight=None if weight is None else upcast(weight, dtype),
        pos_weight=None if pos_weight is None else upcast(pos_weight, dtype),
        reduction="none",
    )
    return reduce_loss(loss, reduction, process_group=process_group)


def _check_binary_pair(input: Tensor, target: Tensor, weight: Tensor | None) -> None:
    check_floating("input", input)
    check_floating("target", target)
    check_same_shape("input", input, "target", target)
    if weight is not None:
        check_floating("weight", weight)
        check_broadcasts_to("weight", weight, input)


# --------------------------------------------------------------------------- modules


class CrossEntropyLoss(LossModule, functional=cross_entropy):
    """Module form of :func:`lossatlas.cross_entropy`; ``weight`` is a buffer."""


class NLLLoss(LossModule, functional=nll_loss):
    """Module form of :func:`lossatlas.nll_loss`; ``weight`` is a buffer."""


class LabelSmoothingCrossEntropyLoss(LossModule, functional=label_smoothing_cross_entropy):
    """Module form of :func:`lossatlas.label_smoothing_cross_entropy`; ``weight`` is a buffer."""


class BCELoss(LossModule, functional=binary_cross_entropy):
    """Module form of :func:`lossatlas.binary_cross_entropy`; ``weight`` is a buffer."""


class BCEWithLogitsLoss(LossModule, functional=binary_cross_entropy_with_logits):
    """Module form of :func:`lossatlas.binary_cross_entropy_with_logits`; weights are buffers."""
