"""Seesaw loss and EQLv2: functionals against the official code's steps, modules' state.

mmdetection's ``seesaw_ce_loss`` (mmdet/models/losses/seesaw_loss.py) and EQLv2's
``get_weight``/``collect_grad`` (tztztztztz/eqlv2, mmdet/models/losses/eqlv2.py) are re-written
below line by line in torch.
"""

import threading

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la


def _mmdet_seesaw_ce(cls_score, labels, cum_samples, num_classes, p, q, eps):
    onehot_labels = F.one_hot(labels, num_classes)
    seesaw_weights = cls_score.new_ones(onehot_labels.size())
    if p > 0:
        sample_ratio_matrix = cum_samples[None, :].clamp(min=1) / cum_samples[:, None].clamp(min=1)
        index = (sample_ratio_matrix < 1.0).float()
        sample_weights = sample_ratio_matrix.pow(p) * index + (1 - index)
        mitigation_factor = sample_weights[labels.long(), :]
        seesaw_weights = seesaw_weights * mitigation_factor
    if q > 0:
        scores = F.softmax(cls_score.detach(), dim=1)
        self_scores = scores[torch.arange(0, len(scores)).long(), labels.long()]
        score_matrix = scores / self_scores[:, None].clamp(min=eps)
        index = (score_matrix > 1.0).float()
        compensation_factor = score_matrix.pow(q) * index + (1 - index)
        seesaw_weights = seesaw_weights * compensation_factor
    cls_score = cls_score + (seesaw_weights.log() * (1 - onehot_labels))
    return F.cross_entropy(cls_score, labels, weight=None, reduction="none")


def _inputs(seed=0, n=8, c=4):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g, dtype=torch.float64) * 2
    target = torch.randint(0, c, (n,), generator=g)
    return logits, target


def test_seesaw_equals_mmdetection():
    logits, target = _inputs()
    counts = torch.tensor([500.0, 40.0, 3.0, 0.0], dtype=torch.float64)
    for p, q in [(0.8, 2.0), (0.0, 2.0), (0.8, 0.0), (1.5, 1.0)]:
        expected = _mmdet_seesaw_ce(logits, target, counts, 4, p, q, 1e-2)
        actual = la.seesaw_loss(logits, target, counts, p=p, q=q, reduction="none")
        torch.testing.assert_close(actual, expected)


def test_seesaw_gradient_is_mmdetections_with_detached_compensation():
    logits, target = _inputs(5)
    counts = torch.tensor([50.0, 4.0, 30.0, 1.0], dtype=torch.float64)
    ours = logits.clone().requires_grad_(True)
    la.seesaw_loss(ours, target, counts, reduction="sum").backward()
    theirs = logits.clone().requires_grad_(True)
    _mmdet_seesaw_ce(theirs, target, counts, 4, 0.8, 2.0, 1e-2).sum().backward()
    torch.testing.assert_close(ours.grad, theirs.grad)


def test_seesaw_without_factors_is_ce():
    logits, target = _inputs(1)
    counts = torch.tensor([5.0, 1.0, 9.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(
        la.seesaw_loss(logits, target, counts, p=0.0, q=0.0), F.cross_entropy(logits, target)
    )


def test_seesaw_module_accumulates_counts_while_training_only():
    logits, target = _inputs(2)
    module = la.nn.SeesawLoss(4)
    module(logits.float(), target)
    torch.testing.assert_close(module.cum_samples, torch.bincount(target, minlength=4).float())
    module.eval()
    module(logits.float(), target)
    torch.testing.assert_close(module.cum_samples, torch.bincount(target, minlength=4).float())
    assert "cum_samples" in module.state_dict()


def test_seesaw_module_loses_no_update_across_threads():
    module = la.nn.SeesawLoss(3)
    target = torch.tensor([0, 1, 2, 2])
    logits = torch.zeros(4, 3)

    def work():
        for _ in range(50):
            module(logits, target)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    torch.testing.assert_close(module.cum_samples, torch.tensor([200.0, 200.0, 400.0]))


def _official_eqlv2_weights(pos_neg, n_i, n_c, gamma=12.0, mu=0.8, alpha=4.0):
    """EQLv2.get_weight for a head without an objectness column."""
    neg_w = 1 / (1 + torch.exp(-gamma * (pos_neg - mu)))
    pos_w = 1 + alpha * (1 - neg_w)
    return pos_w.view(1, -1).expand(n_i, n_c), neg_w.view(1, -1).expand(n_i, n_c)


def test_eqlv2_equals_the_official_weighting():
    logits, target = _inputs(3)
    pos_neg = torch.tensor([1.5, 0.9, 0.4, 0.01], dtype=torch.float64)
    onehot = F.one_hot(target, 4).to(torch.float64)
    pos_w, neg_w = _official_eqlv2_weights(pos_neg, 8, 4)
    weight = pos_w * onehot + neg_w * (1 - onehot)
    bce = F.binary_cross_entropy_with_logits(logits, onehot, reduction="none")
    expected = torch.sum(bce * weight) / 8  # official: sum / n_i
    torch.testing.assert_close(la.eqlv2_loss(logits, target, pos_neg), expected)


def test_eqlv2_first_step_is_summed_bce_and_background_rows_are_negatives():
    logits = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    expected = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="sum")
    torch.testing.assert_close(la.eqlv2_loss(logits, torch.tensor([3]), None), expected)


def test_eqlv2_module_collects_the_official_gradient_statistics():
    logits, target = _inputs(4)
    module = la.nn.EQLv2Loss(4)
    module(logits.float(), target)  # first step: weights 1
    prob = torch.sigmoid(logits.float())
    onehot = F.one_hot(target, 4).float()
    grad = torch.abs(onehot * (prob - 1) + (1 - onehot) * prob)
    torch.testing.assert_close(module.pos_grad, (grad * onehot).sum(0))
    torch.testing.assert_close(module.neg_grad, (grad * (1 - onehot)).sum(0))
    second = module(logits.float(), target)
    torch.testing.assert_close(
        second, la.eqlv2_loss(logits.float(), target, module_ratio(grad, onehot))
    )


def module_ratio(grad, onehot):
    return (grad * onehot).sum(0) / ((grad * (1 - onehot)).sum(0) + 1e-10)


def test_bad_statistics_are_refused():
    logits, target = _inputs()
    with pytest.raises(ValueError, match=r"cum_samples must have shape \(4,\)"):
        la.seesaw_loss(logits, target, torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="pos_neg must hold non-negative values"):
        la.eqlv2_loss(logits, target, -torch.ones(4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"p must be in \[0, inf\]"):
        la.nn.SeesawLoss(4, p=-1.0)
