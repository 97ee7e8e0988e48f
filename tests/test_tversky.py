"""Tversky and focal Tversky: MONAI parity, identities with Dice/Jaccard, the exponent, errors."""

import itertools

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la

monai_losses = pytest.importorskip("monai.losses", reason="MONAI is the reference for Tversky")

N, C, H, W = 2, 3, 3, 4


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(N, C, H, W, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, C, (N, H, W), generator=g)
    return logits, labels


def _onehot(labels):
    return F.one_hot(labels, C).movedim(-1, 1).double()


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
@pytest.mark.parametrize(
    ("include_background", "batch"), list(itertools.product([True, False], repeat=2))
)
@pytest.mark.parametrize(("alpha", "beta"), [(0.3, 0.7), (0.5, 0.5), (1.0, 0.0), (0.9, 2.0)])
def test_equals_monai(activation, include_background, batch, alpha, beta):
    logits, labels = _inputs()
    options = dict(alpha=alpha, beta=beta, include_background=include_background, batch=batch)
    if activation == "softmax":
        fn, target, monai_target = la.tversky_loss, labels, labels.unsqueeze(1)
    else:
        fn = la.binary_tversky_loss
        target = torch.rand(N, C, H, W, generator=torch.Generator().manual_seed(1)) > 0.5
        target = monai_target = target.double()
    for reduction in ("none", "mean", "sum"):
        reference = monai_losses.TverskyLoss(
            softmax=activation == "softmax",
            sigmoid=activation == "sigmoid",
            to_onehot_y=activation == "softmax",
            reduction=reduction,
            **options,
        )(logits, monai_target)
        actual = fn(logits, target, reduction=reduction, **options)
        torch.testing.assert_close(actual, reference.reshape(actual.shape), rtol=1e-6, atol=1e-12)


def test_ignore_index_against_monai():
    logits, labels = _inputs(seed=2)
    labels[0, 1, :] = 255
    reference = monai_losses.TverskyLoss(
        softmax=True, to_onehot_y=True, ignore_index=255, alpha=0.3, beta=0.7, reduction="none"
    )(logits, labels.unsqueeze(1))
    actual = la.tversky_loss(logits, labels, ignore_index=255, reduction="none")
    torch.testing.assert_close(actual, reference.reshape(actual.shape))


@pytest.mark.parametrize("smooth", [1e-5, 1.0])
def test_half_half_is_dice_with_doubled_smoothing(smooth):
    # (I + s) / (I + (P - I)/2 + (G - I)/2 + s) = (2I + 2s) / (P + G + 2s): Dice with 2s.
    logits, labels = _inputs(seed=3)
    tversky = la.tversky_loss(
        logits, labels, alpha=0.5, beta=0.5, smooth_nr=smooth, smooth_dr=smooth, reduction="none"
    )
    dice = la.dice_loss(
        logits, labels, smooth_nr=2 * smooth, smooth_dr=2 * smooth, reduction="none"
    )
    torch.testing.assert_close(tversky, dice)
    mask = _onehot(labels)
    torch.testing.assert_close(
        la.binary_tversky_loss(
            logits, mask, alpha=0.5, beta=0.5, smooth_nr=smooth, smooth_dr=smooth
        ),
        la.binary_dice_loss(logits, mask, smooth_nr=2 * smooth, smooth_dr=2 * smooth),
    )


def test_one_one_is_jaccard_with_doubled_smoothing():
    # (I + s) / (P + G - I + s) = (2I + 2s) / (2(P + G - I) + 2s): MONAI's Jaccard with 2s.
    logits, labels = _inputs(seed=4)
    torch.testing.assert_close(
        la.tversky_loss(logits, labels, alpha=1.0, beta=1.0, reduction="none"),
        la.jaccard_loss(logits, labels, smooth_nr=2e-5, smooth_dr=2e-5, reduction="none"),
    )


def test_formula_written_out_with_alpha_on_false_positives():
    logits, labels = _inputs(seed=5)
    p, g = torch.softmax(logits, dim=1), _onehot(labels)
    tp = (p * g).sum(dim=(2, 3))
    fp = (p * (1 - g)).sum(dim=(2, 3))
    fn = ((1 - p) * g).sum(dim=(2, 3))
    alpha, beta = 0.2, 0.9
    expected = 1 - (tp + 1e-5) / (tp + alpha * fp + beta * fn + 1e-5)
    actual = la.tversky_loss(logits, labels, alpha=alpha, beta=beta, reduction="none")
    torch.testing.assert_close(actual, expected)
    # More weight on false negatives penalises a prediction that misses the foreground.
    miss = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
    miss[:, 0] = 3.0  # predicts background everywhere
    target = torch.ones(1, 4, 4, dtype=torch.long)
    low = la.tversky_loss(miss, target, alpha=0.7, beta=0.3, reduction="none")[0, 1]
    high = la.tversky_loss(miss, target, alpha=0.3, beta=0.7, reduction="none")[0, 1]
    assert high > low


def test_focal_tversky_applies_gamma_per_class_then_averages():
    logits, labels = _inputs(seed=6)
    options = dict(alpha=0.3, beta=0.7)
    per_class = la.tversky_loss(logits, labels, reduction="none", **options)
    gamma = 0.75
    focal = la.focal_tversky_loss(logits, labels, gamma=gamma, reduction="none", **options)
    torch.testing.assert_close(focal, per_class**gamma)
    mean = la.focal_tversky_loss(logits, labels, gamma=gamma, **options)
    torch.testing.assert_close(mean, (per_class**gamma).mean())
    assert not torch.allclose(mean, per_class.mean() ** gamma)  # not the mean raised to gamma


def test_focal_tversky_exponent_against_the_paper_notation():
    # Abraham & Khan write (1 - TI)^(1/g) with g = 4/3; here the exponent is gamma = 0.75.
    logits, labels = _inputs(seed=7)
    ti = 1 - la.tversky_loss(logits, labels, reduction="none")
    paper = (1 - ti) ** (1 / (4 / 3))
    torch.testing.assert_close(la.focal_tversky_loss(logits, labels, reduction="none"), paper)
    mask = _onehot(labels)
    ti_b = 1 - la.binary_tversky_loss(logits, mask, reduction="none")
    torch.testing.assert_close(
        la.binary_focal_tversky_loss(logits, mask, gamma=2.0, reduction="none"), (1 - ti_b) ** 2
    )


def test_focal_tversky_gamma_one_is_tversky():
    logits, labels = _inputs(seed=8)
    torch.testing.assert_close(
        la.focal_tversky_loss(logits, labels, gamma=1.0), la.tversky_loss(logits, labels)
    )


def test_focal_tversky_finite_gradient_at_a_perfect_prediction():
    labels = torch.randint(0, 2, (1, 4, 4))
    for dtype in (torch.float32, torch.float64):
        logits = (F.one_hot(labels, 2).movedim(-1, 1) * 200.0 - 100.0).to(dtype)
        x = logits.requires_grad_(True)
        loss = la.focal_tversky_loss(x, labels, gamma=0.5)
        loss.backward()
        assert torch.isfinite(loss) and float(loss.detach()) < 1e-6
        assert torch.isfinite(x.grad).all()


def test_module_twins_and_buffers():
    weight = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
    logits, labels = _inputs(seed=9)
    module = la.nn.FocalTverskyLoss(gamma=1.5, weight=weight)
    assert "weight" in module.state_dict()
    torch.testing.assert_close(
        module(logits, labels), la.focal_tversky_loss(logits, labels, gamma=1.5, weight=weight)
    )
    mask = _onehot(labels)
    torch.testing.assert_close(
        la.nn.BinaryTverskyLoss(alpha=0.1)(logits, mask),
        la.binary_tversky_loss(logits, mask, alpha=0.1),
    )


def test_bad_options():
    logits, labels = _inputs()
    labels[0, 0, 0] = 3
    with pytest.raises(ValueError, match=r"class index 3 at position \(0, 0, 0\)"):
        la.tversky_loss(logits, labels)
    with pytest.raises(ValueError, match="same shape"):
        la.binary_tversky_loss(logits, logits[:, :2].sigmoid())
