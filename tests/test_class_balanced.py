"""Class-balanced loss: the official code written out, identities, the seed's port, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lossatlas as la

torch.manual_seed(0)


def official_weights(samples_per_cls, beta):
    """richardaecn/class-balanced-loss, src/cifar_main.py (main):
    effective_num = 1.0 - np.power(beta, img_num_per_cls)
    weights = (1.0 - beta) / np.array(effective_num)
    weights = weights / np.sum(weights) * num_classes"""
    effective_num = 1.0 - np.power(beta, samples_per_cls)
    weights = (1.0 - beta) / np.array(effective_num)
    return torch.tensor(weights / np.sum(weights) * len(samples_per_cls))


def test_weights_worked_by_hand():
    # beta = 0.5, n = [1, 2, 3]: E_n = (1 - 0.5^n) / 0.5 = [1, 3/2, 7/4], 1/E = [1, 2/3, 4/7],
    # sum = 47/21, normalised to sum to 3: [63/47, 42/47, 36/47].
    expected = torch.tensor([63 / 47, 42 / 47, 36 / 47], dtype=torch.float64)
    torch.testing.assert_close(
        la.class_balanced_weights([1, 2, 3], beta=0.5).double(), expected, rtol=1e-6, atol=1e-7
    )


@pytest.mark.parametrize("beta", [0.9, 0.99, 0.999, 0.9999])
def test_weights_equal_the_official_code(beta):
    counts = [2, 3, 1, 2, 2]  # the seed's example (seeds/002_*)
    with torch.autograd.set_grad_enabled(False):
        ours = la.class_balanced_weights(torch.tensor(counts), beta=beta).double()
    torch.testing.assert_close(ours, official_weights(counts, beta), rtol=1e-6, atol=1e-7)
    assert abs(float(ours.sum()) - 5) < 1e-5


def test_weight_limits():
    counts = [1000, 100, 10]
    torch.testing.assert_close(la.class_balanced_weights(counts, beta=0.0), torch.ones(3))
    inverse_frequency = torch.tensor([1 / 1000, 1 / 100, 1 / 10])
    inverse_frequency = inverse_frequency / inverse_frequency.sum() * 3
    torch.testing.assert_close(
        la.class_balanced_weights(counts, beta=1 - 1e-12), inverse_frequency, rtol=1e-5, atol=1e-6
    )


COUNTS = [400, 90, 20, 5]


def data(n=12):
    x = torch.randn(n, 4, dtype=torch.float64) * 2
    y = torch.randint(0, 4, (n,))
    return x, y


def test_softmax_is_weighted_cross_entropy_per_sample():
    x, y = data()
    w = official_weights(COUNTS, 0.999)
    ours = la.class_balanced_loss(x, y, samples_per_class=COUNTS, beta=0.999, reduction="none")
    torch.testing.assert_close(ours, F.cross_entropy(x, y, weight=w, reduction="none"))
    # official: tf.losses.softmax_cross_entropy(weights=w_y) divides by the count of non-zero
    # weights (N), not by sum(w_y) as torch's weighted mean does
    mean = la.class_balanced_loss(x, y, samples_per_class=COUNTS, beta=0.999)
    torch.testing.assert_close(mean, ours.sum() / len(y))
    assert not torch.allclose(mean, F.cross_entropy(x, y, weight=w))


def test_sigmoid_equals_the_official_code():
    x, y = data()
    w = official_weights(COUNTS, 0.99)
    labels = F.one_hot(y, 4).double()
    # official: weights * sigmoid_cross_entropy_with_logits, summed, / sum(one_hot_labels)
    per = w[y][:, None] * F.binary_cross_entropy_with_logits(x, labels, reduction="none")
    ours = la.class_balanced_loss(x, y, samples_per_class=COUNTS, beta=0.99, loss_type="sigmoid")
    torch.testing.assert_close(ours, per.sum() / labels.sum())


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_focal_equals_the_official_code(gamma):
    x, y = data()
    w = official_weights(COUNTS, 0.99)
    labels = F.one_hot(y, 4).double()
    # official focal_loss: modulator = exp(-gamma * labels * logits - gamma * log1p(exp(-logits)))
    bce = F.binary_cross_entropy_with_logits(x, labels, reduction="none")
    modulator = torch.exp(-gamma * labels * x - gamma * torch.log1p(torch.exp(-x)))
    expected = (w[y][:, None] * modulator * bce).sum() / labels.sum()
    for fused in (False, True):
        with la.fused(fused):
            ours = la.class_balanced_loss(
                x, y, samples_per_class=COUNTS, beta=0.99, loss_type="focal", gamma=gamma
            )
        torch.testing.assert_close(ours, expected)


def test_differs_from_the_seeds_port_softmax():
    x, y = data()
    w = official_weights(COUNTS, 0.9999)
    labels = F.one_hot(y, 4).double()
    # seeds/002_* CB_loss(loss_type="softmax"): BCE on softmax probabilities, mean over N*C
    port = F.binary_cross_entropy(x.softmax(1), labels, weight=w[y][:, None].expand(-1, 4))
    ours = la.class_balanced_loss(x, y, samples_per_class=COUNTS)
    assert not torch.allclose(ours, port)


def test_beta_zero_is_the_plain_loss_and_spatial_shapes():
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (2, 4))
    torch.testing.assert_close(
        la.class_balanced_loss(x, y, samples_per_class=[5, 1, 9], beta=0.0), F.cross_entropy(x, y)
    )
    sig = la.class_balanced_loss(
        x, y, samples_per_class=[5, 1, 9], beta=0.0, loss_type="sigmoid", reduction="none"
    )
    onehot = F.one_hot(y, 3).movedim(-1, 1).double()
    torch.testing.assert_close(
        sig, F.binary_cross_entropy_with_logits(x, onehot, reduction="none").sum(1)
    )


def test_module_twin():
    module = la.nn.ClassBalancedLoss(samples_per_class=COUNTS, beta=0.99, loss_type="focal")
    assert "samples_per_class" in module.state_dict()
    with pytest.raises(TypeError, match="missing required keyword argument 'samples_per_class'"):
        la.nn.ClassBalancedLoss(beta=0.99)
    torch.testing.assert_close(module.weight, la.class_balanced_weights(COUNTS, beta=0.99))
    x, y = data()
    torch.testing.assert_close(
        module(x, y),
        la.class_balanced_loss(x, y, samples_per_class=COUNTS, beta=0.99, loss_type="focal"),
    )


@pytest.mark.parametrize("loss_type", ["softmax", "sigmoid", "focal"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, "autocast"])
def test_extreme_logits_are_finite(loss_type, dtype):
    base = torch.tensor([[1e4, -1e4, 0.0, 3.0], [-1e4, 1e4, 1e4, -1e4]])
    x = base.to(torch.bfloat16 if dtype == "autocast" else dtype).requires_grad_(True)
    y = torch.tensor([1, 0])
    if dtype == "autocast":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = la.class_balanced_loss(x, y, samples_per_class=COUNTS, loss_type=loss_type)
    else:
        loss = la.class_balanced_loss(x, y, samples_per_class=COUNTS, loss_type=loss_type)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert torch.isfinite(x.grad).all()


def test_errors():
    x, y = torch.randn(3, 4), torch.tensor([0, 1, 3])
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\), got 1.0"):
        la.class_balanced_weights(COUNTS, beta=1.0)
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\)"):
        la.class_balanced_loss(x, y, samples_per_class=COUNTS, beta=-0.1)
    with pytest.raises(ValueError, match=r"samples_per_class\[1\] must be in \(0, inf\]"):
        la.class_balanced_weights([3, 0, 2])
    with pytest.raises(ValueError, match=r"finite counts > 0, got 0.0 at position \(2,\)"):
        la.class_balanced_weights(torch.tensor([3, 1, 0]))
    with pytest.raises(ValueError, match=r"one count per class \(4 for input"):
        la.class_balanced_loss(x, y, samples_per_class=[1, 2, 3])
    with pytest.raises(ValueError, match="loss_type must be one of .* Did you mean 'softmax'"):
        la.class_balanced_loss(x, y, samples_per_class=COUNTS, loss_type="softmx")
    with pytest.raises(TypeError, match="samples_per_class must be a sequence"):
        la.class_balanced_weights(10)
