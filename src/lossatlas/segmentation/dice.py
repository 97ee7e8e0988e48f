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

    Args:
        input: Logits ``(N, C, d1, ...)`` with ``C >= 2`` and at least one spatial dimension.
        target: Class indices ``(N, d1, ...)`` in ``[0, C)`` or ``ignore_index`` (any integer
            dtype or bool, read as ``torch.long``), or a target of the input's shape: one-hot
            (integer or bool masks allowed) or soft, class probabilities in [0, 1] per pixel
            (MONAI's ``to_onehot_y=False``; the sums are then ``I = sum_s p g`` and
            ``G = sum_s g``, nothing rounded).
        include_background: ``False`` leaves class 0 out (of the loss, the weights and the
            mean); the output then has ``C - 1`` class columns.
        squared_pred: Sum ``p^2`` and ``g^2`` in the denominator (V-Net).
        smooth_nr: Added to the numerator, ``>= 0``.
        smooth_dr: Added to the denominator, ``> 0`` (so an empty class is never 0/0).
        batch: Sum the intersection and the sizes over the batch before the ratio.
        weight: Per-class weights ``(C,)``, non-negative; each class's loss is multiplied by
            its weight. Indexed by class id (``weight[0]`` is unused when
            ``include_background=False``; MONAI wants ``C - 1`` weights there).
        ignore_index: Class-index targets equal to it are excluded from every sum: their
            prediction and target count nowhere, so their logits do not change the loss.
            Only for class-index targets. An image whose pixels are all ignored scores 0
            for every class and still counts in the mean (as in MONAI).
        average: ``"macro"`` (MONAI): one ratio per sample and class. ``"micro"`` (kornia's
            default): one ratio per sample over all classes kept, ``1 - (2 sum_c w_c I_c +
            s_nr) / (sum_c w_c (P_c + G_c) + s_dr)``, the weights (if any) inside the sums
            and the ``N`` values averaged plainly (``batch=True``: one ratio in all).
            ``dice_loss(x, y, average="micro", smooth_nr=0, smooth_dr=eps)`` equals kornia's
            ``dice_loss(x, y, average="micro", eps=eps)``; kornia's ``"macro"`` averages only
            the classes present in each sample's target, this (as MONAI) all of them.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. ``"mean"`` averages the ``(N, C')``
            values; with ``weight`` it divides their weighted sum by the sum of the weights,
            ``N * sum_c w_c`` (MONAI divides by ``N * C'``: equal when the weights sum to
            ``C'``; ``"none"`` and ``"sum"`` equal MONAI's).
        process_group: ``None`` (this process only) or a ``torch.distributed`` group over
            which the loss is exact: with ``batch=True`` the class sums are all-summed before
            the ratio, otherwise ``"mean"`` and ``"sum"`` run over every rank's samples. The
            value on every rank and, after DDP's gradient averaging, the gradients equal one
            process on the concatenated batch (see :mod:`lossatlas.distributed`).

    Returns:
        ``(N, C')`` for ``"none"`` (``(C',)`` with ``batch=True``), ``C' = C`` or ``C - 1``
        without background, ``(N,)`` (``()``) with ``average="micro"``; else a scalar.
        Float32 for half-precision input.

    Raises:
        TypeError: Non-floating input; a float target shaped like class indices; a non-bool
            flag.
        ValueError: A class index outside ``[0, C)`` that is not ``ignore_index`` (value and
            position named); a target of another shape; ``C < 2``; no spatial dimension;
            ``ignore_index`` with a one-hot target; a bad option value.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, 0.0]],
        ...                         [[-1.0, 2.0], [0.0, 1.5]]]])  # (N=1, C=2, 2, 2)
        >>> target = torch.tensor([[[0, 1], [1, 1]]])
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

    Args:
        input: Logits ``(N, C, d1, ...)``, ``C >= 2``.
        target: As :func:`dice_loss`.
        include_background: As :func:`dice_loss`.
        squared_pred: As :func:`dice_loss`.
        smooth_nr: As :func:`dice_loss`.
        smooth_dr: As :func:`dice_loss`.
        batch: As :func:`dice_loss`.
        weight: As :func:`dice_loss`.
        ignore_index: As :func:`dice_loss`.
        reduction: As :func:`dice_loss`.
        process_group: As :func:`dice_loss`.

    Returns:
        ``(N, C')`` (or ``(C',)`` with ``batch``) for ``"none"``, else a scalar.

    Raises:
        TypeError: As :func:`dice_loss`.
        ValueError: As :func:`dice_loss`.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, 0.0]],
        ...                         [[-1.0, 2.0], [0.0, 1.5]]]])
        >>> target = torch.tensor([[[0, 1], [1, 1]]])
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

    Args:
        input: Logits ``(N, C, d1, ...)``, at least one spatial dimension.
        target: Same shape, values in ``[0, 1]`` (masks in {0, 1}, float, bool or integer, or
            soft labels).
        include_background: ``False`` leaves channel 0 out (needs ``C >= 2``).
        squared_pred: As :func:`dice_loss`.
        smooth_nr: As :func:`dice_loss`.
        smooth_dr: As :func:`dice_loss`.
        batch: One ratio per channel over the whole batch.
        weight: Per-channel weights ``(C,)``, as :func:`dice_loss`.
        reduction: As :func:`dice_loss`.
        process_group: As :func:`dice_loss`.

    Returns:
        ``(N, C')`` (or ``(C',)`` with ``batch``) for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating tensors, a non-bool flag.
        ValueError: Shapes that differ, a target outside [0, 1], a bad option.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> logits = torch.tensor([[[[3.0, -2.0], [1.0, -1.0]]]])  # (N=1, C=1, 2, 2)
        >>> mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
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

    Args:
        input: Logits ``(N, C, d1, ...)``.
        target: As :func:`binary_dice_loss`.
        include_background: As :func:`binary_dice_loss`.
        squared_pred: As :func:`dice_loss`.
        smooth_nr: As :func:`dice_loss`.
        smooth_dr: As :func:`dice_loss`.
        batch: As :func:`binary_dice_loss`.
        weight: As :func:`binary_dice_loss`.
        reduction: As :func:`dice_loss`.
        process_group: As :func:`dice_loss`.

    Returns:
        ``(N, C')`` (or ``(C',)`` with ``batch``) for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating tensors, a non-bool flag.
        ValueError: Shapes that differ, a target outside [0, 1], a bad option.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> logits = torch.tensor([[[[3.0, -2.0], [1.0, -1.0]]]])
        >>> mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
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
