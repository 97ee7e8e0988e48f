r"""Distillation and per-token log-probabilities from hidden states, without the ``N x V`` logits.

:func:`linear_distillation_loss` and :func:`linear_sequence_log_probs` take the hidden states
and the output projections instead of the logits and walk over the tokens in chunks, the way
:func:`lossatlas.linear_cross_entropy` does (same chunk size rule, about 64 MiB of float32
logits per chunk). Each chunk runs under activation checkpointing: the forward keeps only the
inputs, and the backward recomputes one chunk's logits at a time, so the logits alive at any
moment are one chunk's (the student's and the teacher's, for distillation), whatever ``V``.
The cost is one more pair of matrix products per chunk in backward. Values and gradients are
those of the unfused computation (:func:`lossatlas.distillation_loss` /
:func:`lossatlas.generalized_jsd_loss` / :func:`lossatlas.sequence_log_probs` on
``hidden @ weight.T``) up to rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import Positive, PositiveInt, UnitInterval
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_class_indices,
    check_floating,
    check_integer,
    check_same_device,
    check_same_shape,
    check_shape,
)
from lossatlas.language.distillation import KD_ARGS, distillation_loss, jsd_rows
from lossatlas.language.linear_cross_entropy import _chunk_rows, over_chunks
from lossatlas.language.preference import per_sequence

__all__ = ["linear_distillation_loss", "linear_sequence_log_probs"]


# --------------------------------------------------------------------------- distillation


def _distillation_rows(
    student_hidden: Tensor,
    teacher_hidden: Tensor,
    safe: Tensor,
    keep: Tensor,
    student_weight: Tensor,
    teacher_weight: Tensor,
    temperature: float,
    alpha: float,
    beta: float,
) -> Tensor:
    """Per-token losses of one chunk: both heads' logits exist only inside this call."""
    s = F.linear(upcast(student_hidden, student_weight.dtype), student_weight)
    t = F.linear(upcast(teacher_hidden, teacher_weight.dtype), teacher_weight)
    log_p = F.log_softmax(s / temperature, dim=1)
    log_q = F.log_softmax(t / temperature, dim=1)
    loss = (1.0 - alpha) * temperature**2 * jsd_rows(log_p, log_q, beta)
    if alpha > 0:
        loss = loss + alpha * F.cross_entropy(s, safe, reduction="none")
    return torch.where(keep, loss, 0.0)


def _check_head(name: str, hidden: Tensor, weight_name: str, weight: Tensor) -> None:
    check_floating(name, hidden)
    check_floating(weight_name, weight)
    check_same_device((name, hidden), (weight_name, weight))
    check_shape(name, hidden, (None, None), what="(tokens, hidden size); flatten tokens first")
    check_shape(weight_name, weight, (None, hidden.shape[1]), what=f"(V, {name}.shape[1])")


def _head(
    generator: torch.Generator, batch: int, dtype: torch.dtype, scale: float
) -> tuple[Tensor, Tensor]:
    """Example hidden states ``(batch, H)`` and a head ``(V, H)``."""
    hidden = ex.normal(generator, batch, _HIDDEN, dtype=dtype, scale=scale)
    return hidden, ex.normal(generator, _VOCAB, _HIDDEN, dtype=dtype, scale=_HIDDEN**-0.5)


def _hidden_pair(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    student, student_w = _head(generator, batch, dtype, scale)
    teacher, teacher_w = _head(generator, batch, dtype, scale)
    labels = ex.class_indices(generator, batch, num_classes=_VOCAB)
    return Example((student, student_w, teacher, teacher_w, labels), grad_args=(0, 1, 2, 3))


def _same_heads(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    hidden, weight = _head(generator, batch, dtype, scale)
    labels = ex.class_indices(generator, batch, num_classes=_VOCAB)
    return Example((hidden, weight, hidden.clone(), weight.clone(), labels), grad_args=(0, 1, 2, 3))


def _unfused(
    student_hidden: Tensor,
    student_weight: Tensor,
    teacher_hidden: Tensor,
    teacher_weight: Tensor,
    target: Tensor | None,
    *,
    reduction: str = "mean",
) -> Tensor:
    """The unfused computation: :func:`distillation_loss` on the full logits."""
    return distillation_loss(
        student_hidden @ student_weight.T,
        teacher_hidden @ teacher_weight.T,
        target,
        reduction=reduction,  # type: ignore[arg-type]
    )


_HIDDEN = 5
_VOCAB = 7

_FUSED = Family(
    tasks=("language", "distribution"),
    input_kind="student hidden states and head",
    target_kind="teacher hidden states and head (and optional labels)",
    target_type=TargetKind.DISTRIBUTION,
    examples=_hidden_pair,
    perfect=_same_heads,
    oracle=_unfused,
    properties={"non_negative", "zero_at_perfect"},
    dynamic_shapes=False,
    dynamic_shapes_reason="the loop over token chunks unrolls into the graph per token count",
    args=KD_ARGS,
)


@_FUSED.loss(
    formula=r"\alpha\,\mathrm{CE}(hW_s^\top, y) + (1 - \alpha)\,T^2\,"
    r"\mathrm{JSD}_\beta\big(\operatorname{softmax}(h_t W_t^\top / T),"
    r" \operatorname{softmax}(h W_s^\top / T)\big)",
    use_when="distill a large-vocabulary LM head without materialising the N x V logits",
)
def linear_distillation_loss(  # noqa: D417 (the shared Args are filled in from KD_ARGS)
    student_hidden: Tensor,
    student_weight: Tensor,
    teacher_hidden: Tensor,
    teacher_weight: Tensor,
    target: Tensor | None,
    *,
    temperature: Positive = 1.0,
    alpha: UnitInterval = 0.0,
    beta: UnitInterval = 0.0,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    chunk_size: PositiveInt | None = None,
) -> Tensor:
    r"""Distillation from the heads' inputs: KD / GKD's JSD per chunk of tokens, logits never whole.

    The student's logits are ``s = student_hidden @ student_weight.T`` and the teacher's
    ``t = teacher_hidden @ teacher_weight.T``; each chunk of ``chunk_size`` tokens computes
    its two ``chunk x V`` blocks, its per-token loss, and frees them (recomputed in backward).
    ``beta`` is :func:`lossatlas.generalized_jsd_loss`'s: **0 (the default) the forward KL
    ``KL(q || p)``**, which makes this :func:`lossatlas.distillation_loss` on ``(s, t)``
    exactly; 1 the reverse KL ``KL(p || q)``; 0.5 the Jensen-Shannon divergence. With
    ``alpha = 0`` it is ``T^2`` times :func:`lossatlas.generalized_jsd_loss`. The teacher is
    not detached for you (pass ``teacher_hidden.detach()`` and a frozen weight).

    .. math::
        \ell_n = \alpha\,\mathrm{CE}(s_n, y_n) + (1 - \alpha)\,T^2
                 \left[\beta\,\mathrm{KL}(q_n \| m_n) + (1 - \beta)\,\mathrm{KL}(p_n \| m_n)
                 \right],\quad m = \beta q + (1 - \beta) p

    with ``p = softmax(s / T)``, ``q = softmax(t / T)`` (``beta = 0``: ``KL(q || p)``).

    Args:
        student_hidden: ``(N, H_s)`` (flatten ``(B, T, H)`` first).
        student_weight: ``(V, H_s)``, the student's ``lm_head.weight``.
        teacher_hidden: ``(N, H_t)``.
        teacher_weight: ``(V, H_t)``.
        target: ``(N,)`` token ids, or ``None`` when every row counts and ``alpha = 0``;
            rows equal to ``ignore_index`` are left out.
        alpha: Weight of the hard-label cross-entropy (on the student's unsoftened logits).
        chunk_size: Tokens per chunk; ``None`` picks about 64 MiB of float32 logits per head,
            as :func:`lossatlas.linear_cross_entropy` does.

    Returns:
        ``(N,)`` for ``"none"`` (0 on ignored rows), else a scalar; float32 for half inputs.

    Raises:
        TypeError: Non-floating tensors, non-integer labels.
        ValueError: Shapes that do not fit, a vocabulary mismatch between the heads, tensors
            on different devices, ``alpha > 0`` without labels, a label out of range.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> h = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
        >>> student_w = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
        >>> teacher_w = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
        >>> la.linear_distillation_loss(h, student_w, h, teacher_w, None, reduction="none")
        tensor([0.0671, 0.0000])
        >>> la.linear_distillation_loss(h, student_w, h, teacher_w, None, chunk_size=1)
        tensor(0.0336)

    References:
        G. Hinton, O. Vinyals, J. Dean, `Distilling the Knowledge in a Neural Network
        <https://arxiv.org/abs/1503.02531>`_, NeurIPS 2014 Deep Learning Workshop.
        R. Agarwal et al., `On-Policy Distillation of Language Models: Learning from
        Self-Generated Mistakes <https://arxiv.org/abs/2306.13649>`_, ICLR 2024.
        M. Wijmans et al., `Cut Your Losses in Large-Vocabulary Language Models
        <https://arxiv.org/abs/2411.09009>`_, ICLR 2025 (chunked heads).
    """
    _check_head("student_hidden", student_hidden, "student_weight", student_weight)
    _check_head("teacher_hidden", teacher_hidden, "teacher_weight", teacher_weight)
    check_same_device(("student_hidden", student_hidden), ("teacher_hidden", teacher_hidden))
    n, vocab = student_hidden.shape[0], student_weight.shape[0]
    check_shape("teacher_hidden", teacher_hidden, (n, None), what=f"({n} tokens, H_t)")
    check_shape("teacher_weight", teacher_weight, (vocab, None), what=f"({vocab} = V, H_t)")
    if target is None:
        if alpha > 0:
            raise ValueError("target is required when alpha > 0 (the hard-label term)")
        keep = torch.ones(n, dtype=torch.bool, device=student_hidden.device)
        safe = torch.zeros(n, dtype=torch.long, device=student_hidden.device)
    else:
        check_integer("target", target)
        check_same_device(("student_hidden", student_hidden), ("target", target))
        check_shape("target", target, (n,), what="(one label per row)")
        check_class_indices("target", target, vocab, ignore_index=ignore_index)
        keep = target != ignore_index
        safe = torch.where(keep, target, 0).long()
    dtype = compute_dtype(student_hidden, student_weight, teacher_hidden, teacher_weight)
    rows = over_chunks(
        _distillation_rows,
        _chunk_rows(n, vocab, chunk_size),
        (student_hidden, teacher_hidden, safe, keep),
        (
            upcast(student_weight, dtype),
            upcast(teacher_weight, dtype),
            float(temperature),
            float(alpha),
            float(beta),
        ),
    )
    return reduce_loss(rows, reduction, denominator=keep.sum())


class LinearDistillationLoss(LossModule, functional=linear_distillation_loss):
    """Module form of :func:`lossatlas.linear_distillation_loss`.

    Inputs: both heads' hidden states and weights, then the optional labels.
    """


# --------------------------------------------------------------------------- log-probabilities


def _token_log_probs(hidden: Tensor, safe: Tensor, weight: Tensor) -> Tensor:
    """``z_y - logsumexp(z)`` for one chunk of tokens."""
    z = F.linear(upcast(hidden, weight.dtype), weight)
    return z.gather(1, safe.unsqueeze(1)).squeeze(1) - torch.logsumexp(z, dim=1)


def linear_sequence_log_probs(
    hidden: Tensor,
    weight: Tensor,
    labels: Tensor,
    *,
    mask: Tensor | None = None,
    ignore_index: int = -100,
    average: bool = False,
    chunk_size: int | None = None,
) -> Tensor:
    r"""Per-sequence log-probabilities of ``labels`` from the hidden states and the LM head.

    :func:`lossatlas.sequence_log_probs` on ``hidden @ weight.T`` without the ``B x T x V``
    logits: the ``B * T`` tokens go through the head in chunks (checkpointed, so backward
    recomputes one chunk at a time). Feed the result to :func:`lossatlas.dpo_loss`,
    :func:`lossatlas.orpo_loss` (``average=True``), :func:`lossatlas.simpo_loss` or
    :func:`lossatlas.kto_loss`. Tokens whose label is ``ignore_index`` or whose ``mask`` is 0
    are left out; shift the labels yourself for causal models.

    .. math::
        \log \pi(y \mid x) = \sum_{t:\, m_t = 1} \left(z_{t, y_t} - \log \sum_v e^{z_{t,v}}
        \right),\quad z_t = h_t W^\top

    Args:
        hidden: ``(B, T, H)``.
        weight: ``(V, H)``, the ``lm_head.weight``.
        labels: ``(B, T)`` token ids, ``ignore_index`` where a token does not count.
        mask: ``(B, T)``, 1 for the tokens that count (optional, with ``ignore_index``).
        ignore_index: Label value of tokens that do not count.
        average: Divide each sum by its number of counted tokens; an empty sequence gives 0.
        chunk_size: Tokens per chunk; ``None`` picks about 64 MiB of float32 logits.

    Returns:
        ``(B,)``, float32 for half-precision inputs.

    Raises:
        TypeError: Non-floating ``hidden``/``weight``, non-integer labels.
        ValueError: Shapes that do not fit, a label out of range, devices that differ,
            ``chunk_size < 1``.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> hidden = torch.ones(1, 3, 2)
        >>> weight = torch.zeros(4, 2)  # uniform over 4 tokens: log(1/4) each
        >>> la.linear_sequence_log_probs(hidden, weight, torch.tensor([[1, 2, -100]]))
        tensor([-2.7726])
    """
    check_floating("hidden", hidden)
    check_floating("weight", weight)
    check_integer("labels", labels)
    check_same_device(("hidden", hidden), ("weight", weight), ("labels", labels), ("mask", mask))
    check_shape("hidden", hidden, (None, None, None), what="(B, T, H)")
    check_shape("weight", weight, (None, hidden.shape[2]), what="(V, hidden.shape[2])")
    check_shape("labels", labels, hidden.shape[:2], what="(B, T) like hidden's first two dims")
    if chunk_size is not None and (isinstance(chunk_size, bool) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    vocab = weight.shape[0]
    check_class_indices("labels", labels, vocab, ignore_index=ignore_index)
    keep = labels != ignore_index
    if mask is not None:
        check_same_shape("labels", labels, "mask", mask)
        keep = keep & mask.bool()
    b, t, h = hidden.shape
    safe = torch.where(keep, labels, 0).long().reshape(b * t)
    token = over_chunks(
        _token_log_probs,
        _chunk_rows(b * t, vocab, chunk_size),
        (hidden.reshape(b * t, h), safe),
        (upcast(weight, compute_dtype(hidden, weight)),),
    )
    return per_sequence(token.reshape(b, t), keep, average=average)
