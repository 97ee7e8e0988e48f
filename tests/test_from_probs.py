"""The overlap losses of probabilities: MONAI parity with ``softmax=False, sigmoid=False``, the
logit forms after their activation, smp's semantics by hand, the [0, 1] value check.

References: the installed MONAI (``DiceLoss`` / ``TverskyLoss`` with no activation), the logit
forms of lossatlas (themselves MONAI-tested in test_dice.py / test_tversky.py), and smp's
``DiceLoss(from_logits=False)`` formula worked by hand in float64 (smp is not installed: its
source, ``segmentation_models_pytorch/losses/dice.py``, sums over the batch and the pixels,
``(2I + s) / (P + G + s)``, and zeroes the classes absent from the target).
"""

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la

monai_losses = pytest.importorskip("monai.losses", reason="MONAI is the reference")

F64 = torch.float64
N, C, H, W = 2, 3, 3, 4


def _case(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(N, C, H, W, generator=g, dtype=F64) * 2
    labels = torch.randint(0, C, (N, H, W), generator=g)
    mask = (torch.rand(N, C, H, W, generator=g) > 0.6).to(F64)
    return logits, labels, mask


PAIRS = [  # (probability form, logit form, MONAI class, its own options)
    (la.dice_loss_from_probs, la.dice_loss, la.binary_dice_loss, "DiceLoss", {}),
    (la.jaccard_loss_from_probs, la.jaccard_loss, la.binary_jaccard_loss, "DiceLoss", {"j": 1}),
    (la.tversky_loss_from_probs, la.tversky_loss, la.binary_tversky_loss, "TverskyLoss", {}),
]


def _monai(name, extra, **options):
    if extra:
        options["jaccard"] = True
    if name == "TverskyLoss":
        options.update(alpha=0.3, beta=0.7)
    return getattr(monai_losses, name)(softmax=False, sigmoid=False, **options)


def _ours_options(name):
    return {"alpha": 0.3, "beta": 0.7} if name == "TverskyLoss" else {}


@pytest.mark.parametrize(("ours", "logit_form", "binary_form", "name", "extra"), PAIRS)
@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize(("include_background", "batch"), [(True, False), (False, True)])
def test_equals_monai_without_activation(
    ours, logit_form, binary_form, name, extra, reduction, include_background, batch
):
    logits, labels, mask = _case()
    options = dict(include_background=include_background, batch=batch, reduction=reduction)
    probs = torch.softmax(logits, dim=1)
    cases = [
        (probs, labels, labels.unsqueeze(1), True),  # class indices, one-hot taken by MONAI
        (probs, F.one_hot(labels, C).movedim(-1, 1).to(F64), None, False),
        (torch.sigmoid(logits), mask, mask, False),  # multi-label: sigmoid outputs, masks
    ]
    for p, target, monai_target, to_onehot_y in cases:
        reference = _monai(name, extra, to_onehot_y=to_onehot_y, **options)
        expected = reference(p, target if monai_target is None else monai_target)
        value = ours(p, target, **_ours_options(name), **options)
        torch.testing.assert_close(value, expected.reshape(value.shape))


@pytest.mark.parametrize(("ours", "logit_form", "binary_form", "name", "extra"), PAIRS)
def test_equals_the_logit_forms_after_their_activation(ours, logit_form, binary_form, name, extra):
    logits, labels, mask = _case(1)
    own = _ours_options(name)
    for fn, activated, target in (
        (logit_form, torch.softmax(logits, dim=1), labels),
        (binary_form, torch.sigmoid(logits), mask),
    ):
        leaf = logits.clone().requires_grad_(True)
        expected = fn(leaf, target, **own)
        (expected_grad,) = torch.autograd.grad(expected, leaf)
        leaf = logits.clone().requires_grad_(True)
        p = torch.softmax(leaf, 1) if fn is logit_form else torch.sigmoid(leaf)
        value = ours(p, target, **own)
        (grad,) = torch.autograd.grad(value, leaf)
        torch.testing.assert_close(value, expected)
        torch.testing.assert_close(grad, expected_grad)
        assert torch.equal(activated, p.detach())


def test_focal_tversky_from_probs_is_the_logit_form_after_softmax():
    logits, labels, _ = _case(2)
    expected = la.focal_tversky_loss(logits, labels, gamma=0.5, ignore_index=None)
    value = la.focal_tversky_loss_from_probs(torch.softmax(logits, 1), labels, gamma=0.5)
    torch.testing.assert_close(value, expected)


def test_smp_semantics_by_hand():
    # smp DiceLoss("multiclass", from_logits=False, smooth=1.0): sums over (batch, pixels),
    # loss_c = 1 - (2 I_c + s) / (P_c + G_c + s), classes absent from the target zeroed, mean.
    logits, labels, _ = _case(3)
    labels[0, 0, :C] = torch.arange(C)  # every class present: smp zeroes none
    p = torch.softmax(logits, 1)
    g = F.one_hot(labels, C).movedim(-1, 1).to(F64)
    inter, card = (p * g).sum((0, 2, 3)), (p + g).sum((0, 2, 3))
    expected = (1 - (2 * inter + 1.0) / (card + 1.0)).mean()
    value = la.dice_loss_from_probs(p, labels, batch=True, smooth_nr=1.0, smooth_dr=1.0)
    torch.testing.assert_close(value, expected)


def test_micro_average_and_ignore_index_carry_over():
    logits, labels, _ = _case(4)
    labels[1, 0] = 255
    p = torch.softmax(logits, 1)
    for average in ("macro", "micro"):
        expected = la.dice_loss(logits, labels, ignore_index=255, average=average)
        value = la.dice_loss_from_probs(p, labels, ignore_index=255, average=average)
        torch.testing.assert_close(value, expected)


def test_one_channel_against_a_bool_mask():
    logits, _, mask = _case(5)
    p = torch.sigmoid(logits[:, :1])
    expected = la.binary_dice_loss(logits[:, :1], mask[:, :1])
    torch.testing.assert_close(la.dice_loss_from_probs(p, mask[:, :1].bool()), expected)
    with pytest.raises(ValueError, match="include_background=False drops channel 0"):
        la.dice_loss_from_probs(p, mask[:, :1], include_background=False)


def test_probabilities_outside_the_unit_interval_raise_unless_checks_are_off():
    logits, labels, _ = _case(6)
    with pytest.raises(ValueError, match=r"input must hold probabilities in \[0, 1\], got"):
        la.tversky_loss_from_probs(logits, labels)  # logits passed by mistake
    with la.value_checks(False):
        value = la.tversky_loss_from_probs(logits, labels)
    assert torch.isfinite(value)


def test_module_twins():
    logits, labels, _ = _case(7)
    p = torch.softmax(logits, 1)
    weight = torch.tensor([0.5, 1.0, 2.0], dtype=F64)
    module = la.nn.DiceLossFromProbs(weight=weight, squared_pred=True)
    expected = la.dice_loss_from_probs(p, labels, weight=weight, squared_pred=True)
    torch.testing.assert_close(module(p, labels), expected)
    assert "weight" in dict(module.named_buffers())
