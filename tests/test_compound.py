"""Dice + CE and Dice + focal: MONAI parity where semantics coincide, parts, errors."""

import itertools

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la

monai_losses = pytest.importorskip("monai.losses", reason="MONAI is the compound reference")

N, C, H, W = 2, 3, 4, 4


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(N, C, H, W, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, C, (N, H, W), generator=g)
    return logits, labels


@pytest.mark.parametrize(
    ("include_background", "squared_pred", "batch"),
    list(itertools.product([True, False], repeat=3)),
)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_dice_ce_equals_monai(include_background, squared_pred, batch, reduction):
    logits, labels = _inputs()
    options = dict(
        include_background=include_background,
        squared_pred=squared_pred,
        batch=batch,
        lambda_dice=0.7,
        lambda_ce=1.3,
        label_smoothing=0.1,
    )
    expected = monai_losses.DiceCELoss(
        softmax=True, to_onehot_y=True, reduction=reduction, **options
    )(logits, labels.unsqueeze(1))
    out = la.dice_ce_loss(logits, labels, reduction=reduction, return_parts=True, **options)
    torch.testing.assert_close(out.total, expected)
    torch.testing.assert_close(out.total, 0.7 * out.parts["dice"] + 1.3 * out.parts["ce"])


def test_dice_ce_parts_are_the_separate_losses():
    logits, labels = _inputs(seed=1)
    weight = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64)
    labels[0, 0, 0] = 255
    out = la.dice_ce_loss(logits, labels, weight=weight, ignore_index=255, return_parts=True)
    torch.testing.assert_close(
        out.parts["dice"], la.dice_loss(logits, labels, weight=weight, ignore_index=255)
    )
    torch.testing.assert_close(
        out.parts["ce"], la.cross_entropy(logits, labels, weight=weight, ignore_index=255)
    )
    torch.testing.assert_close(out.total, out.parts["dice"] + out.parts["ce"])
    assert set(out.detached()) == {"total", "dice", "ce"}


def test_dice_ce_weighted_sum_equals_monai():
    # MONAI gives weight[1:] to its Dice without background and all of it to the CE; its
    # weighted Dice mean divides by N * C' instead of the weights' sum, so compare "sum".
    logits, labels = _inputs(seed=2)
    weight = torch.tensor([0.5, 2.0, 1.5], dtype=torch.float64)
    for include_background in (True, False):
        expected = monai_losses.DiceCELoss(
            softmax=True,
            to_onehot_y=True,
            weight=weight,
            include_background=include_background,
            reduction="sum",
        )(logits, labels.unsqueeze(1))
        out = la.dice_ce_loss(
            logits, labels, weight=weight, reduction="sum", include_background=include_background
        )
        torch.testing.assert_close(out, expected)


def test_dice_ce_probability_targets():
    logits, labels = _inputs(seed=3)
    onehot = F.one_hot(labels, C).movedim(-1, 1).double()
    a = la.dice_ce_loss(logits, labels)
    b = la.dice_ce_loss(logits, onehot)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("gamma", [0.0, 2.0, 3.5])
@pytest.mark.parametrize("include_background", [True, False])
def test_dice_focal_parts_equal_monai(gamma, include_background):
    logits, labels = _inputs(seed=4)
    out = la.dice_focal_loss(
        logits,
        labels,
        gamma=gamma,
        lambda_dice=2.0,
        lambda_focal=0.5,
        include_background=include_background,
        reduction="sum",
        return_parts=True,
    )
    dice = monai_losses.DiceLoss(
        softmax=True, to_onehot_y=True, reduction="sum", include_background=include_background
    )(logits, labels.unsqueeze(1))
    # MONAI's softmax focal gives -(1 - p)^gamma log p on the one-hot channels ("none"); their
    # sum is the per-pixel focal loss summed. (MONAI's own "sum" averages the pixels first.)
    focal = monai_losses.FocalLoss(
        use_softmax=True, to_onehot_y=True, gamma=gamma, reduction="none"
    )(logits, labels.unsqueeze(1)).sum()
    # MONAI's one-hot is float32, so its focal sum comes back in float32.
    assert focal.dtype == torch.float32
    torch.testing.assert_close(out.parts["dice"], dice)
    torch.testing.assert_close(out.parts["focal"], focal.double(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out.total, 2.0 * dice + 0.5 * out.parts["focal"])


def test_dice_focal_gamma_zero_focal_part_is_cross_entropy():
    logits, labels = _inputs(seed=5)
    out = la.dice_focal_loss(logits, labels, gamma=0.0, return_parts=True)
    torch.testing.assert_close(out.parts["focal"], F.cross_entropy(logits, labels))


def test_ignore_index_in_both_parts():
    logits, labels = _inputs(seed=6)
    labels[1, :2] = 255
    ignored = (labels == 255).unsqueeze(1).expand_as(logits)
    for fn in (la.dice_ce_loss, la.dice_focal_loss):
        a = logits.clone().requires_grad_(True)
        other = logits.clone()
        other[ignored] = -7.0
        b = other.requires_grad_(True)
        fn(a, labels, ignore_index=255).backward()
        fn(b, labels, ignore_index=255).backward()
        torch.testing.assert_close(a.grad, b.grad)
        assert (a.grad[ignored] == 0).all()


def test_modules_return_the_total_and_parts_on_request():
    logits, labels = _inputs(seed=7)
    weight = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    module = la.nn.DiceCELoss(weight=weight, lambda_ce=0.5)
    assert "weight" in module.state_dict()
    out = module(logits, labels)
    assert isinstance(out, torch.Tensor)
    torch.testing.assert_close(out, la.dice_ce_loss(logits, labels, weight=weight, lambda_ce=0.5))
    parts = la.nn.DiceCELoss(weight=weight, lambda_ce=0.5, return_parts=True)(logits, labels)
    torch.testing.assert_close(parts.total, out)
    assert "return_parts=True" in repr(la.nn.DiceFocalLoss(return_parts=True))
    out = la.nn.DiceFocalLoss(gamma=1.0, return_parts=True)(logits, labels)
    assert set(out.parts) == {"dice", "focal"}


def test_bad_options():
    logits, labels = _inputs()
    with pytest.raises(ValueError, match="'mean' or 'sum' for a compound loss"):
        la.dice_ce_loss(logits, labels, reduction="none")
    labels[0, 0, 0] = 4
    with pytest.raises(ValueError, match=r"class index 4 at position \(0, 0, 0\)"):
        la.dice_ce_loss(logits, labels)


# --------------------------------------------------------------------------- sigmoid (multi-label)


def _masks(seed, c):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(N, c, H, W, generator=g, dtype=torch.float64) * 2
    return logits, (torch.rand(N, c, H, W, generator=g) > 0.6).double()


@pytest.mark.parametrize(("squared_pred", "batch"), [(False, False), (True, True)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_dice_ce_equals_monai_sigmoid_one_channel(squared_pred, batch, reduction, weighted):
    # MONAI DiceCELoss(sigmoid=True) takes BCEWithLogitsLoss(pos_weight=weight) for C = 1, and
    # its DiceLoss applies no class weight to a one-channel target: ours pos_weight=w only.
    logits, mask = _masks(20, 1)
    weight = torch.tensor([2.5], dtype=torch.float64) if weighted else None
    options = dict(squared_pred=squared_pred, batch=batch, reduction=reduction, lambda_ce=0.7)
    reference = monai_losses.DiceCELoss(sigmoid=True, weight=weight, **options)
    a, b = logits.clone().requires_grad_(True), logits.clone().requires_grad_(True)
    expected = reference(b, mask)
    value = la.binary_dice_ce_loss(a, mask, pos_weight=weight, **options)
    torch.testing.assert_close(value, expected)
    value.backward()
    expected.backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_binary_dice_ce_many_channels_is_dice_plus_bce_per_channel():
    # MONAI's C > 1 sigmoid form uses a softmax CE (the channels as exclusive classes); ours is
    # the sum of its two documented terms, each from torch / binary_dice_loss.
    logits, mask = _masks(21, 3)
    pos_weight = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    expected_ce = F.binary_cross_entropy_with_logits(
        logits, mask, pos_weight=pos_weight.view(3, 1, 1)
    )
    expected_dice = la.binary_dice_loss(logits, mask, include_background=False)
    out = la.binary_dice_ce_loss(
        logits, mask.bool(), include_background=False, pos_weight=pos_weight, return_parts=True
    )
    torch.testing.assert_close(out.parts["ce"], expected_ce)
    torch.testing.assert_close(out.parts["dice"], expected_dice)
    torch.testing.assert_close(out.total, expected_ce + expected_dice)
    twin = la.nn.BinaryDiceCELoss(include_background=False, pos_weight=pos_weight)
    torch.testing.assert_close(twin(logits, mask), out.total)


def test_binary_dice_ce_errors():
    logits, mask = _masks(22, 2)
    with pytest.raises(ValueError, match=r"pos_weight must have shape \(2,\)"):
        la.binary_dice_ce_loss(logits, mask, pos_weight=torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="'none'"):
        la.binary_dice_ce_loss(logits, mask, reduction="none")
    with pytest.raises(ValueError, match=r"target must hold probabilities in \[0, 1\]"):
        la.binary_dice_ce_loss(logits, mask * 2)
