"""Dice and Jaccard (soft IoU) losses, softmax and sigmoid forms.

Both score the overlap of a soft prediction with the ground truth per sample and class, from
the sums of :mod:`lossatlas.segmentation._overlap`. They equal MONAI's ``DiceLoss`` with
``softmax=True`` / ``sigmoid=True`` (and ``jaccard=True``) for every option the two share; where
lossatlas differs (a weighted ``"mean"`` divides by the weights' sum, ``"none"`` has no trailing
singleton dimensions, class indices are never ``(N, 1, ...)``) the docstrings say so.

In eager mode the sums come from a fused autograd function that keeps only the logits and the
target for backward (see :func:`lossatlas.set_fused`).
"""

from __future__ import annotations

from torch import Tensor

from lossatlas._module import LossModule
from lossatlas._options import NonNegative, Positive
from lossatlas._reduction import Reduction
from lossatlas.distributed import ProcessGroup
from lossatlas.segmentation._overlap import SIGMOID_OVERLAP, SOFTMAX_OVERLAP, Average, overlap_loss

__all__ = ["binary_dice_loss", "binary_jaccard_loss", "dice_loss", "jaccard_loss"]


@SOFTMAX_OVERLAP.loss(
    formula=r"1 - \frac{2\sum_s p_{c,s} g_{c,s} + \epsilon_{nr}}"
    r"{\sum_s p_{c,s} + \sum_s g_{c,s} + \epsilon_{dr}}",
    use_when="multi-class segmentation, small or rare structures",
    peers={"MONAI": "DiceLoss(softmax=True): weighted mean over N*C', not the weights' sum"},
)
def dice_loss(
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
    r"""Soft Dice loss of softmax probabilities, per sample and class (V-Net, MONAI semantics).

    ``p = softmax(input)`` over dim 1 is compared with the one-hot target ``g`` over the
    spatial positions ``s``; each class of each sample gets its own ratio (one ratio per class
    over the whole batch with ``batch=True``). ``squared_pred=True`` sums squares in the
    denominator (V-Net). With ``batch=True``, ``smooth_nr = smooth_dr = 1`` and a sigmoid
    instead of the softmax this is the common "global" binary Dice (:func:`binary_dice_loss`).

    Empty masks: with the default ``smooth_nr = smooth_dr > 0``, a class absent from both the
    prediction and the ground truth scores ``1 - s/s = 0``; a confident prediction of a class
    absent from the ground truth scores ``1 - s/(P + s)``, close to 1.

    .. math::
        \ell_{n,c} = 1 - \frac{2 \sum_s p_{n,c,s}\, g_{n,c,s} + \epsilon_{nr}}
            {\sum_s p_{n,c,s}^{k} + \sum_s g_{n,c,s}^{k} + \epsilon_{dr}},
        \qquad k = 2 \text{ if squared\_pred else } 1

    Example:
        >>> la.dice_loss(logits, target, reduction="none")
        tensor([[0.3208, 0.1732]])
        >>> la.dice_loss(logits, target)
        tensor(0.2470)

    References:
        F. Milletari, N. Navab, S.-A. Ahmadi, "V-Net: Fully Convolutional Neural Networks for
        Volumetric Medical Image Segmentation", 3DV 2016, https://arxiv.org/abs/1606.04797

        MONAI DiceLoss, https://docs.monai.io/en/stable/losses.html#diceloss
    """
    return overlap_loss(activation="softmax", score="dice", **locals())


@SOFTMAX_OVERLAP.loss(
    formula=r"1 - \frac{2 I_c + \epsilon_{nr}}{2(P_c + G_c - I_c) + \epsilon_{dr}}",
    use_when="multi-class segmentation scored by IoU",
    peers={"MONAI": "DiceLoss(softmax=True, jaccard=True): same smoothing placement"},
)
def jaccard_loss(
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
    r"""Soft Jaccard (IoU) loss of softmax probabilities, per sample and class.

    The intersection over the union ``P + G - I`` instead of Dice's ``2I / (P + G)``; the
    smoothing enters as in MONAI's ``DiceLoss(jaccard=True)``, which this equals:
    ``(2I + s_nr) / (2 (P + G - I) + s_dr)``. Same options, shapes, empty-mask policy and
    reductions as :func:`dice_loss`.

    .. math::
        \ell_{n,c} = 1 - \frac{2 I_{n,c} + \epsilon_{nr}}
            {2 (P_{n,c} + G_{n,c} - I_{n,c}) + \epsilon_{dr}},\quad
        I = \sum_s p\, g,\; P = \sum_s p^{k},\; G = \sum_s g^{k}

    Example:
        >>> la.jaccard_loss(logits, target, reduction="none")
        tensor([[0.4857, 0.2952]])

    References:
        M. A. Rahman, Y. Wang, "Optimizing Intersection-Over-Union in Deep Neural Networks for
        Image Segmentation", ISVC 2016, https://doi.org/10.1007/978-3-319-50835-1_22

        Z. Wang, X. Ning, M. B. Blaschko, "Jaccard Metric Losses: Optimizing the Jaccard Index
        with Soft Labels", NeurIPS 2023, https://arxiv.org/abs/2302.05666

        MONAI DiceLoss, https://docs.monai.io/en/stable/losses.html#diceloss
    """
    return overlap_loss(activation="softmax", score="jaccard", **locals())


@SIGMOID_OVERLAP.loss(
    formula=r"1 - \frac{2\sum_s \sigma(x_s) y_s + \epsilon_{nr}}"
    r"{\sum_s \sigma(x_s) + \sum_s y_s + \epsilon_{dr}}",
    use_when="binary or multi-label masks with a small foreground",
    peers={"MONAI": "DiceLoss(sigmoid=True): same values; 'none' keeps singleton dims"},
)
def binary_dice_loss(
    input: Tensor,
    target: Tensor,
    *,
    include_background: bool = True,
    squared_pred: bool = False,
    smooth_nr: NonNegative = 1e-5,
    smooth_dr: Positive = 1e-5,
    batch: bool = False,
    weight: Tensor | None = None,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Soft Dice loss of sigmoid probabilities, each channel a separate binary mask.

    For binary and multi-label segmentation: ``p = sigmoid(input)`` per channel against a
    target of the same shape (masks in {0, 1}, or soft labels). The common "global" binary Dice
    (sigmoid, flatten everything, ``smooth=1``) is
    ``binary_dice_loss(x, y, batch=True, smooth_nr=1, smooth_dr=1)`` for one channel.
    Empty-mask policy as :func:`dice_loss`.

    .. math::
        \ell_{n,c} = 1 - \frac{2 \sum_s \sigma(x_{n,c,s})\, y_{n,c,s} + \epsilon_{nr}}
            {\sum_s \sigma(x_{n,c,s})^{k} + \sum_s y_{n,c,s}^{k} + \epsilon_{dr}}

    Example:
        >>> la.binary_dice_loss(logits, mask)
        tensor(0.1730)

    References:
        F. Milletari, N. Navab, S.-A. Ahmadi, "V-Net: Fully Convolutional Neural Networks for
        Volumetric Medical Image Segmentation", 3DV 2016, https://arxiv.org/abs/1606.04797

        MONAI DiceLoss, https://docs.monai.io/en/stable/losses.html#diceloss
    """
    return overlap_loss(activation="sigmoid", score="dice", **locals())


@SIGMOID_OVERLAP.loss(
    formula=r"1 - \frac{2 I_c + \epsilon_{nr}}{2(P_c + G_c - I_c) + \epsilon_{dr}}",
    use_when="binary or multi-label masks scored by IoU",
    peers={"MONAI": "DiceLoss(sigmoid=True, jaccard=True): same values"},
)
def binary_jaccard_loss(
    input: Tensor,
    target: Tensor,
    *,
    include_background: bool = True,
    squared_pred: bool = False,
    smooth_nr: NonNegative = 1e-5,
    smooth_dr: Positive = 1e-5,
    batch: bool = False,
    weight: Tensor | None = None,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Soft Jaccard (IoU) loss of sigmoid probabilities, each channel a separate binary mask.

    The sigmoid form of :func:`jaccard_loss` (= MONAI ``DiceLoss(sigmoid=True,
    jaccard=True)``); options as :func:`binary_dice_loss`.

    .. math::
        \ell_{n,c} = 1 - \frac{2 I_{n,c} + \epsilon_{nr}}
            {2 (P_{n,c} + G_{n,c} - I_{n,c}) + \epsilon_{dr}},\quad
        I = \sum_s \sigma(x)\, y,\; P = \sum_s \sigma(x)^{k},\; G = \sum_s y^{k}

    Example:
        >>> la.binary_jaccard_loss(logits, mask)
        tensor(0.2950)

    References:
        M. A. Rahman, Y. Wang, "Optimizing Intersection-Over-Union in Deep Neural Networks for
        Image Segmentation", ISVC 2016, https://doi.org/10.1007/978-3-319-50835-1_22

        Z. Wang, X. Ning, M. B. Blaschko, "Jaccard Metric Losses: Optimizing the Jaccard Index
        with Soft Labels", NeurIPS 2023, https://arxiv.org/abs/2302.05666

        MONAI DiceLoss, https://docs.monai.io/en/stable/losses.html#diceloss
    """
    return overlap_loss(activation="sigmoid", score="jaccard", **locals())


# --------------------------------------------------------------------------- modules


class DiceLoss(LossModule, functional=dice_loss):
    """Module form of :func:`lossatlas.dice_loss`; ``weight`` is a buffer."""


class JaccardLoss(LossModule, functional=jaccard_loss):
    """Module form of :func:`lossatlas.jaccard_loss`; ``weight`` is a buffer."""


class BinaryDiceLoss(LossModule, functional=binary_dice_loss):
    """Module form of :func:`lossatlas.binary_dice_loss`; ``weight`` is a buffer."""


class BinaryJaccardLoss(LossModule, functional=binary_jaccard_loss):
    """Module form of :func:`lossatlas.binary_jaccard_loss`; ``weight`` is a buffer."""
