"""Overlap-loss options peers have: kornia's micro / macro average, soft (probability) targets.

References: the installed kornia (``kornia.losses.dice_loss`` / ``tversky_loss``), the installed
MONAI (``DiceLoss`` / ``TverskyLoss`` with ``to_onehot_y=False``), and the Tversky index worked
by hand in float64 from one-hot sums.
"""

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la

kornia_losses = pytest.importorskip("kornia.losses", reason="kornia is the reference for micro")
monai_losses = pytest.importorskip("monai.losses", reason="MONAI is the reference for soft targets")

F64 = torch.float64
N, C, H, W = 3, 3, 4, 5
EPS = 1e-8  # kornia's default eps: added to the denominator only


def _logits(seed=0, c=C):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(N, c, H, W, generator=g, dtype=F64) * 2


def _labels_with_every_class(seed=0, c=C):
    """Class indices in which every sample holds every class (kornia's macro averages only the
    classes present in a sample; MONAI's and ours all of them: equal when all are present)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, c, (N, H, W), generator=g)
    labels[:, 0, :c] = torch.arange(c)
    return labels


def _grad(fn, logits, *args, **options):
    leaf = logits.clone().requires_grad_(True)
    value = fn(leaf, *args, **options)
    value.backward()
    return value.detach(), leaf.grad


# --------------------------------------------------------------------------- kornia average

WEIGHTS = [None, torch.tensor([0.2, 1.0, 3.0], dtype=F64)]


@pytest.mark.parametrize("average", ["micro", "macro"])
@pytest.mark.parametrize("weight", WEIGHTS, ids=["unweighted", "weighted"])
def test_dice_average_equals_kornia(average, weight):
    logits, labels = _logits(1), _labels_with_every_class(1)
    expected, expected_grad = _grad(
        kornia_losses.dice_loss, logits, labels, average=average, eps=EPS, weight=weight
    )
    value, grad = _grad(
        la.dice_loss, logits, labels, average=average, smooth_nr=0.0, smooth_dr=EPS, weight=weight
    )
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(grad, expected_grad)


@pytest.mark.parametrize("fused", [True, False])
def test_micro_dice_with_ignore_index_equals_kornia(fused):
    logits, labels = _logits(2), _labels_with_every_class(2)
    labels[1, 2:] = -100  # kornia's default ignore_index
    expected = kornia_losses.dice_loss(logits, labels, average="micro", eps=EPS)
    with la.fused(fused):
        value = la.dice_loss(
            logits, labels, average="micro", smooth_nr=0.0, smooth_dr=EPS, ignore_index=-100
        )
    torch.testing.assert_close(value, expected)


def test_macro_tversky_equals_kornia():
    logits, labels = _logits(3), _labels_with_every_class(3)
    expected, expected_grad = _grad(
        kornia_losses.tversky_loss, logits, labels, alpha=0.3, beta=0.7, eps=EPS
    )
    value, grad = _grad(
        la.tversky_loss, logits, labels, alpha=0.3, beta=0.7, smooth_nr=0.0, smooth_dr=EPS
    )
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(grad, expected_grad)


def _by_hand_sums(logits, labels):
    """``(I, P, G)`` per sample and class, shape ``(N, C)``, from the one-hot target."""
    p = torch.softmax(logits, dim=1)
    g = F.one_hot(labels, logits.shape[1]).movedim(-1, 1).to(F64)
    return (p * g).sum((2, 3)), p.sum((2, 3)), g.sum((2, 3))


@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("weight", WEIGHTS, ids=["unweighted", "weighted"])
def test_micro_tversky_by_hand(include_background, batch, weight):
    logits, labels = _logits(4), _labels_with_every_class(4)
    inter, pred, truth = _by_hand_sums(logits, labels)
    w = torch.ones(C, dtype=F64) if weight is None else weight
    if not include_background:
        inter, pred, truth, w = inter[:, 1:], pred[:, 1:], truth[:, 1:], w[1:]
    if batch:
        inter, pred, truth = inter.sum(0, keepdim=True), pred.sum(0, True), truth.sum(0, True)
    alpha, beta, s = 0.4, 0.8, 1e-3
    i, fp, fn = (w * inter).sum(-1), (w * (pred - inter)).sum(-1), (w * (truth - inter)).sum(-1)
    expected = 1 - (i + s) / (i + alpha * fp + beta * fn + s)  # the formula, by hand
    value = la.tversky_loss(
        logits,
        labels,
        alpha=alpha,
        beta=beta,
        smooth_nr=s,
        smooth_dr=s,
        average="micro",
        batch=batch,
        include_background=include_background,
        weight=weight,
        reduction="none",
    )
    torch.testing.assert_close(value, expected.squeeze(0) if batch else expected)
    focal = la.focal_tversky_loss(
        logits, labels, alpha=alpha, beta=beta, gamma=0.5, smooth_nr=s, smooth_dr=s
    )
    assert focal.shape == ()  # gamma applies to the macro index there; micro is tversky_loss's


def test_micro_shapes_and_mean():
    logits, labels = _logits(5), _labels_with_every_class(5)
    none = la.dice_loss(logits, labels, average="micro", reduction="none")
    assert none.shape == (N,)
    torch.testing.assert_close(la.dice_loss(logits, labels, average="micro"), none.mean())
    one = la.dice_loss(logits, labels, average="micro", batch=True, reduction="none")
    assert one.shape == ()


def test_average_rejects_other_words():
    logits, labels = _logits(), _labels_with_every_class()
    with pytest.raises(ValueError, match="average"):
        la.dice_loss(logits, labels, average="weighted")
    with pytest.raises(ValueError, match="average"):
        la.nn.TverskyLoss(average="samples")


# --------------------------------------------------------------------------- soft targets


def _soft_target(seed, shape=(N, C, H, W)):
    """Class probabilities per pixel (a softmax of random scores): rows sum to 1, none 0 or 1."""
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(*shape, generator=g, dtype=F64) * 1.5, dim=1)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize(("include_background", "batch"), [(True, False), (False, True)])
@pytest.mark.parametrize("squared_pred", [False, True])
def test_soft_targets_equal_monai_dice(reduction, include_background, batch, squared_pred):
    logits, soft = _logits(6), _soft_target(6)
    options = dict(include_background=include_background, squared_pred=squared_pred, batch=batch)
    for jaccard, fn in ((False, la.dice_loss), (True, la.jaccard_loss)):
        reference = monai_losses.DiceLoss(
            softmax=True, to_onehot_y=False, jaccard=jaccard, reduction=reduction, **options
        )
        expected = reference(logits, soft)
        value = fn(logits, soft, reduction=reduction, **options)
        torch.testing.assert_close(value, expected.reshape(value.shape))


@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_soft_targets_equal_monai_tversky(reduction, activation):
    logits = _logits(7)
    if activation == "softmax":
        soft, fn = _soft_target(7), la.tversky_loss
    else:  # soft labels per channel, independent
        soft = torch.rand(N, C, H, W, generator=torch.Generator().manual_seed(7), dtype=F64)
        fn = la.binary_tversky_loss
    reference = monai_losses.TverskyLoss(
        alpha=0.3, beta=0.7, reduction=reduction, to_onehot_y=False, **{activation: True}
    )
    expected, expected_grad = _grad(lambda x, y: reference(x, y).sum(), logits, soft)
    value, grad = _grad(
        lambda x, y: fn(x, y, alpha=0.3, beta=0.7, reduction=reduction).sum(), logits, soft
    )
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(grad, expected_grad)


def test_soft_targets_fused_and_plain_agree():
    logits, soft = _logits(8), _soft_target(8)
    fused = _grad(la.dice_loss, logits, soft)
    with la.fused(False):
        plain = _grad(la.dice_loss, logits, soft)
    torch.testing.assert_close(fused, plain)


def test_soft_targets_outside_the_unit_interval_raise():
    logits, soft = _logits(9), _soft_target(9)
    soft[0, 1, 2, 3] = 1.5
    with pytest.raises(ValueError, match=r"target must hold probabilities in \[0, 1\], got 1.5"):
        la.dice_loss(logits, soft)
    with la.value_checks(False):  # a value check, switchable like the others
        la.dice_loss(logits, soft)


# --------------------------------------------------------------------------- masks


@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8, torch.int32, torch.long], ids=str)
@pytest.mark.parametrize("name", ["dice_loss", "jaccard_loss", "tversky_loss"])
def test_integer_one_hot_of_the_input_shape_reads_as_float(name, dtype):
    fn = getattr(la, name)
    logits, labels = _logits(10), _labels_with_every_class(10)
    onehot = F.one_hot(labels, C).movedim(-1, 1)
    expected = fn(logits, onehot.to(F64))
    torch.testing.assert_close(fn(logits, onehot.to(dtype)), expected, rtol=0, atol=0)
    torch.testing.assert_close(fn(logits, labels.to(torch.uint8)), expected)
