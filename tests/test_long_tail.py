"""Long-tailed classification: logit adjustment, balanced softmax, LDAM, DRW.

Reference values are computed here in float64 from the papers' formulas, and from the official
code's steps re-written in torch (google-research/logit_adjustment, kaidic/LDAM-DRW,
jiawei-ren/BalancedMetaSoftmax), with the source beside each.
"""

import math

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la

COUNTS = [900.0, 90.0, 10.0]


def _inputs(seed=0, n=6, c=3):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g, dtype=torch.float64)
    target = torch.randint(0, c, (n,), generator=g)
    return logits, target


def test_logit_adjusted_is_ce_on_logits_plus_tau_log_prior():
    # Menon et al. 2021, eq. (10): l = -log softmax(f(x) + tau log pi)_y
    logits, target = _inputs()
    prior = torch.tensor(COUNTS, dtype=torch.float64) / sum(COUNTS)
    for tau in (0.5, 1.0, 2.0):
        expected = F.cross_entropy(logits + tau * prior.log(), target, reduction="none")
        actual = la.logit_adjusted_cross_entropy(
            logits, target, samples_per_class=COUNTS, tau=tau, reduction="none"
        )
        torch.testing.assert_close(actual, expected)


def test_prior_and_counts_give_the_same_loss():
    logits, target = _inputs(1)
    prior = [c / sum(COUNTS) for c in COUNTS]
    torch.testing.assert_close(
        la.logit_adjusted_cross_entropy(logits, target, class_prior=prior),
        la.logit_adjusted_cross_entropy(logits, target, samples_per_class=COUNTS),
    )


def test_tau_zero_is_cross_entropy():
    logits, target = _inputs(2)
    torch.testing.assert_close(
        la.logit_adjusted_cross_entropy(logits, target, samples_per_class=COUNTS, tau=0.0),
        F.cross_entropy(logits, target),
    )


def test_balanced_softmax_is_ce_plus_log_counts_and_equals_tau_one():
    # Ren et al. 2020, eq. (4): softmax over n_j exp(eta_j); official code: logits + log(spc)
    logits, target = _inputs(3)
    counts = torch.tensor(COUNTS, dtype=torch.float64)
    expected = F.cross_entropy(logits + counts.log(), target)
    torch.testing.assert_close(
        la.balanced_softmax_loss(logits, target, samples_per_class=COUNTS), expected
    )
    torch.testing.assert_close(
        la.logit_adjusted_cross_entropy(logits, target, samples_per_class=COUNTS), expected
    )


def test_balanced_softmax_with_equal_counts_is_ce():
    logits, target = _inputs(4)
    torch.testing.assert_close(
        la.balanced_softmax_loss(logits, target, samples_per_class=[5, 5, 5]),
        F.cross_entropy(logits, target),
    )


def test_ignore_index_and_spatial_shapes():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    target = torch.randint(0, 3, (2, 4, 4), generator=g)
    target[0, 0, 0] = -100
    log_prior = (torch.tensor(COUNTS, dtype=torch.float64) / sum(COUNTS)).log()
    expected = F.cross_entropy(logits + log_prior.view(1, 3, 1, 1), target, ignore_index=-100)
    torch.testing.assert_close(
        la.logit_adjusted_cross_entropy(logits, target, samples_per_class=COUNTS), expected
    )


def test_adjust_logits_is_the_post_hoc_correction():
    # Menon et al. 2021, eq. (9): argmax_y f_y(x) - tau log pi_y
    logits = torch.tensor([[2.0, 1.5, -3.0]], dtype=torch.float64)
    prior = torch.tensor(COUNTS, dtype=torch.float64) / sum(COUNTS)
    torch.testing.assert_close(
        la.adjust_logits(logits, samples_per_class=COUNTS), logits - prior.log()
    )
    # The head class wins on the raw logits, the rarer class after the correction.
    assert logits.argmax(1).item() == 0
    assert la.adjust_logits(logits, samples_per_class=COUNTS).argmax(1).item() == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of class_prior and samples_per_class"),
        (
            {"class_prior": [0.5, 0.5, 0.5], "samples_per_class": COUNTS},
            "exactly one of class_prior and samples_per_class",
        ),
        ({"class_prior": [0.5, 0.3, 0.1]}, "class_prior must sum to 1, got a sum of 0.9"),
        ({"samples_per_class": [3.0, 0.0, 1.0]}, r"samples_per_class\[1\] must be in \(0, inf\]"),
        ({"samples_per_class": [3.0, 1.0]}, "one entry per class"),
        ({"samples_per_class": torch.tensor([3.0, -1.0, 1.0])}, "must be finite and > 0"),
        ({"samples_per_class": COUNTS, "tau": -1.0}, r"tau must be in \[0, inf\]"),
    ],
)
def test_bad_priors_are_refused(kwargs, message):
    logits, target = _inputs()
    with pytest.raises((ValueError, TypeError), match=message):
        la.logit_adjusted_cross_entropy(logits, target, **kwargs)


def _official_ldam(x, target, cls_num_list, max_m=0.5, s=30.0, weight=None):
    """kaidic/LDAM-DRW losses.py LDAMLoss.forward, line by line (numpy margins)."""
    import numpy as np

    m_list = 1.0 / np.sqrt(np.sqrt(np.asarray(cls_num_list)))
    m_list = m_list * (max_m / np.max(m_list))
    m_list = torch.as_tensor(m_list, dtype=x.dtype)
    index = torch.zeros_like(x, dtype=torch.uint8)
    index.scatter_(1, target.view(-1, 1), 1)
    batch_m = torch.matmul(m_list[None, :], index.to(x.dtype).transpose(0, 1)).view((-1, 1))
    x_m = x - batch_m
    output = torch.where(index.bool(), x_m, x)
    return F.cross_entropy(s * output, target, weight=weight)


def test_ldam_equals_the_official_code():
    logits, target = _inputs(6)
    cosines = torch.tanh(logits)
    torch.testing.assert_close(
        la.ldam_loss(cosines, target, samples_per_class=COUNTS),
        _official_ldam(cosines, target, COUNTS),
    )


def test_ldam_with_drw_weights_equals_the_official_weighted_code():
    logits, target = _inputs(7)
    cosines = torch.tanh(logits)
    weights = la.drw_weights(200, COUNTS, start_epoch=160).to(torch.float64)
    torch.testing.assert_close(
        la.ldam_loss(cosines, target, samples_per_class=COUNTS, weight=weights),
        _official_ldam(cosines, target, COUNTS, weight=weights),
    )


def test_ldam_with_zero_margins_is_scaled_ce():
    logits, target = _inputs(8)
    torch.testing.assert_close(
        la.ldam_loss(logits, target, samples_per_class=COUNTS, max_margin=1e-300, scale=2.0),
        F.cross_entropy(2.0 * logits, target),
    )


def test_ldam_margins_follow_the_quarter_power():
    # Cao et al. 2019, Theorem 2: Delta_j proportional to n_j^{-1/4}; rarest gets max_m
    logits = torch.zeros(3, 3, dtype=torch.float64)
    target = torch.tensor([0, 1, 2])
    loss = la.ldam_loss(logits, target, samples_per_class=COUNTS, scale=1.0, reduction="none")
    margins = torch.tensor([c**-0.25 for c in COUNTS], dtype=torch.float64)
    margins = 0.5 * margins / margins.max()
    # With zero logits: l = -log(e^{-d} / (e^{-d} + 2)) = log(1 + 2 e^{d})
    torch.testing.assert_close(loss, torch.log1p(2 * torch.exp(margins)))


def test_drw_schedule():
    # Official LDAM-DRW: before epoch 160 beta = 0 (equal weights), then beta = 0.9999,
    # weights (1 - beta) / (1 - beta^n) normalised to sum to C.
    assert torch.equal(la.drw_weights(159, COUNTS), torch.ones(3))
    beta = 0.9999
    raw = [(1 - beta) / (1 - beta**n) for n in COUNTS]
    expected = torch.tensor([3 * w / sum(raw) for w in raw])
    torch.testing.assert_close(la.drw_weights(160, COUNTS), expected)
    with pytest.raises(ValueError, match=r"beta must be in \(0, 1\)"):
        la.drw_weights(0, COUNTS, beta=1.0)
    with pytest.raises(TypeError, match="epoch must be an int"):
        la.drw_weights(1.5, COUNTS)


def test_modules_keep_counts_as_buffers():
    logits, target = _inputs(9)
    module = la.nn.BalancedSoftmaxLoss(samples_per_class=COUNTS)
    assert "samples_per_class" in dict(module.named_buffers())
    torch.testing.assert_close(
        module(logits, target),
        la.balanced_softmax_loss(logits, target, samples_per_class=COUNTS),
    )
    assert math.isfinite(float(la.nn.LDAMLoss(samples_per_class=COUNTS)(logits, target)))
