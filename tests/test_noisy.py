"""Noisy-label losses: GCE, SCE, bi-tempered logistic (multi-class and binary).

Reference values are the papers' formulas worked in float64 here; the bi-tempered softmax's
normaliser is found independently by bisection (the library uses the official fixed point).
"""

import math

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la


def _inputs(seed=0, n=8, c=4, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
    target = torch.randint(0, c, (n,), generator=g)
    return logits, target


def _p_true(logits, target):
    return torch.softmax(logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)


# --------------------------------------------------------------------------- GCE


def test_gce_formula():
    # Zhang & Sabuncu 2018, eq. (6): L_q = (1 - p_y^q) / q
    logits, target = _inputs()
    p = _p_true(logits, target)
    for q in (0.3, 0.7, 1.0):
        torch.testing.assert_close(
            la.generalized_cross_entropy(logits, target, q=q, reduction="none"), (1 - p**q) / q
        )


def test_gce_tends_to_ce_as_q_goes_to_zero():
    logits, target = _inputs(1)
    torch.testing.assert_close(
        la.generalized_cross_entropy(logits, target, q=1e-9),
        F.cross_entropy(logits, target),
        rtol=1e-7,
        atol=1e-8,
    )


def test_gce_at_q_one_is_half_the_mae_to_the_one_hot():
    # sum_c |e_y - p|_c = 2 (1 - p_y); GCE(q=1) = 1 - p_y
    logits, target = _inputs(2)
    p = torch.softmax(logits, dim=1)
    mae = (F.one_hot(target, 4).to(p.dtype) - p).abs().sum(1)
    torch.testing.assert_close(
        la.generalized_cross_entropy(logits, target, q=1.0, reduction="none"), mae / 2
    )


def test_gce_is_bounded_by_one_over_q():
    logits = torch.tensor([[1e4, -1e4]])
    loss = la.generalized_cross_entropy(logits, torch.tensor([1]), q=0.5)
    assert loss <= 2.0 and torch.isfinite(loss)


# --------------------------------------------------------------------------- SCE


def test_sce_formula_with_the_papers_a():
    # Wang et al. 2019, eq. (5)-(7): alpha CE + beta RCE, RCE = -A (1 - p_y), A = -4
    logits, target = _inputs(3)
    p = _p_true(logits, target)
    expected = -0.1 * p.log() + 1.0 * 4.0 * (1 - p)
    torch.testing.assert_close(
        la.symmetric_cross_entropy(logits, target, reduction="none"), expected
    )


def test_sce_with_beta_zero_is_ce():
    logits, target = _inputs(4)
    torch.testing.assert_close(
        la.symmetric_cross_entropy(logits, target, alpha=1.0, beta=0.0),
        F.cross_entropy(logits, target),
    )


def test_sce_matches_the_official_code_where_its_softmax_clamp_is_inactive():
    """HanxunH/SCELoss-Reproduce loss.py: clamp(softmax, 1e-7), clamp(one_hot, 1e-4)."""
    logits, target = _inputs(5)  # moderate logits: no probability below 1e-7
    pred = torch.clamp(F.softmax(logits, dim=1), min=1e-7, max=1.0)
    one_hot = torch.clamp(F.one_hot(target, 4).to(logits.dtype), min=1e-4, max=1.0)
    rce = -torch.sum(pred * torch.log(one_hot), dim=1)
    official = 0.1 * F.cross_entropy(logits, target) + 1.0 * rce.mean()
    torch.testing.assert_close(
        la.symmetric_cross_entropy(logits, target, log_zero=math.log(1e-4)), official
    )


def test_sce_refuses_a_non_negative_log_zero():
    logits, target = _inputs()
    with pytest.raises(ValueError, match=r"log_zero must be in \[-inf, 0\)"):
        la.symmetric_cross_entropy(logits, target, log_zero=0.0)


# --------------------------------------------------------------------------- bi-tempered


def _log_t(u, t):
    return torch.log(u) if t == 1 else (u ** (1 - t) - 1) / (1 - t)


def _exp_t(u, t):
    return torch.exp(u) if t == 1 else torch.relu(1 + (1 - t) * u) ** (1 / (1 - t))


def _tempered_softmax_bisection(a, t, steps=200):
    """Solve sum_c exp_t(a_c - lam) = 1 for lam by bisection (independent of the library)."""
    lo = a.amax(1, keepdim=True) - 0.0
    hi = a.amax(1, keepdim=True) + 50.0
    for _ in range(steps):
        mid = (lo + hi) / 2
        too_big = _exp_t(a - mid, t).sum(1, keepdim=True) > 1
        lo = torch.where(too_big, mid, lo)
        hi = torch.where(too_big, hi, mid)
    return _exp_t(a - (lo + hi) / 2, t)


def _bi_tempered_reference(a, labels, t1, t2):
    """Amid et al. 2019, eq. (6), with the exact tempered softmax."""
    p = _tempered_softmax_bisection(a, t2)
    safe = torch.where(labels > 0, labels, torch.ones_like(labels))
    self_term = torch.where(labels > 0, labels * _log_t(safe, t1), torch.zeros_like(labels))
    terms = (
        self_term
        - labels * _log_t(p, t1)
        - labels ** (2 - t1) / (2 - t1)
        + p ** (2 - t1) / (2 - t1)
    )
    return terms.sum(1)


def test_bi_tempered_at_unit_temperatures_is_ce():
    logits, target = _inputs(6)
    torch.testing.assert_close(
        la.bi_tempered_logistic_loss(logits, target, t1=1.0, t2=1.0),
        F.cross_entropy(logits, target),
    )


@pytest.mark.parametrize(("t1", "t2"), [(0.8, 1.2), (0.5, 2.0), (1.0, 1.5), (0.7, 1.0)])
def test_bi_tempered_equals_the_formula_with_an_exact_normaliser(t1, t2):
    logits, target = _inputs(7)
    labels = F.one_hot(target, 4).to(torch.float64)
    expected = _bi_tempered_reference(logits, labels, t1, t2)
    actual = la.bi_tempered_logistic_loss(
        logits, target, t1=t1, t2=t2, num_iters=60, reduction="none"
    )
    torch.testing.assert_close(actual, expected, rtol=1e-8, atol=1e-10)


def test_bi_tempered_label_smoothing_uses_the_official_convention():
    # google/bi-tempered-loss: labels = (1 - ls C/(C-1)) onehot + ls/(C-1)
    logits, target = _inputs(8)
    ls, c = 0.1, 4
    labels = (1 - ls * c / (c - 1)) * F.one_hot(target, c).to(torch.float64) + ls / (c - 1)
    expected = _bi_tempered_reference(logits, labels, 0.8, 1.2).mean()
    actual = la.bi_tempered_logistic_loss(logits, target, label_smoothing=ls, num_iters=60)
    torch.testing.assert_close(actual, expected, rtol=1e-8, atol=1e-10)


def test_bi_tempered_is_bounded_for_t1_below_one():
    # With a one-hot label the loss is at most -log_t1(0) = 1 / (1 - t1).
    logits = torch.tensor([[1e3, -1e3, 0.0]], dtype=torch.float64)
    loss = la.bi_tempered_logistic_loss(logits, torch.tensor([1]), t1=0.8, t2=1.2)
    assert torch.isfinite(loss) and loss <= 1 / (1 - 0.8)
    ce = F.cross_entropy(logits, torch.tensor([1]))
    assert ce > 1e3  # cross-entropy is not bounded


def test_binary_bi_tempered_at_unit_temperatures_is_bce():
    g = torch.Generator().manual_seed(9)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    y = torch.rand(5, 3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(
        la.binary_bi_tempered_logistic_loss(x, y, t1=1.0, t2=1.0, reduction="none"),
        F.binary_cross_entropy_with_logits(x, y, reduction="none")
        + (y * y.log() + (1 - y) * (1 - y).log()),  # minus the label's entropy: a Bregman
    )


def test_binary_bi_tempered_is_the_two_class_loss_on_x_and_zero():
    x = torch.tensor([1.5, -0.5], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0], dtype=torch.float64)
    two_class = la.bi_tempered_logistic_loss(
        torch.stack([x, torch.zeros_like(x)], 1), torch.tensor([0, 1]), reduction="none"
    )
    torch.testing.assert_close(
        la.binary_bi_tempered_logistic_loss(x, y, reduction="none"), two_class
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"t1": 0.0}, r"t1 must be in \(0, 1\]"),
        ({"t1": 1.2}, r"t1 must be in \(0, 1\]"),
        ({"t2": 0.9}, r"t2 must be in \[1, inf\]"),
        ({"num_iters": 0}, r"num_iters must be in \[1, inf\]"),
    ],
)
def test_temperatures_outside_the_domain_are_refused(kwargs, message):
    logits, target = _inputs()
    with pytest.raises(ValueError, match=message):
        la.bi_tempered_logistic_loss(logits, target, **kwargs)
