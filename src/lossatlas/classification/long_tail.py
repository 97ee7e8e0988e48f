r"""Long-tailed classification: logit adjustment, balanced softmax, LDAM with deferred re-weighting.

When a few head classes hold most of the training samples, a model trained with plain
cross-entropy learns the training label distribution ``pi`` as part of its logits and favours the
head at test time, where every class counts the same (balanced accuracy). These losses correct
the logits by the class frequencies inside the loss (Menon et al. 2021; Ren et al. 2020) or
enlarge the margin of the rare classes (Cao et al. 2019). The counts are the training set's
samples per class; the functionals take them as an option, the modules keep them as buffers.

* Train with :func:`logit_adjusted_cross_entropy` or :func:`balanced_softmax_loss` and predict
  with the raw logits' argmax; **or** train with plain cross-entropy and predict with
  ``adjust_logits(logits, ...).argmax(1)`` (post-hoc adjustment). Do not do both: that
  corrects twice.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example
from lossatlas._module import LossModule
from lossatlas._options import (
    NonNegative,
    NonNegativeInt,
    OpenUnitInterval,
    Positive,
    check_value,
)
from lossatlas._reduction import Reduction, compute_dtype, upcast
from lossatlas._validation import (
    check_class_counts,
    check_class_weight,
    check_same_device,
)
from lossatlas.classification._shared import IGNORE_INDEX, INDEX_TARGET, check_batched_logits
from lossatlas.classification.class_balanced import LONG_TAILED, class_balanced_weights
from lossatlas.classification.cross_entropy import cross_entropy

__all__ = [
    "adjust_logits",
    "balanced_softmax_loss",
    "drw_weights",
    "ldam_loss",
    "logit_adjusted_cross_entropy",
]

#: Counts of training samples per class (a sequence or a 1-D tensor, every count > 0).
ClassCounts = Sequence[Positive] | Tensor
#: A class prior: ``C`` probabilities > 0 that sum to 1.
ClassPrior = Sequence[Positive] | Tensor


# --------------------------------------------------------------------------- priors


def _log_prior(
    class_prior: ClassPrior | None, samples_per_class: ClassCounts | None, num_classes: int
) -> Tensor:
    """``log pi`` ``(C,)`` in float64 from exactly one of a prior or counts (checked)."""
    if (class_prior is None) == (samples_per_class is None):
        raise ValueError("give exactly one of class_prior and samples_per_class")
    if samples_per_class is not None:
        counts = check_class_counts("samples_per_class", samples_per_class)
        prior = counts / counts.sum()
        name = "samples_per_class"
    else:
        prior = check_class_counts("class_prior", class_prior)
        total = float(prior.sum())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"class_prior must sum to 1, got a sum of {total:.8g}")
        name = "class_prior"
    if prior.numel() != num_classes:
        raise ValueError(
            f"{name} must have one entry per class ({num_classes} for input with C = "
            f"{num_classes}), got {prior.numel()}"
        )
    return prior.log()


def _counts_for(samples_per_class: ClassCounts, num_classes: int) -> Tensor:
    """Checked counts ``(C,)`` in float64, one per class of the input."""
    counts = check_class_counts("samples_per_class", samples_per_class)
    if counts.numel() != num_classes:
        raise ValueError(
            f"samples_per_class must have one count per class ({num_classes}), got {counts.numel()}"
        )
    return counts


def _along_classes(values: Tensor, like: Tensor) -> Tensor:
    """``(C,)`` values shaped to broadcast over ``like``'s dim 1, in its dtype and device."""
    shape = (1, -1) + (1,) * (like.dim() - 2) if like.dim() >= 2 else (-1,)
    return values.to(like.device, like.dtype).view(shape)


def adjust_logits(
    logits: Tensor,
    *,
    class_prior: ClassPrior | None = None,
    samples_per_class: ClassCounts | None = None,
    tau: NonNegative = 1.0,
) -> Tensor:
    r"""Post-hoc logit adjustment: ``logits - tau * log pi``, for a model trained with plain CE.

    The Bayes-optimal prediction for the balanced error is ``argmax_y p(y|x) / pi_y``; a
    cross-entropy model's logits estimate ``log p(y|x)`` up to a constant, so subtracting
    ``tau log pi`` and taking the argmax predicts for balanced accuracy. Use it at inference
    only, and only on a model trained **without** :func:`logit_adjusted_cross_entropy` or
    :func:`balanced_softmax_loss` (those already move the correction into training).

    .. math::
        \tilde f_y(x) = f_y(x) - \tau \log \pi_y

    Args:
        logits: ``(N, C)`` or ``(N, C, d1, ...)``.
        class_prior: ``C`` training-label probabilities (> 0, summing to 1).
        samples_per_class: ``C`` training counts (> 0); the prior is their share.
        tau: Strength; 1 is the Bayes-optimal correction, 0 changes nothing.

    Returns:
        The adjusted logits, same shape and dtype.

    Raises:
        ValueError: Neither or both of ``class_prior`` / ``samples_per_class``, a prior that
            does not sum to 1, a count or probability <= 0, the wrong number of classes.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> logits = torch.tensor([[2.0, 1.5]])  # class 0 is 9 times as frequent
        >>> la.adjust_logits(logits, samples_per_class=[900, 100])
        tensor([[2.1054, 3.8026]])

    References:
        A. K. Menon, S. Jayasumana, A. S. Rawat, H. Jain, A. Veit, S. Kumar, `Long-tail
        learning via logit adjustment <https://arxiv.org/abs/2007.07314>`_, ICLR 2021.
    """
    check_batched_logits(logits)
    log_prior = _log_prior(class_prior, samples_per_class, logits.shape[1])
    return logits - tau * _along_classes(log_prior, logits)


# --------------------------------------------------------------------------- declarations

_COUNTS = (500.0, 120.0, 30.0, 8.0, 2.0)


def _long_tail(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    logits = ex.normal(generator, batch, len(_COUNTS), dtype=dtype, scale=scale)
    target = ex.class_indices(generator, batch, num_classes=len(_COUNTS))
    return Example((logits, target), {"samples_per_class": list(_COUNTS)})


def _cosine_logits(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    # LDAM scales cosine similarities by s = 30: the example keeps them in [-1, 1] unless the
    # harness asks for extreme inputs.
    logits = torch.tanh(ex.normal(generator, batch, len(_COUNTS), dtype=torch.float64))
    target = ex.class_indices(generator, batch, num_classes=len(_COUNTS))
    return Example(((logits * scale).to(dtype), target), {"samples_per_class": list(_COUNTS)})


def _official_logit_adjusted(
    input: Tensor,
    target: Tensor,
    *,
    samples_per_class: Sequence[float],
    reduction: str = "mean",
) -> Tensor:
    """google-research/logit_adjustment: ``CE(logits + tau log(counts / sum))``, tau = 1."""
    counts = torch.tensor(samples_per_class, dtype=torch.float64)
    base_probs = counts / counts.sum()
    adjusted = input + torch.log(base_probs).to(input.dtype)
    return F.cross_entropy(adjusted, target, reduction=reduction)


def _official_ldam(
    input: Tensor, target: Tensor, *, samples_per_class: Sequence[float], reduction: str = "mean"
) -> Tensor:
    """kaidic/LDAM-DRW ``LDAMLoss(cls_num_list, max_m=0.5, s=30)``, re-computed in torch."""
    m_list = 1.0 / torch.tensor(samples_per_class, dtype=torch.float64).sqrt().sqrt()
    m_list = m_list * (0.5 / m_list.max())
    index = F.one_hot(target, input.shape[1]).bool()
    x_m = input - m_list.to(input.dtype)[target].unsqueeze(1)
    output = torch.where(index, x_m, input)
    return F.cross_entropy(30.0 * output, target, reduction=reduction)


_LONG_TAIL = LONG_TAILED.derive(
    examples=_long_tail,
    args={
        "target": INDEX_TARGET,
        "ignore_index": IGNORE_INDEX,
        "reduction": '``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of'
        " kept targets.",
    },
    returns='``(N, d1, ...)`` for ``"none"``, else a scalar.',
)


# --------------------------------------------------------------------------- functionals


@_LONG_TAIL.loss(
    formula=r"-\log \frac{e^{x_y + \tau \log \pi_y}}{\sum_c e^{x_c + \tau \log \pi_c}}",
    oracle=_official_logit_adjusted,
    use_when="long-tailed classes, balanced accuracy at test time",
)
def logit_adjusted_cross_entropy(
    input: Tensor,
    target: Tensor,
    *,
    class_prior: ClassPrior | None = None,
    samples_per_class: ClassCounts | None = None,
    tau: NonNegative = 1.0,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Logit-adjusted cross-entropy (Menon et al. 2021): CE on ``logits + tau * log pi``.

    Adding the log prior during training makes the model's raw logits estimate the balanced
    (class-conditional) scores, so ``argmax`` of the logits at test time targets balanced
    accuracy. ``tau=0`` is :func:`lossatlas.cross_entropy`; ``tau=1`` with counts is
    :func:`balanced_softmax_loss` (the two differ by a constant inside the softmax). Give the
    prior or the counts, not both. For post-hoc adjustment of a CE-trained model use
    :func:`adjust_logits` instead (never both).

    .. math::
        \ell_n = -\log \frac{\exp(x_{n,y_n} + \tau \log \pi_{y_n})}
                            {\sum_c \exp(x_{n,c} + \tau \log \pi_c)}

    Args:
        class_prior: ``C`` training-label probabilities (> 0, summing to 1).
        tau: Strength of the adjustment (the paper's default 1).

    Raises:
        ValueError: A class index out of range, neither or both of the prior and the counts,
            a prior that does not sum to 1, counts <= 0, the wrong number of classes.

    Example:
        >>> logits = torch.tensor([[2.0, 1.5], [0.5, 1.0]])
        >>> target = torch.tensor([0, 1])
        >>> la.logit_adjusted_cross_entropy(logits, target, samples_per_class=[900, 100],
        ...                                 reduction="none")
        tensor([0.0652, 1.8654])

    References:
        A. K. Menon, S. Jayasumana, A. S. Rawat, H. Jain, A. Veit, S. Kumar, `Long-tail
        learning via logit adjustment <https://arxiv.org/abs/2007.07314>`_, ICLR 2021.
    """
    check_batched_logits(input)
    log_prior = _log_prior(class_prior, samples_per_class, input.shape[1])
    dtype = compute_dtype(input)
    x = upcast(input, dtype)
    adjusted = x + tau * _along_classes(log_prior, x)
    return cross_entropy(adjusted, target, ignore_index=ignore_index, reduction=reduction)


@_LONG_TAIL.loss(
    formula=r"-\log \frac{n_y e^{x_y}}{\sum_c n_c e^{x_c}}",
    use_when="long-tailed classes; CE with the counts in the softmax",
)
def balanced_softmax_loss(
    input: Tensor,
    target: Tensor,
    *,
    samples_per_class: ClassCounts,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Balanced softmax cross-entropy (Ren et al. 2020): CE on ``logits + log n_c``.

    The softmax is re-weighted by each class's training count, which compensates the label
    shift between a long-tailed training set and a balanced test set; predict with the raw
    logits. Equal to :func:`logit_adjusted_cross_entropy` with ``tau=1`` (``log n_c`` and
    ``log pi_c`` differ by a constant the softmax ignores); with equal counts it is
    :func:`lossatlas.cross_entropy`.

    .. math::
        \ell_n = -\log \frac{n_{y_n} \exp x_{n,y_n}}{\sum_c n_c \exp x_{n,c}}

    Raises:
        ValueError: A class index out of range, counts <= 0 or of the wrong length.

    Example:
        >>> logits = torch.tensor([[2.0, 1.5], [0.5, 1.0]])
        >>> target = torch.tensor([0, 1])
        >>> la.balanced_softmax_loss(logits, target, samples_per_class=[900, 100])
        tensor(0.9653)

    References:
        J. Ren, C. Yu, S. Sheng, X. Ma, H. Zhao, S. Yi, H. Li, `Balanced Meta-Softmax for
        Long-Tailed Visual Recognition <https://arxiv.org/abs/2007.10740>`_, NeurIPS 2020.
    """
    check_batched_logits(input)
    counts = _counts_for(samples_per_class, input.shape[1])
    dtype = compute_dtype(input)
    x = upcast(input, dtype)
    return cross_entropy(
        x + _along_classes(counts.log(), x), target, ignore_index=ignore_index, reduction=reduction
    )


@_LONG_TAIL.loss(
    formula=r"-\log \frac{e^{s(x_y - \Delta_y)}}{e^{s(x_y - \Delta_y)} + \sum_{c \ne y} e^{s x_c}},"
    r"\ \Delta_c \propto n_c^{-1/4}",
    examples=_cosine_logits,
    oracle=_official_ldam,
    use_when="long tail: larger margins for rare classes (+ DRW)",
)
def ldam_loss(
    input: Tensor,
    target: Tensor,
    *,
    samples_per_class: ClassCounts,
    max_margin: Positive = 0.5,
    scale: Positive = 30.0,
    weight: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Label-distribution-aware margin loss (Cao et al. 2019) on cosine logits.

    Subtracts a class-dependent margin ``Delta_y = C / n_y^{1/4}`` from the true class's logit
    and scales every logit by ``s`` before the cross-entropy: rare classes must win by more.
    As in the official code, the margins are normalised so that the rarest class gets
    ``max_margin`` (0.5), and ``scale`` is 30 -- tuned for **cosine** logits in ``[-1, 1]``
    (normalised features times normalised class weights); on raw logits use a smaller scale.
    With zero margins (``max_margin`` close to 0) it is ``cross_entropy(scale * input)``.
    Pair it with :func:`drw_weights` for the deferred re-weighting schedule (pass the result as
    ``weight``).

    .. math::
        \ell_n = -\log \frac{\exp(s (x_{n,y} - \Delta_y))}
                 {\exp(s (x_{n,y} - \Delta_y)) + \sum_{c \ne y} \exp(s\, x_{n,c})},
        \qquad \Delta_c = \Delta_{\max} \frac{n_c^{-1/4}}{\max_k n_k^{-1/4}}

    Args:
        input: Logits ``(N, C)``, ideally cosine similarities.
        target: Class indices ``(N,)`` in ``[0, C)``.
        max_margin: The margin of the rarest class (the official ``max_m=0.5``).
        scale: The logit scale ``s`` (the official 30).
        weight: Per-class weights ``(C,)`` (e.g. :func:`drw_weights`); ``"mean"`` then
            divides by the sum of the targets' weights, as torch does.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
        ``(N,)`` for ``"none"``, else a scalar.

    Raises:
        ValueError: A class index out of range, counts <= 0 or of the wrong length, a weight
            of the wrong shape.

    Example:
        >>> cosines = torch.tensor([[0.8, 0.2], [0.1, 0.3]])
        >>> la.ldam_loss(cosines, torch.tensor([0, 1]), samples_per_class=[900, 100],
        ...              reduction="none")
        tensor([8.7853e-05, 9.0001e+00])

    References:
        K. Cao, C. Wei, A. Gaidon, N. Arechiga, T. Ma, `Learning Imbalanced Datasets with
        Label-Distribution-Aware Margin Loss <https://arxiv.org/abs/1906.07413>`_, NeurIPS
        2019; official code https://github.com/kaidic/LDAM-DRW.
    """
    check_same_device(("input", input), ("target", target), ("weight", weight))
    check_batched_logits(input)
    if input.dim() != 2:
        raise ValueError(f"input must have shape (N, C), got {tuple(input.shape)}")
    num_classes = input.shape[1]
    counts = _counts_for(samples_per_class, num_classes)
    check_class_weight("weight", weight, num_classes)
    margins = counts.pow(-0.25)
    margins = margins * (max_margin / margins.max())
    dtype = compute_dtype(input, weight)
    x = upcast(input, dtype)
    onehot = F.one_hot(target.clamp(0, num_classes - 1), num_classes).to(dtype)
    shifted = x - onehot * margins.to(x.device, dtype)
    return cross_entropy(
        scale * shifted,
        target,
        weight=None if weight is None else upcast(weight, dtype),
        reduction=reduction,
    )


def drw_weights(
    epoch: NonNegativeInt,
    samples_per_class: ClassCounts,
    *,
    start_epoch: NonNegativeInt = 160,
    beta: OpenUnitInterval = 0.9999,
) -> Tensor:
    r"""Deferred re-weighting (Cao et al. 2019): equal weights, then class-balanced ones.

    Before ``start_epoch`` every class weighs 1; from it on, the weights are
    :func:`lossatlas.class_balanced_weights` with ``beta`` (sum ``C``), as in the official
    LDAM-DRW schedule (CIFAR: 200 epochs, re-weighting from epoch 160, ``beta=0.9999``). Pass
    the result as ``weight=`` to :func:`ldam_loss` (or :func:`lossatlas.cross_entropy`).

    .. math::
        w_c = \begin{cases} 1 & e < e_0 \\ C \frac{(1 - \beta)/(1 - \beta^{n_c})}
              {\sum_k (1 - \beta)/(1 - \beta^{n_k})} & e \ge e_0 \end{cases}

    Args:
        epoch: The current epoch (from 0).
        samples_per_class: ``C`` training counts (> 0).
        start_epoch: The first epoch with class-balanced weights.
        beta: The effective-number hyperparameter in ``(0, 1)``.

    Returns:
        ``(C,)`` weights in the default dtype.

    Example:
        >>> import lossatlas as la
        >>> la.drw_weights(0, [900, 100], start_epoch=2)
        tensor([1., 1.])
        >>> la.drw_weights(2, [900, 100], start_epoch=2, beta=0.99)
        tensor([0.7760, 1.2240])

    References:
        K. Cao, C. Wei, A. Gaidon, N. Arechiga, T. Ma, `Learning Imbalanced Datasets with
        Label-Distribution-Aware Margin Loss <https://arxiv.org/abs/1906.07413>`_, NeurIPS
        2019.
    """
    check_value("epoch", epoch, NonNegativeInt)
    check_value("start_epoch", start_epoch, NonNegativeInt)
    check_value("beta", beta, OpenUnitInterval)
    counts = check_class_counts("samples_per_class", samples_per_class)
    if epoch < start_epoch:
        return torch.ones(counts.numel())
    return class_balanced_weights(counts, beta=beta)


# --------------------------------------------------------------------------- modules


class LogitAdjustedCrossEntropyLoss(LossModule, functional=logit_adjusted_cross_entropy):
    """Module form of :func:`lossatlas.logit_adjusted_cross_entropy`; the prior is a buffer."""


class BalancedSoftmaxLoss(LossModule, functional=balanced_softmax_loss):
    """Module form of :func:`lossatlas.balanced_softmax_loss`; the counts are a buffer."""


class LDAMLoss(LossModule, functional=ldam_loss):
    """Module form of :func:`lossatlas.ldam_loss`; counts and weights are buffers."""
