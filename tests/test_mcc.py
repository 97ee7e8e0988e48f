"""MCC losses: MONAI ``MCCLoss`` parity, the formula by hand in float64, zero denominators, errors.

References: the installed MONAI (``monai.losses.MCCLoss``) and Abhishek & Hamarneh 2021's
eq. 3-5 worked here from ``torch`` sums in float64.
"""

import itertools

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la

monai_losses = pytest.importorskip("monai.losses", reason="MONAI is the reference")

N, C, H, W = 2, 3, 3, 4
FLAGS = list(itertools.product([True, False], [True, False]))  # include_background, batch
SMOOTHS = [(0.0, 1e-5), (1e-4, 1e-3)]


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(N, C, H, W, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, C, (N, H, W), generator=g)
    return logits, labels


def _onehot(labels):
    return F.one_hot(labels, C).movedim(-1, 1).to(torch.float64)


def _mask(seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(N, C, H, W, generator=g, dtype=torch.float64) > 0.6).double()


def _options(include_background, batch):
    for (smooth_nr, smooth_dr), reduction in itertools.product(SMOOTHS, ("none", "mean", "sum")):
        yield dict(
            include_background=include_background,
            batch=batch,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
            reduction=reduction,
        )


def _compare(ours, reference):
    torch.testing.assert_close(ours, reference.reshape(ours.shape), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("include_background", "batch"), FLAGS)
def test_softmax_equals_monai(include_background, batch):
    logits, labels = _inputs()
    for options in _options(include_background, batch):
        for ours_target, monai_target, to_onehot_y in [
            (labels, labels.unsqueeze(1), True),
            (_onehot(labels), _onehot(labels), False),
        ]:
            reference = monai_losses.MCCLoss(softmax=True, to_onehot_y=to_onehot_y, **options)(
                logits, monai_target
            )
            _compare(la.mcc_loss(logits, ours_target, **options), reference)


@pytest.mark.parametrize(("include_background", "batch"), FLAGS)
def test_sigmoid_equals_monai(include_background, batch):
    logits, _ = _inputs(seed=2)
    mask = _mask()
    for options in _options(include_background, batch):
        reference = monai_losses.MCCLoss(sigmoid=True, **options)(logits, mask)
        _compare(la.binary_mcc_loss(logits, mask, **options), reference)


def test_the_formula_by_hand():
    """Eq. 3-5 of the paper: soft TP, FP, FN, TN of each channel, 1 - MCC."""
    logits, _ = _inputs(seed=3)
    mask = _mask(seed=4)
    p = torch.sigmoid(logits).flatten(2)
    y = mask.flatten(2)
    tp, fp = (p * y).sum(-1), (p * (1 - y)).sum(-1)
    fn, tn = ((1 - p) * y).sum(-1), ((1 - p) * (1 - y)).sum(-1)
    mcc = (tp * tn - fp * fn) / torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn) + 1e-5)
    torch.testing.assert_close(la.binary_mcc_loss(logits, mask, reduction="none"), 1 - mcc)


def test_zero_denominator_is_finite_and_defined():
    """All-background prediction and target: 0 exactly when saturated, else 1; never NaN."""
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    for value, expected in [(-1000.0, 0.0), (-5.0, 1.0)]:
        logits = torch.full((1, 1, 4, 4), value, dtype=torch.float64, requires_grad=True)
        loss = la.binary_mcc_loss(logits, mask)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
        torch.testing.assert_close(loss.detach(), torch.tensor(expected, dtype=torch.float64))
        reference = monai_losses.MCCLoss(sigmoid=True)(logits.detach(), mask)
        torch.testing.assert_close(loss.detach(), reference)
    # a class absent from one sample (softmax), and predicted nowhere: finite value and gradient
    logits, labels = _inputs(seed=5)
    labels[0][labels[0] == 2] = 1
    logits[1, 0] = -1000.0  # class 0 predicted nowhere in sample 1
    x = logits.clone().requires_grad_(True)
    loss = la.mcc_loss(x, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    reference = monai_losses.MCCLoss(softmax=True, to_onehot_y=True)(logits, labels.unsqueeze(1))
    torch.testing.assert_close(loss.detach(), reference)


def test_gradcheck_near_a_zero_marginal():
    logits = torch.randn(1, 1, 2, 2, dtype=torch.float64) - 3
    mask = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x: la.binary_mcc_loss(x, mask), (logits.requires_grad_(),)
    )


def test_ignore_index_is_cropping_the_ignored_pixels():
    logits, labels = _inputs(seed=6)
    labels[:, :, -1] = 255
    ours = la.mcc_loss(logits, labels, ignore_index=255, reduction="none")
    cropped = la.mcc_loss(logits[..., :-1], labels[..., :-1].contiguous(), reduction="none")
    torch.testing.assert_close(ours, cropped)


def test_perfect_and_anti_correlated_predictions():
    mask = torch.tensor([[[[1.0, 0.0, 1.0, 0.0]]]], dtype=torch.float64)
    perfect = la.binary_mcc_loss(mask * 2000 - 1000, mask)
    inverse = la.binary_mcc_loss(1000 - mask * 2000, mask)
    torch.testing.assert_close(perfect, torch.tensor(0.0, dtype=torch.float64))
    torch.testing.assert_close(inverse, torch.tensor(2.0, dtype=torch.float64), atol=1e-5, rtol=0)


def test_bad_inputs_name_the_argument():
    logits, labels = _inputs()
    with pytest.raises(ValueError, match="smooth_dr"):
        la.mcc_loss(logits, labels, smooth_dr=0.0)
    with pytest.raises(ValueError, match="smooth_nr"):
        la.binary_mcc_loss(logits, _mask(), smooth_nr=-1.0)
    with pytest.raises(ValueError, match="C >= 2"):
        la.mcc_loss(logits[:, :1], labels.clamp_max(0))
    with pytest.raises(ValueError, match="class index 3"):
        la.mcc_loss(logits, labels + 1)
    with pytest.raises(ValueError, match="target must have the same shape"):
        la.binary_mcc_loss(logits, _mask()[:, :2])
    with pytest.raises(ValueError, match="probabilities"):
        la.binary_mcc_loss(logits, _mask() * 2)
    with pytest.raises(TypeError, match="batch"):
        la.nn.MCCLoss(batch="yes")


def test_modules_equal_the_functionals():
    logits, labels = _inputs(seed=7)
    module = la.nn.MCCLoss(include_background=False, batch=True)
    torch.testing.assert_close(
        module(logits, labels), la.mcc_loss(logits, labels, include_background=False, batch=True)
    )
    mask = _mask()
    torch.testing.assert_close(
        la.nn.BinaryMCCLoss()(logits, mask), la.binary_mcc_loss(logits, mask)
    )
