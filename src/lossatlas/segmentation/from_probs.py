"""Dice, Jaccard, Tversky and focal Tversky of probabilities, for a model with its activation.

For a model that already ends in a softmax or a sigmoid (MONAI's ``softmax=False,
sigmoid=False``, smp's ``from_logits=False``).

Why separate entries and not a flag: every catalog loss's first input has one kind, the one
its declaration states, so the generic contract, the docs pages and ``la.for_task`` know what
to feed it. A ``from_logits=False`` flag on :func:`lossatlas.dice_loss` would make its first
input logits or probabilities depending on an option. The probability forms are therefore
losses of their own, named ``<loss>_from_probs`` (the logit forms keep the short names, as
torch keeps ``binary_cross_entropy_with_logits`` beside ``binary_cross_entropy``), declared
with ``input_kind="probabilities ..."`` and so checked by the contract like any other entry.

They share every line of the computation with the logit forms: each body is the same call of
:func:`lossatlas.segmentation._overlap.overlap_loss` with ``activation="identity"`` instead
of ``"softmax"`` / ``"sigmoid"``; only the validation differs. The input must lie in [0, 1]
(a value check, switched off with :func:`lossatlas.set_value_checks` like the others); it
need not sum to 1 over the classes, so the outputs of a sigmoid (multi-label) serve as well
as those of a softmax. One entry covers both: class-index targets (``C >= 1``, the one-hot
taken implicitly) or a target of the input's shape (one-hot, soft class probabilities or one
binary mask per channel), which is what :func:`lossatlas.binary_dice_loss` computes after its
sigmoid. There is no fused path (nothing to recompute: the plain ops keep no tensor of their
own for backward).
"""

from __future__ import annotations

from torch import Tensor

from lossatlas._module import LossModule
from lossatlas._options import NonNegative, Positive
from lossatlas._reduction import Reduction
from lossatlas.distributed import ProcessGroup
from lossatlas.segmentation._overlap import PROBABILITY_OVERLAP, TVERSKY_ARGS, Average, overlap_loss

__all__ = [
    "dice_loss_from_probs",
    "focal_tversky_loss_from_probs",
    "jaccard_loss_from_probs",
    "tversky_loss_from_probs",
]


@PROBABILITY_OVERLAP.loss(
    formula=r"1 - \frac{2\sum_s p_{c,s} g_{c,s} + \epsilon_{nr}}"
    r"{\sum_s p_{c,s} + \sum_s g_{c,s} + \epsilon_{dr}}",
    use_when="Dice when the model already ends in a softmax / sigmoid",
    peers={
        "MONAI": "DiceLoss(softmax=False, sigmoid=False): same values",
        "smp": "DiceLoss(from_logits=False): batch=True, absent classes zeroed, smooth both",
    },
)
def dice_loss_from_probs(
    input: Tensor,
    target: Tensor,
    *,
    include_background: bool = True,
    squared_pred: bool = False,
    smooth_nr: NonNegative = 1e-5,
    smooth_dr: Positive = 1e-5,
    batch: bool = False,
    weight: Tensor | None = None,
    ignore_index: int | None = None,
    average: Average = "macro",
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Soft Dice loss of probabilities: :func:`lossatlas.dice_loss` without the softmax.

    ``input`` is used as the prediction ``p`` itself, e.g. the output of a softmax (over dim 1)
    or of a sigmoid per channel. Equal to MONAI ``DiceLoss(softmax=False, sigmoid=False)``
    (``to_onehot_y=True`` for class indices). smp's ``DiceLoss(mode, from_logits=False,
    smooth=s)`` is ``batch=True, smooth_nr=smooth_dr=s`` with the classes absent from the
    batch's target left at 0 in its mean (here they score ``1 - s/(P + s)``) and its
    ``eps`` clamp of the denominator (here ``smooth_dr > 0``).

    .. math::
        \ell_{n,c} = 1 - \frac{2 \sum_s p_{n,c,s}\, g_{n,c,s} + \epsilon_{nr}}
            {\sum_s p_{n,c,s}^{k} + \sum_s g_{n,c,s}^{k} + \epsilon_{dr}}

    Example:
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, 0.0]],
        ...                         [[-1.0, 2.0], [0.0, 1.5]]]])
        >>> probs = torch.softmax(logits, dim=1)
        >>> la.dice_loss_from_probs(probs, torch.tensor([[[0, 1], [1, 1]]]), reduction="none")
        tensor([[0.3208, 0.1732]])

    References:
        F. Milletari, N. Navab, S.-A. Ahmadi, "V-Net: Fully Convolutional Neural Networks for
        Volumetric Medical Image Segmentation", 3DV 2016, https://arxiv.org/abs/1606.04797

        MONAI DiceLoss, https://docs.monai.io/en/stable/losses.html#diceloss

        segmentation_models_pytorch DiceLoss,
        https://smp.readthedocs.io/en/latest/losses.html#diceloss
    """
    return overlap_loss(activation="identity", score="dice", **locals())


@PROBABILITY_OVERLAP.loss(
    formula=r"1 - \frac{2 I_c + \epsilon_{nr}}{2(P_c + G_c - I_c) + \epsilon_{dr}}",
    use_when="Jaccard / IoU when the model already ends in an activation",
    peers={"MONAI": "DiceLoss(softmax=False, sigmoid=False, jaccard=True): same values"},
)
def jaccard_loss_from_probs(
    input: Tensor,
    target: Tensor,
    *,
    include_background: bool = True,
    squared_pred: bool = False,
    smooth_nr: NonNegative = 1e-5,
    smooth_dr: Positive = 1e-5,
    batch: bool = False,
    weight: Tensor | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Soft Jaccard (IoU) loss of probabilities: :func:`lossatlas.jaccard_loss`, no softmax.

    Equal to MONAI ``DiceLoss(softmax=False, sigmoid=False, jaccard=True)``.

    .. math::
        \ell_{n,c} = 1 - \frac{2 I_{n,c} + \epsilon_{nr}}
            {2 (P_{n,c} + G_{n,c} - I_{n,c}) + \epsilon_{dr}},\quad
        I = \sum_s p\, g,\; P = \sum_s p^{k},\; G = \sum_s g^{k}

    Example:
        >>> probs = torch.tensor([[[[0.9, 0.2], [0.6, 0.3]]]])  # one channel, sigmoid outputs
        >>> mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> la.jaccard_loss_from_probs(probs, mask)  # 1 - 2 * 1.5 / (2 * (2 + 2 - 1.5))
        tensor(0.4000)

    References:
        M. A. Rahman, Y. Wang, "Optimizing Intersection-Over-Union in Deep Neural Networks for
        Image Segmentation", ISVC 2016, https://doi.org/10.1007/978-3-319-50835-1_22

        MONAI DiceLoss, https://docs.monai.io/en/stable/losses.html#diceloss
    """
    return overlap_loss(activation="identity", score="jaccard", **locals())


_TVERSKY = PROBABILITY_OVERLAP.derive(args=TVERSKY_ARGS)


@_TVERSKY.loss(
    formula=r"1 - \frac{I_c + \epsilon_{nr}}{I_c + \alpha FP_c + \beta FN_c + \epsilon_{dr}}",
    use_when="Tversky when the model already ends in an activation",
    peers={"MONAI": "TverskyLoss(softmax=False, sigmoid=False): defaults alpha=beta=0.5"},
)
def tversky_loss_from_probs(
    input: Tensor,
    target: Tensor,
    *,
    alpha: NonNegative = 0.3,
    beta: NonNegative = 0.7,
    include_background: bool = True,
    smooth_nr: NonNegative = 1e-5,
    smooth_dr: Positive = 1e-5,
    batch: bool = False,
    weight: Tensor | None = None,
    ignore_index: int | None = None,
    average: Average = "macro",
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Tversky loss of probabilities: :func:`lossatlas.tversky_loss` without the softmax.

    Equal to MONAI ``TverskyLoss(softmax=False, sigmoid=False)``.

    .. math::
        \ell_{n,c} = 1 - \frac{I_{n,c} + \epsilon_{nr}}
            {I_{n,c} + \alpha\, FP_{n,c} + \beta\, FN_{n,c} + \epsilon_{dr}},\quad
        I = \sum_s p\,g,\; FP = \sum_s p(1-g),\; FN = \sum_s (1-p) g

    Example:
        >>> probs = torch.tensor([[[[0.9, 0.2], [0.6, 0.3]]]])
        >>> mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> la.tversky_loss_from_probs(probs, mask, alpha=0.5, beta=0.5)
        tensor(0.2500)

    References:
        S. S. M. Salehi, D. Erdogmus, A. Gholipour, "Tversky loss function for image
        segmentation using 3D fully convolutional deep networks", MLMI 2017,
        https://arxiv.org/abs/1706.05721

        MONAI TverskyLoss, https://docs.monai.io/en/stable/losses.html#tverskyloss
    """
    return overlap_loss(activation="identity", score="tversky", **locals())


@_TVERSKY.loss(
    formula=r"(1 - TI_c)^{\gamma}",
    use_when="focal Tversky when the model already ends in an activation",
)
def focal_tversky_loss_from_probs(
    input: Tensor,
    target: Tensor,
    *,
    alpha: NonNegative = 0.3,
    beta: NonNegative = 0.7,
    gamma: Positive = 0.75,
    include_background: bool = True,
    smooth_nr: NonNegative = 1e-5,
    smooth_dr: Positive = 1e-5,
    batch: bool = False,
    weight: Tensor | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Focal Tversky loss of probabilities: :func:`lossatlas.focal_tversky_loss`, no softmax.

    ``gamma`` is the exponent, per sample and class before the mean.

    .. math::
        \ell_{n,c} = \left(1 - TI_{n,c}\right)^{\gamma},\quad
        TI = \frac{I + \epsilon_{nr}}{I + \alpha FP + \beta FN + \epsilon_{dr}}

    Example:
        >>> probs = torch.tensor([[[[0.9, 0.2], [0.6, 0.3]]]])
        >>> mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
        >>> la.focal_tversky_loss_from_probs(probs, mask)  # (1 - 1.5 / (1.5 + 0.15 + 0.35))^0.75
        tensor(0.3536)

    References:
        N. Abraham, N. M. Khan, "A Novel Focal Tversky Loss Function with Improved Attention
        U-Net for Lesion Segmentation", ISBI 2019, https://arxiv.org/abs/1810.07842
    """
    return overlap_loss(activation="identity", score="tversky", **locals())


# --------------------------------------------------------------------------- modules


class DiceLossFromProbs(LossModule, functional=dice_loss_from_probs):
    """Module form of :func:`lossatlas.dice_loss_from_probs`; ``weight`` is a buffer."""


class JaccardLossFromProbs(LossModule, functional=jaccard_loss_from_probs):
    """Module form of :func:`lossatlas.jaccard_loss_from_probs`; ``weight`` is a buffer."""


class TverskyLossFromProbs(LossModule, functional=tversky_loss_from_probs):
    """Module form of :func:`lossatlas.tversky_loss_from_probs`; ``weight`` is a buffer."""


class FocalTverskyLossFromProbs(LossModule, functional=focal_tversky_loss_from_probs):
    """Module form of :func:`lossatlas.focal_tversky_loss_from_probs`; ``weight`` is a buffer."""
