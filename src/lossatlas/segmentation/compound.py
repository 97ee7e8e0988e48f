"""Compound segmentation losses: Dice + cross-entropy and Dice + focal, with their parts.

The region term (Dice) rewards overlap per class whatever the class's size; the pixel term
(cross-entropy or focal) gives every pixel a well-conditioned gradient from the first step. Both
return the total, a tensor (a drop-in for MONAI's ``DiceCELoss`` / ``DiceFocalLoss``); with
``return_parts=True`` the same computation returns a :class:`lossatlas.LossParts`
``(total, parts)`` whose ``parts["dice"]`` and ``parts["ce"]`` / ``parts["focal"]`` are the
unweighted terms for logging.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from torch import Tensor

from lossatlas._module import LossModule
from lossatlas._options import Check, NonNegative, Positive, UnitInterval
from lossatlas._validation import binary_target, check_class_weight, index_target
from lossatlas.classification.cross_entropy import binary_cross_entropy_with_logits, cross_entropy
from lossatlas.classification.focal import ClassAlpha, focal_loss
from lossatlas.compose import LossParts, weighted_sum
from lossatlas.distributed import ProcessGroup
from lossatlas.segmentation._overlap import SIGMOID_OVERLAP, SOFTMAX_OVERLAP
from lossatlas.segmentation.dice import binary_dice_loss, dice_loss

__all__ = ["binary_dice_ce_loss", "dice_ce_loss", "dice_focal_loss"]


def _no_unreduced(name: str, value: Any) -> None:
    if value == "none":
        raise ValueError(
            f"{name} must be 'mean' or 'sum' for a compound loss, got 'none': the Dice term "
            "is per image and class, the pixel term per pixel; call the two losses separately "
            "for unreduced values"
        )


#: ``"mean"`` or ``"sum"``: the two terms have different unreduced shapes.
CompoundReduction = Annotated[Literal["mean", "sum"], Check(_no_unreduced, invalid=("none",))]

#: What the compound losses share beyond the overlap options: their weights, parts and
#: reductions, described once.
_COMPOUND_DOCS: dict[str, Any] = {
    "properties": {"non_negative", "zero_at_perfect"},
    "args": {
        "lambda_dice": "Weight of the Dice term, ``>= 0``.",
        "lambda_ce": "Weight of the cross-entropy term, ``>= 0``.",
        "include_background": "``False`` leaves class (channel) 0 out of the Dice term; the "
        "pixel term always keeps it.",
        "weight": "Per-class (per-channel) weights ``(C,)`` of the Dice term.",
        "ignore_index": "Class-index targets equal to it count in neither term.",
        "reduction": '``"mean"`` or ``"sum"`` for both terms, each as its own function defines '
        "it (:func:`lossatlas.dice_loss`; the pixel term's mean is over the pixels not "
        'ignored). There is no ``"none"``: the terms have different shapes.',
        "return_parts": "Return :class:`lossatlas.LossParts` instead of the total alone (the "
        "same single computation).",
    },
    "returns": "The total, a scalar tensor; with ``return_parts=True``, :class:`lossatlas."
    "LossParts` ``(total, parts)`` whose ``parts`` are the unweighted terms, scalars, named as "
    'the ``lambda_*`` options that weigh them (``"dice"`` and ``"ce"`` or ``"focal"``).',
}
_COMPOUND = SOFTMAX_OVERLAP.derive(**_COMPOUND_DOCS)
_BINARY_COMPOUND = SIGMOID_OVERLAP.derive(**_COMPOUND_DOCS)

#: The options of the Dice term, passed on by name from a compound loss's own arguments.
_DICE_OPTIONS = (
    "include_background",
    "squared_pred",
    "smooth_nr",
    "smooth_dr",
    "batch",
    "weight",
    "ignore_index",
    "reduction",
    "process_group",
)


def dice_term(
    region: Callable[..., Tensor], input: Tensor, target: Tensor, options: Mapping[str, Any]
) -> Tensor:
    """``region`` (:func:`dice_loss` or :func:`binary_dice_loss`) with the Dice options.

    ``options`` is the compound loss's ``locals()``: the Dice term's options among them are
    passed on by name, so each is written once, in the compound loss's signature.
    """
    dice_options = {name: options[name] for name in _DICE_OPTIONS if name in options}
    return region(input, target, **dice_options)


@_COMPOUND.loss(
    formula=r"\lambda_{dice} \mathcal{L}_{Dice} + \lambda_{ce} \mathcal{L}_{CE}",
    use_when="segmentation: Dice's overlap with CE's steady gradient",
    peers={"MONAI": "DiceCELoss(softmax=True): same where their options coincide"},
)
def dice_ce_loss(
    input: Tensor,
    target: Tensor,
    *,
    lambda_dice: NonNegative = 1.0,
    lambda_ce: NonNegative = 1.0,
    include_background: bool = True,
    squared_pred: bool = False,
    smooth_nr: NonNegative = 1e-5,
    smooth_dr: Positive = 1e-5,
    batch: bool = False,
    weight: Tensor | None = None,
    ignore_index: int | None = None,
    label_smoothing: UnitInterval = 0.0,
    reduction: CompoundReduction = "mean",
    process_group: ProcessGroup | None = None,
    return_parts: bool = False,
) -> Tensor | LossParts:
    r"""Weighted sum of the softmax Dice loss and cross-entropy, with both parts reported.

    ``lambda_dice * dice_loss + lambda_ce * cross_entropy`` on the same logits (MONAI's
    ``DiceCELoss(softmax=True)``, which this equals where their options coincide).
    ``include_background``, ``squared_pred``, ``smooth_*`` and ``batch`` are the Dice term's;
    ``label_smoothing`` the cross-entropy's; ``weight`` and ``ignore_index`` apply to both.

    .. math::
        \mathcal{L} = \lambda_{dice}\, \mathcal{L}_{Dice} + \lambda_{ce}\, \mathcal{L}_{CE}

    Args:
        weight: Per-class weights ``(C,)`` for both terms (cross-entropy: torch's ``weight``).
        label_smoothing: Cross-entropy label smoothing in ``[0, 1]``.

    Example:
        >>> la.dice_ce_loss(logits, target, lambda_ce=0.5)
        tensor(0.4061)
        >>> out = la.dice_ce_loss(logits, target, lambda_ce=0.5, return_parts=True)
        >>> out.total
        tensor(0.4061)
        >>> {name: round(float(v), 4) for name, v in out.parts.items()}
        {'dice': 0.247, 'ce': 0.3182}

    References:
        J. Ma et al., "Loss odyssey in medical image segmentation", Medical Image Analysis 71,
        2021, https://doi.org/10.1016/j.media.2021.102035

        F. Milletari, N. Navab, S.-A. Ahmadi, "V-Net: Fully Convolutional Neural Networks for
        Volumetric Medical Image Segmentation", 3DV 2016, https://arxiv.org/abs/1606.04797
    """
    target = index_target(target)  # a uint8 / bool mask: long for both terms
    dice = dice_term(dice_loss, input, target, locals())
    ce = cross_entropy(
        input,
        target,
        weight=weight,
        ignore_index=-100 if ignore_index is None else ignore_index,
        label_smoothing=label_smoothing,
        reduction=reduction,
        process_group=process_group,
    )
    return weighted_sum(
        {"dice": dice, "ce": ce}, {"dice": lambda_dice, "ce": lambda_ce}, return_parts=return_parts
    )


@_COMPOUND.loss(
    target_kind="class indices",
    formula=r"\lambda_{dice} \mathcal{L}_{Dice} + \lambda_{focal} \mathcal{L}_{focal}",
    use_when="segmentation with hard, rare classes (Dice + focal)",
    peers={"MONAI": "DiceFocalLoss: its focal term is a sigmoid one, here softmax"},
)
def dice_focal_loss(
    input: Tensor,
    target: Tensor,
    *,
    lambda_dice: NonNegative = 1.0,
    lambda_focal: NonNegative = 1.0,
    gamma: NonNegative = 2.0,
    alpha: ClassAlpha = None,
    include_background: bool = True,
    squared_pred: bool = False,
    smooth_nr: NonNegative = 1e-5,
    smooth_dr: Positive = 1e-5,
    batch: bool = False,
    weight: Tensor | None = None,
    ignore_index: int | None = None,
    reduction: CompoundReduction = "mean",
    process_group: ProcessGroup | None = None,
    return_parts: bool = False,
) -> Tensor | LossParts:
    r"""Weighted sum of the softmax Dice loss and the softmax focal loss, with both parts.

    ``lambda_dice * dice_loss + lambda_focal * focal_loss`` on the same logits. ``gamma`` and
    ``alpha`` are the focal term's (:func:`lossatlas.focal_loss`), ``weight`` and the other
    overlap options the Dice term's, ``ignore_index`` both. MONAI's ``DiceFocalLoss`` uses a
    sigmoid focal term even with ``softmax=True``; here both terms use the softmax, so its
    focal part equals MONAI ``FocalLoss(use_softmax=True)``.

    .. math::
        \mathcal{L} = \lambda_{dice}\, \mathcal{L}_{Dice}
            + \lambda_{focal}\, \frac{1}{|\Omega|}\sum_{s}
            -\alpha_{y_s} (1 - p_{s, y_s})^{\gamma} \log p_{s, y_s}

    Args:
        target: Class indices ``(N, d1, ...)`` in ``[0, C)`` or ``ignore_index``.
        lambda_focal: Weight of the focal term, ``>= 0``.
        gamma: Focal focusing parameter, ``>= 0``.
        alpha: Focal class weighting (see :func:`lossatlas.focal_loss`).

    Raises:
        TypeError: Non-floating input, a non-integer target.
        ValueError: As :func:`lossatlas.dice_loss` and :func:`lossatlas.focal_loss`;
            ``reduction="none"``; a negative lambda.

    Example:
        >>> out = la.dice_focal_loss(logits, target, return_parts=True)
        >>> {name: round(float(v), 4) for name, v in out.parts.items()}
        {'dice': 0.247, 'focal': 0.0961}

    References:
        W. Zhu et al., "AnatomyNet: Deep learning for fast and fully automated whole-volume
        segmentation of head and neck anatomy", Medical Physics 46(2), 2019,
        https://arxiv.org/abs/1808.05238

        F. Milletari, N. Navab, S.-A. Ahmadi, "V-Net: Fully Convolutional Neural Networks for
        Volumetric Medical Image Segmentation", 3DV 2016, https://arxiv.org/abs/1606.04797
    """
    target = index_target(target)  # a uint8 / bool mask: long for both terms
    dice = dice_term(dice_loss, input, target, locals())
    focal = focal_loss(
        input,
        target,
        alpha=alpha,
        gamma=gamma,
        ignore_index=-100 if ignore_index is None else ignore_index,
        reduction=reduction,
        process_group=process_group,
    )
    return weighted_sum(
        {"dice": dice, "focal": focal},
        {"dice": lambda_dice, "focal": lambda_focal},
        return_parts=return_parts,
    )


@_BINARY_COMPOUND.loss(
    formula=r"\lambda_{dice} \mathcal{L}_{Dice}^{\sigma} + \lambda_{ce} \mathcal{L}_{BCE}",
    use_when="binary / multi-label masks: sigmoid Dice with BCE's steady gradient",
    peers={
        "MONAI": "DiceCELoss(sigmoid=True) with C = 1 (its weight is pos_weight here); "
        "with C > 1 MONAI's CE term is a softmax cross-entropy, here BCE per channel"
    },
)
def binary_dice_ce_loss(
    input: Tensor,
    target: Tensor,
    *,
    lambda_dice: NonNegative = 1.0,
    lambda_ce: NonNegative = 1.0,
    include_background: bool = True,
    squared_pred: bool = False,
    smooth_nr: NonNegative = 1e-5,
    smooth_dr: Positive = 1e-5,
    batch: bool = False,
    weight: Tensor | None = None,
    pos_weight: Tensor | None = None,
    reduction: CompoundReduction = "mean",
    process_group: ProcessGroup | None = None,
    return_parts: bool = False,
) -> Tensor | LossParts:
    r"""Sigmoid Dice plus binary cross-entropy on logits, each channel a binary mask.

    The multi-label form of :func:`dice_ce_loss`: :func:`lossatlas.binary_dice_loss` plus
    :func:`lossatlas.binary_cross_entropy_with_logits` averaged over every element (MONAI's
    ``DiceCELoss(sigmoid=True)`` uses ``BCEWithLogitsLoss`` for one channel; for ``C > 1`` it
    falls back to a softmax cross-entropy over the channels, which treats them as exclusive:
    here every channel gets its own BCE). MONAI passes its ``weight`` to the BCE as
    ``pos_weight`` (and, for one channel, not to its Dice); here the two are separate options,
    so MONAI's one-channel ``DiceCELoss(sigmoid=True, weight=w)`` is ``pos_weight=w``.
    ``include_background=False`` leaves channel 0 out of the Dice term only (as MONAI).

    .. math::
        \mathcal{L} = \lambda_{dice}\, \mathcal{L}_{Dice}(\sigma(x), y)
            - \lambda_{ce}\, \frac{1}{|x|} \sum_i \left[p_{c_i}\, y_i \log \sigma(x_i)
            + (1 - y_i) \log (1 - \sigma(x_i)) \right]

    Args:
        pos_weight: Per-channel weights ``(C,)`` of the positives in the BCE term (torch's
            ``pos_weight``, applied along dim 1), or ``None``.

    Example:
        >>> out = la.binary_dice_ce_loss(logits, mask, return_parts=True)
        >>> {name: round(float(v), 4) for name, v in out.parts.items()}
        {'dice': 0.173, 'ce': 0.2005}

    References:
        J. Ma et al., "Loss odyssey in medical image segmentation", Medical Image Analysis 71,
        2021, https://doi.org/10.1016/j.media.2021.102035

        MONAI DiceCELoss, https://docs.monai.io/en/stable/losses.html#diceceloss
    """
    target = binary_target(target, input)  # a bool / integer mask: the logits' dtype for both
    dice = dice_term(binary_dice_loss, input, target, locals())
    if pos_weight is not None:  # one per channel, broadcast along dim 1
        check_class_weight("pos_weight", pos_weight, input.shape[1])
        pos_weight = pos_weight.reshape(-1, *([1] * (input.dim() - 2)))
    ce = binary_cross_entropy_with_logits(
        input, target, pos_weight=pos_weight, reduction=reduction, process_group=process_group
    )
    return weighted_sum(
        {"dice": dice, "ce": ce}, {"dice": lambda_dice, "ce": lambda_ce}, return_parts=return_parts
    )


# --------------------------------------------------------------------------- modules


class DiceCELoss(LossModule, functional=dice_ce_loss):
    """Module form of :func:`lossatlas.dice_ce_loss`; ``weight`` is a buffer."""


class BinaryDiceCELoss(LossModule, functional=binary_dice_ce_loss):
    """Module form of :func:`lossatlas.binary_dice_ce_loss`; ``weight``, ``pos_weight`` buffers."""


class DiceFocalLoss(LossModule, functional=dice_focal_loss):
    """Module form of :func:`lossatlas.dice_focal_loss`; tensor ``weight``/``alpha`` are buffers."""
