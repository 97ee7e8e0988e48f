"""Focal family: sigmoid and softmax focal losses, alpha-balanced BCE, and a focal wrapper.

Focal loss (Lin et al., ICCV 2017) multiplies cross-entropy by ``(1 - p_t)^gamma`` so easy,
well-classified examples stop drowning out the hard ones, and by ``alpha_t`` to balance the
classes. Every loss here takes logits, works per element (never on a batch mean), is finite for
any finite logit in every float dtype, and by default runs a fused kernel that computes the loss
and its gradient in one pass and keeps only the gradient for backward
(:mod:`lossatlas._fused`; ``LOSSATLAS_FUSED=0`` runs it op by op).
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossatlas import _examples as ex
from lossatlas._catalog import Example, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import NonNegative, UnitInterval, check_value
from lossatlas._reduction import Reduction, check_reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_broadcasts_to,
    check_class_indices,
    check_floating,
    check_in_range,
    check_index_target,
    check_probabilities,
    check_same_device,
    check_same_shape,
    describe,
)
from lossatlas.classification._fused_focal import (
    log_one_minus_pt,
    sigmoid_focal_values,
    softmax_focal_values,
)
from lossatlas.classification._shared import (
    PROCESS_GROUP,
    SIGMOID_TARGETS,
    check_batched_logits,
)
from lossatlas.distributed import ProcessGroup, check_shards

__all__ = [
    "balanced_binary_cross_entropy",
    "binary_focal_loss",
    "focal_loss",
    "focal_wrapper",
]


# --------------------------------------------------------------------------- options


#: ``None``, one number, or one weight per class.
ClassAlpha = UnitInterval | Sequence[UnitInterval] | Tensor | None


def check_class_alpha(alpha: Any) -> None:
    """A :data:`ClassAlpha`; a tensor must also be 1-D and floating with values in [0, 1]."""
    check_value("alpha", alpha, ClassAlpha)
    if isinstance(alpha, Tensor):
        check_floating("alpha", alpha)
        if alpha.dim() != 1:
            raise ValueError(
                f"alpha must be a 1-D tensor of per-class values, got {describe(alpha)}"
            )
        check_in_range("alpha", alpha, 0.0, 1.0, what="per-class weights")


def _class_alpha(alpha: Any, num_classes: int, like: Tensor) -> Tensor | None:
    """Per-class alpha ``(C,)`` in ``like``'s dtype: a float is ``[1 - alpha, alpha, ...]``."""
    if alpha is None:
        return None
    if isinstance(alpha, (int, float)):
        values = torch.full((num_classes,), float(alpha), dtype=like.dtype, device=like.device)
        values[0] = 1.0 - float(alpha)
        return values
    if not isinstance(alpha, Tensor):
        alpha = torch.tensor([float(a) for a in alpha], dtype=like.dtype)
    if alpha.shape != (num_classes,):
        raise ValueError(
            f"alpha must have one value per class, shape ({num_classes},), got {tuple(alpha.shape)}"
        )
    return upcast(alpha, like.dtype).to(like.device)


def _check_binary(input: Tensor, target: Tensor) -> None:
    check_floating("input", input)
    check_floating("target", target)
    check_same_shape("input", input, "target", target)


# --------------------------------------------------------------------------- declarations


def _torchvision_focal(
    input: Tensor,
    target: Tensor,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: str = "mean",
) -> Tensor:
    """The ``torchvision.ops.sigmoid_focal_loss`` formula in plain ops (independent reference)."""
    p = torch.sigmoid(input)
    ce = F.binary_cross_entropy_with_logits(input, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


def _balanced_bce_reference(
    input: Tensor, target: Tensor, *, alpha: float = 0.75, reduction: str = "mean"
) -> Tensor:
    """``(1 - alpha) * BCE(pos_weight=alpha / (1 - alpha))`` from torch."""
    pos_weight = torch.tensor(alpha / (1.0 - alpha), dtype=input.dtype)
    bce = F.binary_cross_entropy_with_logits(
        input, target, pos_weight=pos_weight, reduction=reduction
    )
    return (1.0 - alpha) * bce


_NUM_CLASSES = 4


def _class_logits(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    logits = ex.normal(generator, batch, _NUM_CLASSES, dtype=dtype, scale=scale)
    target = ex.class_indices(generator, batch, num_classes=_NUM_CLASSES)
    alpha = torch.tensor([0.25, 0.5, 0.75, 1.0], dtype=dtype)
    return Example((logits, target), {"alpha": alpha})


_BINARY = SIGMOID_TARGETS.derive(
    tasks=("binary", "multilabel", "imbalanced", "segmentation"),
    args={
        "reduction": '``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of'
        " elements.",
        "process_group": PROCESS_GROUP,
    },
    returns='Same shape as ``input`` for ``"none"``, else a scalar; float32 for half precision.',
)

# --------------------------------------------------------------------------- functionals


@_BINARY.loss(
    tasks=("binary", "multilabel", "detection", "imbalanced", "segmentation"),
    formula=r"-\alpha_t (1 - p_t)^{\gamma} \log p_t",
    oracle=_torchvision_focal,
    use_when="dense detection, rare positives among easy negatives",
    peers={
        "torchvision": "ops.sigmoid_focal_loss: same values; its default reduction is 'none'",
        "kornia": "binary_focal_loss_with_logits: soft targets weighted term by term",
        "MONAI": "FocalLoss(use_softmax=False): alpha=None by default, gamma=2",
    },
)
def binary_focal_loss(
    input: Tensor,
    target: Tensor,
    *,
    alpha: UnitInterval | None = 0.25,
    gamma: NonNegative = 2.0,
    pos_weight: Tensor | None = None,
    weight: Tensor | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Sigmoid focal loss on logits (Lin et al. 2017), equal to torchvision's.

    Binary cross-entropy times a modulating factor ``(1 - p_t)^gamma`` that fades out easy
    examples and ``alpha_t`` (``alpha`` on positives, ``1 - alpha`` on negatives). With
    ``gamma=0`` and ``alpha=None`` it is ``binary_cross_entropy_with_logits``. Soft targets use
    torchvision's definition ``p_t = p t + (1 - p)(1 - t)`` and ``alpha_t = alpha t +
    (1 - alpha)(1 - t)`` (kornia instead weights each term by its own ``alpha`` and focus;
    the two agree for targets in {0, 1}). ``log(1 - p_t)`` is computed in log space from
    ``logsigmoid(+-x)``, so the factor and the gradient are finite and exact for any finite
    logit in every float dtype.

    .. math::
        \ell = -\alpha_t\,(1 - p_t)^{\gamma}\left[p_w\,t \log \sigma(x)
               + (1 - t) \log(1 - \sigma(x))\right],\quad
        p_t = \sigma(x)\,t + (1 - \sigma(x))(1 - t)

    Args:
        target: Same shape, probabilities in ``[0, 1]`` (hard or soft labels).
        alpha: Weight of positives in ``[0, 1]`` (negatives get ``1 - alpha``); ``None``
            weighs both by 1.
        gamma: Focusing parameter ``>= 0``; 0 turns the modulating factor off.
        pos_weight: Weight of the positive term of the cross-entropy, broadcast along the last
            dimensions as in ``binary_cross_entropy_with_logits`` (e.g. ``(C,)`` for
            ``(N, C)``).
        weight: Element weights that broadcast to ``input`` (``(N, C)``, a class weight
            ``(C,)``, a sample weight ``(N, 1)``), multiplying each element's loss as
            mmdetection's ``weight`` and torch's BCE ``weight`` do. ``"mean"`` still divides
            by the number of (kept) elements, not by the sum of the weights (as torch and
            mmdetection without ``avg_factor``).
        ignore_index: Elements whose target equals it (e.g. ``-1`` or ``255`` in a label
            mask) contribute 0 and are not counted by ``"mean"``; their targets are not
            checked. ``None`` (default) keeps every element.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            elements (kept elements with ``ignore_index``).

    Raises:
        ValueError: Shapes that differ, ``target`` outside [0, 1] (where not ignored),
            ``gamma < 0``, ``alpha`` outside [0, 1], a ``pos_weight`` or ``weight`` that does
            not broadcast to the input.

    Example:
        >>> logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 0.0, 4.0]])
        >>> target = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
        >>> la.binary_focal_loss(logits, target, reduction="none")
        tensor([[4.5089e-04, 1.6994e-02, 1.6893e-02],
                [8.1962e-05, 4.3322e-02, 2.9062e+00]])
        >>> la.binary_focal_loss(logits, target)
        tensor(0.4973)

    References:
        T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollar, `Focal Loss for Dense Object
        Detection <https://arxiv.org/abs/1708.02002>`_, ICCV 2017.

        torchvision.ops.sigmoid_focal_loss,
        https://pytorch.org/vision/main/generated/torchvision.ops.sigmoid_focal_loss.html
    """
    _check_binary(input, target)
    check_same_device(("input", input), ("pos_weight", pos_weight), ("weight", weight))
    for name, tensor in (("pos_weight", pos_weight), ("weight", weight)):
        if tensor is not None:
            check_floating(name, tensor)
            check_broadcasts_to(name, tensor, input)
    keep = None if ignore_index is None else target != ignore_index
    if keep is not None:
        target = torch.where(keep, target, torch.zeros_like(target))
    check_probabilities("target", target)
    dtype = compute_dtype(input, target, pos_weight, weight)
    a1, a0 = (1.0, 1.0) if alpha is None else (float(alpha), 1.0 - float(alpha))
    per_element = weight is not None or keep is not None
    loss = sigmoid_focal_values(
        upcast(input, dtype),
        upcast(target, dtype),
        None if pos_weight is None else upcast(pos_weight, dtype),
        a1=a1,
        a0=a0,
        b1=1.0,
        b0=1.0,
        gamma=float(gamma),
        reduce=reduction != "none" and not per_element,
    )
    if weight is not None:
        loss = loss * upcast(weight, dtype)
    if keep is None:
        count: Tensor | int = input.numel()
    else:
        loss = torch.where(keep, loss, torch.zeros_like(loss))
        count = keep.sum()
    return reduce_loss(loss, reduction, denominator=count, process_group=process_group)


@_BINARY.loss(
    formula=r"-[\alpha\, t \log \sigma(x) + (1 - \alpha)(1 - t) \log(1 - \sigma(x))]",
    oracle=_balanced_bce_reference,
    use_when="class imbalance without focusing; alpha from class frequencies",
    peers={"torch": "F.binary_cross_entropy_with_logits(pos_weight=a/(1-a)) times (1 - a)"},
)
def balanced_binary_cross_entropy(
    input: Tensor,
    target: Tensor,
    *,
    alpha: UnitInterval = 0.75,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Alpha-balanced BCE on logits: ``alpha`` on positives, ``1 - alpha`` on negatives.

    Each term of BCE gets its own weight, so it equals ``(1 - alpha) *
    binary_cross_entropy_with_logits(pos_weight=alpha / (1 - alpha))`` and, for targets in
    {0, 1}, ``binary_focal_loss(gamma=0, alpha=alpha)``. ``alpha=0.5`` is half of BCE. The
    default ``0.75`` weighs the (usually rare) positives 3:1; it is the value Lin et al. found
    best for alpha-balanced CE without focusing (ICCV 2017, Table 1a). Set it from your class
    frequencies, e.g. the fraction of negatives.

    .. math::
        \ell = -\left[\alpha\, t \log \sigma(x) + (1 - \alpha)(1 - t) \log(1 - \sigma(x))\right]

    Args:
        target: Same shape, probabilities in ``[0, 1]``.
        alpha: Weight of the positive term in ``[0, 1]``.

    Raises:
        ValueError: Shapes that differ, ``target`` outside [0, 1], ``alpha`` outside [0, 1].

    Example:
        >>> logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 0.0, 4.0]])
        >>> target = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
        >>> la.balanced_binary_cross_entropy(logits, target)
        tensor(0.3443)

    References:
        T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollar, `Focal Loss for Dense Object
        Detection <https://arxiv.org/abs/1708.02002>`_, ICCV 2017, section 3.1.
    """
    _check_binary(input, target)
    check_probabilities("target", target)
    dtype = compute_dtype(input, target)
    loss = sigmoid_focal_values(
        upcast(input, dtype),
        upcast(target, dtype),
        None,
        a1=1.0,
        a0=1.0,
        b1=float(alpha),
        b0=1.0 - float(alpha),
        gamma=0.0,
        reduce=reduction != "none",
    )
    return reduce_loss(loss, reduction, denominator=input.numel(), process_group=process_group)


@_BINARY.loss(
    tasks=("multiclass", "detection", "imbalanced", "segmentation"),
    target_kind="class indices",
    target_type=TargetKind.CLASS_INDICES,
    formula=r"-\alpha_{y} (1 - p_{y})^{\gamma} \log p_{y},\ p = \operatorname{softmax}(x)",
    examples=_class_logits,
    same_shape=None,
    curve="class-logit",
    oracle=None,
    use_when="multi-class with hard, rare classes; dense prediction",
    peers={
        "kornia": "focal_loss: its mean also divides by C; alpha a number as here",
        "MONAI": "FocalLoss(use_softmax=True): alpha on the background class differs",
    },
)
def focal_loss(
    input: Tensor,
    target: Tensor,
    *,
    alpha: ClassAlpha = None,
    gamma: NonNegative = 2.0,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Softmax focal loss on logits over dim 1, per element, with ``ignore_index``.

    ``-alpha_y (1 - p_y)^gamma log p_y`` with ``p = softmax(input, dim=1)``, computed for each
    sample (and pixel) -- never on the batch-mean cross-entropy, as one of the seeds' snippets
    does. With ``gamma=0`` and ``alpha=None`` it is :func:`lossatlas.cross_entropy`, including
    ``ignore_index``.

    ``alpha`` is a class weight: a sequence or tensor gives one value per class; a number
    ``a`` means ``1 - a`` for class 0 (the background) and ``a`` for every other class, as in
    kornia, so with two classes this equals :func:`binary_focal_loss` of the logit difference
    with the same ``alpha``. (The seeds' snippets put ``a`` on class 0 instead.)

    .. math::
        \ell_n = -\alpha_{y_n}\,(1 - p_{n, y_n})^{\gamma} \log p_{n, y_n}

    Args:
        input: Logits ``(N, C)`` or ``(N, C, d1, ...)``.
        target: Class indices ``(N,)`` or ``(N, d1, ...)`` in ``[0, C)`` or ``ignore_index``.
        alpha: ``None``, a number in ``[0, 1]``, or ``C`` per-class values in ``[0, 1]``.
        gamma: Focusing parameter ``>= 0``.
        ignore_index: Targets equal to it contribute 0 and are not counted by ``"mean"``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. ``"mean"`` divides by the number of
            non-ignored elements -- not by ``C`` times it (kornia) and not by the sum of
            ``alpha`` (``alpha`` is a focusing weight, as in the paper, not torch's class
            weight). For torch's weighted mean use ``"sum"`` and divide by
            ``alpha[target].sum()``. Zero kept elements give 0.

    Returns:
        Shape ``(N, d1, ...)`` for ``"none"`` (0 where ignored), else a scalar.

    Raises:
        TypeError: Non-floating input, non-integer target, a bad ``alpha`` type.
        ValueError: A class index out of range, mismatched shapes, ``gamma < 0``, ``alpha``
            outside [0, 1] or of the wrong length.

    Example:
        >>> logits = torch.tensor([[1.0, 2.0], [1.0, 3.0], [1.0, 3.0]])
        >>> target = torch.tensor([0, 1, 1])
        >>> la.focal_loss(logits, target, reduction="none")
        tensor([0.7019, 0.0018, 0.0018])
        >>> la.focal_loss(logits, target, gamma=0.0)  # cross-entropy
        tensor(0.5224)

    References:
        T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollar, `Focal Loss for Dense Object
        Detection <https://arxiv.org/abs/1708.02002>`_, ICCV 2017.
    """
    check_same_device(("input", input), ("target", target), ("alpha", alpha))
    check_class_alpha(alpha)
    check_batched_logits(input)
    check_index_target(input, target)
    num_classes = input.shape[1]
    check_class_indices("target", target, num_classes, ignore_index=ignore_index)
    check_shards(process_group, "input", input, dims=(1,))
    dtype = compute_dtype(input, alpha if isinstance(alpha, Tensor) else None)
    x = upcast(input, dtype)
    loss, count = softmax_focal_values(
        x,
        target,
        _class_alpha(alpha, num_classes, x),
        gamma=float(gamma),
        ignore_index=ignore_index,
        reduce=reduction != "none",
    )
    if reduction == "mean" and count is None:
        count = (target != ignore_index).sum()
    return reduce_loss(loss, reduction, denominator=count, process_group=process_group)


# --------------------------------------------------------------------------- focal wrapper


class FocalWrapper(nn.Module):
    """The focal form of an element-wise BCE-type loss on logits (see :func:`focal_wrapper`)."""

    def __init__(
        self,
        loss_fn: nn.Module | Callable[..., Tensor],
        *,
        gamma: float = 1.5,
        alpha: float | None = 0.25,
        reduction: str | None = None,
    ) -> None:
        super().__init__()
        check_value("gamma", gamma, NonNegative)
        check_value("alpha", alpha, UnitInterval | None)
        own = getattr(loss_fn, "reduction", None) if isinstance(loss_fn, nn.Module) else None
        if reduction is None:
            reduction = own if isinstance(own, str) and own in ("mean", "sum", "none") else "mean"
        check_reduction(reduction)
        self.gamma = float(gamma)
        self.alpha = alpha
        self.reduction = reduction
        if isinstance(loss_fn, LossModule):
            if "reduction" not in loss_fn.options():
                raise TypeError(f"loss_fn {type(loss_fn).__name__} has no reduction option")
            self._mode = "lossatlas"
            self.loss_fn: nn.Module | None = loss_fn
        elif isinstance(loss_fn, nn.Module):
            if not isinstance(own, str):
                raise TypeError(
                    f"loss_fn must have a 'reduction' attribute that can be set to 'none', "
                    f"got {type(loss_fn).__name__} without one"
                )
            # A private copy with reduction='none': the caller's module is left as it was
            # (YOLO's FocalLoss sets reduction='none' on the module it is given).
            element_wise = copy.deepcopy(loss_fn)
            setattr(element_wise, "reduction", "none")  # noqa: B010 (a plain attribute)
            self._mode = "module"
            self.loss_fn = element_wise
        elif callable(loss_fn):
            params = inspect.signature(loss_fn).parameters
            takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
            if "reduction" not in params and not takes_kwargs:
                name = getattr(loss_fn, "__name__", repr(loss_fn))
                raise TypeError(
                    f"loss_fn must accept reduction='none', got {name!r} without a reduction "
                    "parameter"
                )
            self._mode = "function"
            self.loss_fn = None
            self._function = loss_fn
        else:
            raise TypeError(f"loss_fn must be an nn.Module or a function, got {describe(loss_fn)}")

    def _element_wise(self, input: Tensor, target: Tensor) -> Tensor:
        module = self.loss_fn
        if self._mode == "lossatlas":
            assert isinstance(module, LossModule)
            options = {**module.options(), "reduction": "none"}
            return type(module).functional(input, target, **options)
        if self._mode == "module":
            assert module is not None
            return module(input, target)
        return self._function(input, target, reduction="none")

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        _check_binary(input, target)
        loss = self._element_wise(input, target)
        if loss.shape != input.shape:
            raise ValueError(
                f"loss_fn must return element-wise values of the input's shape "
                f"{tuple(input.shape)} with reduction='none', got {tuple(loss.shape)}"
            )
        dtype = compute_dtype(input, target, loss)
        x, t = upcast(input, dtype), upcast(target, dtype)
        factor = torch.exp(self.gamma * log_one_minus_pt(x, t))
        if self.alpha is not None:
            factor = factor * (self.alpha * t + (1.0 - self.alpha) * (1 - t))
        return reduce_loss(upcast(loss, dtype) * factor, self.reduction)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, alpha={self.alpha}, reduction={self.reduction!r}"


def focal_wrapper(
    loss_fn: nn.Module | Callable[..., Tensor],
    *,
    gamma: NonNegative = 1.5,
    alpha: UnitInterval | None = 0.25,
    reduction: Reduction | None = None,
) -> FocalWrapper:
    r"""Turn an element-wise BCE-type loss on logits into its focal form (YOLO's ``FocalLoss``).

    The wrapped loss is evaluated with ``reduction="none"`` and multiplied by
    ``alpha_t (1 - p_t)^gamma`` with ``p_t = sigmoid(x) t + (1 - sigmoid(x))(1 - t)`` (computed
    in log space), then reduced. Wrapping BCE-with-logits gives :func:`binary_focal_loss`.
    Unlike YOLO's ``FocalLoss(nn.BCEWithLogitsLoss(), gamma=1.5)`` (``seeds/002_*``), the
    module you pass is not modified: a torch module is copied with ``reduction='none'``, a
    lossatlas module or a function is called with ``reduction="none"``.

    .. math::
        \ell = \alpha_t\,(1 - p_t)^{\gamma}\,\ell_{\text{wrapped}}(x, t)

    Args:
        loss_fn: An ``nn.Module`` with a ``reduction`` attribute, or a function taking
            ``(input, target, reduction=...)``; it must return the input's shape for
            ``reduction="none"``.
        gamma: Focusing parameter ``>= 0`` (YOLO's default 1.5).
        alpha: Weight of positives in ``[0, 1]``, ``None`` for none.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``None`` takes the wrapped module's
            own reduction (as YOLO does), or ``"mean"`` for a function.

    Returns:
        A :class:`FocalWrapper` module.

    Raises:
        TypeError: A ``loss_fn`` without a way to ask for ``reduction="none"``.
        ValueError: ``gamma < 0``, ``alpha`` outside [0, 1]; at call time, a wrapped loss that
            does not return element-wise values.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> focal = la.focal_wrapper(torch.nn.BCEWithLogitsLoss(), gamma=2.0, alpha=0.25)
        >>> logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 0.0, 4.0]])
        >>> target = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
        >>> focal(logits, target)
        tensor(0.4973)
    """
    return FocalWrapper(loss_fn, gamma=gamma, alpha=alpha, reduction=reduction)


# --------------------------------------------------------------------------- modules


class BinaryFocalLoss(LossModule, functional=binary_focal_loss):
    """Module form of :func:`lossatlas.binary_focal_loss`; ``pos_weight`` is a buffer."""


class BalancedBinaryCrossEntropyLoss(LossModule, functional=balanced_binary_cross_entropy):
    """Module form of :func:`lossatlas.balanced_binary_cross_entropy`."""


class FocalLoss(LossModule, functional=focal_loss):
    """Module form of :func:`lossatlas.focal_loss`; a per-class ``alpha`` is a buffer."""
