"""linear_cross_entropy: the chunked projection + cross-entropy against the unfused formula.

Every reference below is computed independently in the test, in float64, from
``F.cross_entropy(input @ linear_weight.T + linear_bias, target, weight=..., ignore_index=...,
label_smoothing=...)`` with torch's own autograd; the z-loss (``z_loss * w_y * logsumexp(z)^2``
per kept token) and the softcap (``c * tanh(z / c)`` on the logits) are added by hand as written
in the docstring. Where torch has ``F.linear_cross_entropy`` (2.13), every option it shares is
also checked against it directly.
"""

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la
from lossatlas.language import linear_cross_entropy as lce_module

IGNORE = -100


def reference(
    input,
    linear_weight,
    target,
    *,
    linear_bias=None,
    weight=None,
    ignore_index=IGNORE,
    label_smoothing=0.0,
    z_loss=0.0,
    logit_softcap=None,
    reduction="mean",
):
    """The unfused formula with torch ops (independent of the implementation under test)."""
    logits = input @ linear_weight.T
    if linear_bias is not None:
        logits = logits + linear_bias
    if logit_softcap is not None:
        logits = logit_softcap * torch.tanh(logits / logit_softcap)
    ce = F.cross_entropy(
        logits,
        target,
        weight=weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        reduction="none",
    )
    kept = (target != ignore_index).to(logits.dtype)
    # torch's weighted mean divides by the kept tokens' weight[y]; the z-loss is weighted alike.
    true_weight = kept if weight is None else weight[target.clamp(min=0)] * kept
    rows = ce + z_loss * torch.logsumexp(logits, dim=1).square() * true_weight
    if reduction == "none":
        return rows
    if reduction == "sum":
        return rows.sum()
    return rows.sum() / true_weight.sum()


def make(n=37, h=5, v=11, *, dtype=torch.float64, bias=True, ignored=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, h, generator=g, dtype=torch.float64).to(dtype)
    weight = (torch.randn(v, h, generator=g, dtype=torch.float64) / h**0.5).to(dtype)
    b = torch.randn(v, generator=g, dtype=torch.float64).to(dtype) if bias else None
    target = torch.randint(0, v, (n,), generator=g)
    if ignored:
        target[::4] = IGNORE
    return hidden, weight, b, target


def grads_of(fn, x, w, b, y, upstream=None, **options):
    leaves = [t.detach().clone().requires_grad_(True) for t in (x, w)]
    if b is not None:
        leaves.append(b.detach().clone().requires_grad_(True))
    out = fn(leaves[0], leaves[1], y, linear_bias=leaves[2] if b is not None else None, **options)
    g = torch.ones_like(out) if upstream is None else upstream
    return out.detach(), torch.autograd.grad(out, leaves, g)


# Class weights (V = 11), one of them 0, to see the weighted mean's denominator at work.
CLASS_WEIGHT = torch.tensor(
    [0.5, 2.0, 1.0, 0.0, 3.0, 1.5, 0.25, 1.0, 2.5, 0.75, 1.25], dtype=torch.float64
)

OPTIONS = [
    {},
    {"label_smoothing": 0.1},
    {"z_loss": 1e-2},
    {"logit_softcap": 2.0},
    {"label_smoothing": 0.2, "z_loss": 0.1, "logit_softcap": 1.5},
    {"weight": CLASS_WEIGHT},
    {"weight": CLASS_WEIGHT, "label_smoothing": 0.1},
    {"weight": CLASS_WEIGHT, "label_smoothing": 0.2, "z_loss": 0.1, "logit_softcap": 1.5},
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "plain")
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("chunk_size", [None, 1, 8, 37, 100])
def test_values_and_gradients_equal_the_unfused_formula(options, reduction, chunk_size):
    hidden, weight, bias, target = make()
    # A random upstream gradient for "none" (different per token); a scalar != 1 otherwise.
    upstream = (
        torch.randn(37, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        if reduction == "none"
        else torch.tensor(0.7, dtype=torch.float64)
    )
    out, grads = grads_of(
        la.linear_cross_entropy,
        hidden,
        weight,
        bias,
        target,
        upstream,
        reduction=reduction,
        chunk_size=chunk_size,
        **options,
    )
    ref, ref_grads = grads_of(
        reference, hidden, weight, bias, target, upstream, reduction=reduction, **options
    )
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
    for name, g, r in zip(("hidden", "weight", "bias"), grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-12, msg=f"grad of {name}")


def test_without_bias_and_without_ignored_tokens():
    hidden, weight, _, target = make(bias=False, ignored=False)
    out, grads = grads_of(la.linear_cross_entropy, hidden, weight, None, target, chunk_size=5)
    ref, ref_grads = grads_of(reference, hidden, weight, None, target)
    torch.testing.assert_close(out, ref)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r)


def test_ignored_rows_contribute_zero_and_mean_counts_kept_tokens():
    hidden, weight, bias, target = make()
    rows = la.linear_cross_entropy(hidden, weight, target, linear_bias=bias, reduction="none")
    assert torch.all(rows[target == IGNORE] == 0)
    kept = int((target != IGNORE).sum())
    torch.testing.assert_close(
        la.linear_cross_entropy(hidden, weight, target, linear_bias=bias), rows.sum() / kept
    )
    # Gradient rows of ignored tokens are exactly zero.
    _, (grad_hidden, _, _) = grads_of(la.linear_cross_entropy, hidden, weight, bias, target)
    assert torch.all(grad_hidden[target == IGNORE] == 0)


def test_custom_ignore_index():
    hidden, weight, bias, target = make(ignored=False)
    target = target.clone()
    target[3] = 7
    out = la.linear_cross_entropy(hidden, weight, target, linear_bias=bias, ignore_index=7)
    torch.testing.assert_close(
        out, reference(hidden, weight, target, linear_bias=bias, ignore_index=7)
    )


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_all_ignored_gives_zero_with_zero_gradients(reduction):
    hidden, weight, bias, target = make()
    target = torch.full_like(target, IGNORE)
    out, grads = grads_of(
        la.linear_cross_entropy, hidden, weight, bias, target, reduction=reduction
    )
    assert out.item() == 0.0
    for g in grads:
        assert torch.all(g == 0)


def test_empty_batch():
    hidden, weight, bias, target = make(n=0)
    out, grads = grads_of(la.linear_cross_entropy, hidden, weight, bias, target)
    assert out.item() == 0.0
    assert grads[0].shape == (0, 5)
    assert torch.all(grads[1] == 0)


def test_bfloat16_gradients_close_to_float64_with_a_confident_true_class():
    # W = identity, so the logits are the hidden states. Row 0 puts 8.875 (exact in bf16) on
    # its target among V = 8 classes: p = e^8.875 / (e^8.875 + 7) = 0.99901 (worked by hand),
    # and the gradient of that logit is p - 1 ~ -1e-3.
    v = 8
    weight = torch.eye(v, dtype=torch.bfloat16)
    g = torch.Generator().manual_seed(3)
    hidden = torch.randn(16, v, generator=g).to(torch.bfloat16)
    target = torch.randint(0, v, (16,), generator=g)
    hidden[0] = 0.0
    hidden[0, target[0]] = 8.875
    p_true = torch.softmax(hidden[0].double(), 0)[target[0]]
    assert 0.9989 < p_true < 0.9991
    out, grads = grads_of(la.linear_cross_entropy, hidden, weight, None, target, chunk_size=5)
    # fp64 reference on the same (bf16-exact) values.
    ref, ref_grads = grads_of(reference, hidden.double(), weight.double(), None, target)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, rtol=1e-6, atol=1e-6)
    assert grads[0].dtype == torch.bfloat16 and grads[1].dtype == torch.bfloat16
    # Stated tolerance: float32 accumulation, then one rounding to bfloat16 (2^-8 relative).
    for grad, ref_grad in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(grad.double(), ref_grad, rtol=2**-7, atol=1e-7)
    confident = grads[0][0, target[0]].double()
    torch.testing.assert_close(confident, ref_grads[0][0, target[0]], rtol=2**-7, atol=0.0)
    # What the test guards against: the same softmax gradient formed in bfloat16 loses it.
    naive = torch.softmax(hidden[0], 0)[target[0]] - 1
    assert naive.item() == 0.0


def test_float16_input_gives_float32_loss():
    hidden, weight, bias, target = make(dtype=torch.float16)
    out = la.linear_cross_entropy(hidden, weight, target, linear_bias=bias)
    assert out.dtype == torch.float32
    ref = reference(hidden.double(), weight.double(), target, linear_bias=bias.double())
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)


def test_caller_tensors_unchanged():
    hidden, weight, bias, target = make()
    tensors = [t.detach().clone().requires_grad_(True) for t in (hidden, weight, bias)]
    before = [t.detach().clone() for t in (*tensors, target)]
    for reduction in ("mean", "none"):
        out = la.linear_cross_entropy(
            tensors[0],
            tensors[1],
            target,
            linear_bias=tensors[2],
            reduction=reduction,
            logit_softcap=3.0,
            chunk_size=6,
        )
        out.sum().backward()
    for t, b in zip((*tensors, target), before, strict=True):
        assert torch.equal(t.detach(), b)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_second_backward_through_a_retained_graph_gives_the_same_gradients(reduction):
    hidden, weight, bias, target = make()
    h = hidden.clone().requires_grad_(True)
    out = la.linear_cross_entropy(h, weight, target, linear_bias=bias, reduction=reduction).sum()
    first = torch.autograd.grad(out, h, retain_graph=True)[0]
    second = torch.autograd.grad(out, h)[0]
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    # Accumulating twice into .grad doubles it (the stored gradient was not consumed).
    out = la.linear_cross_entropy(h, weight, target, linear_bias=bias, reduction=reduction).sum()
    out.backward(retain_graph=True)
    out.backward()
    torch.testing.assert_close(h.grad, 2 * first)


def test_second_backward_without_retain_graph_raises():
    hidden, weight, _, target = make()
    h = hidden.clone().requires_grad_(True)
    out = la.linear_cross_entropy(h, weight, target)
    out.backward()
    with pytest.raises(RuntimeError, match="second time"):
        out.backward()


def test_double_backward_raises():
    hidden, weight, _, target = make()
    h = hidden.clone().requires_grad_(True)
    out = la.linear_cross_entropy(h, weight, target)
    with pytest.raises(RuntimeError, match="does not support double backward"):
        torch.autograd.grad(out, h, create_graph=True)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_fast_path_and_plain_fallback_agree(reduction):
    hidden, weight, bias, target = make()
    options = {"label_smoothing": 0.1, "z_loss": 1e-3, "logit_softcap": 4.0}

    def fallback(hidden, weight, target, *, linear_bias, reduction, weight_=None, **opts):
        settings = lce_module._Options(ignore_index=IGNORE, chunk=6, **opts)
        return lce_module._plain_path(
            hidden, weight, linear_bias, weight_, target, settings, reduction
        )

    upstream = torch.randn(37, dtype=torch.float64) if reduction == "none" else None
    fast, fast_grads = grads_of(
        la.linear_cross_entropy,
        hidden,
        weight,
        bias,
        target,
        upstream,
        reduction=reduction,
        chunk_size=6,
        **options,
    )
    plain, plain_grads = grads_of(
        fallback, hidden, weight, bias, target, upstream, reduction=reduction, **options
    )
    torch.testing.assert_close(fast, plain)
    for g, r in zip(fast_grads, plain_grads, strict=True):
        torch.testing.assert_close(g, r)


def test_torch_compile_fullgraph_values_and_gradients():
    hidden, weight, bias, target = make(dtype=torch.float32)
    compiled = torch.compile(la.linear_cross_entropy, fullgraph=True, backend="eager")
    out, grads = grads_of(compiled, hidden, weight, bias, target, chunk_size=10, z_loss=1e-3)
    ref, ref_grads = grads_of(reference, hidden, weight, bias, target, z_loss=1e-3)
    torch.testing.assert_close(out, ref)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r)


def test_torch_func_grad():
    hidden, weight, _, target = make(bias=False)
    got = torch.func.grad(lambda h: la.linear_cross_entropy(h, weight, target, chunk_size=7))(
        hidden
    )
    expected = torch.func.grad(lambda h: reference(h, weight, target))(hidden)
    torch.testing.assert_close(got, expected)


def test_saves_only_gradient_sized_tensors_for_backward():
    # The point of the kernel: what is kept for backward is the size of the inputs, never a
    # (N, V) logits-sized tensor. Counted with saved_tensors_hooks.
    n, h, v = 64, 8, 512
    hidden, weight, bias, target = make(n=n, h=h, v=v, dtype=torch.float32)
    leaves = [t.clone().requires_grad_(True) for t in (hidden, weight, bias)]
    for reduction, allowed in [("mean", n * h + v * h + v), ("none", n * h + v * h + v + 2 * n)]:
        saved = []

        def pack(t, saved=saved):
            saved.append(t.numel())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            la.linear_cross_entropy(
                *leaves[:2], target, linear_bias=leaves[2], reduction=reduction, chunk_size=16
            )
        assert sum(saved) <= allowed, (reduction, saved)
        assert max(saved) < n * v


def test_no_grad_path_matches():
    hidden, weight, bias, target = make()
    with torch.no_grad():
        out = la.linear_cross_entropy(
            hidden.requires_grad_(True),
            weight,
            target,
            linear_bias=bias,
            reduction="none",
            chunk_size=3,
        )
    assert not out.requires_grad
    torch.testing.assert_close(
        out, reference(hidden.detach(), weight, target, linear_bias=bias, reduction="none")
    )


def test_module_twin():
    hidden, weight, _, target = make(bias=False)
    module = la.nn.LinearCrossEntropyLoss(label_smoothing=0.1, chunk_size=4)
    torch.testing.assert_close(
        module(hidden, weight, target),
        la.linear_cross_entropy(hidden, weight, target, label_smoothing=0.1, chunk_size=4),
    )
    assert "label_smoothing=0.1" in repr(module)
    with pytest.raises(ValueError, match="z_loss"):
        la.nn.LinearCrossEntropyLoss(z_loss=-1.0)


def test_automatic_chunk_size():
    # About 64 MiB of float32 logits per chunk, never more rows than tokens.
    assert lce_module._chunk_rows(4096, 32768, None) == 512
    assert lce_module._chunk_rows(4096, 16384, None) == 1024
    assert lce_module._chunk_rows(10, 16384, None) == 10
    assert lce_module._chunk_rows(10, 16384, 3) == 3
    assert lce_module._chunk_rows(4096, 2**30, None) == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"hidden": torch.zeros(4, 3, dtype=torch.long)}, TypeError, "input must be a floating"),
        ({"weight": torch.zeros(5, 2)}, ValueError, r"linear_weight must have shape \(\*, 3\)"),
        ({"hidden": torch.zeros(4)}, ValueError, "input must have shape"),
        ({"target": torch.zeros(4)}, TypeError, "target must be an integer tensor"),
        (
            {"target": torch.zeros(3, dtype=torch.long)},
            ValueError,
            r"target must have shape \(4,\)",
        ),
        ({"target": torch.tensor([0, 5, 1, 2])}, ValueError, r"class index 5 at position \(1,\)"),
        ({"linear_bias": torch.zeros(4)}, ValueError, r"linear_bias must have shape \(5,\)"),
        ({"weight_": torch.zeros(4)}, ValueError, r"weight must have shape \(5,\)"),
        ({"weight_": torch.ones(5, dtype=torch.long)}, TypeError, "weight must be a floating"),
        ({"weight": torch.zeros(0, 3)}, ValueError, "at least one class"),
        ({"label_smoothing": 1.5}, ValueError, "label_smoothing must be in"),
        ({"z_loss": -0.1}, ValueError, "z_loss must be in"),
        ({"logit_softcap": 0.0}, ValueError, "logit_softcap must be in"),
        ({"chunk_size": 0}, ValueError, "chunk_size must be in"),
        ({"chunk_size": 2.5}, TypeError, r"chunk_size must be None or an int in \[1, inf\]"),
        ({"reduction": "meen"}, ValueError, "Did you mean 'mean'"),
    ],
)
def test_bad_input_raises_with_a_clear_message(kwargs, error, message):
    args = {
        "hidden": torch.zeros(4, 3),
        "weight": torch.zeros(5, 3),
        "target": torch.tensor([0, 1, 2, 3]),
    }
    # "weight_" is the class-weight option (the key "weight" is the projection here).
    options = {k.rstrip("_"): v for k, v in kwargs.items() if k not in args}
    args.update({k: v for k, v in kwargs.items() if k in args})
    with pytest.raises(error, match=message):
        la.linear_cross_entropy(args["hidden"], args["weight"], args["target"], **options)


def test_extreme_logits_are_finite():
    hidden, weight, bias, target = make(dtype=torch.float32)
    out, grads = grads_of(la.linear_cross_entropy, hidden * 1e4, weight, bias, target, z_loss=1e-4)
    assert torch.isfinite(out)
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_fast_path_and_plain_fallback_agree_with_class_weights(reduction):
    hidden, weight, bias, target = make()
    options = {"label_smoothing": 0.1, "z_loss": 1e-3, "logit_softcap": 4.0}
    upstream = torch.randn(37, dtype=torch.float64) if reduction == "none" else None
    fast, fast_grads = grads_of(
        la.linear_cross_entropy,
        hidden,
        weight,
        bias,
        target,
        upstream,
        reduction=reduction,
        chunk_size=6,
        weight=CLASS_WEIGHT,
        **options,
    )

    def plain(hidden, weight, target, *, linear_bias, **opts):
        settings = lce_module._Options(ignore_index=IGNORE, chunk=6, **options)
        return lce_module._plain_path(
            hidden, weight, linear_bias, CLASS_WEIGHT, target, settings, reduction
        )

    slow, slow_grads = grads_of(plain, hidden, weight, bias, target, upstream)
    torch.testing.assert_close(fast, slow)
    for g, r in zip(fast_grads, slow_grads, strict=True):
        torch.testing.assert_close(g, r)


# --------------------------------------------------------------------------- torch's own

TORCH_LCE = getattr(F, "linear_cross_entropy", None)
SHARED = [
    {},
    {"weight": CLASS_WEIGHT},
    {"label_smoothing": 0.15},
    {"weight": CLASS_WEIGHT, "label_smoothing": 0.15},
    {"ignore_index": 7},
    {"weight": CLASS_WEIGHT, "label_smoothing": 0.3, "ignore_index": 2},
]


@pytest.mark.skipif(
    TORCH_LCE is None, reason=f"torch {torch.__version__} has no F.linear_cross_entropy"
)
@pytest.mark.parametrize("options", SHARED, ids=lambda o: ",".join(o) or "plain")
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
def test_equals_torch_linear_cross_entropy_in_float64(options, reduction, with_bias):
    # Every option the two share: class weights, label smoothing, ignore_index, the
    # reductions, the bias; values and the gradients of input, linear_weight and linear_bias.
    # The default ignore_index (-100) marks every 4th token; a custom one marks tokens 1, 5.
    hidden, weight, bias, target = make(
        bias=with_bias, seed=4, ignored="ignore_index" not in options
    )
    target = target.clone()
    target[1] = 7
    target[5] = 2
    upstream = (
        torch.randn(37, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        if reduction == "none"
        else torch.tensor(1.3, dtype=torch.float64)
    )
    ours, our_grads = grads_of(
        la.linear_cross_entropy,
        hidden,
        weight,
        bias,
        target,
        upstream,
        reduction=reduction,
        chunk_size=8,
        **options,
    )
    theirs, their_grads = grads_of(
        TORCH_LCE, hidden, weight, bias, target, upstream, reduction=reduction, **options
    )
    assert ours.dtype == theirs.dtype == torch.float64
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    assert len(our_grads) == len(their_grads) == (3 if with_bias else 2)
    names = ("input", "linear_weight", "linear_bias")[: len(our_grads)]
    for name, g, r in zip(names, our_grads, their_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-12, msg=f"grad of {name}")


@pytest.mark.skipif(
    TORCH_LCE is None, reason=f"torch {torch.__version__} has no F.linear_cross_entropy"
)
def test_keyword_names_are_torchs():
    import inspect

    ours = inspect.signature(la.linear_cross_entropy).parameters
    theirs = inspect.signature(TORCH_LCE).parameters
    assert list(ours)[:3] == list(theirs)[:3] == ["input", "linear_weight", "target"]
    for name in ("linear_bias", "weight", "reduction", "ignore_index", "label_smoothing"):
        assert name in ours and ours[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    assert "bias" not in ours  # the old name is gone (no alias)


def test_class_weights_by_hand():
    # V = 3, W = identity on 3 dims: the logits are the inputs. Token 0 (target 0, weight 1):
    # lse - z_0; token 1 (target 2, weight 0): 0; mean over weight[y] = 1 + 0.
    hidden = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]], dtype=torch.float64)
    target = torch.tensor([0, 2])
    class_weight = torch.tensor([1.0, 4.0, 0.0], dtype=torch.float64)
    out = la.linear_cross_entropy(
        hidden, torch.eye(3, dtype=torch.float64), target, weight=class_weight
    )
    expected = torch.log(torch.tensor(2.0 + torch.e, dtype=torch.float64)) - 1.0  # log(e+1+1) - 1
    torch.testing.assert_close(out, expected)


def test_module_twin_keeps_class_weights_as_a_buffer():
    hidden, weight, _, target = make()
    module = la.nn.LinearCrossEntropyLoss(weight=CLASS_WEIGHT, label_smoothing=0.1)
    assert "weight" in module.state_dict()
    torch.testing.assert_close(
        module(hidden, weight, target),
        la.linear_cross_entropy(hidden, weight, target, weight=CLASS_WEIGHT, label_smoothing=0.1),
    )
    with pytest.raises(TypeError, match="weight must be a floating"):
        la.nn.LinearCrossEntropyLoss(weight=torch.ones(3, dtype=torch.long))
