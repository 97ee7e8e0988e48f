"""Preference optimisation (DPO/cDPO/IPO, ORPO, SimPO, KTO), distillation (KD, GKD's JSD).

Reference values are the papers' formulas as TRL's trainers write them (DPOTrainer.dpo_loss,
ORPOTrainer.odds_ratio_loss, CPOTrainer simpo, KTOTrainer.kto_loss, GKDTrainer.
generalized_jsd_loss), re-computed here in float64 with torch primitives.
"""

import math

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la


def _logps(seed=0, n=5, count=4):
    g = torch.Generator().manual_seed(seed)
    return [-(torch.rand(n, generator=g, dtype=torch.float64) * 5 + 0.1) for _ in range(count)]


# --------------------------------------------------------------------------- DPO


def test_dpo_sigmoid_cdpo_and_ipo_match_trl():
    pc, pr, rc, rr = _logps()
    beta = 0.2
    logits = (pc - pr) - (rc - rr)
    torch.testing.assert_close(
        la.dpo_loss(pc, pr, rc, rr, beta=beta, reduction="none"), -F.logsigmoid(beta * logits)
    )
    eps = 0.1
    cdpo = -F.logsigmoid(beta * logits) * (1 - eps) - F.logsigmoid(-beta * logits) * eps
    torch.testing.assert_close(
        la.dpo_loss(pc, pr, rc, rr, beta=beta, label_smoothing=eps, reduction="none"), cdpo
    )
    ipo = (logits - 1 / (2 * beta)) ** 2
    torch.testing.assert_close(
        la.dpo_loss(pc, pr, rc, rr, beta=beta, loss_type="ipo", reduction="none"), ipo
    )


def test_dpo_at_equal_log_ratios_is_log_two():
    pc, pr, _, _ = _logps(1)
    loss = la.dpo_loss(pc, pr, pc - 0.3, pr - 0.3, reduction="none")
    torch.testing.assert_close(loss, torch.full_like(loss, math.log(2.0)))


def test_dpo_parts_are_trls_reward_metrics():
    pc, pr, rc, rr = _logps(2)
    out = la.dpo_loss(pc, pr, rc, rr, beta=0.1, return_parts=True)
    chosen, rejected = 0.1 * (pc - rc), 0.1 * (pr - rr)
    torch.testing.assert_close(out.total, la.dpo_loss(pc, pr, rc, rr))
    torch.testing.assert_close(out.parts["rewards/chosen"], chosen.mean())
    torch.testing.assert_close(out.parts["rewards/margins"], (chosen - rejected).mean())
    torch.testing.assert_close(
        out.parts["rewards/accuracies"], (chosen > rejected).to(torch.float64).mean()
    )


def test_dpo_gradient_flows_only_to_the_policy():
    pc, pr, rc, rr = _logps(3)
    pc.requires_grad_(True)
    la.dpo_loss(pc, pr, rc, rr).backward()
    assert pc.grad is not None and torch.all(pc.grad < 0)  # raising chosen lowers the loss


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pr": torch.tensor([-1.0, -2.0])}, "must have the same shape"),
        ({"pc": torch.tensor([0.5, -1.0, -1.0])}, "must hold log-probabilities in"),
    ],
)
def test_dpo_bad_inputs(change, message):
    args = {"pc": -torch.ones(3), "pr": -torch.ones(3), "rc": -torch.ones(3), "rr": -torch.ones(3)}
    args.update(change)
    with pytest.raises(ValueError, match=message):
        la.dpo_loss(args["pc"], args["pr"], args["rc"], args["rr"])


def test_dpo_beta_must_be_positive():
    pc, pr, rc, rr = _logps()
    with pytest.raises(ValueError, match=r"beta must be in \(0, inf\]"):
        la.dpo_loss(pc, pr, rc, rr, beta=0.0)


# --------------------------------------------------------------------------- ORPO, SimPO


def test_orpo_matches_trl_odds_ratio_loss():
    chosen, rejected = (x / 10 for x in _logps(4, count=2))  # length-averaged log-probs
    log_odds = (chosen - rejected) - (
        torch.log1p(-torch.exp(chosen)) - torch.log1p(-torch.exp(rejected))
    )
    expected = -0.1 * F.logsigmoid(log_odds)  # TRL: loss = nll - beta * logsigmoid(log_odds)
    torch.testing.assert_close(la.orpo_loss(chosen, rejected, beta=0.1, reduction="none"), expected)
    nll = torch.tensor([1.0, 2.0, 0.5, 0.1, 3.0], dtype=torch.float64)
    torch.testing.assert_close(
        la.orpo_loss(chosen, rejected, chosen_nll=nll, reduction="none"), nll + expected
    )


def test_orpo_is_finite_for_log_probs_near_zero():
    loss = la.orpo_loss(torch.tensor([-1e-7]), torch.tensor([-50.0]))
    assert torch.isfinite(loss)


def test_simpo_formula_and_margin():
    chosen, rejected = (x / 10 for x in _logps(5, count=2))
    z = 2.5 * (chosen - rejected) - 0.8
    torch.testing.assert_close(
        la.simpo_loss(chosen, rejected, beta=2.5, gamma=0.8, reduction="none"), -F.logsigmoid(z)
    )


# --------------------------------------------------------------------------- KTO


def test_kto_matches_trl_with_unequal_set_sizes():
    g = torch.Generator().manual_seed(6)
    pc, rc = (-(torch.rand(3, generator=g, dtype=torch.float64) * 4) for _ in range(2))
    pr, rr = (-(torch.rand(2, generator=g, dtype=torch.float64) * 4) for _ in range(2))
    pk, rk = (-(torch.rand(4, generator=g, dtype=torch.float64) * 4) for _ in range(2))
    kl = (pk - rk).mean().clamp(min=0)
    chosen = 1 - torch.sigmoid(0.1 * ((pc - rc) - kl))
    rejected = 1 - torch.sigmoid(0.1 * (kl - (pr - rr)))
    expected = torch.cat([1.0 * chosen, 1.33 * rejected])
    actual = la.kto_loss(pc, pr, rc, rr, pk, rk, undesirable_weight=1.33, reduction="none")
    torch.testing.assert_close(actual, expected)


def test_kto_reference_point_is_detached_and_clamped():
    pc, pr, rc, rr = _logps(7, n=3)
    pc.requires_grad_(True)
    pk = torch.tensor([-3.0, -4.0], dtype=torch.float64, requires_grad=True)
    rk = torch.tensor([-1.0, -1.0], dtype=torch.float64)  # policy KL estimate < 0: clamped to 0
    out = la.kto_loss(pc, pr, rc, rr, pk, rk, return_parts=True)
    assert out.parts["kl"] == 0.0
    out.total.backward()
    assert pk.grad is None or torch.all(pk.grad == 0)


# --------------------------------------------------------------------------- log-probs helper


def test_sequence_log_probs_sums_and_averages_the_counted_tokens():
    g = torch.Generator().manual_seed(8)
    logits = torch.randn(2, 4, 7, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 7, (2, 4), generator=g)
    labels[1, 3] = -100
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    log_p = torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0).unsqueeze(-1))[..., 0]
    keep = (labels != -100) & mask.bool()
    expected = (log_p * keep).sum(-1)
    torch.testing.assert_close(la.sequence_log_probs(logits, labels, mask=mask), expected)
    torch.testing.assert_close(
        la.sequence_log_probs(logits, labels, mask=mask, average=True), expected / keep.sum(-1)
    )


def test_sequence_log_probs_refuses_an_out_of_range_token():
    with pytest.raises(ValueError, match="labels has class index 9"):
        la.sequence_log_probs(torch.zeros(1, 2, 4), torch.tensor([[1, 9]]))


# --------------------------------------------------------------------------- distillation


def _pair(seed=9, n=6, v=5):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, v, generator=g, dtype=torch.float64) for _ in range(2))


def test_kd_at_unit_temperature_without_ce_is_the_kl():
    s, t = _pair()
    expected = F.kl_div(
        F.log_softmax(s, 1), F.log_softmax(t, 1), log_target=True, reduction="batchmean"
    )  # KL(teacher || student), Hinton's direction
    torch.testing.assert_close(la.distillation_loss(s, t, None), expected)


def test_kd_temperature_squared_and_hard_label_mix():
    s, t = _pair(10)
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    temp, alpha = 3.0, 0.4
    kl = F.kl_div(
        F.log_softmax(s / temp, 1), F.log_softmax(t / temp, 1), log_target=True, reduction="none"
    ).sum(1)
    expected = (
        alpha * F.cross_entropy(s, labels, reduction="none") + (1 - alpha) * temp**2 * kl
    ).mean()
    torch.testing.assert_close(
        la.distillation_loss(s, t, labels, temperature=temp, alpha=alpha), expected
    )
    torch.testing.assert_close(
        la.distillation_loss(s, t, labels, alpha=1.0), F.cross_entropy(s, labels)
    )


def test_distillation_mean_is_over_kept_tokens_not_the_vocabulary():
    s, t = _pair(11)
    labels = torch.tensor([0, -100, 2, -100, 4, 1])
    keep = labels != -100
    per_token = F.kl_div(
        F.log_softmax(s, 1), F.log_softmax(t, 1), log_target=True, reduction="none"
    ).sum(1)
    torch.testing.assert_close(
        la.distillation_loss(s, t, labels), per_token[keep].sum() / keep.sum()
    )
    torch.testing.assert_close(
        la.generalized_jsd_loss(s, t, labels, beta=0.0), per_token[keep].sum() / keep.sum()
    )


def test_kd_needs_labels_for_the_hard_term():
    s, t = _pair()
    with pytest.raises(ValueError, match="labels are required when alpha > 0"):
        la.distillation_loss(s, t, None, alpha=0.5)


def test_gkd_jsd_ends_are_forward_and_reverse_kl():
    s, t = _pair(12)
    log_p, log_q = F.log_softmax(s, 1), F.log_softmax(t, 1)
    forward = (log_q.exp() * (log_q - log_p)).sum(1)  # KL(teacher || student)
    reverse = (log_p.exp() * (log_p - log_q)).sum(1)  # KL(student || teacher)
    torch.testing.assert_close(
        la.generalized_jsd_loss(s, t, None, beta=0.0, reduction="none"), forward
    )
    torch.testing.assert_close(
        la.generalized_jsd_loss(s, t, None, beta=1.0, reduction="none"), reverse
    )


def test_gkd_jsd_mixture_formula_symmetry_and_bound():
    s, t = _pair(13)
    beta = 0.3
    p, q = F.softmax(s, 1), F.softmax(t, 1)
    m = beta * q + (1 - beta) * p  # TRL: logsumexp(student + log(1-b), teacher + log b)
    expected = beta * (q * (q / m).log()).sum(1) + (1 - beta) * (p * (p / m).log()).sum(1)
    torch.testing.assert_close(
        la.generalized_jsd_loss(s, t, None, beta=beta, reduction="none"), expected
    )
    half = la.generalized_jsd_loss(s, t, None, beta=0.5, reduction="none")
    torch.testing.assert_close(half, la.generalized_jsd_loss(t, s, None, reduction="none"))
    assert torch.all(half <= math.log(2.0))
    disjoint = la.generalized_jsd_loss(
        torch.tensor([[50.0, -50.0]]), torch.tensor([[-50.0, 50.0]]), None
    )
    torch.testing.assert_close(disjoint, torch.tensor(math.log(2.0)), rtol=1e-6, atol=1e-6)
