r"""Losses robust to noisy labels: generalized CE, symmetric CE, bi-tempered logistic loss.

Cross-entropy grows without bound on a confidently wrong label, so a few mislabelled samples
can dominate training. These losses bound or flatten that tail: GCE interpolates between CE and
the mean absolute error (Zhang & Sabuncu 2018), SCE adds a reverse cross-entropy term (Wang et
al. 2019), and the bi-tempered loss replaces ``log`` and ``exp`` by tempered versions with a
bounded loss (``t1 < 1``) and a heavy-tailed softmax (``t2 > 1``) (Amid et al. 2019). All take
logits ``(N, C)`` and class indices ``(N,)``.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._module import LossModule
from lossatlas._options import Interval, NonNegative, PositiveInt, UnitInterval
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_class_indices,
    check_floating,
    check_index_target,
    check_probabilities,
    check_same_shape,
)
from lossatlas.classification._shared import (
    ROW_DOCS,
    SIGMOID_TARGETS,
    SOFTMAX_CLASSES,
)

__all__ = [
    "bi_tempered_logistic_loss",
    "binary_bi_tempered_logistic_loss",
    "generalized_cross_entropy",
    "symmetric_cross_entropy",
]

#: GCE's exponent ``q`` in ``(0, 1]``.
GCEExponent = Annotated[float, Interval(0.0, 1.0, low_inclusive=False)]
#: The bi-tempered loss's temperature ``t1`` in ``(0, 1]`` (``< 1``: a bounded loss).
T1 = Annotated[float, Interval(0.0, 1.0, low_inclusive=False)]
#: The tempered softmax's temperature ``t2 >= 1`` (``> 1``: heavier tails).
T2 = Annotated[float, Interval(1.0, None)]
#: ``log 0`` in the reverse cross-entropy (the paper's ``A = -4``); must be < 0.
LogZero = Annotated[float, Interval(None, 0.0, high_inclusive=False)]


def _check_pair(input: Tensor, target: Tensor) -> None:
    check_floating("input", input)
    if input.dim() != 2:
        raise ValueError(f"input must have shape (N, C), got {tuple(input.shape)}")
    check_index_target(input, target)
    check_class_indices("target", target, input.shape[1])


# --------------------------------------------------------------------------- declarations

_NUM_CLASSES = 4


_class_logits = ex.class_logits(_NUM_CLASSES)


_NOISY = SOFTMAX_CLASSES.derive(examples=_class_logits, **ROW_DOCS)


# --------------------------------------------------------------------------- GCE and SCE


@_NOISY.loss(
    formula=r"\frac{1 - p_y^{q}}{q},\ p = \operatorname{softmax}(x)",
    properties={"non_negative", "bounded"},
    use_when="noisy labels: between CE (q -> 0) and MAE (q = 1)",
)
def generalized_cross_entropy(
    input: Tensor,
    target: Tensor,
    *,
    q: GCEExponent = 0.7,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Generalized cross-entropy (Zhang & Sabuncu 2018): the Box-Cox transform of ``p_y``.

    ``(1 - p_y^q) / q`` tends to cross-entropy ``-log p_y`` as ``q -> 0`` and is ``1 - p_y``
    at ``q = 1`` -- half the mean absolute error between the one-hot label and ``p``
    (``sum_c |e_{y,c} - p_c| = 2 (1 - p_y)``), which is robust to label noise but trains
    slowly. The paper's ``q = 0.7`` sits between. Bounded by ``1 / q``. ``p_y^q`` is computed
    as ``exp(q log_softmax)``, so any finite logit gives a finite loss and gradient.

    .. math::
        \ell_n = \frac{1 - p_{n,y_n}^{\,q}}{q}, \qquad p_n = \operatorname{softmax}(x_n)

    Args:
        q: Exponent in ``(0, 1]``.

    Returns:
        ``(N,)`` for ``"none"``, else a scalar; float32 for half precision.

    Raises:
        ValueError: A class index out of range, ``q`` outside ``(0, 1]``, wrong shapes.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
        >>> la.generalized_cross_entropy(logits, torch.tensor([0, 0]), reduction="none")
        tensor([0.1215, 0.8589])

    References:
        Z. Zhang and M. R. Sabuncu, `Generalized Cross Entropy Loss for Training Deep Neural
        Networks with Noisy Labels <https://arxiv.org/abs/1805.07836>`_, NeurIPS 2018.
    """
    _check_pair(input, target)
    dtype = compute_dtype(input)
    log_p = F.log_softmax(upcast(input, dtype), dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    # -expm1(q log p) / q = (1 - p^q) / q, accurate as q -> 0 (where it is -log p).
    loss = -torch.expm1(q * log_p) / q
    return reduce_loss(loss, reduction)


@_NOISY.loss(
    formula=r"-\alpha \log p_y - \beta A (1 - p_y)",
    use_when="noisy labels: CE plus a bounded reverse CE",
)
def symmetric_cross_entropy(
    input: Tensor,
    target: Tensor,
    *,
    alpha: NonNegative = 0.1,
    beta: NonNegative = 1.0,
    log_zero: LogZero = -4.0,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Symmetric cross-entropy (Wang et al. 2019): ``alpha CE + beta RCE``.

    The reverse cross-entropy swaps the roles of the label and the prediction,
    ``RCE = -sum_c p_c log q_c`` with ``q`` the one-hot label, whose ``log 0`` is replaced by
    a constant ``A < 0`` (``log_zero``; the paper's ``A = -4``): ``RCE = -A (1 - p_y)``, bounded
    and robust to noise, while CE keeps the fit. The defaults ``alpha = 0.1, beta = 1`` are the
    paper's CIFAR-10 values (CIFAR-100 uses ``alpha = 6, beta = 0.1``). ``beta = 0`` and
    ``alpha = 1`` is :func:`lossatlas.cross_entropy`. The official code clamps the softmax at
    ``1e-7`` and the one-hot at ``1e-4`` (so its ``A`` is ``log 1e-4 = -9.21``); pass
    ``log_zero=math.log(1e-4)`` to match it up to the softmax clamp.

    .. math::
        \ell_n = -\alpha \log p_{n,y_n} - \beta A\,(1 - p_{n,y_n})

    Args:
        alpha: Weight of the cross-entropy term, ``>= 0``.
        beta: Weight of the reverse cross-entropy term, ``>= 0``.
        log_zero: The value ``A < 0`` that stands for ``log 0``.

    Raises:
        ValueError: A class index out of range, a negative weight, ``log_zero >= 0``.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
        >>> la.symmetric_cross_entropy(logits, torch.tensor([0, 0]), reduction="none")
        tensor([0.4895, 3.0556])

    References:
        Y. Wang, X. Ma, Z. Chen, Y. Luo, J. Yi, J. Bailey, `Symmetric Cross Entropy for
        Robust Learning with Noisy Labels <https://arxiv.org/abs/1908.06112>`_, ICCV 2019.
    """
    _check_pair(input, target)
    dtype = compute_dtype(input)
    log_p = F.log_softmax(upcast(input, dtype), dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    # 1 - p_y = -expm1(log p_y), accurate when p_y is close to 1.
    loss = -alpha * log_p + beta * log_zero * torch.expm1(log_p)
    return reduce_loss(loss, reduction)


# --------------------------------------------------------------------------- bi-tempered


def _log_t(u: Tensor, t: float) -> Tensor:
    """Tempered logarithm ``(u^(1-t) - 1) / (1 - t)`` (``log`` at ``t = 1``)."""
    if t == 1.0:
        return torch.log(u)
    return (u.pow(1.0 - t) - 1.0) / (1.0 - t)


def _exp_t(u: Tensor, t: float) -> Tensor:
    """Tempered exponential ``[1 + (1 - t) u]_+^(1/(1-t))`` (``exp`` at ``t = 1``)."""
    if t == 1.0:
        return torch.exp(u)
    return torch.relu(1.0 + (1.0 - t) * u).pow(1.0 / (1.0 - t))


def _tempered_softmax(activations: Tensor, t: float, num_iters: int) -> Tensor:
    """The tempered softmax along dim 1, its normalisation found by fixed-point iteration.

    For ``t > 1`` the normaliser ``lambda`` solving ``sum_c exp_t(a_c - lambda) = 1`` is found as
    in the official code: ``num_iters`` fixed-point steps on the max-shifted activations.
    """
    if t == 1.0:
        return torch.softmax(activations, dim=1)
    mu = activations.amax(dim=1, keepdim=True)
    shifted = activations - mu
    normalized = shifted
    for _ in range(num_iters):
        partition = _exp_t(normalized, t).sum(dim=1, keepdim=True)
        normalized = shifted * partition.pow(1.0 - t)
    partition = _exp_t(normalized, t).sum(dim=1, keepdim=True)
    lam = -_log_t(1.0 / partition, t) + mu
    return _exp_t(activations - lam, t)


def _bi_tempered(
    activations: Tensor, labels: Tensor, t1: float, t2: float, num_iters: int
) -> Tensor:
    """The official per-sample loss for (soft) label rows ``labels`` ``(N, C)``."""
    probabilities = _tempered_softmax(activations, t2, num_iters)
    # labels * log_t(labels, t1) is 0 where a label is 0 (its limit): computed only where > 0.
    safe = torch.where(labels > 0, labels, torch.ones_like(labels))
    self_term = torch.where(labels > 0, labels * _log_t(safe, t1), torch.zeros_like(labels))
    terms = (
        self_term
        - labels * _log_t(probabilities, t1)
        - labels.pow(2.0 - t1) / (2.0 - t1)
        + probabilities.pow(2.0 - t1) / (2.0 - t1)
    )
    return terms.sum(dim=1)


@_NOISY.loss(
    formula=r"\sum_c \Big[y_c (\log_{t_1} y_c - \log_{t_1} \hat p_c) "
    r"- \tfrac{y_c^{2-t_1} - \hat p_c^{\,2-t_1}}{2-t_1}\Big],"
    r"\ \hat p = \operatorname{softmax}_{t_2}(x)",
    use_when="noisy labels and outliers: bounded, heavy-tailed softmax",
)
def bi_tempered_logistic_loss(
    input: Tensor,
    target: Tensor,
    *,
    t1: T1 = 0.8,
    t2: T2 = 1.2,
    label_smoothing: UnitInterval = 0.0,
    num_iters: PositiveInt = 5,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Bi-tempered logistic loss (Amid et al. 2019): tempered log in the loss, tempered softmax.

    The Bregman divergence of the tempered logarithm ``log_t1`` between the label and the
    tempered softmax ``softmax_t2`` of the logits. ``t1 < 1`` bounds the loss (robust to
    mislabelled samples far from the boundary); ``t2 > 1`` gives the softmax heavier tails
    (robust to samples near it). ``t1 = t2 = 1`` is cross-entropy exactly. For ``t2 > 1`` the
    softmax's normaliser has no closed form: ``num_iters`` fixed-point steps find it, as in
    the official code (5 there; the value then matches it, and the gradient is the exact one
    of those steps). Label smoothing uses the official convention: ``1 - ls C/(C-1)`` on
    the label plus ``ls/(C-1)`` everywhere.

    .. math::
        \ell = \sum_c \Big[y_c\big(\log_{t_1} y_c - \log_{t_1} \hat p_c\big)
               - \frac{y_c^{2-t_1} - \hat p_c^{\,2-t_1}}{2 - t_1}\Big],\quad
        \log_t u = \frac{u^{1-t} - 1}{1 - t}

    Args:
        t1: Temperature of the loss, ``0 < t1 <= 1``.
        t2: Temperature of the softmax, ``t2 >= 1``.
        label_smoothing: In ``[0, 1]``.
        num_iters: Fixed-point iterations for the tempered softmax (used when ``t2 > 1``).

    Raises:
        ValueError: A class index out of range, temperatures outside the method's domain
            (``0 < t1 <= 1``, ``t2 >= 1``).

    Example:
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
        >>> target = torch.tensor([0, 0])
        >>> la.bi_tempered_logistic_loss(logits, target, t1=1.0, t2=1.0, reduction="none")
        tensor([0.1269, 1.3133])
        >>> la.bi_tempered_logistic_loss(logits, target, reduction="none")
        tensor([0.1096, 0.9803])

    References:
        E. Amid, M. K. Warmuth, R. Anil, T. Koren, `Robust Bi-Tempered Logistic Loss Based on
        Bregman Divergences <https://arxiv.org/abs/1906.03361>`_, NeurIPS 2019; official code
        https://github.com/google/bi-tempered-loss.
    """
    _check_pair(input, target)
    dtype = compute_dtype(input)
    x = upcast(input, dtype)
    num_classes = x.shape[1]
    labels = F.one_hot(target, num_classes).to(dtype)
    if label_smoothing > 0 and num_classes > 1:
        labels = (1 - label_smoothing * num_classes / (num_classes - 1)) * labels + (
            label_smoothing / (num_classes - 1)
        )
    return reduce_loss(_bi_tempered(x, labels, t1, t2, num_iters), reduction)


@SIGMOID_TARGETS.loss(
    formula=r"\ell_{t_1, t_2}\big([x, 0], [y, 1 - y]\big)",
    use_when="noisy binary labels: bounded, heavy-tailed sigmoid",
)
def binary_bi_tempered_logistic_loss(
    input: Tensor,
    target: Tensor,
    *,
    t1: T1 = 0.8,
    t2: T2 = 1.2,
    num_iters: PositiveInt = 5,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Binary bi-tempered logistic loss: the two-class loss on ``[x, 0]``, per element.

    Each logit ``x`` is read as the activations ``[x, 0]`` of two classes and its target
    ``y in [0, 1]`` as the label row ``[y, 1 - y]`` (the official binary form). With
    ``t1 = t2 = 1`` it is ``binary_cross_entropy_with_logits``.

    .. math::
        \ell = \ell_{t_1, t_2}\big([x, 0],\ [y, 1 - y]\big)

    Args:
        target: Same shape, probabilities in ``[0, 1]``.
        t1: Temperature of the loss, ``0 < t1 <= 1``.
        t2: Temperature of the sigmoid, ``t2 >= 1``.
        num_iters: Fixed-point iterations (used when ``t2 > 1``).

    Returns:
        The input's shape for ``"none"``, else a scalar.

    Raises:
        ValueError: Shapes that differ, a target outside [0, 1], temperatures outside the
            method's domain.

    Example:
        >>> logits = torch.tensor([2.0, -1.0])
        >>> target = torch.tensor([1.0, 1.0])
        >>> la.binary_bi_tempered_logistic_loss(logits, target, t1=1.0, t2=1.0,
        ...                                      reduction="none")
        tensor([0.1269, 1.3133])

    References:
        E. Amid, M. K. Warmuth, R. Anil, T. Koren, `Robust Bi-Tempered Logistic Loss Based on
        Bregman Divergences <https://arxiv.org/abs/1906.03361>`_, NeurIPS 2019.
    """
    check_floating("input", input)
    check_floating("target", target)
    check_same_shape("input", input, "target", target)
    check_probabilities("target", target)
    dtype = compute_dtype(input, target)
    x, y = upcast(input, dtype).reshape(-1, 1), upcast(target, dtype).reshape(-1, 1)
    activations = torch.cat([x, torch.zeros_like(x)], dim=1)
    labels = torch.cat([y, 1.0 - y], dim=1)
    loss = _bi_tempered(activations, labels, t1, t2, num_iters).reshape(input.shape)
    return reduce_loss(loss, reduction)


# --------------------------------------------------------------------------- modules


class GeneralizedCrossEntropyLoss(LossModule, functional=generalized_cross_entropy):
    """Module form of :func:`lossatlas.generalized_cross_entropy`."""


class SymmetricCrossEntropyLoss(LossModule, functional=symmetric_cross_entropy):
    """Module form of :func:`lossatlas.symmetric_cross_entropy`."""


class BiTemperedLogisticLoss(LossModule, functional=bi_tempered_logistic_loss):
    """Module form of :func:`lossatlas.bi_tempered_logistic_loss`."""


class BinaryBiTemperedLogisticLoss(LossModule, functional=binary_bi_tempered_logistic_loss):
    """Module form of :func:`lossatlas.binary_bi_tempered_logistic_loss`."""
