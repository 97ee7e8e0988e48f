"""Shared pieces of the learning-to-rank losses: input checks, padding, ranks and NDCG gains.

Every list loss takes ``scores`` and ``relevance`` of shape ``(Q, L)`` (queries x list slots)
and an optional bool ``mask`` of the same shape (``True`` for a real item, ``False`` for
padding). Padded slots are cut out before any arithmetic: their scores and grades are replaced
by 0 (so a NaN or ``-inf`` used as padding never reaches a value or a gradient), and where a
softmax or a log-sum-exp runs over a list, padding enters 1000 below the list's lowest real
score, where ``exp`` underflows to exactly 0 in every float dtype.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lossatlas._reduction import compute_dtype, safe_divide, upcast
from lossatlas._validation import (
    check_floating,
    check_same_device,
    check_same_shape,
    check_shape,
    check_tensor,
    describe,
    value_checks_enabled,
)

#: How far below a list's lowest real score its padding sits in a softmax (exp(-1000) == 0).
_PAD_GAP = 1000.0


def prepare_lists(
    scores: Tensor, relevance: Tensor, mask: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Checked ``(scores, relevance, valid)`` in the compute dtype, padding replaced by 0.

    Raises:
        TypeError: Non-floating scores, a bool or complex relevance, a mask that is not bool.
        ValueError: Shapes other than ``(Q, L)``, a mask of another shape, tensors on two
            devices; with value checks on, a non-finite score or a relevance that is negative
            or non-finite at a real (unmasked) slot.
    """
    check_same_device(("scores", scores), ("relevance", relevance), ("mask", mask))
    check_floating("scores", scores)
    check_shape("scores", scores, (None, None), "(Q, L): queries x list slots")
    check_tensor("relevance", relevance)
    if relevance.dtype == torch.bool or relevance.is_complex():
        raise TypeError(
            f"relevance must be a real (floating or integer) tensor of grades, got "
            f"{describe(relevance)}"
        )
    check_same_shape("scores", scores, "relevance", relevance)
    if mask is None:
        valid = torch.ones_like(scores, dtype=torch.bool)
    else:
        check_tensor("mask", mask)
        if mask.dtype != torch.bool:
            raise TypeError(
                f"mask must be a bool tensor (True for an item, False for padding), got "
                f"{describe(mask)}"
            )
        if mask.shape != scores.shape:
            raise ValueError(
                f"mask must have the shape of scores {tuple(scores.shape)} (one flag per list "
                f"slot), got {tuple(mask.shape)}"
            )
        valid = mask
    dtype = compute_dtype(scores, relevance if relevance.is_floating_point() else None)
    s = upcast(scores, dtype)
    y = relevance.to(dtype)
    if value_checks_enabled() and s.numel():
        _check_at_valid("scores", ~torch.isfinite(s) & valid, s, "finite values")
        _check_at_valid("relevance", ~(torch.isfinite(y) & (y >= 0)) & valid, y, "grades >= 0")
    zero = torch.zeros((), dtype=dtype, device=s.device)
    return torch.where(valid, s, zero), torch.where(valid, y, zero), valid


def _check_at_valid(name: str, bad: Tensor, value: Tensor, what: str) -> None:
    if bool(bad.any()):
        position = tuple(int(i) for i in bad.nonzero()[0])
        got = float(value[position].detach())
        raise ValueError(
            f"{name} must hold {what} at the real (unmasked) slots, got {got!r} at position "
            f"{position}"
        )


def padded_below(s: Tensor, valid: Tensor) -> Tensor:
    """``s`` with each padded slot ``_PAD_GAP`` below its list's lowest real score.

    A softmax or log-sum-exp over a row then gives padding exactly 0 weight, and a row that is
    all padding stays finite (its values are unused; the caller zeroes them).
    """
    low = torch.where(valid, s, torch.inf).amin(dim=1, keepdim=True).detach()
    low = torch.where(torch.isfinite(low), low, torch.zeros_like(low))
    return torch.where(valid, s, low - _PAD_GAP)


def masked_log_softmax(s: Tensor, valid: Tensor) -> Tensor:
    """The log-softmax over each list's real items; 0 at padding (never NaN, no gradient)."""
    log_p = torch.log_softmax(padded_below(s, valid), dim=1)
    return torch.where(valid, log_p, torch.zeros_like(log_p))


def pair_mask(y: Tensor, valid: Tensor) -> Tensor:
    """``(Q, L, L)``: ``[q, i, j]`` is True where items i and j are real and ``y_i > y_j``."""
    both = valid[:, :, None] & valid[:, None, :]
    return both & (y[:, :, None] > y[:, None, :])


def ranks_by_score(s: Tensor, valid: Tensor) -> Tensor:
    """1-based rank of each item in its list sorted by score (ties: the earlier slot first).

    Padding ranks after every real item. The ranks are integers (no gradient).
    """
    key = torch.where(valid, s.detach(), -torch.inf)
    order = torch.sort(key, dim=1, descending=True, stable=True).indices
    positions = torch.arange(1, s.shape[1] + 1, device=s.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, positions)


def gains(y: Tensor) -> Tensor:
    """NDCG gains ``2^y - 1`` (0 at padding, whose grade is already 0)."""
    return torch.expm1(y * math.log(2.0))


def discount(rank: Tensor) -> Tensor:
    """``1 / log2(1 + rank)`` for 1-based ranks (real-valued ranks allowed)."""
    return math.log(2.0) / torch.log1p(rank)


def ideal_dcg(y: Tensor, k: int | None) -> Tensor:
    """Each list's DCG (@k) with its items in the ideal order (padding has gain 0)."""
    g = torch.sort(gains(y), dim=1, descending=True).values
    rank = torch.arange(1, y.shape[1] + 1, device=y.device, dtype=y.dtype)
    terms = g * discount(rank)
    if k is not None:
        terms = terms * (rank <= k).to(y.dtype)
    return terms.sum(dim=1)


def normalised_gains(y: Tensor, k: int | None) -> tuple[Tensor, Tensor]:
    """``(G, idcg)``: the gains over the ideal DCG (@k) and the ideal DCG itself (0 -> G = 0)."""
    idcg = ideal_dcg(y, k)
    return safe_divide(gains(y), idcg[:, None]), idcg
