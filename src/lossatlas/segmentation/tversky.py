"""Tversky and focal Tversky losses, softmax and sigmoid forms.

The Tversky index weighs false positives by ``alpha`` and false negatives by ``beta``; with
``alpha = beta = 0.5`` it is the Dice coefficient (with the smoothing halved). The sums come
from :mod:`lossatlas.segmentation._overlap`, so the options, shapes, empty-mask policy and the
fused gradient path are those of :func:`lossatlas.dice_loss`.
"""

from __future__ import annotations

from torch import Tensor

from lossatlas._module import LossModule
from lossatlas._options import NonNegative, Positive
from lossatlas._reduction import Reduction
from lossatlas.distributed import ProcessGroup
from lossatlas.segmentation._overlap import (
    SIGMOID_OVERLAP,
    SOFTMAX_OVERLAP,
    TVERSKY_ARGS,
    Average,
    overlap_loss,
)

__all__ = [
    "binary_focal_tversky_loss",
    "binary_tversky_loss",
    "focal_tversky_loss",
    "tversky_loss",
]

_SOFTMAX_TVERSKY = SOFTMAX_OVERLAP.derive(args=TVERSKY_ARGS)
_SIGMOID_TVERSKY = SIGMOID_OVERLAP.derive(args=TVERSKY_ARGS)

_TI = r"TI_c = \frac{I_c + \epsilon_{nr}}{I_c + \alpha FP_c + \beta FN_c + \epsilon_{dr}}"


@_SOFTMAX_TVERSKY.loss(
    formula=r"1 - TI_c,\quad " + _TI,
    use_when="segmentation trading false positives against misses",
    peers={"MONAI": "TverskyLoss(softmax=True): defaults alpha=beta=0.5, no class weight"},
)
def tversky_loss(
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
    r"""Tversky loss of softmax probabilities, per sample and class (= MONAI ``TverskyLoss``).

    ``alpha`` weighs the false positives ``FP = sum p (1 - g)`` and ``beta`` the false
    negatives ``FN = sum (1 - p) g``; ``beta > alpha`` favours recall (the paper's
    ``alpha = 0.3, beta = 0.7`` are the defaults; MONAI's are 0.5, 0.5). With
    ``alpha = beta = 0.5`` the index is ``(I + s) / ((P + G)/2 + s)``, i.e. this equals
    :func:`dice_loss` with doubled smoothing; ``alpha = beta = 1`` gives the Jaccard index.
    Empty masks as in :func:`dice_loss`: an empty class predicted empty scores 0.

    .. math::
        \ell_{n,c} = 1 - \frac{I_{n,c} + \epsilon_{nr}}
            {I_{n,c} + \alpha\, FP_{n,c} + \beta\, FN_{n,c} + \epsilon_{dr}},\quad
        I = \sum_s p\,g,\; FP = \sum_s p(1-g),\; FN = \sum_s (1-p) g

    Example:
        >>> la.tversky_loss(logits, target, reduction="none")
        tensor([[0.2327, 0.2214]])

    References:
        S. S. M. Salehi, D. Erdogmus, A. Gholipour, "Tversky loss function for image
        segmentation using 3D fully convolutional deep networks", MLMI 2017,
        https://arxiv.org/abs/1706.05721

        MONAI TverskyLoss, https://docs.monai.io/en/stable/losses.html#tverskyloss
    """
    return overlap_loss(activation="softmax", score="tversky", **locals())


@_SIGMOID_TVERSKY.loss(
    formula=r"1 - TI_c,\quad " + _TI,
    use_when="binary masks where misses cost more than false alarms",
    peers={"MONAI": "TverskyLoss(sigmoid=True): defaults alpha=beta=0.5"},
)
def binary_tversky_loss(
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
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Tversky loss of sigmoid probabilities, each channel a binary mask.

    The sigmoid form of :func:`tversky_loss` (= MONAI ``TverskyLoss(sigmoid=True)``).

    .. math::
        \ell_{n,c} = 1 - \frac{I + \epsilon_{nr}}{I + \alpha FP + \beta FN + \epsilon_{dr}},
        \quad p = \sigma(x)

    Example:
        >>> la.binary_tversky_loss(logits, mask)
        tensor(0.1671)

    References:
        S. S. M. Salehi, D. Erdogmus, A. Gholipour, "Tversky loss function for image
        segmentation using 3D fully convolutional deep networks", MLMI 2017,
        https://arxiv.org/abs/1706.05721

        MONAI TverskyLoss, https://docs.monai.io/en/stable/losses.html#tverskyloss
    """
    return overlap_loss(activation="sigmoid", score="tversky", **locals())


@_SOFTMAX_TVERSKY.loss(
    formula=r"(1 - TI_c)^{\gamma},\quad " + _TI,
    use_when="small lesions that Tversky alone under-segments",
)
def focal_tversky_loss(
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
    r"""Focal Tversky loss: each class's Tversky loss raised to ``gamma``, then averaged.

    The exponent is applied per sample and class, before the mean (never to the mean).
    ``gamma`` here **is the exponent**: ``(1 - TI)^gamma``. The paper writes
    ``(1 - TI)^{1/\gamma}`` with its ``\gamma`` in [1, 3]; its best value ``\gamma = 4/3`` is
    ``gamma = 0.75`` here, the default (and the value in the authors' code). With
    ``gamma < 1`` the gradient ``gamma l^{gamma - 1}`` grows as a class's loss ``l`` shrinks,
    so training keeps pushing on classes that are nearly right (the small lesions of the
    paper); ``gamma = 1`` is :func:`tversky_loss`.
    The paper's ``alpha = 0.7`` on false negatives is ``beta = 0.7`` here (``alpha`` weighs
    false positives, as in :func:`tversky_loss`).

    .. math::
        \ell_{n,c} = \left(1 - TI_{n,c}\right)^{\gamma},\quad
        TI = \frac{I + \epsilon_{nr}}{I + \alpha FP + \beta FN + \epsilon_{dr}}

    Example:
        >>> la.focal_tversky_loss(logits, target, reduction="none")
        tensor([[0.3350, 0.3228]])

    References:
        N. Abraham, N. M. Khan, "A Novel Focal Tversky Loss Function with Improved Attention
        U-Net for Lesion Segmentation", ISBI 2019, https://arxiv.org/abs/1810.07842

        S. S. M. Salehi, D. Erdogmus, A. Gholipour, "Tversky loss function for image
        segmentation using 3D fully convolutional deep networks", MLMI 2017,
        https://arxiv.org/abs/1706.05721
    """
    return overlap_loss(activation="softmax", score="tversky", **locals())


@_SIGMOID_TVERSKY.loss(
    formula=r"(1 - TI_c)^{\gamma},\quad " + _TI,
    use_when="small binary lesions; focus on nearly-right cases",
)
def binary_focal_tversky_loss(
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
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Focal Tversky loss of sigmoid probabilities, each channel a binary mask.

    The sigmoid form of :func:`focal_tversky_loss` (the paper's binary lesion setting);
    ``gamma`` is the exponent, applied per sample and channel before the mean.

    .. math::
        \ell_{n,c} = \left(1 - TI_{n,c}\right)^{\gamma},\quad p = \sigma(x)

    Example:
        >>> la.binary_focal_tversky_loss(logits, mask)
        tensor(0.2614)

    References:
        N. Abraham, N. M. Khan, "A Novel Focal Tversky Loss Function with Improved Attention
        U-Net for Lesion Segmentation", ISBI 2019, https://arxiv.org/abs/1810.07842

        S. S. M. Salehi, D. Erdogmus, A. Gholipour, "Tversky loss function for image
        segmentation using 3D fully convolutional deep networks", MLMI 2017,
        https://arxiv.org/abs/1706.05721
    """
    return overlap_loss(activation="sigmoid", score="tversky", **locals())


# --------------------------------------------------------------------------- modules


class TverskyLoss(LossModule, functional=tversky_loss):
    """Module form of :func:`lossatlas.tversky_loss`; ``weight`` is a buffer."""


class BinaryTverskyLoss(LossModule, functional=binary_tversky_loss):
    """Module form of :func:`lossatlas.binary_tversky_loss`; ``weight`` is a buffer."""


class FocalTverskyLoss(LossModule, functional=focal_tversky_loss):
    """Module form of :func:`lossatlas.focal_tversky_loss`; ``weight`` is a buffer."""


class BinaryFocalTverskyLoss(LossModule, functional=binary_focal_tversky_loss):
    """Module form of :func:`lossatlas.binary_focal_tversky_loss`; ``weight`` is a buffer."""
