"""Divergences: kl_div torch parity and its batchmean default, js_div properties and references.

Reference values come from ``torch.nn.functional.kl_div`` (computed in the test), SciPy
(``scipy.stats.entropy`` for KL, ``scipy.spatial.distance.jensenshannon`` for JS; both in
float64) and hand computations written beside each test.
"""

import itertools
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import lossatlas as la

F64 = torch.float64
LOG2 = math.log(2.0)


def close(actual, expected, *, rtol=1e-6, atol=1e-9):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


def torch_kl(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns about reduction="mean"
        return F.kl_div(*args, **kwargs)


def distributions(n=6, c=5, seed=0, zeros=True):
    """Log-probabilities and target probabilities (with some exact zeros)."""
    g = torch.Generator().manual_seed(seed)
    log_q = torch.log_softmax(torch.randn(n, c, generator=g, dtype=F64) * 2, dim=1)
    p = torch.softmax(torch.randn(n, c, generator=g, dtype=F64) * 2, dim=1)
    if zeros:
        p[0, 1] = 0.0
        p[2, :2] = 0.0
        p = p / p.sum(dim=1, keepdim=True)
    return log_q, p


# --------------------------------------------------------------------------- kl_div


@pytest.mark.parametrize(
    ("reduction", "log_target"),
    list(itertools.product(["none", "mean", "sum", "batchmean"], [False, True])),
)
def test_kl_div_torch_parity_values_and_gradients(reduction, log_target):
    log_q, p = distributions(zeros=not log_target)
    target = p.log() if log_target else p
    x = log_q.clone().requires_grad_(True)
    ours = la.kl_div(x, target, log_target=log_target, reduction=reduction)
    ours.sum().backward()
    y = log_q.clone().requires_grad_(True)
    theirs = torch_kl(y, target, log_target=log_target, reduction=reduction)
    theirs.sum().backward()
    close(ours, theirs)
    close(x.grad, y.grad)


def test_kl_div_default_is_batchmean_and_is_the_kl():
    scipy_stats = pytest.importorskip("scipy.stats", reason="SciPy reference")
    log_q, p = distributions(n=4, c=3, seed=1)
    # scipy.stats.entropy(p, q) = sum p log(p / q), the KL divergence of each row.
    per_row = [scipy_stats.entropy(p[i].numpy(), log_q[i].exp().numpy()) for i in range(4)]
    expected = torch.tensor(sum(per_row) / 4, dtype=F64)
    close(la.kl_div(log_q, p), expected, rtol=1e-10)
    close(la.kl_div(log_q, p), torch_kl(log_q, p, reduction="batchmean"))
    # torch's "mean" divides by N * C as well: not the KL.
    close(la.kl_div(log_q, p, reduction="mean"), expected / 3, rtol=1e-10)


def test_kl_div_module_matches_torch_module():
    log_q, p = distributions(seed=2)
    assert la.nn.KLDivLoss().reduction == "batchmean"
    for reduction in ("batchmean", "sum", "none"):
        close(
            la.nn.KLDivLoss(reduction=reduction)(log_q, p),
            torch.nn.KLDivLoss(reduction=reduction)(log_q, p),
        )
    with pytest.raises(ValueError, match="Did you mean 'batchmean'"):
        la.nn.KLDivLoss(reduction="batchmaen")


def test_kl_div_zero_target_with_minus_inf_input_is_finite():
    # Zero target probability where the prediction is also impossible: 0 log 0 = 0. torch's
    # kernel gives 0 * (-inf) = NaN there.
    log_q = torch.tensor([[0.0, -math.inf], [math.log(0.5), math.log(0.5)]], dtype=F64)
    p = torch.tensor([[1.0, 0.0], [0.25, 0.75]], dtype=F64)
    assert torch.isnan(torch_kl(log_q, p, reduction="sum"))
    x = log_q.clone().requires_grad_(True)
    loss = la.kl_div(x, p, reduction="none")
    # Row 2 by hand: 0.25 log(0.25 / 0.5) + 0.75 log(0.75 / 0.5).
    expected = torch.tensor([[0.0, 0.0], [0.25 * math.log(0.5), 0.75 * math.log(1.5)]], dtype=F64)
    close(loss, expected)
    loss.sum().backward()
    assert torch.isfinite(x.grad).all()
    close(x.grad, -p)  # d/dx of p (log p - x) is -p, and 0 where p = 0


def test_kl_div_log_target_with_minus_inf_target_is_finite():
    log_q, p = distributions(seed=3)
    log_p = p.log()  # -inf where p = 0
    x = log_q.clone().requires_grad_(True)
    t = log_p.clone().requires_grad_(True)
    value = la.kl_div(x, t, log_target=True, reduction="sum")
    close(value, la.kl_div(log_q, p, reduction="sum"))
    value.backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(t.grad).all()
    assert torch.isnan(torch_kl(log_q, log_p, log_target=True, reduction="sum"))


def test_kl_div_zero_at_equal_and_half_precision():
    _, p = distributions(seed=4, zeros=False)
    close(la.kl_div(p.log(), p), torch.tensor(0.0, dtype=F64))
    for dtype in (torch.float16, torch.bfloat16):
        x = torch.log_softmax(torch.randn(3, 4) * 1e4, dim=1).to(dtype).requires_grad_(True)
        loss = la.kl_div(x, torch.softmax(torch.randn(3, 4), dim=1).to(dtype))
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        loss.backward()
        assert torch.isfinite(x.grad).all()


def test_kl_div_empty_batch():
    x = torch.zeros(0, 3, dtype=F64, requires_grad=True)
    for reduction in ("batchmean", "mean", "sum"):
        loss = la.kl_div(x, torch.zeros(0, 3, dtype=F64), reduction=reduction)
        assert float(loss.detach()) == 0.0


def test_kl_div_errors():
    log_q, p = distributions(n=4, c=3)
    with pytest.raises(ValueError, match=r"target must have the same shape as input \(4, 3\)"):
        la.kl_div(log_q, p[:, :1])
    with pytest.raises(
        ValueError, match=r"target must have the same shape as input \(4, 1\), got \(4,\)"
    ):
        la.kl_div(log_q[:, :1], p[:, 0])
    with pytest.raises(ValueError, match=r"target must hold probabilities in \[0, 1\]"):
        la.kl_div(log_q, p * 2)
    with pytest.raises(ValueError, match=r"input must hold log-probabilities in \[-inf, 0\]"):
        la.kl_div(log_q + 1, p)
    with pytest.raises(ValueError, match=r"target must hold log-probabilities"):
        la.kl_div(log_q, p, log_target=True)
    with pytest.raises(TypeError, match="input must be a floating-point tensor"):
        la.kl_div(torch.zeros(4, 3, dtype=torch.long), p)
    with pytest.raises(ValueError, match="Did you mean 'batchmean'"):
        la.kl_div(log_q, p, reduction="batchmaen")
    with la.value_checks(False):
        la.kl_div(log_q + 1, p)


# --------------------------------------------------------------------------- js_div


def scipy_js(p, q):
    distance = pytest.importorskip("scipy.spatial.distance", reason="SciPy reference")
    # jensenshannon returns the square root of the divergence (natural log by default).
    return float(distance.jensenshannon(p, q)) ** 2


@pytest.mark.parametrize("log_target", [False, True])
def test_js_div_matches_scipy(log_target):
    log_q, p = distributions(n=8, c=6, seed=5)
    target = p.log() if log_target else p
    expected = torch.tensor(
        [scipy_js(log_q[i].exp().numpy(), p[i].numpy()) for i in range(8)], dtype=F64
    )
    close(la.js_div(log_q, target, log_target=log_target, reduction="none"), expected, rtol=1e-9)
    close(la.js_div(log_q, target, log_target=log_target), expected.mean(), rtol=1e-9)
    close(
        la.js_div(log_q, target, log_target=log_target, reduction="sum"), expected.sum(), rtol=1e-9
    )


def test_js_div_symmetric_zero_and_bounded():
    log_q, p = distributions(n=20, c=4, seed=6)
    log_p = p.log()
    forward = la.js_div(log_q, log_p, log_target=True, reduction="none")
    close(forward, la.js_div(log_p, log_q, log_target=True, reduction="none"))
    close(la.js_div(log_q, log_q, log_target=True, reduction="none"), torch.zeros(20, dtype=F64))
    assert (forward >= 0).all() and (forward <= LOG2).all()
    g = torch.Generator().manual_seed(7)
    sharp_p = torch.log_softmax(torch.randn(50, 3, generator=g, dtype=F64) * 1e3, dim=1)
    sharp_q = torch.log_softmax(torch.randn(50, 3, generator=g, dtype=F64) * 1e3, dim=1)
    value = la.js_div(sharp_p, sharp_q, log_target=True, reduction="none")
    assert (value >= 0).all() and (value <= LOG2 + 1e-12).all()


def test_js_div_disjoint_supports_is_log_2():
    log_p = torch.tensor(
        [[0.0, -math.inf, -math.inf], [math.log(0.5), math.log(0.5), -math.inf]], dtype=F64
    )
    q = torch.tensor([[0.0, 0.3, 0.7], [0.0, 0.0, 1.0]], dtype=F64)
    value = la.js_div(log_p, q, reduction="none")
    close(value, torch.full((2,), LOG2, dtype=F64), rtol=1e-15, atol=0)
    close(la.js_div(log_p, q.log(), log_target=True, reduction="none"), value, rtol=0, atol=0)


def test_js_div_gradients_finite_with_zeros_and_minus_inf():
    log_p = torch.tensor(
        [
            [0.0, -math.inf, -math.inf],
            [math.log(0.2), -math.inf, math.log(0.8)],
            [-math.inf, math.log(0.5), math.log(0.5)],
        ],
        dtype=F64,
        requires_grad=True,
    )
    log_q = torch.tensor(
        [
            [-math.inf, 0.0, -math.inf],
            [math.log(0.6), -math.inf, math.log(0.4)],
            [-math.inf, math.log(0.1), math.log(0.9)],
        ],
        dtype=F64,
        requires_grad=True,
    )
    value = la.js_div(log_p, log_q, log_target=True)
    assert torch.isfinite(value)
    value.backward()
    assert torch.isfinite(log_p.grad).all() and torch.isfinite(log_q.grad).all()
    # Entries that are -inf in both get exactly no gradient.
    assert log_p.grad[1, 1] == 0 and log_q.grad[1, 1] == 0 and log_p.grad[2, 0] == 0
    # A probability target with zeros: finite gradients for the input.
    x = log_p.detach().clone().requires_grad_(True)
    la.js_div(x, log_q.detach().exp()).backward()
    assert torch.isfinite(x.grad).all()


def test_js_div_gradient_against_finite_differences():
    # Rows without zeros: the analytic gradient is d/da 0.5 p (a - log m) = 0.5 p log(p / m).
    log_p, q = distributions(n=3, c=4, seed=8, zeros=False)
    log_q = q.log()
    assert torch.autograd.gradcheck(
        lambda a, b: la.js_div(a, b, log_target=True),
        (log_p.requires_grad_(True), log_q.requires_grad_(True)),
    )
    x = log_p.detach().clone().requires_grad_(True)
    la.js_div(x, log_q, log_target=True, reduction="sum").backward()
    p = x.detach().exp()
    m = (p + q) / 2
    close(x.grad, 0.5 * p * torch.log(p / m))


def test_js_div_dim_and_spatial_inputs():
    g = torch.Generator().manual_seed(9)
    log_p = torch.log_softmax(torch.randn(2, 4, 3, 5, generator=g, dtype=F64), dim=1)
    log_q = torch.log_softmax(torch.randn(2, 4, 3, 5, generator=g, dtype=F64), dim=1)
    value = la.js_div(log_p, log_q, log_target=True, reduction="none")
    assert value.shape == (2, 3, 5)
    moved = la.js_div(
        log_p.movedim(1, -1), log_q.movedim(1, -1), dim=-1, log_target=True, reduction="none"
    )
    close(moved, value)
    flat = la.js_div(
        log_p.movedim(1, -1).reshape(-1, 4),
        log_q.movedim(1, -1).reshape(-1, 4),
        log_target=True,
        reduction="none",
    )
    close(flat, value.reshape(-1))
    module = la.nn.JSDivLoss(dim=-1, log_target=True)
    close(module(log_p.movedim(1, -1), log_q.movedim(1, -1)), value.mean())


def test_js_div_half_precision_extreme():
    for dtype in (torch.float16, torch.bfloat16):
        x = torch.log_softmax(torch.randn(3, 4) * 1e4, dim=1).to(dtype).requires_grad_(True)
        y = torch.log_softmax(torch.randn(3, 4) * 1e4, dim=1).to(dtype)
        loss = la.js_div(x, y, log_target=True)
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        assert float(loss.detach()) <= LOG2 + 1e-6
        loss.backward()
        assert torch.isfinite(x.grad).all()


def test_js_div_errors():
    log_p, q = distributions(n=4, c=3)
    with pytest.raises(
        ValueError,
        match=r"dim must index a dimension of the input of shape "
        r"\(4, 3\), got 2",
    ):
        la.js_div(log_p, q, dim=2)
    with pytest.raises(TypeError, match="dim must be an int"):
        la.js_div(log_p, q, dim=1.0)
    with pytest.raises(
        ValueError, match=r"target must have the same shape as input \(4, 1\), got \(4,\)"
    ):
        la.js_div(log_p[:, :1], q[:, 0])
    with pytest.raises(ValueError, match=r"input must hold log-probabilities"):
        la.js_div(log_p.exp(), q)
    with pytest.raises(ValueError, match=r"target must hold probabilities in \[0, 1\]"):
        la.js_div(log_p, q.log())
    with pytest.raises(TypeError, match="log_target must be a bool"):
        la.js_div(log_p, q, log_target=None)
    with pytest.raises(ValueError, match="Did you mean 'mean'"):
        la.js_div(log_p, q, reduction="maen")
    with pytest.raises(TypeError, match="dim must be an int"):
        la.nn.JSDivLoss(dim="1")


# --------------------------------------------------------------------------- properties


@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([0.1, 1.0, 10.0, 1e3]))
def test_property_js_bounds_and_jeffreys_inequality(seed, scale):
    g = torch.Generator().manual_seed(seed)
    log_p = torch.log_softmax(torch.randn(4, 5, generator=g, dtype=F64) * scale, dim=1)
    log_q = torch.log_softmax(torch.randn(4, 5, generator=g, dtype=F64) * scale, dim=1)
    js = la.js_div(log_p, log_q, log_target=True, reduction="none")
    assert (js >= -1e-12).all() and (js <= LOG2 + 1e-12).all()
    close(js, la.js_div(log_q, log_p, log_target=True, reduction="none"))
    # Convexity of KL in its second argument: JS <= (KL(P||Q) + KL(Q||P)) / 4.
    kl_pq = la.kl_div(log_q, log_p, log_target=True, reduction="none").sum(dim=1)
    kl_qp = la.kl_div(log_p, log_q, log_target=True, reduction="none").sum(dim=1)
    assert (js <= (kl_pq + kl_qp) / 4 + 1e-9).all()
