"""PolyLoss: the paper's code as reference, epsilon=0 is cross-entropy, option interplay, errors."""

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la

torch.manual_seed(0)


def paper_poly1(logits, labels, epsilon, alpha=0.0):
    """Leng et al. 2022, appendix code (poly1_cross_entropy[_label_smooth]) in torch:
    smooth_labels = labels (1 - alpha) + alpha / C;
    one_minus_pt = sum(smooth_labels * (1 - softmax(logits)));
    CE = softmax cross-entropy with label smoothing alpha; Poly1 = CE + epsilon one_minus_pt."""
    num_classes = logits.shape[-1]
    smooth = labels * (1 - alpha) + alpha / num_classes
    one_minus_pt = (smooth * (1 - torch.softmax(logits, dim=-1))).sum(-1)
    ce = -(smooth * torch.log_softmax(logits, dim=-1)).sum(-1)
    return ce + epsilon * one_minus_pt


@pytest.mark.parametrize("epsilon", [1.0, -1.0, 2.5, 0.0])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_equals_the_papers_code(epsilon, smoothing):
    x = torch.randn(8, 5, dtype=torch.float64) * 3
    y = torch.randint(0, 5, (8,))
    onehot = F.one_hot(y, 5).double()
    expected = paper_poly1(x, onehot, epsilon, smoothing)
    ours = la.poly1_cross_entropy(
        x, y, epsilon=epsilon, label_smoothing=smoothing, reduction="none"
    )
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12)
    # probability targets: the paper's one-hot labels given directly
    torch.testing.assert_close(
        la.poly1_cross_entropy(
            x, onehot, epsilon=epsilon, label_smoothing=smoothing, reduction="none"
        ),
        expected,
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5), (4,)])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_epsilon_zero_is_cross_entropy_for_every_option(shape, reduction):
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    num_classes = 4
    y = torch.randint(0, num_classes, (shape[0], *shape[2:]) if len(shape) > 1 else ())
    if y.dim():
        y.view(-1)[::3] = -1
    weight = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
    options = dict(weight=weight, ignore_index=-1, label_smoothing=0.2, reduction=reduction)
    ours = la.poly1_cross_entropy(x, y, epsilon=0.0, **options)
    expected = F.cross_entropy(x, y, **options)
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12)
    (g_ours,) = torch.autograd.grad(ours.sum(), x)
    (g_ref,) = torch.autograd.grad(expected.sum(), x)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-10, atol=1e-12)


def test_weight_multiplies_the_whole_poly1_without_smoothing_and_mean_is_torchs():
    x = torch.randn(7, 3, dtype=torch.float64)
    y = torch.randint(0, 3, (7,))
    weight = torch.tensor([0.2, 1.0, 5.0], dtype=torch.float64)
    plain = paper_poly1(x, F.one_hot(y, 3).double(), 1.0)
    ours = la.poly1_cross_entropy(x, y, weight=weight, reduction="none")
    torch.testing.assert_close(ours, weight[y] * plain)
    torch.testing.assert_close(
        la.poly1_cross_entropy(x, y, weight=weight), (weight[y] * plain).sum() / weight[y].sum()
    )


def test_smoothing_adds_only_a_constant_to_the_correction():
    # one_minus_pt with smoothing s = (1 - s)(1 - p_y) + s (1 - 1/C): same gradient as without
    x = torch.randn(5, 4, dtype=torch.float64)
    y = torch.randint(0, 4, (5,))
    with_s = la.poly1_cross_entropy(x, y, epsilon=1.0, label_smoothing=0.2, reduction="none")
    ce_s = F.cross_entropy(x, y, label_smoothing=0.2, reduction="none")
    p_y = torch.softmax(x, 1).gather(1, y[:, None]).squeeze(1)
    torch.testing.assert_close(with_s - ce_s, 0.8 * (1 - p_y) + 0.2 * (1 - 1 / 4))


def test_all_ignored_mean_is_zero_and_extremes_are_finite():
    x = torch.randn(3, 4, requires_grad=True)
    loss = la.poly1_cross_entropy(x, torch.full((3,), -100))
    loss.backward()
    assert loss.item() == 0.0 and not torch.isnan(x.grad).any()
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        big = (torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]]).to(dtype)).requires_grad_(True)
        value = la.poly1_cross_entropy(big, torch.tensor([1, 1]), label_smoothing=0.1)
        value.backward()
        assert value.dtype == torch.float32 and torch.isfinite(value)
        assert torch.isfinite(big.grad).all()
    big = torch.tensor([[1e4, -1e4, 0.0]], dtype=torch.bfloat16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = la.poly1_cross_entropy(big, torch.tensor([2]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(big.grad).all()


def test_module_twin_and_errors():
    weight = torch.tensor([1.0, 2.0])
    module = la.nn.Poly1CrossEntropyLoss(epsilon=0.5, weight=weight)
    assert "weight" in module.state_dict()
    x, y = torch.randn(4, 2), torch.tensor([0, 1, 1, 0])
    torch.testing.assert_close(
        module(x, y), la.poly1_cross_entropy(x, y, epsilon=0.5, weight=weight)
    )
    with pytest.raises(ValueError, match=r"epsilon must be in \[-1, inf\]"):
        la.poly1_cross_entropy(x, y, epsilon=-2.0)
    with pytest.raises(ValueError, match="class index 2"):
        la.poly1_cross_entropy(x, torch.tensor([0, 2, 1, 0]))
    with pytest.raises(ValueError, match=r"weight must have shape \(2,\)"):
        la.poly1_cross_entropy(x, y, weight=torch.ones(3))
