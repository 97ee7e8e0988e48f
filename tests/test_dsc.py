"""Self-adjusting Dice (DSC): the paper's formula, limits, one-vs-rest form, ignore, errors."""

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la


def paper_dsc(logits, labels, alpha, gamma):
    """Li et al., ACL 2020, per instance: 1 - (2 (1-p)^a p y + g) / ((1-p)^a p + y + g)."""
    p = torch.sigmoid(logits)
    q = (1 - p) ** alpha * p
    return 1 - (2 * q * labels + gamma) / (q + labels + gamma)


@pytest.mark.parametrize(("alpha", "gamma"), [(1.0, 1.0), (0.0, 1.0), (2.0, 0.1), (0.5, 1e-3)])
def test_binary_equals_the_paper_formula_on_random_inputs(alpha, gamma):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 3, 7, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(0, 2, (5, 3, 7), generator=g).double()
    expected = paper_dsc(logits, labels, alpha, gamma)
    actual = la.binary_dsc_loss(logits, labels, alpha=alpha, gamma=gamma, reduction="none")
    torch.testing.assert_close(actual, expected)
    torch.testing.assert_close(
        la.binary_dsc_loss(logits, labels, alpha=alpha, gamma=gamma), expected.mean()
    )
    torch.testing.assert_close(
        la.binary_dsc_loss(logits, labels, alpha=alpha, gamma=gamma, reduction="sum"),
        expected.sum(),
    )


def test_alpha_zero_is_per_element_smoothed_dice():
    # With alpha = 0 the factor (1-p)^0 is 1: 1 - (2 p y + g) / (p + y + g).
    logits = torch.tensor([2.0, -1.0, 0.0, 4.0], dtype=torch.float64)
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    p = torch.sigmoid(logits)
    expected = 1 - (2 * p * labels + 1) / (p + labels + 1)
    torch.testing.assert_close(
        la.binary_dsc_loss(logits, labels, alpha=0.0, reduction="none"), expected
    )


def test_hand_worked_values():
    # x = 0, y = 1, alpha = gamma = 1: p = 1/2, q = 1/4, 1 - (1/2 + 1) / (1/4 + 2) = 1/3.
    value = la.binary_dsc_loss(torch.tensor([0.0]), torch.tensor([1.0]), reduction="none")
    torch.testing.assert_close(value, torch.tensor([1 / 3]))
    # x = 0, y = 0: 1 - 1 / (1/4 + 1) = 1/5.
    value = la.binary_dsc_loss(torch.tensor([0.0]), torch.tensor([0.0]), reduction="none")
    torch.testing.assert_close(value, torch.tensor([0.2]))


def test_minimum_for_a_positive_lies_below_one():
    # The self-adjusting factor stops pushing a positive to p = 1 (the paper's intent).
    logits = torch.linspace(-6, 12, 2001, dtype=torch.float64)
    loss = la.binary_dsc_loss(logits, torch.ones_like(logits), reduction="none")
    best = torch.sigmoid(logits[loss.argmin()])
    assert 0.5 < float(best) < 0.99


def test_extreme_logits_finite_values_and_gradients():
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        logits = torch.tensor([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=dtype).requires_grad_(True)
        labels = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0], dtype=dtype)
        for alpha in (0.0, 0.3, 1.0):
            loss = la.binary_dsc_loss(logits, labels, alpha=alpha)
            (grad,) = torch.autograd.grad(loss, logits)
            assert loss.dtype == torch.float32 and torch.isfinite(loss)
            assert torch.isfinite(grad).all()


def test_softmax_form_is_the_one_vs_rest_mean():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 3, (4, 5, 5), generator=g)
    p = torch.softmax(logits, dim=1)
    y = F.one_hot(labels, 3).movedim(-1, 1).double()
    q = (1 - p) ** 1.5 * p
    expected = (1 - (2 * q * y + 0.5) / (q + y + 0.5)).mean(dim=1)
    actual = la.dsc_loss(logits, labels, alpha=1.5, gamma=0.5, reduction="none")
    torch.testing.assert_close(actual, expected)
    torch.testing.assert_close(
        la.dsc_loss(logits, y, alpha=1.5, gamma=0.5, reduction="none"), expected
    )


def test_two_class_softmax_equals_binary_on_the_logit_difference():
    # softmax over (0, x) is sigmoid(x) for class 1 and sigmoid(-x) for class 0; each
    # one-vs-rest term of the two classes is then the binary term, so the mean equals it.
    x = torch.randn(6, dtype=torch.float64)
    labels = torch.randint(0, 2, (6,))
    logits = torch.stack([torch.zeros_like(x), x], dim=1)
    two = la.dsc_loss(logits, labels, alpha=0.0, reduction="none")
    y1 = labels.double()
    expected = 0.5 * (paper_dsc(x, y1, 0.0, 1.0) + paper_dsc(-x, 1 - y1, 0.0, 1.0))
    torch.testing.assert_close(two, expected)


def test_ignore_index_excluded_from_value_and_mean():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 4, 6, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 4, (3, 6), generator=g)
    labels[0, :2] = -1
    full = la.dsc_loss(logits, labels.clamp(min=0), reduction="none")
    none = la.dsc_loss(logits, labels, ignore_index=-1, reduction="none")
    keep = labels != -1
    torch.testing.assert_close(none[keep], full[keep])
    assert (none[~keep] == 0).all()
    torch.testing.assert_close(la.dsc_loss(logits, labels, ignore_index=-1), full[keep].mean())
    labels[:] = -1
    x = logits.clone().requires_grad_(True)
    loss = la.dsc_loss(x, labels, ignore_index=-1)
    loss.backward()
    assert float(loss.detach()) == 0.0 and (x.grad == 0).all()


def test_modules():
    logits = torch.randn(4, 3, dtype=torch.float64)
    labels = torch.tensor([0, 2, 1, 1])
    torch.testing.assert_close(
        la.nn.DSCLoss(alpha=0.5)(logits, labels), la.dsc_loss(logits, labels, alpha=0.5)
    )
    masks = torch.rand(4, 3, dtype=torch.float64)
    torch.testing.assert_close(
        la.nn.BinaryDSCLoss(gamma=2.0)(logits, masks), la.binary_dsc_loss(logits, masks, gamma=2.0)
    )


def test_bad_input():
    logits = torch.randn(4, 3)
    with pytest.raises(ValueError, match="same shape"):
        la.binary_dsc_loss(logits, torch.rand(4, 3, 1))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        la.binary_dsc_loss(logits, torch.full((4, 3), 2.0))
    with pytest.raises(ValueError, match=r"class index 5 at position \(1,\)"):
        la.dsc_loss(logits, torch.tensor([0, 5, 1, 1]))
    with pytest.raises(ValueError, match="C >= 2"):
        la.dsc_loss(logits[:, :1], torch.tensor([0, 0, 0, 0]))
    with pytest.raises(TypeError, match="floating-point"):
        la.dsc_loss(torch.ones(4, 3, dtype=torch.long), torch.tensor([0, 1, 1, 1]))
    with pytest.raises(ValueError, match="ignore_index=0 applies to class-index"):
        la.dsc_loss(logits, torch.softmax(logits, 1), ignore_index=0)
