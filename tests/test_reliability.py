"""Issue 19's numbered defects, each reproduced as it was reported, and what fixed it.

Sources of the expected values: torch's own kernels in eager mode (``F.multilabel_margin_loss``,
``F.multi_margin_loss``, ``F.cross_entropy`` on the full logits), the formula for a repeated
exponential moving average worked by hand, and sequential runs of the same module.
"""

import threading
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch._dynamo.testing import CompileCounterWithBackend

import lossatlas as la
from lossatlas import _fused
from lossatlas._reduction import safe_sqrt
from lossatlas.classification import _fused_focal as ff
from lossatlas.ranking.contrastive import info_nce_rows

NAN = float("nan")


# --------------------------------------------------------------------------- 1. dynamic shapes


def test_1_mse_compiles_for_ten_batch_sizes_without_hitting_the_recompile_limit():
    """The issue's loop: it used to fail at n = 10 with FailOnRecompileLimitHit."""
    torch._dynamo.reset()
    counter = CompileCounterWithBackend("eager")
    f = torch.compile(la.mse_loss, fullgraph=True, dynamic=True, backend=counter)
    for n in range(2, 12):
        x, y = torch.randn(n, 3), torch.randn(n, 3)
        torch.testing.assert_close(f(x, y), F.mse_loss(x, y))
    # n = 3 equals the feature size once ("duck sizing"): at most that one extra graph.
    assert counter.frame_count <= 2


def test_1_mean_over_a_symbolic_count_compiles_once_under_inductor_free_backend():
    torch._dynamo.reset()
    counter = CompileCounterWithBackend("eager")
    f = torch.compile(la.l1_loss, fullgraph=True, dynamic=True, backend=counter)
    for n in (5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        f(torch.randn(n, 2), torch.randn(n, 2))
    assert counter.frame_count == 1


# --------------------------------------------------------------------------- 2. fused kernels


def test_2_small_inputs_never_compile_so_the_first_call_does_not_stall():
    kernel = ff._SOFTMAX_SUM
    before = dict(kernel.status())
    with la.fused(True):
        assert la.fused_min_numel() > 64 * 5
        x = torch.randn(64, 5, requires_grad=True)
        la.focal_loss(x, torch.randint(0, 5, (64,))).backward()
    assert kernel.status() == before  # no variant made, nothing compiled


def test_2_a_bad_option_raises_a_typed_error_and_breaks_nothing():
    x = torch.randn(8, 3, requires_grad=True)
    y = torch.randint(0, 3, (8,))
    with la.fused(True, min_numel=0), warnings.catch_warnings():
        warnings.simplefilter("error")  # the old code warned "compiling failed" from now on
        with pytest.raises(TypeError, match="ignore_index must be an int"):
            la.focal_loss(x, y, ignore_index="bogus")
    states = [s for kernel in la.fused_status().values() for s in kernel.values()]
    assert not any(state.startswith("eager") for state in states)


def _fake_kernel(calls):
    def kernel(x):
        return x * 2

    fused = _fused.FusedKernel(kernel)
    _fused._KERNELS.remove(fused)  # keep the public status to the library's kernels

    def recompile_limit(*args):
        calls.append("compiled")
        raise torch._dynamo.exc.FailOnRecompileLimitHit("Hard failure due to fullgraph=True")

    return fused, recompile_limit


def test_2_the_recompile_limit_falls_back_for_that_variant_only():
    calls = []
    fused, recompile_limit = _fake_kernel(calls)
    with la.fused(True, min_numel=0):
        x32, x64 = torch.ones(3), torch.ones(3, dtype=torch.float64)
        fused._variant((x32,)).compiled = recompile_limit
        fused._variant((x64,)).compiled = lambda x: x * 2
        with pytest.warns(RuntimeWarning, match="FailOnRecompileLimitHit"):
            torch.testing.assert_close(fused(x32), x32 * 2)  # the eager kernel answered
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once, then quiet
            torch.testing.assert_close(fused(x32), x32 * 2)
            torch.testing.assert_close(fused(x64), x64 * 2)
    status = fused.status()
    assert calls == ["compiled"]  # the failed variant is not tried again
    assert status == {
        "float32 cpu 1-D contiguous": "eager: FailOnRecompileLimitHit",
        "float64 cpu 1-D contiguous": "compiled",
    }


def test_2_a_run_time_error_propagates_and_keeps_the_variant():
    fused, _ = _fake_kernel([])

    def index_error(x):
        raise IndexError("index 7 is out of bounds")

    with la.fused(True, min_numel=0):
        x = torch.ones(3)
        fused._variant((x,)).compiled = index_error
        with pytest.raises(IndexError):
            fused(x)
    assert fused.status() == {"float32 cpu 1-D contiguous": "not compiled yet"}


def test_2_the_variant_cache_is_bounded():
    fused, _ = _fake_kernel([])
    with la.fused(True, min_numel=0):
        for rank in range(1, _fused.MAX_VARIANTS + 3):
            fused._variant((torch.ones([1] * rank),))
    assert len(fused.status()) == _fused.MAX_VARIANTS
    assert fused._variant((torch.ones([1] * 20),)) is None  # op by op beyond the bound


@pytest.mark.slow
def test_2_twenty_focal_calls_across_dtypes_and_layouts_stay_compiled(caplog):
    """The done-when loop: float32/float64 x contiguous/strided, compiled, never a warning."""
    for kernel in (ff._SOFTMAX_SUM,):
        kernel.reset()
    with la.fused(True, min_numel=0), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(20):
            dtype = (torch.float32, torch.float64)[i % 2]
            if (i // 2) % 2:
                x = torch.randn(5, 16, dtype=dtype).T.requires_grad_(True)  # strided
            else:
                x = torch.randn(16, 5, dtype=dtype, requires_grad=True)
            y = torch.randint(0, 5, (16,))
            loss = la.focal_loss(x, y)
            loss.backward()
            with la.fused(False):
                torch.testing.assert_close(loss, la.focal_loss(x.detach(), y))
    ours = [w for w in caught if "lossatlas" in str(w.message)]
    assert not ours, [str(w.message) for w in ours]
    status = la.fused_status()["_softmax_sum"]
    assert len(status) == 4 and set(status.values()) == {"compiled"}, status
    compiling = [r for r in caplog.records if "compiling the fused kernel" in r.getMessage()]
    assert len(compiling) == 4  # one log line per variant, before its compile


# --------------------------------------------------------------------------- 3. NaN


def test_3_rmse_of_a_nan_is_nan_not_zero():
    assert torch.isnan(la.rmse_loss(torch.tensor([NAN, 1.0]), torch.zeros(2)))


def test_3_safe_sqrt_keeps_nan_and_a_finite_gradient_at_zero():
    x = torch.tensor([0.0, 4.0, NAN], requires_grad=True)
    y = safe_sqrt(x)
    assert y[0] == 0 and y[1] == 2 and torch.isnan(y[2])
    (grad,) = torch.autograd.grad(y[:2].sum(), x)
    torch.testing.assert_close(grad, torch.tensor([0.0, 0.25, 0.0]))  # d sqrt(x)/dx = 1/(2*2)


def test_3_gradient_penalty_of_a_nan_sample_is_nan():
    critic = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    real, fake = torch.randn(4, 3), torch.randn(4, 3)
    real[1, 0] = NAN
    penalty = la.gradient_penalty(critic, real, fake, reduction="none")
    assert torch.isnan(penalty[1]) and torch.isfinite(penalty[[0, 2, 3]]).all()


def test_3_contrastive_loss_of_a_nan_embedding_is_nan():
    x1, x2 = torch.randn(3, 4), torch.randn(3, 4)
    x1[0, 0] = NAN
    loss = la.contrastive_loss(x1, x2, torch.tensor([0.0, 1.0, 0.0]), reduction="none")
    assert torch.isnan(loss[0]) and torch.isfinite(loss[1:]).all()


@pytest.mark.parametrize("position", [(0, 0), (0, 2)])
def test_3_multi_margin_keeps_a_nan_score(position):
    x = torch.tensor([[0.1, 0.2, 0.4, 0.8], [0.5, 0.1, 0.3, 0.2]])
    x[position] = NAN
    loss = la.multi_margin_loss(x, torch.tensor([3, 0]), reduction="none")
    assert torch.isnan(loss[0]) and torch.isfinite(loss[1])


def test_3_multilabel_margin_keeps_a_nan_score():
    x = torch.tensor([[0.1, NAN, 0.4, 0.8]])
    assert torch.isnan(la.multilabel_margin_loss(x, torch.tensor([[3, 0, -1, 1]])))


def test_3_zero_one_of_a_nan_score_is_nan():
    assert torch.isnan(la.zero_one_loss(torch.tensor([NAN, 1.0]), torch.tensor([1.0, 1.0])))


def test_3_ghmc_reads_a_nan_label_weight_as_nan_not_as_ignore():
    x, t = torch.randn(6), torch.randint(0, 2, (6,)).float()
    weight = torch.ones(6)
    weight[2] = NAN
    assert torch.isnan(la.ghmc_loss(x, t, label_weight=weight))
    weight[2] = 0.0  # zero still means "ignore"
    assert torch.isfinite(la.ghmc_loss(x, t, label_weight=weight))


# --------------------------------------------------------------------------- 4. compiled value


def _multilabel_cases():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    rows = [
        [3, 0, -1, 1, 2],
        [4, 4, -1, 0, 0],
        [-1, 2, 3, 0, 1],
        [0, 1, 2, 3, 4],
        [2, -1, 0, 0, 0],
        [1, 3, 0, -1, 4],
    ]
    y = torch.tensor(rows)
    return x, y


def test_4_multilabel_margin_equals_torch_eager_with_repeats_and_padding():
    x, y = _multilabel_cases()  # a repeated class counts twice in torch's kernel
    expected = F.multilabel_margin_loss(x, y, reduction="none")
    torch.testing.assert_close(la.multilabel_margin_loss(x, y, reduction="none"), expected)
    torch.testing.assert_close(la.multilabel_margin_loss(x[0], y[0]), expected[0])


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_4_compiled_multilabel_margin_is_right(backend):
    x = torch.tensor([[0.1, 0.2, 0.4, 0.8]])
    y = torch.tensor([[3, 0, -1, 1]])
    torch._dynamo.reset()
    compiled = torch.compile(la.multilabel_margin_loss, fullgraph=True, backend=backend)
    # 0.85 from torch's eager kernel (its compiled decomposition gives 2.05).
    expected = F.multilabel_margin_loss(x, y)
    torch.testing.assert_close(expected, torch.tensor(0.85))
    torch.testing.assert_close(compiled(x, y), expected)


def test_4_the_compiled_value_check_catches_torchs_miscompiled_kernel():
    from dataclasses import replace

    from lossatlas import testing as lt

    def torch_kernel(input, target, *, reduction="mean"):
        return F.multilabel_margin_loss(input, target, reduction=reduction)

    spec = la.get("multilabel_margin_loss")
    bad = replace(spec, function=torch_kernel, module=None)

    def example(generator, *, batch, dtype, scale):
        x = torch.tensor([[0.1, 0.2, 0.4, 0.8]], dtype=dtype).repeat(batch, 1)
        return la.Example((x, torch.tensor([[3, 0, -1, 1]]).repeat(batch, 1)))

    with pytest.raises(AssertionError, match="compiled"):
        lt.check_compiled_value(replace(bad, examples=example))


# --------------------------------------------------------------------------- 5. state races


@pytest.mark.parametrize("module", [la.nn.GHMCLoss, la.nn.GHMRLoss])
def test_5_four_threads_lose_no_running_count_update(module):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(64, generator=gen)
    t = torch.randint(0, 2, (64,), generator=gen).float()
    calls_per_thread, threads = 25, 4

    def run(loss, n):
        for _ in range(n):
            loss(x, t)

    shared = module(momentum=0.99)
    workers = [
        threading.Thread(target=run, args=(shared, calls_per_thread)) for _ in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    sequential = module(momentum=0.99)
    run(sequential, calls_per_thread * threads)
    # The same batch every call: T updates from 0 give (1 - 0.99**T) * counts, whatever the order.
    torch.testing.assert_close(shared.acc_sum, sequential.acc_sum)
    counts = module(momentum=0.0)
    assert (sequential.acc_sum > 0).any() and counts.acc_sum.abs().sum() == 0


@pytest.mark.parametrize("mode", [torch.inference_mode, torch.no_grad])
def test_5_modules_built_under_inference_mode_train(mode):
    with mode():
        ghm = la.nn.GHMCLoss(momentum=0.5)
        focal = la.nn.FocalLoss(alpha=torch.tensor([0.2, 0.3, 0.5]))
    x = torch.randn(6, requires_grad=True)
    ghm(x, torch.ones(6)).backward()
    assert x.grad is not None and ghm.acc_sum.sum() > 0
    z = torch.randn(4, 3, requires_grad=True)
    focal(z, torch.tensor([0, 1, 2, 0])).backward()
    assert z.grad is not None


# --------------------------------------------------------------------------- 6. dtype, device


def test_6_info_nce_under_autocast_is_float32():
    q, k = torch.randn(4, 3), torch.randn(4, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = la.info_nce_loss(q, k)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, la.info_nce_loss(q, k))


def test_6_a_float64_target_is_not_demoted():
    x = torch.randn(5)
    target = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0], dtype=torch.float64)
    assert la.hinge_embedding_loss(x, target).dtype == torch.float64


def test_6_a_device_mix_names_both_arguments_and_devices():
    with pytest.raises(ValueError, match=r"target must be on the same device as input \(cpu\)"):
        la.mse_loss(torch.randn(3), torch.randn(3, device="meta"))
    with pytest.raises(ValueError, match="meta"):
        la.cross_entropy(torch.randn(3, 4), torch.zeros(3, dtype=torch.long, device="meta"))


# --------------------------------------------------------------------------- 8. chunked InfoNCE


@pytest.mark.parametrize("symmetric", [False, True])
def test_8_chunked_info_nce_equals_the_full_logits(symmetric):
    gen = torch.Generator().manual_seed(8)
    q = F.normalize(torch.randn(40, 6, generator=gen, dtype=torch.float64), dim=1)
    k = F.normalize(torch.randn(40, 6, generator=gen, dtype=torch.float64), dim=1)
    n = F.normalize(torch.randn(9, 6, generator=gen, dtype=torch.float64), dim=1)
    q.requires_grad_(True)
    k.requires_grad_(True)
    chunked = info_nce_rows(q, k, n, temperature=0.1, symmetric=symmetric, chunk=7)
    # The full logits, with torch's cross_entropy as the reference.
    logits = torch.cat([q @ k.T, q @ n.T], dim=1) / 0.1
    expected = F.cross_entropy(logits, torch.arange(40), reduction="none")
    if symmetric:
        expected = 0.5 * (
            expected + F.cross_entropy((q @ k.T / 0.1).T, torch.arange(40), reduction="none")
        )
    torch.testing.assert_close(chunked, expected)
    grads = torch.autograd.grad(chunked.sum(), (q, k), create_graph=True)
    ref = torch.autograd.grad(expected.sum(), (q, k), create_graph=True)
    for a, b in zip(grads, ref, strict=True):
        torch.testing.assert_close(a, b)
    # second derivatives through the checkpointed chunks
    torch.testing.assert_close(
        torch.autograd.grad(grads[0].square().sum(), k)[0],
        torch.autograd.grad(ref[0].square().sum(), k)[0],
    )


def test_8_chunked_info_nce_gradcheck():
    gen = torch.Generator().manual_seed(9)
    q = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    k = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)

    def fn(q, k):
        return info_nce_rows(
            F.normalize(q, dim=1), F.normalize(k, dim=1), temperature=0.5, symmetric=True, chunk=4
        )

    assert torch.autograd.gradcheck(fn, (q, k))
