"""Asymmetric loss (ASL): multi-label and single-label.

References: the official code (Alibaba-MIIL/ASL, src/loss_functions/losses.py, AsymmetricLoss
and ASLSingleLabel) re-written line by line in torch below, and the identities of the paper.
"""

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la


def _multilabel(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 5, generator=g, dtype=torch.float64) * 2
    y = torch.randint(0, 2, (6, 5), generator=g).to(torch.float64)
    return x, y


def _official_single_label(inputs, target, gamma_pos=0.0, gamma_neg=4.0, eps=0.1):
    """ASLSingleLabel.forward (reduction='mean')."""
    num_classes = inputs.size()[-1]
    log_preds = torch.log_softmax(inputs, dim=-1)
    targets = torch.zeros_like(inputs).scatter_(1, target.long().unsqueeze(1), 1)
    anti_targets = 1 - targets
    xs_pos = torch.exp(log_preds) * targets
    xs_neg = (1 - torch.exp(log_preds)) * anti_targets
    w = torch.pow(1 - xs_pos - xs_neg, gamma_pos * targets + gamma_neg * anti_targets)
    log_preds = log_preds * w
    targets_classes = targets.mul(1 - eps).add(eps / num_classes)
    return (-targets_classes.mul(log_preds)).sum(-1).mean()


def test_asl_sum_equals_the_official_sum():
    x, y = _multilabel()
    official = la.get("asymmetric_loss").oracle(x, y, reduction="sum")
    torch.testing.assert_close(la.asymmetric_loss(x, y, reduction="sum"), official)


def test_asl_without_focusing_or_clip_is_bce():
    x, y = _multilabel(1)
    torch.testing.assert_close(
        la.asymmetric_loss(x, y, gamma_pos=0.0, gamma_neg=0.0, clip=0.0),
        F.binary_cross_entropy_with_logits(x, y),
    )


def test_asl_with_equal_gammas_and_no_clip_is_unweighted_focal():
    x, y = _multilabel(2)
    torch.testing.assert_close(
        la.asymmetric_loss(x, y, gamma_pos=2.0, gamma_neg=2.0, clip=0.0),
        la.binary_focal_loss(x, y, alpha=None, gamma=2.0),
    )


def test_asl_discards_negatives_below_the_margin():
    x = torch.tensor([[-3.0, -2.9]])  # sigmoid: 0.047, 0.052
    loss = la.asymmetric_loss(x, torch.zeros_like(x), clip=0.05, reduction="none")
    assert loss[0, 0] == 0.0 and loss[0, 1] > 0.0


def test_asl_is_finite_where_the_official_code_clamps():
    x = torch.tensor([[-200.0]], dtype=torch.float64)
    loss = la.asymmetric_loss(x, torch.ones_like(x), gamma_pos=0.0)
    torch.testing.assert_close(loss, torch.tensor(200.0, dtype=torch.float64))  # -log sigma(-200)


def test_single_label_equals_the_official_code():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(7, 4, generator=g, dtype=torch.float64)
    t = torch.randint(0, 4, (7,), generator=g)
    torch.testing.assert_close(la.asymmetric_single_label_loss(x, t), _official_single_label(x, t))
    torch.testing.assert_close(
        la.asymmetric_single_label_loss(x, t, gamma_pos=1.0, gamma_neg=2.0, label_smoothing=0.2),
        _official_single_label(x, t, 1.0, 2.0, 0.2),
    )


def test_single_label_without_focusing_is_smoothed_ce():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    t = torch.randint(0, 3, (5,), generator=g)
    torch.testing.assert_close(
        la.asymmetric_single_label_loss(x, t, gamma_neg=0.0, label_smoothing=0.1),
        F.cross_entropy(x, t, label_smoothing=0.1),
    )


def test_bad_options():
    x, y = _multilabel()
    with pytest.raises(ValueError, match=r"clip must be in \[0, 1\]"):
        la.asymmetric_loss(x, y, clip=1.5)
    with pytest.raises(ValueError, match="target must hold probabilities"):
        la.asymmetric_loss(x, y * 2)
