r"""Asymmetric loss (ASL) for multi-label classification, and its single-label form.

Multi-label data sets have a few positive labels per image among many negatives. ASL (Ridnik
et al. 2021) focuses the negatives harder than the positives (``gamma_neg > gamma_pos``) and
shifts the negatives' probability down by a margin ``clip``, which discards very easy negatives
outright and also rejects possibly mislabelled ones. **Its defaults (``gamma_neg=4``,
``gamma_pos=1``, ``clip=0.05``) are tuned for highly imbalanced multi-label data** (MS-COCO,
Open Images); on balanced data they mostly slow training down.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import NonNegative, UnitInterval
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_class_indices,
    check_floating,
    check_index_target,
    check_probabilities,
    check_same_shape,
)
from lossatlas.classification._shared import SIGMOID_TARGETS

__all__ = ["asymmetric_loss", "asymmetric_single_label_loss"]


# --------------------------------------------------------------------------- declarations


def _multilabel(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    logits = ex.normal(generator, batch, 5, dtype=dtype, scale=scale)
    return Example((logits, ex.binary_labels(generator, batch, 5, dtype=dtype)))


def _single_label(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    logits = ex.normal(generator, batch, 4, dtype=dtype, scale=scale)
    return Example((logits, ex.class_indices(generator, batch, num_classes=4)))


def _official_asl(
    x: Tensor,
    y: Tensor,
    *,
    gamma_neg: float = 4.0,
    gamma_pos: float = 1.0,
    clip: float = 0.05,
    reduction: str = "mean",
) -> Tensor:
    """Alibaba-MIIL/ASL losses.py ``AsymmetricLoss.forward`` (eps=1e-8), per element."""
    x_sigmoid = torch.sigmoid(x)
    xs_pos = x_sigmoid
    xs_neg = (1 - x_sigmoid + clip).clamp(max=1) if clip > 0 else 1 - x_sigmoid
    loss = y * torch.log(xs_pos.clamp(min=1e-8)) + (1 - y) * torch.log(xs_neg.clamp(min=1e-8))
    pt = xs_pos * y + xs_neg * (1 - y)
    loss = loss * torch.pow(1 - pt, gamma_pos * y + gamma_neg * (1 - y))
    loss = -loss
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


_ASYMMETRIC = SIGMOID_TARGETS.derive(
    tasks=("multilabel", "imbalanced"),
    target_kind="multi-hot labels in [0, 1]",
    examples=_multilabel,
)


# --------------------------------------------------------------------------- functionals


@_ASYMMETRIC.loss(
    formula=r"-y (1-p)^{\gamma_+} \log p - (1-y)\, p_m^{\gamma_-} \log(1 - p_m),"
    r"\ p_m = \max(p - m, 0)",
    oracle=_official_asl,
    use_when="multi-label with many negatives per image",
    peers={
        "timm": "AsymmetricLossMultiLabel: same terms, returns the sum (here the mean)",
        "ASL": "official AsymmetricLoss: clamps log at 1e-8, returns the sum",
    },
)
def asymmetric_loss(
    input: Tensor,
    target: Tensor,
    *,
    gamma_pos: NonNegative = 1.0,
    gamma_neg: NonNegative = 4.0,
    clip: UnitInterval = 0.05,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Asymmetric loss (Ridnik et al. 2021) on multi-label logits, per element.

    Positives get the focal term ``(1 - p)^gamma_pos``; negatives use the shifted probability
    ``p_m = max(p - clip, 0)`` with ``p_m^gamma_neg``, so a negative with ``p <= clip``
    contributes exactly 0. With ``gamma_pos = gamma_neg = 0`` and ``clip = 0`` it is
    ``binary_cross_entropy_with_logits``; with ``clip = 0`` and equal gammas it is the
    unweighted sigmoid focal loss. The logs are computed from ``logsigmoid`` (no ``1e-8`` clamp
    as in the official code, which changes the value only where ``p < 1e-8``), so any finite
    logit gives a finite loss. The official code and timm return the **sum**; here the default
    is the mean over elements (use ``reduction="sum"`` to match them).

    .. math::
        \ell = -y\,(1 - p)^{\gamma_+} \log p - (1 - y)\,p_m^{\gamma_-} \log(1 - p_m),\quad
        p = \sigma(x),\ p_m = \max(p - m, 0)

    Args:
        input: Logits, any shape (typically ``(N, C)``).
        target: Same shape, labels in ``[0, 1]`` (multi-hot).
        gamma_pos: Focusing of the positives, ``>= 0``.
        gamma_neg: Focusing of the negatives, ``>= 0``.
        clip: Probability margin ``m`` in ``[0, 1]`` for the negatives.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
        The input's shape for ``"none"``, else a scalar.

    Raises:
        ValueError: Shapes that differ, a target outside [0, 1], a negative gamma.

    Example:
        >>> logits = torch.tensor([[2.0, -3.0, 0.5]])
        >>> target = torch.tensor([[1.0, 0.0, 0.0]])
        >>> la.asymmetric_loss(logits, target, reduction="none")
        tensor([[0.0151, 0.0000, 0.0913]])

    References:
        T. Ridnik, E. Ben-Baruch, N. Zamir, A. Noy, I. Friedman, M. Protter, L. Zelnik-Manor,
        `Asymmetric Loss For Multi-Label Classification <https://arxiv.org/abs/2009.14119>`_,
        ICCV 2021; official code https://github.com/Alibaba-MIIL/ASL.
    """
    check_floating("input", input)
    check_floating("target", target)
    check_same_shape("input", input, "target", target)
    check_probabilities("target", target)
    dtype = compute_dtype(input, target)
    x, y = upcast(input, dtype), upcast(target, dtype)
    log_p = F.logsigmoid(x)
    log_one_minus_p = F.logsigmoid(-x)
    positive = -y * torch.exp(gamma_pos * log_one_minus_p) * log_p if gamma_pos else -y * log_p
    if clip > 0:
        shifted = (torch.sigmoid(x) - clip).clamp(min=0)
        negative = -(1 - y) * shifted.pow(gamma_neg) * torch.log1p(-shifted)
    else:
        negative = -(1 - y) * torch.exp(gamma_neg * log_p) * log_one_minus_p
    return reduce_loss(positive + negative, reduction)


@_ASYMMETRIC.loss(
    tasks=("multiclass", "imbalanced"),
    target_kind="class indices",
    target_type=TargetKind.CLASS_INDICES,
    formula=r"-\sum_c \tilde y_c\, w_c \log p_c,\ w_y = (1 - p_y)^{\gamma_+},"
    r"\ w_{c \ne y} = p_c^{\gamma_-}",
    examples=_single_label,
    same_shape=None,
    oracle=None,
    curve="class-logit",
    use_when="single-label with many confusable negative classes",
    peers={"ASL": "official ASLSingleLabel: same terms and smoothing (eps)"},
)
def asymmetric_single_label_loss(
    input: Tensor,
    target: Tensor,
    *,
    gamma_pos: NonNegative = 0.0,
    gamma_neg: NonNegative = 4.0,
    label_smoothing: UnitInterval = 0.1,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Single-label asymmetric loss (the official ``ASLSingleLabel``) on softmax logits.

    Cross-entropy with label smoothing in which the target class's term is weighted by
    ``(1 - p_y)^gamma_pos`` and every other class's smoothed term by ``p_c^gamma_neg``. With
    ``gamma_pos = gamma_neg = 0`` it is :func:`lossatlas.cross_entropy` with
    ``label_smoothing`` (epsilon spread over all C classes, as torch does).

    .. math::
        \ell_n = -\sum_c \tilde y_{n,c}\, w_{n,c} \log p_{n,c},\quad
        \tilde y = (1 - \epsilon)\,\mathrm{onehot}(y) + \epsilon / C

    Args:
        input: Logits ``(N, C)``.
        target: Class indices ``(N,)`` in ``[0, C)``.
        gamma_pos: Focusing of the target class, ``>= 0``.
        gamma_neg: Focusing of the other classes, ``>= 0``.
        label_smoothing: ``epsilon`` in ``[0, 1]`` (the official default 0.1).
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
        ``(N,)`` for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating input, non-integer target.
        ValueError: A class index out of range, a negative gamma.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0, -1.0]])
        >>> la.asymmetric_single_label_loss(logits, torch.tensor([0]))
        tensor(0.1585)

    References:
        T. Ridnik, E. Ben-Baruch, N. Zamir, A. Noy, I. Friedman, M. Protter, L. Zelnik-Manor,
        `Asymmetric Loss For Multi-Label Classification <https://arxiv.org/abs/2009.14119>`_,
        ICCV 2021; official code https://github.com/Alibaba-MIIL/ASL.
    """
    check_floating("input", input)
    if input.dim() != 2:
        raise ValueError(f"input must have shape (N, C), got {tuple(input.shape)}")
    check_index_target(input, target)
    num_classes = input.shape[1]
    check_class_indices("target", target, num_classes)
    dtype = compute_dtype(input)
    log_p = F.log_softmax(upcast(input, dtype), dim=1)
    onehot = F.one_hot(target, num_classes).to(dtype)
    p = log_p.exp()
    weight = torch.where(onehot > 0, (1 - p).pow(gamma_pos), p.pow(gamma_neg))
    smoothed = onehot * (1 - label_smoothing) + label_smoothing / num_classes
    loss = -(smoothed * weight * log_p).sum(1)
    return reduce_loss(loss, reduction)


# --------------------------------------------------------------------------- modules


class AsymmetricLoss(LossModule, functional=asymmetric_loss):
    """Module form of :func:`lossatlas.asymmetric_loss`."""


class AsymmetricSingleLabelLoss(LossModule, functional=asymmetric_single_label_loss):
    """Module form of :func:`lossatlas.asymmetric_single_label_loss`."""
