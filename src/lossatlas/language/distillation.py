r"""Knowledge distillation on logits: Hinton's KD and the generalised JSD of GKD.

Both take student and teacher logits ``(N, V)`` -- flatten ``(B, T, V)`` token logits to
``(B * T, V)`` -- and average over the counted rows: tokens whose label is ``ignore_index``
(prompt, padding) are left out and the mean divides by the number of kept tokens, never by the
vocabulary size.
"""

# Args that both losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import Positive, UnitInterval
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_class_indices,
    check_floating,
    check_integer,
    check_same_device,
    check_same_shape,
    check_shape,
)

__all__ = ["distillation_loss", "generalized_jsd_loss"]


def _check_logits(
    student: Tensor, teacher: Tensor, labels: Tensor | None, ignore_index: int
) -> Tensor:
    """Shapes and the mask of counted rows ``(N,)``."""
    check_same_device(("student_logits", student), ("teacher_logits", teacher), ("labels", labels))
    check_floating("student_logits", student)
    check_floating("teacher_logits", teacher)
    check_shape("student_logits", student, (None, None), what="(N, V); flatten tokens first")
    check_same_shape("student_logits", student, "teacher_logits", teacher)
    if labels is None:
        return torch.ones(student.shape[0], dtype=torch.bool, device=student.device)
    check_integer("labels", labels)
    check_shape("labels", labels, (student.shape[0],), what="(one label per row)")
    check_class_indices("labels", labels, student.shape[1], ignore_index=ignore_index)
    return labels != ignore_index


def _kl_rows(log_p: Tensor, log_q: Tensor) -> Tensor:
    """``KL(p || q)`` per row from log-probabilities (0 where ``p`` is 0, NaN kept)."""
    return torch.where(log_p == -math.inf, 0.0, log_p.exp() * (log_p - log_q)).sum(1)


def jsd_rows(log_p: Tensor, log_q: Tensor, beta: float) -> Tensor:
    """GKD's generalised JSD per row from the student's ``log_p`` and the teacher's ``log_q``.

    ``beta = 0`` is ``KL(q || p)``, ``beta = 1`` is ``KL(p || q)`` (special-cased, since the
    mixture formula vanishes at the ends); shared with :mod:`lossatlas.language.fused_heads`.
    """
    if beta == 0.0:
        return _kl_rows(log_q, log_p)
    if beta == 1.0:
        return _kl_rows(log_p, log_q)
    log_m = torch.logaddexp(log_q + math.log(beta), log_p + math.log(1.0 - beta))
    return beta * _kl_rows(log_q, log_m) + (1.0 - beta) * _kl_rows(log_p, log_m)


# --------------------------------------------------------------------------- declarations

_VOCAB = 6


def _logit_pair(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    student = ex.normal(generator, batch, _VOCAB, dtype=dtype, scale=scale)
    teacher = ex.normal(generator, batch, _VOCAB, dtype=dtype, scale=scale)
    labels = ex.class_indices(generator, batch, num_classes=_VOCAB)
    return Example((student, teacher, labels), grad_args=(0, 1))


def _same_logits(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    logits = ex.normal(generator, batch, _VOCAB, dtype=dtype, scale=scale)
    labels = ex.class_indices(generator, batch, num_classes=_VOCAB)
    return Example((logits, logits.clone(), labels), grad_args=(0, 1))


#: The options' text that these losses and the fused heads' distillation
#: (:mod:`lossatlas.language.fused_heads`) share.
KD_ARGS = {
    "temperature": "``T > 0``.",
    "beta": "In ``[0, 1]``: 0 forward KL, 1 reverse KL, 0.5 JSD.",
    "ignore_index": "Label of rows that do not count.",
    "reduction": '``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of'
    " counted rows (tokens), never by ``V``.",
}

_DISTILLATION = Family(
    tasks=("language", "distribution", "multiclass"),
    input_kind="student logits",
    target_kind="teacher logits (and optional labels)",
    target_type=TargetKind.DISTRIBUTION,
    examples=_logit_pair,
    perfect=_same_logits,
    properties={"non_negative", "zero_at_perfect"},
    same_shape=(0, 1),
    twice_differentiable=True,
    args={"student_logits": "``(N, V)``.", "teacher_logits": "``(N, V)``.", **KD_ARGS},
    returns='``(N,)`` for ``"none"`` (0 on ignored rows), else a scalar.',
    raises={"TypeError": "Non-floating logits, non-integer labels."},
)


# --------------------------------------------------------------------------- functionals


@_DISTILLATION.loss(
    formula=r"\alpha\,\mathrm{CE}(s, y) + (1 - \alpha)\,T^2\,"
    r"\mathrm{KL}\big(\operatorname{softmax}(t/T) \,\|\, \operatorname{softmax}(s/T)\big)",
    use_when="train a small model on a large one's soft labels",
)
def distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor | None,
    *,
    temperature: Positive = 1.0,
    alpha: UnitInterval = 0.0,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Knowledge distillation (Hinton et al. 2015): softened teacher targets, optionally with CE.

    The forward KL from the teacher's softened distribution to the student's, times ``T^2``
    (so its gradients keep their size as ``T`` changes), mixed with the hard-label
    cross-entropy by ``alpha``. ``T = 1, alpha = 0`` is ``KL(softmax(t) || softmax(s))``;
    ``alpha = 1`` is :func:`lossatlas.cross_entropy` on the labels. The teacher is not
    detached for you (pass ``teacher_logits.detach()`` when it is frozen).

    .. math::
        \ell_n = \alpha\,\mathrm{CE}(s_n, y_n) + (1 - \alpha)\,T^2 \sum_v q_{n,v}
                 \log\frac{q_{n,v}}{p_{n,v}},\quad q = \operatorname{softmax}(t/T),\
                 p = \operatorname{softmax}(s/T)

    Args:
        labels: ``(N,)`` class indices, or ``None`` when every row counts and ``alpha = 0``;
            rows equal to ``ignore_index`` are left out of both terms.
        alpha: Weight of the hard-label cross-entropy in ``[0, 1]``.

    Raises:
        ValueError: Shapes that differ, ``alpha > 0`` without labels, a label out of range,
            ``temperature <= 0``.

    Example:
        >>> student = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
        >>> teacher = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
        >>> la.distillation_loss(student, teacher, None, reduction="none")
        tensor([0.0671, 0.0000])

    References:
        G. Hinton, O. Vinyals, J. Dean, `Distilling the Knowledge in a Neural Network
        <https://arxiv.org/abs/1503.02531>`_, NeurIPS 2014 Deep Learning Workshop.
    """
    keep = _check_logits(student_logits, teacher_logits, labels, ignore_index)
    if alpha > 0 and labels is None:
        raise ValueError("labels are required when alpha > 0 (the hard-label term)")
    dtype = compute_dtype(student_logits, teacher_logits)
    s, t = upcast(student_logits, dtype), upcast(teacher_logits, dtype)
    kl = _kl_rows(F.log_softmax(t / temperature, dim=1), F.log_softmax(s / temperature, dim=1))
    loss = (1.0 - alpha) * temperature**2 * kl
    if labels is not None and alpha > 0:
        safe = torch.where(keep, labels, torch.zeros_like(labels))
        ce = F.cross_entropy(s, safe, reduction="none")
        loss = loss + alpha * ce
    loss = torch.where(keep, loss, torch.zeros_like(loss))
    return reduce_loss(loss, reduction, denominator=keep.sum())


@_DISTILLATION.loss(
    formula=r"\beta\,\mathrm{KL}(q \| m) + (1 - \beta)\,\mathrm{KL}(p \| m),"
    r"\ m = \beta q + (1 - \beta) p",
    properties={"non_negative", "zero_at_perfect", "bounded"},
    use_when="on-policy LLM distillation (GKD): forward, reverse or JSD",
    peers={"TRL": "GKDTrainer.generalized_jsd_loss: same beta convention (0 fwd, 1 rev KL)"},
)
def generalized_jsd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor | None,
    *,
    beta: UnitInterval = 0.5,
    temperature: Positive = 1.0,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Generalised Jensen-Shannon divergence of GKD (Agarwal et al. 2024), per token.

    With the student ``p`` and teacher ``q`` (softmax of the logits over ``T``) and their
    mixture ``m = beta q + (1 - beta) p``: ``beta KL(q || m) + (1 - beta) KL(p || m)``.
    **``beta = 0`` is the forward KL ``KL(q || p)``** (teacher to student: mode-covering, as in
    :func:`distillation_loss`) and **``beta = 1`` the reverse KL ``KL(p || q)``** (student to
    teacher: mode-seeking) -- TRL's convention, which special-cases the two ends since the
    mixture formula vanishes there. ``beta = 0.5`` is the symmetric Jensen-Shannon divergence,
    bounded by ``log 2``. Computed in log space (the mixture by log-sum-exp).

    .. math::
        \ell_n = \beta\,\mathrm{KL}(q_n \| m_n) + (1 - \beta)\,\mathrm{KL}(p_n \| m_n),\quad
        m = \beta q + (1 - \beta) p

    Args:
        labels: ``(N,)`` token ids, or ``None`` when every row counts; rows equal to
            ``ignore_index`` are left out.

    Raises:
        ValueError: Shapes that differ, a label out of range, ``beta`` outside [0, 1].

    Example:
        >>> student = torch.tensor([[1.0, 0.0]])
        >>> teacher = torch.tensor([[2.0, 0.0]])
        >>> la.generalized_jsd_loss(student, teacher, None, beta=0.0)  # forward KL
        tensor(0.0671)
        >>> la.generalized_jsd_loss(student, teacher, None, beta=1.0)  # reverse KL
        tensor(0.0826)

    References:
        R. Agarwal, N. Vieillard, Y. Zhou, P. Stanczyk, S. Ramos, M. Geist, O. Bachem,
        `On-Policy Distillation of Language Models: Learning from Self-Generated Mistakes
        <https://arxiv.org/abs/2306.13649>`_, ICLR 2024.
    """
    keep = _check_logits(student_logits, teacher_logits, labels, ignore_index)
    dtype = compute_dtype(student_logits, teacher_logits)
    log_p = F.log_softmax(upcast(student_logits, dtype) / temperature, dim=1)
    log_q = F.log_softmax(upcast(teacher_logits, dtype) / temperature, dim=1)
    loss = torch.where(keep, jsd_rows(log_p, log_q, beta), 0.0)
    return reduce_loss(loss, reduction, denominator=keep.sum())


# --------------------------------------------------------------------------- modules


class DistillationLoss(LossModule, functional=distillation_loss):
    """Module form of :func:`lossatlas.distillation_loss`."""


class GeneralizedJSDLoss(LossModule, functional=generalized_jsd_loss):
    """Module form of :func:`lossatlas.generalized_jsd_loss`."""
