"""Self-adjusting Dice (DSC) loss, Li et al., ACL 2020: per-instance Dice with a focal factor.

Each instance (a token, a pixel) gets its own smoothed Dice coefficient in which the predicted
probability ``p`` of the positive class is replaced by ``(1 - p)^alpha p``. The factor shrinks
the contribution of confident predictions, so easy examples stop dominating the gradient, and
the loss no longer pushes ``p`` all the way to 1 (its minimum for a positive lies below 1).
Unlike :func:`lossatlas.dice_loss` (one ratio per image and class), nothing is summed before
the ratio (a "global" variant that sums everything first is also in circulation).
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import torch
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import NonNegative, Positive
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    binary_target,
    check_floating,
    check_probabilities,
    check_same_shape,
    check_target_values,
    check_tensor,
    index_target,
)
from lossatlas.distributed import ProcessGroup, check_shards
from lossatlas.segmentation._overlap import class_one_hot, index_parts

__all__ = ["binary_dsc_loss", "dsc_loss"]

_FORMULA = (
    r"1 - \frac{2 (1 - p)^{\alpha} p\, y + \gamma}"
    r"{(1 - p)^{\alpha} p + y + \gamma}"
)

_DSC = Family(
    tasks=("binary", "segmentation", "imbalanced"),
    input_kind="logits",
    target_kind="labels in [0, 1], same shape",
    target_type=TargetKind.PROBABILITIES,
    properties={"non_negative", "bounded"},
    examples=ex.binary_mask_logits,
    same_shape=(0, 1),
    twice_differentiable=True,
    args={
        "alpha": "Focal exponent, ``>= 0``.",
        "gamma": "Smoothing, ``> 0``.",
        "process_group": "``None`` (this process only) or a ``torch.distributed`` group over "
        'which ``"mean"`` and ``"sum"`` are exact, as for :func:`lossatlas.cross_entropy` (see '
        ':mod:`lossatlas.distributed`); ``"none"`` stays per element.',
    },
)


def _dsc_term(p: Tensor, one_minus_p: Tensor, y: Tensor, *, alpha: float, gamma: float) -> Tensor:
    """``1 - (2 q y + gamma) / (q + y + gamma)`` with ``q = (1 - p)^alpha p``.

    ``1 - p`` is clamped at the smallest normal number so the power's derivative stays finite
    at ``p = 1`` (where the clamp passes a zero gradient).
    """
    q = one_minus_p.clamp_min(torch.finfo(p.dtype).tiny) ** alpha * p
    return 1.0 - (2.0 * q * y + gamma) / (q + y + gamma)


@_DSC.loss(
    formula=_FORMULA + r",\quad p = \sigma(x)",
    curve="binary-logit",
    use_when="imbalanced binary tagging; easy negatives dominate",
)
def binary_dsc_loss(
    input: Tensor,
    target: Tensor,
    *,
    alpha: NonNegative = 1.0,
    gamma: Positive = 1.0,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Self-adjusting Dice loss of sigmoid probabilities, per element (Li et al., ACL 2020).

    With ``alpha = 0`` each element's loss is the smoothed Dice loss
    ``1 - (2 p y + gamma) / (p + y + gamma)``; larger ``alpha`` down-weights confident
    predictions. ``gamma`` is the smoothing (the paper's ``\gamma``), ``> 0`` so a confident
    negative on a negative is ``0/gamma = 0``, not ``0/0``. The loss lies in ``[0, 1)``; it is
    not 0 at a perfect prediction when ``alpha > 0`` (by design: its minimum over ``p`` for a
    positive lies below 1).

    .. math::
        \ell = 1 - \frac{2 (1 - p)^{\alpha} p\, y + \gamma}{(1 - p)^{\alpha} p + y + \gamma},
        \qquad p = \sigma(x)

    Args:
        input: Logits, any shape.
        target: Same shape, labels in ``[0, 1]``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            elements.

    Returns:
        Same shape as ``input`` for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating tensors.
        ValueError: Shapes that differ, a target outside [0, 1], ``alpha < 0`` or
            ``gamma <= 0``.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> logits = torch.tensor([2.0, -1.0, 0.0, 4.0])
        >>> labels = torch.tensor([1.0, 0.0, 1.0, 0.0])
        >>> la.binary_dsc_loss(logits, labels, reduction="none")
        tensor([0.4252, 0.1643, 0.3333, 0.0174])

    References:
        X. Li, X. Sun, Y. Meng, J. Liang, F. Wu, J. Li, "Dice Loss for Data-imbalanced NLP
        Tasks", ACL 2020, https://arxiv.org/abs/1911.02855
    """
    target = binary_target(target, input)
    check_floating("input", input)
    check_floating("target", target)
    check_same_shape("input", input, "target", target)
    check_probabilities("target", target)
    dtype = compute_dtype(input, target)
    logits = upcast(input, dtype)
    loss = _dsc_term(
        torch.sigmoid(logits),
        torch.sigmoid(-logits),
        upcast(target, dtype),
        alpha=alpha,
        gamma=gamma,
    )
    return reduce_loss(loss, reduction, process_group=process_group)


@_DSC.loss(
    tasks=("multiclass", "segmentation", "imbalanced"),
    target_kind="class indices or class probabilities",
    target_type=TargetKind.CLASS_INDICES,
    formula=r"\frac{1}{C}\sum_c \left[" + _FORMULA + r"\right]_c,\quad p = "
    r"\operatorname{softmax}(x)",
    examples=ex.segmentation_logits,
    same_shape=None,
    use_when="imbalanced multi-class tagging (NER, MRC); per instance",
)
def dsc_loss(
    input: Tensor,
    target: Tensor,
    *,
    alpha: NonNegative = 1.0,
    gamma: Positive = 1.0,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Self-adjusting Dice loss of softmax probabilities, per instance, one-vs-rest over classes.

    The paper states the binary form (:func:`binary_dsc_loss`). For ``C`` classes each class
    is scored one-vs-rest with its softmax probability against the one-hot target, and an
    instance's loss is the mean of its ``C`` terms, so it stays in ``[0, 1)``.

    .. math::
        \ell_{n} = \frac{1}{C} \sum_c \left[1 - \frac{2 (1 - p_{n,c})^{\alpha} p_{n,c}\,
            y_{n,c} + \gamma}{(1 - p_{n,c})^{\alpha} p_{n,c} + y_{n,c} + \gamma}\right],
        \qquad p_n = \operatorname{softmax}(x_n)

    Args:
        input: Logits ``(N, C)`` or ``(N, C, d1, ...)``, ``C >= 2``.
        target: Class indices ``(N,)`` / ``(N, d1, ...)`` in ``[0, C)`` or ``ignore_index``,
            or class probabilities of the input's shape.
        ignore_index: Class-index targets equal to it contribute nothing (not to the mean's
            denominator either). Only for class-index targets.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            kept instances (0 when there are none).

    Returns:
        ``(N,)`` or ``(N, d1, ...)`` for ``"none"`` (0 at ignored positions), else a scalar.

    Raises:
        TypeError: Non-floating input, a float target shaped like class indices.
        ValueError: A class index out of range (value and position named), mismatched
            shapes, ``C < 2``, a bad option.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
        >>> la.dsc_loss(logits, torch.tensor([0, 1]), reduction="none")
        tensor([0.1793, 0.2073])

    References:
        X. Li, X. Sun, Y. Meng, J. Liang, F. Wu, J. Li, "Dice Loss for Data-imbalanced NLP
        Tasks", ACL 2020, https://arxiv.org/abs/1911.02855
    """
    target = index_target(target)
    is_index = _check_softmax_pair(input, target, ignore_index=ignore_index)
    check_shards(process_group, "input", input, dims=(1,))
    dtype = compute_dtype(input, target)
    probs = torch.softmax(upcast(input, dtype), dim=1)
    keep = None
    if is_index:
        target, keep = index_parts(target, ignore_index)
        y = class_one_hot(target, input.shape[1], dtype)
    else:
        y = upcast(target, dtype)
    loss = _dsc_term(probs, 1.0 - probs, y, alpha=alpha, gamma=gamma).mean(dim=1)
    if keep is None:
        return reduce_loss(loss, reduction, process_group=process_group)
    kept = keep.to(dtype)
    return reduce_loss(loss * kept, reduction, denominator=kept.sum(), process_group=process_group)


def _check_softmax_pair(input: Tensor, target: Tensor, *, ignore_index: int | None) -> bool:
    check_floating("input", input)
    check_tensor("target", target)
    if input.dim() < 2 or input.shape[1] < 2:
        raise ValueError(
            f"input must be logits of shape (N, C) or (N, C, d1, ...) with C >= 2, got shape "
            f"{tuple(input.shape)}; for one channel use binary_dsc_loss"
        )
    if target.is_floating_point():
        if ignore_index is not None:
            raise ValueError(
                f"ignore_index={ignore_index} applies to class-index targets only, got a "
                f"{target.dtype} target"
            )
        check_same_shape("input", input, "target", target)
    return check_target_values(input, target, input.shape[1], ignore_index=ignore_index)


# --------------------------------------------------------------------------- modules


class BinaryDSCLoss(LossModule, functional=binary_dsc_loss):
    """Module form of :func:`lossatlas.binary_dsc_loss`."""


class DSCLoss(LossModule, functional=dsc_loss):
    """Module form of :func:`lossatlas.dsc_loss`."""
