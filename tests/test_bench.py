"""The benchmark engine runs end to end and reports what it promises (never asserts on time)."""

import json
import math
import os
import sys
import textwrap

import pytest
import torch
from rich.console import Console

import lossatlas as la
import lossatlas.bench as bench
from lossatlas.bench import cases as builtin
from lossatlas.bench import engine

TINY = textwrap.dedent(
    """
    import torch
    import torch.nn.functional as F
    import lossatlas as la
    from lossatlas.bench.engine import Case, Variant

    def _tiny(quick):
        x = torch.linspace(-3, 3, 256)
        t = (torch.arange(256) % 3 == 0).float()

        def inputs():
            return x.clone().requires_grad_(True), t

        def by_hand(inputs):
            with torch.no_grad():
                inputs[0].sigmoid() - inputs[1]

        return Case(
            "tiny", "BCE on 256 logits", inputs,
            [
                Variant("floor", loss=F.binary_cross_entropy_with_logits),
                Variant("ours", loss=la.binary_cross_entropy_with_logits, ours=True),
                Variant("exp", loss=lambda x, t: (x.exp() * 2).sum()),
                Variant("by hand", step=by_hand, note="no autograd"),
            ],
            floor="floor",
            skipped=[("peer", "not installed")],
        )

    CASES = {"tiny": _tiny}
    """
)


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "tiny_cases.py"
    path.write_text(TINY)
    return str(path)


def test_run_bench_end_to_end_with_memory_in_a_child(source):
    (result,) = bench.run_bench(["tiny"], quick=True, repeats=2, source=source, threads=1)
    assert result.name == "tiny"
    assert [v.name for v in result.variants] == ["floor", "ours", "exp", "by hand"]
    by_name = {v.name: v for v in result.variants}
    assert by_name["floor"].vs_floor == 1.0
    assert by_name["ours"].speedup_of_ours == 1.0
    assert all(len(v.times_s) == 2 and v.median_s > 0 for v in result.variants)
    # x.exp() keeps its output (256 float32) for backward; x * 2 and sum keep nothing.
    assert by_name["exp"].saved_bytes == 256 * 4
    assert by_name["exp"].saved_vs_input == 1.0
    assert by_name["by hand"].saved_bytes is None
    assert result.skipped == [("peer", "not installed")]
    if sys.platform.startswith("linux"):
        assert "fresh process" in result.memory_method
        assert all(
            isinstance(v.peak_extra_bytes, int) and v.peak_extra_bytes >= 0 for v in result.variants
        )


def test_json_and_table(source):
    results = bench.run_bench(["tiny"], repeats=1, memory=False, source=source)
    payload = json.loads(bench.to_json(results, settings={"quick": True}))
    assert payload["machine"]["torch"] == torch.__version__
    assert payload["settings"] == {"quick": True}
    (case,) = payload["cases"]
    assert case["memory_method"] == "not measured"
    assert {v["name"] for v in case["variants"]} == {"floor", "ours", "exp", "by hand"}
    console = Console(record=True, width=160)
    bench.print_results(results, console=console)
    text = console.export_text()
    for expected in (
        "tiny: BCE on 256 logits",
        "ours",
        "(floor)",
        "skipped peer: not installed",
        "by hand: no autograd",
        "peak memory: not measured",
    ):
        assert expected in text


def test_saved_bytes_counts_distinct_storages():
    x = torch.randn(100, requires_grad=True)
    # exp keeps its output; the second exp of the same input keeps another one.
    variant = engine.Variant("two exps", loss=lambda x: (x.exp() + x.exp()).sum())
    assert engine.saved_bytes(variant, (x,)) == 2 * 100 * 4
    # x * x keeps x twice, but it is one storage: the caller's input.
    square = engine.Variant("square", loss=lambda x: (x * x).sum())
    assert engine.saved_bytes(square, (x,)) == 100 * 4


def test_peak_memory_first_run_mode_in_process(source, capsys):
    engine.child_main([source, "tiny", "1", "1", "first", "floor"])
    peaks = json.loads(capsys.readouterr().out)
    assert set(peaks) == {"floor"} and peaks["floor"] >= 0


FIRST_CALL = textwrap.dedent(
    """
    import os
    import torch
    from lossatlas.bench.engine import Case, Variant

    CALLS = []

    def first_only(x):
        # raises (so the child fails) unless this is the process's first call, the compile
        # cache is a fresh empty directory, and it is not the parent's
        cache = os.environ["TORCHINDUCTOR_CACHE_DIR"]
        assert not CALLS and os.path.isdir(cache) and not os.listdir(cache)
        assert os.getpid() != int(os.environ["PARENT_PID"])
        CALLS.append(cache)
        return (x * 2).sum()

    def _case(name, variants):
        def inputs():
            return (torch.ones(4, requires_grad=True),)

        return Case(name, "first calls", inputs, variants, floor="floor", first_call=True)

    CASES = {
        "first": lambda quick: _case("first", [
            Variant("floor", loss=first_only), Variant("ours", loss=first_only, ours=True)
        ]),
        "broken": lambda quick: _case("broken", [
            Variant("floor", loss=first_only), Variant("ours", loss=lambda x: 1 / 0)
        ]),
    }
    """
)


@pytest.mark.slow
def test_first_call_cases_time_one_call_per_fresh_process_and_cache(tmp_path, monkeypatch):
    path = tmp_path / "first_cases.py"
    path.write_text(FIRST_CALL)
    monkeypatch.setenv("PARENT_PID", str(os.getpid()))
    (result,) = bench.run_bench(["first"], repeats=2, source=str(path), threads=1)
    assert [v.name for v in result.variants] == ["floor", "ours"]
    for variant in result.variants:  # each round a new process: the first call every time
        assert len(variant.times_s) == 2 and all(0 < t < 60 for t in variant.times_s)
        assert variant.saved_bytes is None and variant.peak_extra_bytes is None
    assert result.memory_method.startswith("not measured (a first-call case")
    with pytest.raises(RuntimeError, match="first call of 'ours' failed: ZeroDivisionError"):
        bench.run_bench(["broken"], repeats=1, source=str(path), threads=1)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc/self/clear_refs")
def test_peak_memory_sees_a_large_temporary(tmp_path):
    # A variant that allocates 64 MB inside its step must show at least most of it.
    path = tmp_path / "big_cases.py"
    path.write_text(
        textwrap.dedent(
            """
        import torch
        from lossatlas.bench.engine import Case, Variant

        def big(inputs):
            buffer = torch.ones(16 * 2**20)  # 64 MiB, written so it is resident
            buffer.sum()

        def small(inputs):
            inputs[0].sum()

        CASES = {"big": lambda quick: Case(
            "big", "", lambda: (torch.ones(4),),
            [Variant("small", step=small), Variant("big", step=big)], floor="small")}
        """
        )
    )
    case = engine.load_case(str(path), "big", quick=True)
    peaks, method = engine.peak_memory(case, str(path), quick=True, threads=1)
    assert peaks["big"] is not None and peaks["big"] > 48 * 2**20, (peaks, method)
    assert peaks["small"] is not None and peaks["small"] < 16 * 2**20, (peaks, method)


def test_unknown_case_and_bad_options():
    with pytest.raises(KeyError, match="Did you mean 'binary_focal'"):
        bench.run_bench(["binary_focel"], quick=True)
    with pytest.raises(ValueError, match="clock must be one of"):
        bench.run_bench(["bce"], clock="gpu")
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        bench.run_bench(["bce"], repeats=0)
    with pytest.raises(ValueError, match="exactly one of loss= or step="):
        engine.Variant("neither")


@pytest.fixture
def no_compile():
    # The fused losses compile their kernels on first use (seconds); their eager twins run
    # the same maths, which is all these tests need.
    with la.fused(False):
        yield


@pytest.mark.usefixtures("no_compile")
@pytest.mark.parametrize("name", list(builtin.CASES))
def test_builtin_quick_cases_build_and_run(name):
    case = builtin.CASES[name](True)
    assert case.name == name
    assert case.floor in [v.name for v in case.variants]
    # quick mode never compiles (and says so where a compiled alternative exists)
    assert not any(v.name.startswith("torch.compile") for v in case.variants)
    if name in ("binary_focal", "softmax_focal") or name.startswith("linear_cross_entropy"):
        assert any(skip[0].startswith("torch.compile") for skip in case.skipped)
    for variant in case.variants:
        if variant.loss is not None:
            value = variant.loss(*case.inputs())
            assert value.dim() == 0 and math.isfinite(float(value.detach())), variant.name
        engine.run_once(variant, case.inputs())


@pytest.mark.usefixtures("no_compile")
def test_builtin_alternatives_compute_the_same_loss():
    # The ratios compare like with like: where the maths is the same, so is the value.
    focal = builtin.CASES["binary_focal"](True)
    x, t = focal.inputs()
    expected = builtin.torchvision_sigmoid_focal(x, t)
    for name in (
        "seeds/002 YOLO FocalLoss",
        "kornia binary_focal_loss_with_logits",
        "lossatlas binary_focal_loss",
    ):
        if name in [v.name for v in focal.variants]:
            torch.testing.assert_close(focal.variant(name).loss(x, t), expected)
    lm = builtin.CASES["linear_cross_entropy_32k"](True)
    h, w, y = lm.inputs()
    torch.testing.assert_close(
        lm.variant("lossatlas linear_cross_entropy").loss(h, w, y),
        builtin.eager_linear_cross_entropy(h, w, y),
    )
    weighted = lm.variant("lossatlas linear_cross_entropy (class weights)").loss(h, w, y)
    assert not torch.allclose(weighted, builtin.eager_linear_cross_entropy(h, w, y))


def test_available_cases_lists_the_builtin_ones():
    assert bench.available_cases() == list(builtin.CASES)


def test_cli_bench_lists_cases_and_rejects_unknown_ones():
    from click.testing import CliRunner

    from lossatlas.bench import available_cases
    from lossatlas.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["bench", "--list"])
    assert result.exit_code == 0
    assert result.output.split() == available_cases()
    result = runner.invoke(main, ["bench", "--case", "binary_focall", "--quick"])
    assert result.exit_code != 0
    assert "Did you mean 'binary_focal'" in result.output


@pytest.mark.parametrize("name", ["linear_distillation", "linear_sequence_log_probs"])
def test_fused_head_cases_compare_equal_computations(name):
    """Every variant of the fused-head cases gives the eager loss and gradients."""
    case = builtin.CASES[name](True)
    values, grads = [], []
    for variant in case.variants:
        inputs = case.inputs()
        out = variant.loss(*inputs)
        leaves = [t for t in inputs if t.requires_grad]
        values.append(out.detach())
        grads.append(torch.autograd.grad(out, leaves))
    assert len(values) == 3
    for value, grad in zip(values[1:], grads[1:], strict=True):
        torch.testing.assert_close(value, values[0], rtol=1e-5, atol=1e-5)
        for a, b in zip(grad, grads[0], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
