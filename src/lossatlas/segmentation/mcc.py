"""Matthews correlation coefficient (MCC) losses, softmax and sigmoid forms.

Unlike Dice and Tversky, the MCC uses all four entries of the (soft) confusion matrix, the true
negatives included. The entries come from the overlap sums of
:mod:`lossatlas.segmentation._overlap` (``TP = I``, ``FP = P - I``, ``FN = G - I``,
``TN = S - P - G + I`` with ``S`` the positions that count), so the fused gradient path and the
input checks are those of :func:`lossatlas.dice_loss`.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import math

import torch
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example
from lossatlas._module import LossModule
from lossatlas._options import NonNegative, Positive
from lossatlas._reduction import Reduction, reduce_loss
from lossatlas.segmentation._overlap import (
    SIGMOID_OVERLAP,
    SOFTMAX_OVERLAP,
    Activation,
    checked_target,
    overlap_sums,
)

__all__ = ["binary_mcc_loss", "mcc_loss"]

_MCC = (
    r"1 - \frac{TP\cdot TN - FP\cdot FN + \epsilon_{nr}}"
    r"{\sqrt{(TP+FP)(TP+FN)(TN+FP)(TN+FN) + \epsilon_{dr}}}"
)


#: The options of the MCC losses (both forms) that mean something else for Dice.
_MCC_ARGS = {
    "smooth_nr": "Added to the numerator, ``>= 0`` (MONAI's default 0).",
    "smooth_dr": "Added under the square root, ``> 0``.",
    "batch": "Sum the confusion entries over the batch first: one MCC per class.",
    "reduction": '``"none"`` | ``"mean"`` | ``"sum"`` over the ``(N, C\')`` values.',
}
_SOFTMAX_MCC = SOFTMAX_OVERLAP.derive(args=_MCC_ARGS, example=None)
_SIGMOID_MCC = SIGMOID_OVERLAP.derive(args=_MCC_ARGS, example=None)


def _saturated(onehot: Tensor, dtype: torch.dtype) -> Tensor:
    """Logits of +-1000: softmax / sigmoid exactly 0 or 1 (an exactly perfect prediction)."""
    return (onehot * 2000.0 - 1000.0).to(dtype)


def _softmax_perfect(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    target = ex.segmentation_perfect(generator, batch=batch, dtype=dtype, scale=scale).args[1]
    onehot = torch.nn.functional.one_hot(target, 3).movedim(-1, 1)
    return Example((_saturated(onehot, dtype), target))


def _sigmoid_perfect(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    mask = ex.binary_mask_perfect(generator, batch=batch, dtype=dtype, scale=scale).args[1]
    return Example((_saturated(mask, dtype), mask))


def matthews_loss(
    tp: Tensor, fp: Tensor, fn: Tensor, tn: Tensor, *, smooth_nr: float, smooth_dr: float
) -> Tensor:
    """``1 - MCC`` of soft confusion entries; 0 where ``FP = FN = 0`` exactly (as MONAI)."""
    numerator = tp * tn - fp * fn + smooth_nr
    denominator = torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn) + smooth_dr)
    loss = 1.0 - numerator / denominator
    perfect = (fp == 0) & (fn == 0)
    return torch.where(perfect, torch.zeros_like(loss), loss)


def _mcc(
    input: Tensor,
    target: Tensor,
    *,
    activation: Activation,
    include_background: bool,
    smooth_nr: float,
    smooth_dr: float,
    batch: bool,
    reduction: str,
    ignore_index: int | None = None,
) -> Tensor:
    """Validate, sum and score either form (options already checked)."""
    target = checked_target(
        input,
        target,
        activation=activation,
        weight=None,
        ignore_index=ignore_index,
        include_background=include_background,
    )
    inter, pred, truth = overlap_sums(
        input, target, activation=activation, ignore_index=ignore_index
    )
    if target.is_floating_point():
        positions: Tensor | int = math.prod(input.shape[2:])
    else:  # the positions not ignored: each has exactly one class
        positions = truth.sum(dim=1, keepdim=True)
    entries = torch.stack([inter, pred - inter, truth - inter, positions - pred - truth + inter])
    if not include_background:
        entries = entries[:, :, 1:]
    if batch:
        entries = entries.sum(dim=1)
    tp, fp, fn, tn = entries.unbind(0)
    loss = matthews_loss(tp, fp, fn, tn, smooth_nr=smooth_nr, smooth_dr=smooth_dr)
    return reduce_loss(loss, reduction)


@_SOFTMAX_MCC.loss(
    formula=_MCC,
    use_when="segmentation with a dominant background; uses TN",
    perfect=_softmax_perfect,
    peers={
        "MONAI": "MCCLoss(softmax=True): same values (one-vs-rest per class); "
        "'none' is (N, C') here"
    },
)
def mcc_loss(
    input: Tensor,
    target: Tensor,
    *,
    include_background: bool = True,
    smooth_nr: NonNegative = 0.0,
    smooth_dr: Positive = 1e-5,
    batch: bool = False,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Matthews correlation coefficient loss of softmax probabilities, one-vs-rest per class.

    Abhishek & Hamarneh's ``1 - MCC`` with the soft confusion entries of each class ``c``
    against the rest: ``TP = sum p g``, ``FP = sum p (1 - g)``, ``FN = sum (1 - p) g``,
    ``TN = sum (1 - p)(1 - g)`` over the positions of a sample (of the batch with
    ``batch=True``). The classes are averaged one-vs-rest ("macro", as MONAI's
    ``MCCLoss(softmax=True)``; ``"none"`` keeps the ``(N, C')`` values), not Gorodkin's
    multi-class ``R_K``. The loss is in ``[0, 2]``.

    Zero denominator: where a marginal is 0 (a class absent from the target, or predicted
    nowhere) the product under the root is 0 and ``smooth_dr > 0`` keeps the value
    ``1 - smooth_nr / sqrt(smooth_dr)`` (1 with the defaults) and its gradient finite; where
    ``FP = FN = 0`` exactly (a saturated perfect prediction, an empty class predicted exactly
    empty) the loss is 0, as in MONAI. A soft prediction of an absent class thus scores 1 with
    no gradient: the MCC carries no signal for a class absent from the target (pair it with a
    cross-entropy there).

    .. math::
        \ell_{n,c} = 1 - \frac{TP\, TN - FP\, FN + \epsilon_{nr}}
            {\sqrt{(TP+FP)(TP+FN)(TN+FP)(TN+FN) + \epsilon_{dr}}}

    Args:
        include_background: ``False`` leaves class 0 out (its positions still count as true
            or false negatives of the other classes).

    Example:
        >>> logits = torch.tensor([[[[2.0, 1.0, 0.0, 3.0]], [[0.0, 2.0, 1.0, 0.0]],
        ...                         [[-1.0, 0.0, 2.5, 0.0]]]])  # (N=1, C=3, 1, 4)
        >>> target = torch.tensor([[[0, 1, 2, 0]]])
        >>> la.mcc_loss(logits, target, reduction="none")
        tensor([[0.2769, 0.4441, 0.2788]])

    References:
        K. Abhishek, G. Hamarneh, "Matthews Correlation Coefficient Loss for Deep
        Convolutional Networks: Application to Skin Lesion Segmentation", ISBI 2021,
        https://doi.org/10.1109/ISBI48211.2021.9433782

        MONAI MCCLoss, https://docs.monai.io/en/stable/losses.html
    """
    return _mcc(activation="softmax", **locals())


@_SIGMOID_MCC.loss(
    formula=_MCC,
    use_when="binary masks with a dominant background; uses TN",
    perfect=_sigmoid_perfect,
    peers={"MONAI": "MCCLoss(sigmoid=True): same values; 'none' is (N, C) here"},
)
def binary_mcc_loss(
    input: Tensor,
    target: Tensor,
    *,
    include_background: bool = True,
    smooth_nr: NonNegative = 0.0,
    smooth_dr: Positive = 1e-5,
    batch: bool = False,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Matthews correlation coefficient loss of sigmoid probabilities, one MCC per channel.

    The paper's binary form: ``p = sigmoid(input)`` against a mask of the same shape, the soft
    confusion entries summed over the positions of each channel (and of the batch with
    ``batch=True``, the paper's code). Zero denominators as :func:`mcc_loss`.

    .. math::
        \ell_{n,c} = 1 - \frac{TP\, TN - FP\, FN + \epsilon_{nr}}
            {\sqrt{(TP+FP)(TP+FN)(TN+FP)(TN+FN) + \epsilon_{dr}}},\quad
        TP = \sum_s \sigma(x_s)\, y_s,\ TN = \sum_s (1 - \sigma(x_s))(1 - y_s)

    Example:
        >>> logits = torch.tensor([[[[3.0, -2.0, 1.0, -1.0]]]])  # (N=1, C=1, 1, 4)
        >>> mask = torch.tensor([[[[1.0, 0.0, 1.0, 0.0]]]])
        >>> la.binary_mcc_loss(logits, mask)
        tensor(0.3518)

    References:
        K. Abhishek, G. Hamarneh, "Matthews Correlation Coefficient Loss for Deep
        Convolutional Networks: Application to Skin Lesion Segmentation", ISBI 2021,
        https://doi.org/10.1109/ISBI48211.2021.9433782
    """
    return _mcc(activation="sigmoid", **locals())


class MCCLoss(LossModule, functional=mcc_loss):
    """Module form of :func:`lossatlas.mcc_loss`."""


class BinaryMCCLoss(LossModule, functional=binary_mcc_loss):
    """Module form of :func:`lossatlas.binary_mcc_loss`."""
