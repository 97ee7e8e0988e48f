"""clDice and Dice + clDice: the installed MONAI (fed the probabilities), skeletons by hand.

MONAI's ``SoftclDiceLoss`` / ``SoftDiceclDiceLoss`` take probabilities when neither
``softmax=`` nor ``sigmoid=`` is set; ours take logits, so parity feeds MONAI the softmax /
sigmoid of the same logits (float64).
"""

import warnings

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la

monai_losses = pytest.importorskip("monai.losses", reason="MONAI is the clDice reference")


def _case(spatial, seed=0, c=3):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, c, *spatial, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, c, (3, *spatial), generator=g)
    labels[0] = 0  # image 0: background only (the other classes empty)
    return logits, labels, F.one_hot(labels, c).movedim(-1, 1).double()


@pytest.mark.parametrize("spatial", [(9, 8), (5, 6, 7)])
@pytest.mark.parametrize(("include_background", "iterations"), [(True, 3), (False, 0), (False, 5)])
def test_equals_monai_fed_probabilities(spatial, include_background, iterations):
    logits, labels, onehot = _case(spatial)
    probs = torch.softmax(logits, 1)
    options = dict(include_background=include_background, smooth_nr=1.0, smooth_dr=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for reduction in ("none", "mean", "sum"):
            reference = monai_losses.SoftclDiceLoss(
                iter_=iterations, smooth=1e-3, reduction=reduction, **options
            )(probs, onehot)
            for target in (labels, onehot):
                actual = la.soft_cldice_loss(
                    logits,
                    target,
                    iterations=iterations,
                    smooth=1e-3,
                    reduction=reduction,
                    **options,
                )
                torch.testing.assert_close(actual, reference)
            if reduction == "none":
                continue
            reference = monai_losses.SoftDiceclDiceLoss(
                iter_=iterations, alpha=0.3, reduction=reduction, **options
            )(probs, onehot)
            actual = la.dice_cldice_loss(
                logits, labels, iterations=iterations, alpha=0.3, reduction=reduction, **options
            )
            torch.testing.assert_close(actual, reference)


def test_sigmoid_equals_monai():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 2, 7, 6, generator=g, dtype=torch.float64)
    masks = (torch.rand(2, 2, 7, 6, generator=g) > 0.5).double()
    probs = torch.sigmoid(logits)
    reference = monai_losses.SoftclDiceLoss(reduction="none")(probs, masks)
    actual = la.soft_cldice_loss(logits, masks, activation="sigmoid", reduction="none")
    torch.testing.assert_close(actual, reference)
    reference = monai_losses.SoftDiceclDiceLoss()(probs, masks)
    torch.testing.assert_close(la.dice_cldice_loss(logits, masks, activation="sigmoid"), reference)


def test_batch_is_the_reference_code():
    """``batch=True``: the official ``soft_cldice`` sums over the whole batch (one value)."""
    logits, labels, onehot = _case((8, 8), seed=3)
    p = torch.softmax(logits, 1)[:, 1:]
    g = onehot[:, 1:]  # exclude_background=True in the official code
    sp, sg = la.soft_skeleton(p, 3), la.soft_skeleton(g, 3)
    tprec = ((sp * g).sum() + 1.0) / (sp.sum() + 1.0)
    tsens = ((sg * p).sum() + 1.0) / (sg.sum() + 1.0)
    expected = 1.0 - 2.0 * tprec * tsens / (tprec + tsens + 1e-4)
    actual = la.soft_cldice_loss(logits, labels, include_background=False, batch=True)
    torch.testing.assert_close(actual, expected)
    assert la.soft_cldice_loss(logits, labels, batch=True, reduction="none").shape == ()


def test_soft_skeleton_by_hand():
    # a 3-thick bar: the opening keeps it all, so the first term is 0; one erosion leaves the
    # middle row, which the next opening removes: skeleton = the middle row.
    bar = torch.zeros(1, 1, 5, 7, dtype=torch.float64)
    bar[..., 1:4, :] = 1.0
    expected = torch.zeros_like(bar)
    expected[..., 2, :] = 1.0
    torch.testing.assert_close(la.soft_skeleton(bar, 1), expected)
    torch.testing.assert_close(la.soft_skeleton(bar, 0), torch.zeros_like(bar))
    # a single pixel is removed by the first opening: it is its own skeleton
    dot = torch.zeros(1, 1, 3, 4, 5, dtype=torch.float64)
    dot[0, 0, 1, 2, 2] = 0.7
    torch.testing.assert_close(la.soft_skeleton(dot, 3), dot)


def test_extremes():
    labels = torch.zeros(2, 6, 6, dtype=torch.long)
    labels[1, 2, 3] = 1  # a single pixel; image 0 has no foreground
    for logits in (torch.zeros(2, 2, 6, 6), F.one_hot(labels, 2).movedim(-1, 1) * 1e4 - 5e3):
        x = logits.double().requires_grad_()
        loss = la.dice_cldice_loss(x, labels, include_background=False)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    # a perfect prediction: clDice is only smooth / (2 + smooth) away from 0
    perfect = F.one_hot(labels, 2).movedim(-1, 1).double() * 80 - 40
    value = la.soft_cldice_loss(perfect, labels, include_background=False, reduction="none")
    torch.testing.assert_close(value, torch.full((2,), 1e-4 / (2 + 1e-4), dtype=torch.float64))


def test_parts_and_modules():
    logits, labels, _ = _case((6, 6), seed=4)
    out = la.dice_cldice_loss(logits, labels, alpha=0.25, return_parts=True)
    dice = la.dice_loss(logits, labels, smooth_nr=1.0, smooth_dr=1.0)
    cldice = la.soft_cldice_loss(logits, labels)
    torch.testing.assert_close(out.parts["dice"], dice)
    torch.testing.assert_close(out.parts["cldice"], cldice)
    torch.testing.assert_close(out.total, 0.75 * dice + 0.25 * cldice)
    torch.testing.assert_close(la.dice_cldice_loss(logits, labels, alpha=0.25), out.total)
    torch.testing.assert_close(la.nn.DiceClDiceLoss(alpha=0.25)(logits, labels), out.total)
    torch.testing.assert_close(
        la.nn.SoftClDiceLoss(iterations=1)(logits, labels),
        la.soft_cldice_loss(logits, labels, iterations=1),
    )


def test_errors():
    logits, labels, _ = _case((6, 6))
    with pytest.raises(ValueError, match="iterations"):
        la.soft_cldice_loss(logits, labels, iterations=-1)
    with pytest.raises(ValueError, match="iterations"):
        la.nn.SoftClDiceLoss(iterations=-1)
    with pytest.raises(ValueError, match="iterations"):
        la.soft_skeleton(torch.zeros(1, 1, 4, 4), -1)
    with pytest.raises(ValueError, match=r"2-D .* or 3-D .*got shape \(3, 3, 6\)"):
        la.soft_cldice_loss(logits[..., 0], labels[..., 0])
    with pytest.raises(ValueError, match=r"2-D .*got shape \(1, 4\)"):
        la.soft_skeleton(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"must have shape \(3, 6, 6\)"):
        la.soft_cldice_loss(logits, labels[:, :5])
    with pytest.raises(ValueError, match="same shape"):
        la.soft_cldice_loss(logits, torch.rand(3, 3, 6, 5), activation="sigmoid")
    with pytest.raises(ValueError, match="alpha"):
        la.dice_cldice_loss(logits, labels, alpha=1.5)
    with pytest.raises(ValueError, match="'none'"):
        la.dice_cldice_loss(logits, labels, reduction="none")
    with pytest.raises(ValueError, match="smooth"):
        la.soft_cldice_loss(logits, labels, smooth=0.0)
