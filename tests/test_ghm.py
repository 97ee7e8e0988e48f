"""GHM-C and GHM-R: mmdetection's algorithm, the moving average, edge cases, errors.

The references below are straightforward per-bin loops written from mmdetection's
``mmdet/models/losses/ghm_loss.py`` (classes ``GHMC`` and ``GHMR``): edges ``i / bins`` with the
last raised by 1e-6 (GHM-C) or set to 1e3 (GHM-R), ``weights[inds] = tot / num_in_bin`` (or
``tot / acc_sum[i]`` with momentum), divided by the number of non-empty bins, loss summed and
divided by ``tot``.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import lossatlas as la

F64 = torch.float64


def close(actual, expected, *, rtol=1e-6, atol=1e-9):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- references


def mmdet_ghmc(pred, target, label_weight, bins=10, momentum=0.0, acc_sum=None):
    """mmdetection GHMC.forward as a loop (use_sigmoid=True, loss_weight=1)."""
    edges = torch.arange(bins + 1, dtype=pred.dtype) / bins
    edges[-1] += 1e-6
    weights = torch.zeros_like(pred)
    g = torch.abs(pred.sigmoid().detach() - target)
    valid = label_weight > 0
    tot = max(valid.float().sum().item(), 1.0)
    n = 0
    for i in range(bins):
        inds = (g >= edges[i]) & (g < edges[i + 1]) & valid
        num_in_bin = inds.sum().item()
        if num_in_bin > 0:
            if momentum > 0:
                acc_sum[i] = momentum * acc_sum[i] + (1 - momentum) * num_in_bin
                weights[inds] = tot / acc_sum[i]
            else:
                weights[inds] = tot / num_in_bin
            n += 1
    if n > 0:
        weights = weights / n
    return F.binary_cross_entropy_with_logits(pred, target, weights, reduction="sum") / tot


def mmdet_ghmr(pred, target, label_weight, mu=0.02, bins=10, momentum=0.0, acc_sum=None):
    """mmdetection GHMR.forward as a loop (loss_weight=1)."""
    edges = torch.arange(bins + 1, dtype=pred.dtype) / bins
    edges[-1] = 1e3
    diff = pred - target
    loss = torch.sqrt(diff * diff + mu * mu) - mu
    g = torch.abs(diff / torch.sqrt(mu * mu + diff * diff)).detach()
    weights = torch.zeros_like(g)
    valid = label_weight > 0
    tot = max(label_weight.float().sum().item(), 1.0)
    n = 0
    for i in range(bins):
        inds = (g >= edges[i]) & (g < edges[i + 1]) & valid
        num_in_bin = inds.sum().item()
        if num_in_bin > 0:
            n += 1
            if momentum > 0:
                acc_sum[i] = momentum * acc_sum[i] + (1 - momentum) * num_in_bin
                weights[inds] = tot / acc_sum[i]
            else:
                weights[inds] = tot / num_in_bin
    if n > 0:
        weights /= n
    return (loss * weights).sum() / tot


def detector_batch(seed, shape=(64, 6)):
    """Logits of a detector: many easy negatives, a few positives, some ignored anchors."""
    g = torch.Generator().manual_seed(seed)
    target = (torch.rand(shape, generator=g) < 0.1).to(F64)
    logits = torch.randn(shape, generator=g, dtype=F64) * 3 - 2
    label_weight = (torch.rand(shape, generator=g) > 0.2).to(F64)
    return logits, target, label_weight


# --------------------------------------------------------------------------- GHM-C


@pytest.mark.parametrize("bins", [1, 3, 10, 30])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ghmc_equals_mmdetection_loop(bins, seed):
    logits, target, label_weight = detector_batch(seed)
    expected = mmdet_ghmc(logits, target, label_weight, bins=bins)
    close(la.ghmc_loss(logits, target, label_weight=label_weight, bins=bins), expected)
    ones = torch.ones_like(logits)
    close(la.ghmc_loss(logits, target, bins=bins), mmdet_ghmc(logits, target, ones, bins=bins))


def test_ghmc_gradient_equals_mmdetection():
    logits, target, label_weight = detector_batch(3)
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    (ga,) = torch.autograd.grad(la.ghmc_loss(a, target, label_weight=label_weight), a)
    (gb,) = torch.autograd.grad(mmdet_ghmc(b, target, label_weight), b)
    close(ga, gb)


def test_ghmc_hand_example():
    # Three easy negatives (g = sigmoid(-4) = 0.018, bin 0) and one hard (g = sigmoid(3) = 0.95,
    # bin 9): tot = 4, n = 2 bins; weights 4 / (3 * 2) and 4 / (1 * 2).
    logits = torch.tensor([-4.0, -4.0, -4.0, 3.0], dtype=F64)
    value = la.ghmc_loss(logits, torch.zeros(4, dtype=F64), reduction="none")
    softplus = [math.log1p(math.exp(x)) for x in logits.tolist()]
    expected = [softplus[0] * 2 / 3] * 3 + [softplus[3] * 2]
    close(value, torch.tensor(expected, dtype=F64))
    close(
        la.ghmc_loss(logits, torch.zeros(4, dtype=F64)), torch.tensor(sum(expected) / 4, dtype=F64)
    )


def test_ghmc_one_bin_is_bce():
    logits, target, _ = detector_batch(4)
    close(
        la.ghmc_loss(logits, target, bins=1, reduction="none"),
        F.binary_cross_entropy_with_logits(logits, target, reduction="none"),
    )


def test_ghmc_weights_sum_to_valid_count():
    # "mean" is a weighted mean: the GHM weights of the valid elements sum to tot.
    logits, target, label_weight = detector_batch(5)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    weights = la.ghmc_loss(logits, target, label_weight=label_weight, reduction="none") / bce
    close(weights.sum(), (label_weight > 0).sum().to(F64))
    assert float(weights[label_weight == 0].abs().sum()) == 0.0


def test_ghmc_soft_targets_match_loop():
    g = torch.Generator().manual_seed(6)
    logits = torch.randn(40, generator=g, dtype=F64)
    target = torch.rand(40, generator=g, dtype=F64)
    close(la.ghmc_loss(logits, target), mmdet_ghmc(logits, target, torch.ones(40, dtype=F64)))


def test_ghmc_all_invalid_gives_zero_not_nan():
    logits = torch.randn(5, 3, dtype=F64, requires_grad=True)
    target = torch.zeros(5, 3, dtype=F64)
    for reduction in ("mean", "sum"):
        value = la.ghmc_loss(logits, target, label_weight=torch.zeros(5, 3), reduction=reduction)
        assert float(value.detach()) == 0.0
        (grad,) = torch.autograd.grad(value, logits)
        assert float(grad.abs().sum()) == 0.0
    empty = torch.zeros(0, 3, requires_grad=True)
    assert float(la.ghmc_loss(empty, torch.zeros(0, 3)).detach()) == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_ghmc_extreme_logits_finite(dtype):
    logits = torch.tensor([[1e4, -1e4, 1e4], [-1e4, 0.5, -3.0]]).to(dtype).requires_grad_(True)
    target = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]).to(dtype)
    value = la.ghmc_loss(logits, target)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(logits.grad).all()
    # The wrong confident logits (g = 1) cost 1e4 each: 1e4 * weight / tot.
    assert float(value.detach()) > 1e3


def test_ghmc_bf16_autocast():
    logits = torch.tensor([1e4, -1e4, 0.3, -0.2], requires_grad=True)
    target = torch.tensor([0.0, 1.0, 1.0, 0.0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = la.ghmc_loss(logits, target)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(logits.grad).all()


def test_ghmc_compiles():
    torch._dynamo.reset()
    logits, target, label_weight = detector_batch(7)
    compiled = torch.compile(la.ghmc_loss, fullgraph=True, backend="eager")
    close(
        compiled(logits, target, label_weight=label_weight),
        la.ghmc_loss(logits, target, label_weight=label_weight),
    )


def test_ghmc_errors():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"target must have the same shape as input \(3, 2\)"):
        la.ghmc_loss(x, torch.zeros(3, 2, 1))
    with pytest.raises(ValueError, match=r"label_weight must have the same shape as input"):
        la.ghmc_loss(x, x, label_weight=torch.ones(3))
    with pytest.raises(ValueError, match=r"target must hold probabilities in \[0, 1\], got 2.0"):
        la.ghmc_loss(x, torch.full((3, 2), 2.0))
    with pytest.raises(ValueError, match=r"bins must be in \[1, inf\], got 0"):
        la.ghmc_loss(x, x, bins=0)
    with pytest.raises(TypeError, match="bins must be an int"):
        la.ghmc_loss(x, x, bins=2.5)
    with pytest.raises(TypeError, match="input must be a floating-point tensor"):
        la.ghmc_loss(x.long(), x)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        la.nn.GHMCLoss(momentum=1.0)
    with pytest.raises(ValueError, match="reduction must be one of"):
        la.nn.GHMCLoss(reduction="mea")


# --------------------------------------------------------------------------- moving average


def test_ghmc_module_ema_follows_the_paper():
    module = la.nn.GHMCLoss(bins=10, momentum=0.75).double()
    acc = torch.zeros(10, dtype=F64)
    for seed in range(4):
        logits, target, label_weight = detector_batch(seed)
        expected = mmdet_ghmc(logits, target, label_weight, momentum=0.75, acc_sum=acc)
        close(module(logits, target, label_weight), expected)
        close(module.acc_sum, acc)  # acc = 0.75 acc + 0.25 num_in_bin, non-empty bins only
    assert float(module.acc_sum.sum()) > 0


def test_ghmc_module_first_step_by_hand():
    # From zero, a non-empty bin's running count is (1 - momentum) * num_in_bin.
    module = la.nn.GHMCLoss(bins=10, momentum=0.75)
    logits = torch.tensor([-4.0, -4.0, -4.0, 3.0])
    module(logits, torch.zeros(4))
    expected = torch.zeros(10)
    expected[0], expected[9] = 0.25 * 3, 0.25 * 1
    close(module.acc_sum, expected)


def test_ghmc_module_eval_does_not_update():
    module = la.nn.GHMCLoss(momentum=0.75).double()
    logits, target, label_weight = detector_batch(0)
    module(logits, target, label_weight)
    saved = module.acc_sum.clone()
    module.eval()
    acc = saved.clone()
    expected = mmdet_ghmc(logits, target, label_weight, momentum=0.75, acc_sum=acc)
    close(module(logits, target, label_weight), expected)  # uses the would-be update ...
    close(module.acc_sum, saved)  # ... but leaves the buffer alone


def test_ghmc_module_momentum_zero_is_functional_and_stateless():
    module = la.nn.GHMCLoss(bins=5)
    logits, target, label_weight = detector_batch(1)
    close(
        module(logits, target, label_weight),
        la.ghmc_loss(logits, target, label_weight=label_weight, bins=5),
    )
    assert float(module.acc_sum.abs().sum()) == 0.0


def test_ghmc_module_state_dict_round_trip():
    first = la.nn.GHMCLoss(momentum=0.75).double()
    for seed in range(3):
        first(*detector_batch(seed))
    second = la.nn.GHMCLoss(momentum=0.75).double()
    second.load_state_dict(first.state_dict())
    close(second.acc_sum, first.acc_sum)
    batch = detector_batch(9)
    close(second(*batch), first(*batch))
    assert "acc_sum" in first.state_dict() and "momentum=0.75" in repr(first)


def test_ghmc_module_buffer_not_in_graph():
    module = la.nn.GHMCLoss(momentum=0.5)
    logits = torch.randn(8, 3, requires_grad=True)
    module(logits, torch.zeros(8, 3)).backward()
    assert not module.acc_sum.requires_grad and torch.isfinite(logits.grad).all()


# --------------------------------------------------------------------------- GHM-R


def regression_batch(seed, n=50):
    g = torch.Generator().manual_seed(seed)
    pred = torch.randn(n, 4, generator=g, dtype=F64) * 0.2
    pred[:5] += 3.0  # outliers
    target = torch.randn(n, 4, generator=g, dtype=F64) * 0.2
    label_weight = (torch.rand(n, 4, generator=g) > 0.3).to(F64)
    return pred, target, label_weight


@pytest.mark.parametrize("bins", [1, 4, 10])
@pytest.mark.parametrize("mu", [0.02, 0.5])
def test_ghmr_equals_mmdetection_loop(bins, mu):
    pred, target, label_weight = regression_batch(bins)
    close(
        la.ghmr_loss(pred, target, mu=mu, bins=bins, label_weight=label_weight),
        mmdet_ghmr(pred, target, label_weight, mu=mu, bins=bins),
    )
    ones = torch.ones_like(pred)
    close(
        la.ghmr_loss(pred, target, mu=mu, bins=bins),
        mmdet_ghmr(pred, target, ones, mu=mu, bins=bins),
    )


def test_ghmr_fractional_label_weight_uses_its_sum():
    # mmdetection's tot for GHM-R is max(sum(label_weight), 1), not the count.
    pred, target, label_weight = regression_batch(3)
    label_weight = label_weight * 0.5
    close(
        la.ghmr_loss(pred, target, label_weight=label_weight),
        mmdet_ghmr(pred, target, label_weight),
    )


def test_ghmr_one_bin_is_asl1():
    pred, target, _ = regression_batch(4)
    d = pred - target
    close(la.ghmr_loss(pred, target, bins=1, reduction="none"), torch.sqrt(d * d + 0.02**2) - 0.02)


def test_ghmr_gradient_equals_mmdetection():
    pred, target, label_weight = regression_batch(5)
    a = pred.clone().requires_grad_(True)
    b = pred.clone().requires_grad_(True)
    (ga,) = torch.autograd.grad(la.ghmr_loss(a, target, label_weight=label_weight), a)
    (gb,) = torch.autograd.grad(mmdet_ghmr(b, target, label_weight), b)
    close(ga, gb)


def test_ghmr_module_ema():
    module = la.nn.GHMRLoss(momentum=0.7).double()
    acc = torch.zeros(10, dtype=F64)
    for seed in range(3):
        pred, target, label_weight = regression_batch(seed)
        expected = mmdet_ghmr(pred, target, label_weight, momentum=0.7, acc_sum=acc)
        close(module(pred, target, label_weight), expected)
        close(module.acc_sum, acc)


def test_ghmr_huge_residuals_finite():
    pred = torch.tensor([1e30, -1e30, 0.0, 1e-3], requires_grad=True)
    value = la.ghmr_loss(pred, torch.zeros(4))
    assert torch.isfinite(value)
    value.backward()
    assert torch.isfinite(pred.grad).all()


def test_ghmr_perfect_prediction_is_zero():
    target = torch.randn(6, 4, dtype=F64)
    assert float(la.ghmr_loss(target.clone(), target)) == 0.0


def test_ghmr_errors():
    x = torch.zeros(3, 4)
    with pytest.raises(ValueError, match=r"mu must be in \(0, inf\]"):
        la.ghmr_loss(x, x, mu=0.0)
    with pytest.raises(ValueError, match="target must have the same shape"):
        la.ghmr_loss(x, torch.zeros(3, 4, 1))
    with pytest.raises(ValueError, match=r"mu must be in"):
        la.nn.GHMRLoss(mu=-1.0)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        la.nn.GHMRLoss(momentum=-0.1)


# --------------------------------------------------------------------------- properties


@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 40),
    bins=st.integers(1, 30),
    scale=st.sampled_from([0.1, 1.0, 10.0]),
)
def test_ghm_weights_properties(seed, n, bins, scale):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, generator=g, dtype=F64) * scale
    target = (torch.rand(n, generator=g) < 0.3).to(F64)
    label_weight = (torch.rand(n, generator=g) < 0.8).to(F64)
    none = la.ghmc_loss(logits, target, label_weight=label_weight, bins=bins, reduction="none")
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    weights = torch.where(label_weight > 0, none / bce, torch.zeros_like(none))
    valid = int((label_weight > 0).sum())
    # The weights of the valid elements sum to their count; invalid ones get none.
    close(weights.sum(), torch.tensor(float(valid), dtype=F64), rtol=1e-9, atol=1e-9)
    assert float(none[label_weight == 0].abs().sum()) == 0.0
    # Permuting the elements permutes the unreduced loss (the binning is order-free).
    perm = torch.randperm(n, generator=g)
    close(
        la.ghmc_loss(
            logits[perm], target[perm], label_weight=label_weight[perm], bins=bins, reduction="none"
        ),
        none[perm],
    )
    close(
        la.ghmc_loss(logits, target, label_weight=label_weight, bins=bins),
        mmdet_ghmc(logits, target, label_weight, bins=bins),
    )
