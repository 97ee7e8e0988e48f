"""Focal family: references (torchvision's formula, kornia, torch), identities, fused paths, errors.

Most tests run the fused kernels op by op (``la.fused(False)``: the same custom autograd, no
compilation) to stay fast; ``test_compiled_kernels_*`` compare the compiled kernels with it.
"""

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la
from lossatlas.classification import _fused_focal as ff

torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _eager_kernels():
    with la.fused(False):
        yield


def torchvision_focal(x, t, alpha=0.25, gamma=2.0, pos_weight=None):
    """torchvision.ops.sigmoid_focal_loss, written out (torchvision is not installed):
    ce = BCEWithLogits(none); p_t = p t + (1-p)(1-t); loss = ce (1-p_t)^gamma;
    alpha_t = alpha t + (1-alpha)(1-t). pos_weight enters the ce as in torch."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, pos_weight=pos_weight, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return loss


def reduce(loss, reduction):
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


def logits(*shape, scale=3.0):
    return torch.randn(*shape, dtype=torch.float64) * scale


def hard(*shape):
    return torch.randint(0, 2, shape).double()


def soft(*shape):
    return torch.rand(*shape, dtype=torch.float64)


def value_and_grad(fn, x, upstream=None):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x)
    weight = torch.ones_like(out) if upstream is None else upstream
    (grad,) = torch.autograd.grad((out * weight).sum(), x)
    return out.detach(), grad


# --------------------------------------------------------------------------- binary focal


@pytest.mark.parametrize(
    ("alpha", "gamma"),
    [(0.25, 2.0), (None, 2.0), (0.6, 0.5), (0.1, 3.3), (None, 0.0), (1.0, 1.0), (0.0, 2.0)],
)
@pytest.mark.parametrize("target", [hard, soft])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_binary_focal_equals_torchvision_formula(alpha, gamma, target, reduction):
    x, t = logits(7, 5), target(7, 5)
    upstream = torch.rand(7, 5, dtype=torch.float64) if reduction == "none" else None
    ours = value_and_grad(
        lambda z: la.binary_focal_loss(z, t, alpha=alpha, gamma=gamma, reduction=reduction),
        x,
        upstream,
    )
    ref = value_and_grad(
        lambda z: reduce(torchvision_focal(z, t, alpha, gamma), reduction), x, upstream
    )
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("alpha", "gamma"), [(0.25, 2.0), (None, 1.0), (0.75, 0.5)])
def test_binary_focal_equals_kornia_for_hard_targets(alpha, gamma):
    kornia = pytest.importorskip("kornia", reason="kornia is the peer reference")
    x, t = logits(4, 3, 5), hard(4, 3, 5)
    pos_weight = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    expected = kornia.losses.binary_focal_loss_with_logits(
        x, t, alpha=alpha, gamma=gamma, reduction="none", pos_weight=pos_weight
    )
    # kornia's pos_weight runs along dim 1; torch's (and ours) broadcasts from the right.
    ours = la.binary_focal_loss(
        x, t, alpha=alpha, gamma=gamma, reduction="none", pos_weight=pos_weight.view(3, 1)
    )
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-12)


def test_binary_focal_soft_targets_differ_from_kornia_by_definition():
    kornia = pytest.importorskip("kornia", reason="kornia is the peer reference")
    x, t = logits(2, 3), torch.full((2, 3), 0.3, dtype=torch.float64)
    ours = la.binary_focal_loss(x, t, reduction="none")
    assert torch.allclose(ours, torchvision_focal(x, t))
    theirs = kornia.losses.binary_focal_loss_with_logits(x, t, alpha=0.25, gamma=2.0)
    assert not torch.allclose(ours, theirs)


def test_binary_focal_gamma0_alpha_none_is_bce_with_logits():
    x, t = logits(6, 4), soft(6, 4)
    pos_weight = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
    for reduction in ("none", "mean", "sum"):
        ours = la.binary_focal_loss(
            x, t, alpha=None, gamma=0.0, pos_weight=pos_weight, reduction=reduction
        )
        expected = F.binary_cross_entropy_with_logits(
            x, t, pos_weight=pos_weight, reduction=reduction
        )
        torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12)


def test_binary_focal_pos_weight_matches_torchvision_formula_with_weighted_ce():
    x, t = logits(5, 3), soft(5, 3)
    pos_weight = torch.tensor([0.5, 2.0, 4.0], dtype=torch.float64)
    ours = value_and_grad(lambda z: la.binary_focal_loss(z, t, pos_weight=pos_weight), x)
    ref = value_and_grad(lambda z: torchvision_focal(z, t, pos_weight=pos_weight).mean(), x)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


def test_binary_focal_hand_values_at_extreme_logits():
    # x = -1e4, t = 1: p_t = 0, so loss = alpha * 1 * 1e4 and d/dx = -alpha (worked by hand);
    # x = +1e4, t = 1: p_t = 1, loss 0, gradient 0.
    x = torch.tensor([-1e4, 1e4], requires_grad=True)
    t = torch.ones(2)
    loss = la.binary_focal_loss(x, t, reduction="none")
    loss.sum().backward()
    torch.testing.assert_close(loss.detach(), torch.tensor([2500.0, 0.0]))
    torch.testing.assert_close(x.grad, torch.tensor([-0.25, 0.0]))


def test_fractional_gamma_gradient_is_finite_where_the_naive_formula_is_nan():
    # p_t rounds to 1 in float32 at x = 20: (1 - p_t)^0.5 has an infinite derivative there.
    x = torch.tensor([20.0, -20.0])
    t = torch.tensor([1.0, 0.0])
    _, naive = value_and_grad(lambda z: torchvision_focal(z, t, gamma=0.5).sum(), x)
    assert torch.isnan(naive).any()
    value, grad = value_and_grad(lambda z: la.binary_focal_loss(z, t, gamma=0.5), x)
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    # float64 reference where nothing rounds: the exact gradient
    _, exact = value_and_grad(
        lambda z: torchvision_focal(z, t.double(), gamma=0.5).mean(), x.double()
    )
    torch.testing.assert_close(grad.double(), exact, rtol=1e-4, atol=1e-30)


# --------------------------------------------------------------------------- balanced BCE


@pytest.mark.parametrize("alpha", [0.75, 0.5, 0.1, 0.99])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_balanced_bce_is_scaled_bce_with_pos_weight(alpha, reduction):
    x, t = logits(6, 4), soft(6, 4)
    ours = value_and_grad(
        lambda z: la.balanced_binary_cross_entropy(z, t, alpha=alpha, reduction=reduction), x
    )
    pos_weight = torch.tensor(alpha / (1 - alpha), dtype=torch.float64)
    ref = value_and_grad(
        lambda z: (
            (1 - alpha)
            * F.binary_cross_entropy_with_logits(z, t, pos_weight=pos_weight, reduction=reduction)
        ),
        x,
    )
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


def test_balanced_bce_equals_focal_gamma0_for_hard_targets():
    x, t = logits(8, 3), hard(8, 3)
    torch.testing.assert_close(
        la.balanced_binary_cross_entropy(x, t, alpha=0.3, reduction="none"),
        la.binary_focal_loss(x, t, alpha=0.3, gamma=0.0, reduction="none"),
    )


def test_balanced_bce_alpha_extremes_keep_one_term():
    x, t = logits(5), soft(5)
    ones = la.balanced_binary_cross_entropy(x, t, alpha=1.0, reduction="none")
    torch.testing.assert_close(ones, -t * F.logsigmoid(x))  # alpha=1: positive term only
    zeros = la.balanced_binary_cross_entropy(x, t, alpha=0.0, reduction="none")
    torch.testing.assert_close(zeros, -(1 - t) * F.logsigmoid(-x))


# --------------------------------------------------------------------------- softmax focal


def hand_focal(x, y, alpha, gamma, ignore_index=-100):
    """Element by element: -alpha_y (1 - p_y)^gamma log p_y, 0 where ignored (a Python loop)."""
    n, c = x.shape[0], x.shape[1]
    xs = x.reshape(n, c, -1)
    ys = y.reshape(n, -1)
    out = torch.zeros(ys.shape, dtype=x.dtype)
    for i in range(n):
        for j in range(ys.shape[1]):
            k = int(ys[i, j])
            if k == ignore_index:
                continue
            log_p = torch.log_softmax(xs[i, :, j], dim=0)[k]
            a = 1.0 if alpha is None else float(alpha[k])
            out[i, j] = -a * (1 - log_p.exp()) ** gamma * log_p
    return out.reshape(y.shape)


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5), (2, 4, 3, 2)])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [None, [0.1, 0.5, 0.9, 1.0]])
def test_focal_matches_hand_reference(shape, gamma, alpha):
    x = logits(*shape)
    y = torch.randint(0, 4, (shape[0], *shape[2:]))
    y.view(-1)[::3] = -100
    expected = hand_focal(x, y, alpha, gamma)
    ours = la.focal_loss(x, y, alpha=alpha, gamma=gamma, reduction="none")
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-12)
    kept = (y != -100).sum()
    torch.testing.assert_close(la.focal_loss(x, y, alpha=alpha, gamma=gamma), expected.sum() / kept)


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5)])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_focal_gamma0_is_cross_entropy_with_ignore_index(shape, reduction):
    x = logits(*shape)
    y = torch.randint(0, 4, (shape[0], *shape[2:]))
    y.view(-1)[::2] = 7
    upstream = torch.rand(y.shape, dtype=torch.float64) if reduction == "none" else None
    ours = value_and_grad(
        lambda z: la.focal_loss(z, y, gamma=0.0, ignore_index=7, reduction=reduction), x, upstream
    )
    ref = value_and_grad(
        lambda z: F.cross_entropy(z, y, ignore_index=7, reduction=reduction), x, upstream
    )
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


def test_focal_float_alpha_two_classes_is_binary_focal_of_logit_difference():
    x, y = logits(10, 2), torch.randint(0, 2, (10,))
    ours = la.focal_loss(x, y, alpha=0.25, gamma=2.0, reduction="none")
    binary = la.binary_focal_loss(
        x[:, 1] - x[:, 0], y.double(), alpha=0.25, gamma=2.0, reduction="none"
    )
    torch.testing.assert_close(ours, binary)


def test_focal_float_alpha_matches_kornia_sum():
    kornia = pytest.importorskip("kornia", reason="kornia is the peer reference")
    x, y = logits(5, 4, 3), torch.randint(0, 4, (5, 3))
    expected = kornia.losses.focal_loss(x, y, alpha=0.3, gamma=1.5, reduction="sum")
    torch.testing.assert_close(la.focal_loss(x, y, alpha=0.3, gamma=1.5, reduction="sum"), expected)
    # kornia's mean divides by C x elements; ours by the elements.
    torch.testing.assert_close(la.focal_loss(x, y, alpha=0.3, gamma=1.5), expected / 15)


def test_focal_is_per_sample_not_on_the_batch_mean():
    x, y = logits(8, 3), torch.randint(0, 3, (8,))
    # seeds/000_*: FocalLoss(gamma=2, alpha=None) per sample, loss.mean()
    log_pt = F.log_softmax(x, dim=1).gather(1, y.view(-1, 1)).view(-1)
    seed_per_sample = (-1 * (1 - log_pt.exp()) ** 2 * log_pt).mean()
    torch.testing.assert_close(la.focal_loss(x, y), seed_per_sample)
    # seeds/002_* snippet: focal applied to the batch-mean CE, a different (wrong) value
    ce = F.cross_entropy(x, y)
    seed_batch_mean = (1 - torch.exp(-ce)) ** 2 * ce
    assert not torch.allclose(la.focal_loss(x, y), seed_batch_mean)


def test_focal_all_ignored_is_zero_with_zero_gradient():
    x = logits(4, 3).requires_grad_(True)
    y = torch.full((4,), -100)
    loss = la.focal_loss(x, y)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))


def test_focal_alpha_tensor_and_sequence_agree_and_module_buffers():
    x, y = logits(6, 3), torch.randint(0, 3, (6,))
    alpha = [0.2, 0.3, 0.9]
    as_tensor = la.focal_loss(x, y, alpha=torch.tensor(alpha, dtype=torch.float64))
    torch.testing.assert_close(la.focal_loss(x, y, alpha=alpha), as_tensor)
    module = la.nn.FocalLoss(alpha=alpha, gamma=2.0)
    assert "alpha" in dict(module.named_buffers())
    assert "alpha" in module.state_dict()
    torch.testing.assert_close(module(x, y), as_tensor, rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- fused paths


BINARY_CASES = [
    dict(alpha=0.25, gamma=2.0),
    dict(alpha=None, gamma=0.0),
    dict(alpha=0.6, gamma=0.5),
    dict(alpha=0.9, gamma=3.3),
    dict(alpha=0.25, gamma=2.0, pos_weight=True),
]


def _binary_fused_vs_plain(case, target, reduction):
    x, t = logits(5, 4, scale=6.0), target(5, 4)
    x[0, :2] = 0.0  # the kink of |x| in the kernel
    options = dict(case)
    pos_weight = (
        torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
        if options.pop("pos_weight", False)
        else None
    )
    upstream = torch.rand(5, 4, dtype=torch.float64) if reduction == "none" else None
    fused = value_and_grad(
        lambda z: la.binary_focal_loss(z, t, pos_weight=pos_weight, reduction=reduction, **options),
        x,
        upstream,
    )
    alpha = options["alpha"]
    a1, a0 = (1.0, 1.0) if alpha is None else (alpha, 1 - alpha)
    coef = torch.tensor([a1, a0, 1.0, 1.0, options["gamma"]], dtype=torch.float64)
    plain = value_and_grad(
        lambda z, r=reduction: reduce(ff.sigmoid_focal_plain(z, t, pos_weight, coef), r),
        x,
        upstream,
    )
    return fused, plain


@pytest.mark.parametrize("case", BINARY_CASES)
@pytest.mark.parametrize("target", [hard, soft])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_binary_fused_equals_plain_formula(case, target, reduction):
    fused, plain = _binary_fused_vs_plain(case, target, reduction)
    torch.testing.assert_close(fused, plain, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("alpha", [None, 0.3, [0.2, 0.4, 0.6, 0.8, 1.0]])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_softmax_fused_equals_plain_formula(alpha, gamma, reduction):
    x = logits(4, 5, 3, scale=5.0)
    y = torch.randint(0, 5, (4, 3))
    y[0, 0] = -100
    upstream = torch.rand(4, 3, dtype=torch.float64) if reduction == "none" else None

    def plain(z):
        class_alpha = None if alpha is None else la.classification.focal._class_alpha(alpha, 5, z)
        loss = ff.softmax_focal_plain(
            z.reshape(4, 5, 3), y, class_alpha, torch.tensor(gamma, dtype=z.dtype), -100
        )
        if reduction == "mean":
            return loss.sum() / (y != -100).sum()
        return reduce(loss, reduction)

    fused = value_and_grad(
        lambda z: la.focal_loss(z, y, alpha=alpha, gamma=gamma, reduction=reduction), x, upstream
    )
    torch.testing.assert_close(fused, value_and_grad(plain, x, upstream), rtol=1e-10, atol=1e-12)


def graph_nodes(tensor):
    """Names of the autograd nodes behind ``tensor``."""
    names, stack = set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and type(node).__name__ not in names:
            names.add(type(node).__name__)
            stack.extend(f for f, _ in node.next_functions)
    return names


def test_fused_path_is_taken_and_saves_one_tensor():
    """The default path is the custom Function and keeps one input-sized tensor."""
    saved = []

    def pack(tensor):
        saved.append(tensor.numel())
        return tensor

    x = torch.randn(1000, requires_grad=True)
    t = torch.randint(0, 2, (1000,)).float()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = la.binary_focal_loss(x, t)
    assert "_SigmoidFocalBackward" in graph_nodes(loss)
    assert sum(saved) <= 2 * x.numel()
    saved.clear()
    logits_ = torch.randn(200, 5, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = la.focal_loss(logits_, torch.randint(0, 5, (200,)))
    assert "_SoftmaxFocalBackward" in graph_nodes(loss)
    assert sum(saved) <= logits_.numel() + 200


def test_double_backward_raises_and_retain_graph_works():
    x = torch.randn(10, requires_grad=True)
    t = torch.rand(10)
    loss = la.binary_focal_loss(x, t)
    (g1,) = torch.autograd.grad(loss, x, retain_graph=True)
    (g2,) = torch.autograd.grad(loss, x, retain_graph=True)
    torch.testing.assert_close(g1, g2)
    with pytest.raises(RuntimeError, match="first derivatives only"):
        torch.autograd.grad(loss, x, create_graph=True)
    y = torch.randint(0, 2, (5,))
    with pytest.raises(RuntimeError, match="first derivatives only"):
        torch.autograd.grad(la.focal_loss(x.view(5, 2), y), x, create_graph=True)


def test_second_derivatives_through_torch_func():
    x, t = logits(6), soft(6)
    y = torch.randint(0, 3, (2,))

    def second(f, z):
        return torch.func.grad(lambda w: torch.func.grad(f)(w).sum())(z)

    torch.testing.assert_close(
        second(lambda z: la.binary_focal_loss(z, t, gamma=1.5), x),
        second(lambda z: torchvision_focal(z, t, gamma=1.5).mean(), x),
    )
    torch.testing.assert_close(
        second(lambda z: la.focal_loss(z.view(2, 3), y), x),
        second(lambda z: hand_focal(z.view(2, 3), y, None, 2.0).mean(), x),
    )


def test_no_grad_and_inference_give_the_same_values():
    x, t = torch.randn(6, 3), torch.rand(6, 3)
    with_grad = la.binary_focal_loss(x.clone().requires_grad_(True), t, reduction="none")
    with torch.no_grad():
        without = la.binary_focal_loss(x, t, reduction="none")
    torch.testing.assert_close(with_grad.detach(), without)


def test_target_requiring_grad_takes_the_plain_path_with_exact_gradients():
    x, t = logits(6, 3), (soft(6, 3) * 0.8 + 0.1)
    t_ours = t.clone().requires_grad_(True)
    t_ref = t.clone().requires_grad_(True)
    la.binary_focal_loss(x, t_ours).backward()
    torchvision_focal(x, t_ref).mean().backward()
    torch.testing.assert_close(t_ours.grad, t_ref.grad, rtol=1e-10, atol=1e-12)


def test_outer_torch_compile_captures_plain_ops_with_equal_gradients():
    x, t = torch.randn(5, 3), torch.rand(5, 3)
    y = torch.randint(0, 3, (5,))

    def both(z):
        return la.binary_focal_loss(z, t) + la.focal_loss(z, y, alpha=0.25)

    torch._dynamo.reset()
    compiled = torch.compile(both, fullgraph=True, backend="eager")
    eager = value_and_grad(both, x)
    torch.testing.assert_close(value_and_grad(compiled, x), eager, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_kernels_agree_with_eager_kernels(dtype):
    x = torch.randn(64, 5, dtype=dtype) * 4
    t = torch.rand(64, 5, dtype=dtype)
    y = torch.randint(0, 5, (64,))
    y[::7] = -100
    pos_weight = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0], dtype=dtype)
    calls = [
        lambda z: la.binary_focal_loss(z, t, reduction="sum"),
        lambda z: la.binary_focal_loss(
            z, t, gamma=0.5, pos_weight=pos_weight, reduction="none"
        ).sum(1),
        lambda z: la.balanced_binary_cross_entropy(z, t),
        lambda z: la.focal_loss(z, y, alpha=[0.1, 0.2, 0.3, 0.4, 0.5]),
        lambda z: la.focal_loss(z, y, reduction="none"),
        lambda z: la.focal_loss(z, y),  # the variant the bad call below runs
    ]
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    for call in calls:
        eager = value_and_grad(call, x)
        with la.fused(True, min_numel=0):
            compiled = value_and_grad(call, x)
        torch.testing.assert_close(compiled, eager, **tol)
    # A bad index with the value checks off is the caller's error, not a compile failure: the
    # compiled variant raises and stays compiled.
    bad = torch.full((64,), 7)
    checks_off = la.value_checks(False)
    with (
        la.fused(True, min_numel=0),
        checks_off,
        pytest.raises(RuntimeError, match="out of bounds"),
    ):
        value_and_grad(lambda z: la.focal_loss(z, bad), x)
    states = la.fused_status()["_softmax_sum"].values()
    assert states and all(state == "compiled" for state in states)


@pytest.mark.slow
def test_compiled_kernels_do_not_recompile_per_batch_size():
    from torch._dynamo.utils import counters

    def step(n):
        x = torch.randn(n, 3, requires_grad=True)
        la.binary_focal_loss(x, torch.rand(n, 3)).backward()
        z = torch.randn(n, 4, requires_grad=True)
        la.focal_loss(z, torch.randint(0, 4, (n,))).backward()

    with la.fused(True, min_numel=0):
        # Inductor's CPU code picks a small-size and a large-size strategy (around 4096
        # elements): at most one graph each, then no batch size compiles again.
        for n in (16, 5000):
            step(n)
        graphs = counters["stats"]["unique_graphs"]
        for n in (17, 33, 999, 4097, 20_000, 123_457):
            step(n)
        assert counters["stats"]["unique_graphs"] == graphs


# --------------------------------------------------------------------------- extremes


def _every_loss(x, t_binary, y):
    wrapper = la.focal_wrapper(torch.nn.BCEWithLogitsLoss())
    return [
        la.binary_focal_loss(x, t_binary),
        la.binary_focal_loss(x, t_binary, alpha=None, gamma=0.5, pos_weight=torch.ones(4)),
        la.balanced_binary_cross_entropy(x, t_binary),
        la.focal_loss(x, y, alpha=[0.1, 0.2, 0.3, 0.4]),
        la.focal_loss(x, y, gamma=0.5),
        wrapper(x, t_binary),
    ]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, "autocast"])
@pytest.mark.parametrize("fused", [False, True])
def test_extreme_logits_are_finite(dtype, fused):
    base = torch.tensor([[1e4, -1e4, 1e4, -1e4], [-1e4, 1e4, 0.0, 3.0]])
    x = base.to(torch.bfloat16 if dtype == "autocast" else dtype).requires_grad_(True)
    t = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.3, 0.0, 1.0, 0.7]], dtype=x.dtype)
    y = torch.tensor([0, 1])
    context = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if dtype == "autocast"
        else torch.autograd.graph.saved_tensors_hooks(lambda a: a, lambda a: a)
    )
    with la.fused(fused), context:
        losses = _every_loss(x, t, y)
    for loss in losses:
        assert loss.dtype == torch.float32 and torch.isfinite(loss), loss
        (grad,) = torch.autograd.grad(loss, x)
        assert torch.isfinite(grad).all(), grad


# --------------------------------------------------------------------------- focal wrapper


def test_wrapping_bce_with_logits_is_binary_focal():
    x, t = logits(6, 3), soft(6, 3)
    expected = la.binary_focal_loss(x, t, alpha=0.25, gamma=1.5)
    torch.testing.assert_close(la.focal_wrapper(torch.nn.BCEWithLogitsLoss())(x, t), expected)
    torch.testing.assert_close(la.focal_wrapper(F.binary_cross_entropy_with_logits)(x, t), expected)
    pos_weight = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    wrapped = la.focal_wrapper(
        la.nn.BCEWithLogitsLoss(pos_weight=pos_weight), gamma=2.0, alpha=None, reduction="sum"
    )
    torch.testing.assert_close(
        wrapped(x, t),
        la.binary_focal_loss(x, t, alpha=None, pos_weight=pos_weight, reduction="sum"),
    )


def test_wrapper_keeps_the_callers_module_and_inherits_its_reduction():
    bce = torch.nn.BCEWithLogitsLoss(reduction="sum", pos_weight=torch.tensor([2.0]))
    wrapped = la.focal_wrapper(bce, gamma=2.0, alpha=0.25)
    assert bce.reduction == "sum"  # YOLO's FocalLoss would have set it to 'none'
    assert wrapped.reduction == "sum"
    assert "loss_fn.pos_weight" in wrapped.state_dict()
    x, t = logits(4, 1), hard(4, 1)
    torch.testing.assert_close(
        wrapped(x, t), la.binary_focal_loss(x, t, pos_weight=torch.tensor([2.0]), reduction="sum")
    )


def test_wrapper_errors():
    with pytest.raises(TypeError, match="reduction"):
        la.focal_wrapper(lambda a, b: (a - b).abs())
    with pytest.raises(TypeError, match="reduction"):
        la.focal_wrapper(torch.nn.Identity())
    with pytest.raises(ValueError, match="gamma"):
        la.focal_wrapper(torch.nn.BCEWithLogitsLoss(), gamma=-1.0)

    def not_element_wise(a, b, reduction="mean"):
        return F.binary_cross_entropy_with_logits(a, b)

    with pytest.raises(ValueError, match="element-wise"):
        la.focal_wrapper(not_element_wise)(torch.zeros(3), torch.ones(3))


# --------------------------------------------------------------------------- bad input


def test_bad_options_raise():
    x, t = torch.zeros(2, 3), torch.zeros(2, 3)
    y = torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match=r"gamma must be in \[0, inf\]"):
        la.binary_focal_loss(x, t, gamma=-0.5)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 1.5"):
        la.binary_focal_loss(x, t, alpha=1.5)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        la.balanced_binary_cross_entropy(x, t, alpha=-0.1)
    with pytest.raises(ValueError, match=r"gamma"):
        la.focal_loss(x, y, gamma=-1.0)
    with pytest.raises(ValueError, match=r"alpha must have one value per class, shape \(3,\)"):
        la.focal_loss(x, y, alpha=[0.5, 0.5])
    with pytest.raises(ValueError, match=r"alpha\[1\] must be in \[0, 1\]"):
        la.focal_loss(x, y, alpha=[0.5, 2.0, 0.1])
    with pytest.raises(ValueError, match=r"alpha must hold per-class weights in \[0, 1\]"):
        la.focal_loss(x, y, alpha=torch.tensor([0.5, -1.0, 0.1]))
    with pytest.raises(TypeError, match="alpha must be None"):
        la.focal_loss(x, y, alpha="balanced")
    with pytest.raises(ValueError, match=r"alpha\[0\]"):
        la.nn.FocalLoss(alpha=[1.5])
    with pytest.raises(ValueError, match="gamma"):
        la.nn.BinaryFocalLoss(gamma=-2.0)


def test_bad_tensors_raise():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"target must have the same shape as input \(2, 3\)"):
        la.binary_focal_loss(x, torch.zeros(2, 3, 1))
    with pytest.raises(ValueError, match="target must hold probabilities"):
        la.binary_focal_loss(x, torch.full((2, 3), 2.0))
    with pytest.raises(TypeError, match="target must be a floating-point tensor"):
        la.binary_focal_loss(x, torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="pos_weight must broadcast"):
        la.binary_focal_loss(x, torch.zeros(2, 3), pos_weight=torch.ones(2))
    with pytest.raises(ValueError, match=r"class index 5 at position \(1,\)"):
        la.focal_loss(x, torch.tensor([0, 5]))
    with pytest.raises(ValueError, match=r"input must have shape \(N, C\)"):
        la.focal_loss(torch.zeros(3), torch.tensor(0))
    with pytest.raises(TypeError, match="class indices"):
        la.focal_loss(x, torch.zeros(2))


# ------------------------------------------------------------ binary focal: weight, ignore_index


def _weighted_case():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 4, generator=g, dtype=torch.float64) * 3
    t = torch.randint(0, 2, (6, 4), generator=g).to(torch.float64)
    w = torch.rand(6, 4, generator=g, dtype=torch.float64) + 0.1
    return x, t, w


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("shape", [(6, 4), (4,), (6, 1)])
def test_binary_focal_weight_at_gamma_0_is_torchs_weighted_bce(reduction, shape):
    x, t, w = _weighted_case()
    weight = w[tuple(slice(0, n) for n in shape)] if len(shape) == 2 else w[0]
    ours = la.binary_focal_loss(x, t, gamma=0.0, alpha=None, weight=weight, reduction=reduction)
    torch_ = F.binary_cross_entropy_with_logits(x, t, weight=weight, reduction=reduction)
    torch.testing.assert_close(ours, torch_, rtol=1e-12, atol=1e-14)


def test_binary_focal_ignore_index_is_the_loss_over_the_kept_elements():
    x, t, w = _weighted_case()
    labels = t.clone()
    labels[0] = 255.0  # an ignored row, as in a label mask
    labels[2, 1] = 255.0
    keep = labels != 255
    # by hand in float64: the focal terms of the kept elements, weighted, over their count
    p = torch.sigmoid(x)
    p_t = p * t + (1 - p) * (1 - t)
    alpha_t = 0.25 * t + 0.75 * (1 - t)
    terms = -alpha_t * (1 - p_t) ** 2 * torch.log(p_t) * w
    expected = terms[keep].sum() / keep.sum()
    ours = la.binary_focal_loss(x, labels, weight=w, ignore_index=255)
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-12)
    none = la.binary_focal_loss(x, labels, weight=w, ignore_index=255, reduction="none")
    assert (none[~keep] == 0).all()
    torch.testing.assert_close(none[keep], terms[keep], rtol=1e-10, atol=1e-12)
    # ignored elements get no gradient, whatever their logit
    xg = x.clone().requires_grad_(True)
    la.binary_focal_loss(xg, labels, ignore_index=255).backward()
    assert (xg.grad[~keep] == 0).all() and (xg.grad[keep] != 0).all()


def test_binary_focal_weight_and_ignore_index_gradcheck():
    x, t, w = _weighted_case()
    labels = t.clone()
    labels[1, ::2] = -1.0
    x = x.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda z: la.binary_focal_loss(z, labels, weight=w, ignore_index=-1, gamma=1.5), (x,)
    )


@pytest.mark.slow
def test_binary_focal_weight_and_ignore_index_fused_agrees_with_eager():
    x, t, w = _weighted_case()
    labels = t.clone()
    labels[3] = -1.0

    def call(z):
        return la.binary_focal_loss(z, labels, weight=w[0], ignore_index=-1, gamma=0.5)

    eager = value_and_grad(call, x)
    with la.fused(True, min_numel=0):
        fused = value_and_grad(call, x)
    torch.testing.assert_close(fused, eager, rtol=1e-10, atol=1e-12)


def test_binary_focal_weight_and_ignore_index_bad_input():
    x, t, _ = _weighted_case()
    with pytest.raises(TypeError, match="ignore_index"):
        la.binary_focal_loss(x, t, ignore_index=2.5)
    with pytest.raises(ValueError, match="weight"):
        la.binary_focal_loss(x, t, weight=torch.ones(5, dtype=torch.float64))
    with pytest.raises(TypeError, match="weight"):
        la.binary_focal_loss(x, t, weight=torch.ones(4, dtype=torch.long))
    # a target outside [0, 1] that is not the ignore index is still an error
    labels = t.clone()
    labels[0, 0] = 2.0
    with pytest.raises(ValueError, match="target"):
        la.binary_focal_loss(x, labels, ignore_index=255)
    # the module takes the same options
    module = la.nn.BinaryFocalLoss(ignore_index=255)
    torch.testing.assert_close(module(x, t), la.binary_focal_loss(x, t))
