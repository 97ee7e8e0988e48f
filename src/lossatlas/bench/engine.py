"""The benchmark engine: interleaved timing, bytes saved for backward, peak memory in a child.

A :class:`Case` is one computation done several ways (its :class:`Variant` s) on the same
inputs. :func:`run_case` measures each variant's forward+backward:

* **time**: every variant runs ``warmup`` times (excluded), then ``repeats`` rounds in which
  each variant runs once, in an order that rotates every round, so a slow spell of a loaded
  machine hits all variants alike; the median per variant is reported, and ratios against the
  case's floor and against lossatlas's own variant are formed from those medians;
* **saved for backward**: the distinct storages the autograd graph packs, seen by
  :func:`torch.autograd.graph.saved_tensors_hooks`, in total and as a multiple of the first
  input's size (a custom autograd function's ``ctx`` attributes are invisible to the hooks; the
  peak memory below still sees them);
* **first-call latency** (cases with ``first_call=True``): each timed run is a variant's very
  first forward+backward in a fresh Python process (torch and lossatlas imported, the inputs
  built, then the clock starts) with an empty compile cache (``TORCHINDUCTOR_CACHE_DIR`` a new
  temporary directory), so a compile that the call triggers is counted in full; wall time,
  since compilation runs in worker processes; one process per variant and round;
* **peak extra memory**: in a fresh Python process per case (same inputs, same seed), glibc's
  ``mmap`` threshold fixed at 64 KiB so that freed blocks go back to the system, each variant
  runs once as a warm-up, then the kernel's resident-set high-water mark is reset
  (``/proc/self/clear_refs``), the variant runs once more and the peak resident set above the
  resident set just before the run is reported. Where the high-water mark cannot be reset, each
  variant gets its own process and ``ru_maxrss`` above the resident set after the inputs are
  built (then the first run's one-off costs are included, which the table says).

Nothing here asserts on time: the numbers are ratios for people to read.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

#: ``step(inputs)`` runs one forward+backward; ``loss(*inputs)`` returns a loss to differentiate.
StepFn = Callable[[Sequence[Tensor]], Any]
LossFn = Callable[..., Tensor]


@dataclass
class Variant:
    """One way of computing a case.

    Attributes:
        name: Shown in the table.
        loss: ``loss(*inputs) -> Tensor``; the engine differentiates it with respect to the
            inputs that require a gradient. Give this or ``step``.
        step: ``step(inputs)``: a whole forward+backward done by hand (e.g. the bare matrix
            products of a floor); nothing is saved for backward then.
        ours: Whether this is lossatlas's implementation (the "speed-up" column divides the
            other variants' times by its time).
        note: A short remark printed under the table.
    """

    name: str
    loss: LossFn | None = None
    step: StepFn | None = None
    ours: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        if (self.loss is None) == (self.step is None):
            raise ValueError(f"variant {self.name!r}: give exactly one of loss= or step=")


@dataclass
class Case:
    """Variants of one computation on the same inputs.

    Attributes:
        name: Short identifier (``lossatlas bench --case NAME``).
        description: What is computed, with the sizes.
        inputs: ``inputs() -> tuple of tensors``, deterministic; the ones that require a
            gradient are differentiated. Called afresh for each run, so no state leaks.
        variants: The ways to compute it.
        floor: Name of the variant the "vs floor" ratios divide by.
        skipped: ``(variant name, reason)`` for alternatives that could not run here
            (an optional peer library missing, a torch without the function...).
        first_call: Time each variant's first call in a fresh process with an empty compile
            cache (see the module docstring) instead of its steady state.
    """

    name: str
    description: str
    inputs: Callable[[], tuple[Tensor, ...]]
    variants: list[Variant]
    floor: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    first_call: bool = False

    def variant(self, name: str) -> Variant:
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise KeyError(f"case {self.name!r} has no variant {name!r}")


@dataclass
class VariantResult:
    """The measurements of one variant (times in seconds, sizes in bytes)."""

    name: str
    median_s: float
    times_s: list[float]
    vs_floor: float
    speedup_of_ours: float | None
    saved_bytes: int | None
    saved_vs_input: float | None
    peak_extra_bytes: int | None
    ours: bool
    note: str = ""


@dataclass
class CaseResult:
    """The measurements of one case."""

    name: str
    description: str
    floor: str
    variants: list[VariantResult]
    skipped: list[tuple[str, str]]
    memory_method: str


# --------------------------------------------------------------------------- one run


def _grad_inputs(inputs: Sequence[Tensor]) -> list[Tensor]:
    return [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]


def run_once(variant: Variant, inputs: Sequence[Tensor]) -> None:
    """One forward+backward of ``variant`` on ``inputs`` (gradients returned, not stored)."""
    if variant.step is not None:
        variant.step(inputs)
        return
    assert variant.loss is not None
    loss = variant.loss(*inputs)
    wrt = _grad_inputs(inputs)
    if wrt:
        torch.autograd.grad(loss, wrt)


def saved_bytes(variant: Variant, inputs: Sequence[Tensor]) -> int | None:
    """Bytes of the distinct storages the graph keeps for backward (inputs included)."""
    if variant.loss is None:
        return None
    storages: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = variant.loss(*inputs)
    del loss
    return sum(storages.values())


# --------------------------------------------------------------------------- timing


def time_variants(
    case: Case,
    *,
    repeats: int,
    warmup: int,
    clock: Callable[[], float] = time.perf_counter,
    progress: Callable[[str], None] | None = None,
) -> dict[str, list[float]]:
    """Forward+backward seconds of every variant, interleaved in rotating order."""
    times: dict[str, list[float]] = {v.name: [] for v in case.variants}
    for variant in case.variants:
        for _ in range(warmup):
            run_once(variant, case.inputs())
    count = len(case.variants)
    for round_ in range(repeats):
        order = case.variants[round_ % count :] + case.variants[: round_ % count]
        for variant in order:
            inputs = case.inputs()
            gc.collect()
            start = clock()
            run_once(variant, inputs)
            times[variant.name].append(clock() - start)
            del inputs
        if progress is not None:
            progress(f"{case.name}: round {round_ + 1}/{repeats}")
    return times


def first_call_times(
    case: Case,
    source: str,
    *,
    quick: bool,
    threads: int | None,
    repeats: int,
    progress: Callable[[str], None] | None = None,
    timeout: float = 1800.0,
) -> dict[str, list[float]]:
    """Seconds of each variant's first forward+backward, one fresh process per variant and round.

    Rounds rotate the order of the variants, as :func:`time_variants` does.

    Raises:
        RuntimeError: If a child process fails (its last line of error output is quoted).
    """
    times: dict[str, list[float]] = {v.name: [] for v in case.variants}
    count = len(case.variants)
    for round_ in range(repeats):
        order = case.variants[round_ % count :] + case.variants[: round_ % count]
        for variant in order:
            with tempfile.TemporaryDirectory(prefix="lossatlas-bench-cache-") as cache:
                env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
                done = _run_child(
                    case, source, "first-call", [variant.name], quick, threads, env, timeout
                )
            if done.returncode != 0 or not done.stdout.strip():
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise RuntimeError(f"{case.name}: first call of {variant.name!r} failed: {last}")
            times[variant.name].append(
                float(json.loads(done.stdout.splitlines()[-1])[variant.name])
            )
        if progress is not None:
            progress(f"{case.name}: round {round_ + 1}/{repeats} (a fresh process per variant)")
    return times


def _first_call(case: Case, name: str) -> float:
    """Seconds of the first forward+backward of a variant in this (fresh) process."""
    inputs = case.inputs()
    gc.collect()
    start = time.perf_counter()
    run_once(case.variant(name), inputs)
    return time.perf_counter() - start


# --------------------------------------------------------------------------- peak memory

_STATUS = "/proc/self/status"


def _status_kib(field_name: str) -> int | None:
    try:
        with open(_STATUS) as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the kernel's resident-set high-water mark (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


def _peak_in_this_process(case: Case, names: Sequence[str]) -> dict[str, int]:
    """Peak extra resident bytes of each named variant (warm-up, reset, measured run)."""
    peaks: dict[str, int] = {}
    for name in names:
        variant = case.variant(name)
        run_once(variant, case.inputs())
        inputs = case.inputs()
        gc.collect()
        if not _reset_peak():
            raise RuntimeError("cannot reset the resident-set high-water mark")
        before = _status_kib("VmRSS") or 0
        run_once(variant, inputs)
        peak = _status_kib("VmHWM") or 0
        peaks[name] = max(0, peak - before) * 1024
        del inputs
        gc.collect()
    return peaks


def _peak_first_run(case: Case, name: str) -> int:
    """Peak extra resident bytes of a variant's first run (``ru_maxrss`` fallback)."""
    import resource

    inputs = case.inputs()
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    current = _status_kib("VmRSS")
    run_once(case.variant(name), inputs)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    base = max(before, current or 0) if current is not None else before
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return max(0, after - base) * unit


def child_main(argv: Sequence[str]) -> None:
    """Entry point of the measuring child: ``argv = [source, case, quick, threads, mode, *names]``.

    Prints one JSON object ``{variant: bytes}`` (``{variant: seconds}`` for ``first-call``) on
    stdout.
    """
    source, case_name, quick, threads, mode, *names = argv
    if int(threads) > 0:
        torch.set_num_threads(int(threads))
    case = load_case(source, case_name, quick=quick == "1")
    values: dict[str, float] | dict[str, int]
    if mode == "first-call":
        values = {names[0]: _first_call(case, names[0])}
    elif mode == "hwm":
        values = _peak_in_this_process(case, names)
    else:
        values = {names[0]: _peak_first_run(case, names[0])}
    print(json.dumps(values))


def can_reset_peak() -> bool:
    """Whether this system lets a process reset its resident-set high-water mark."""
    return sys.platform.startswith("linux") and _reset_peak()


def peak_memory(
    case: Case, source: str, *, quick: bool, threads: int | None, timeout: float = 1800.0
) -> tuple[dict[str, int | None], str]:
    """Peak extra memory of each variant, measured in fresh child processes.

    Returns the bytes per variant (``None`` where the child failed) and a description of the
    method for the table.
    """
    env = dict(os.environ)
    env.setdefault("MALLOC_MMAP_THRESHOLD_", "65536")
    env.setdefault("MALLOC_TRIM_THRESHOLD_", "0")
    names = [v.name for v in case.variants]
    if can_reset_peak():
        jobs = [("hwm", names)]
        method = "fresh process, peak RSS above RSS before the run, after one warm-up run"
    else:
        jobs = [("first", [name]) for name in names]
        method = "fresh process per variant, ru_maxrss above RSS before the first run"
    result: dict[str, int | None] = dict.fromkeys(names)
    for mode, job_names in jobs:
        try:
            done = _run_child(case, source, mode, job_names, quick, threads, env, timeout)
        except subprocess.TimeoutExpired:
            continue
        if done.returncode != 0 or not done.stdout.strip():
            continue
        for name, value in json.loads(done.stdout.strip().splitlines()[-1]).items():
            result[name] = int(value)
    return result, method


def _run_child(
    case: Case,
    source: str,
    mode: str,
    names: Sequence[str],
    quick: bool,
    threads: int | None,
    env: dict[str, str],
    timeout: float,
) -> subprocess.CompletedProcess[str]:
    """Run :func:`child_main` in a fresh Python process."""
    code = "import sys; from lossatlas.bench.engine import child_main; child_main(sys.argv[1:])"
    flag = "1" if quick else "0"
    command = [sys.executable, "-c", code, source, case.name, flag, str(threads or 0), mode]
    return subprocess.run(
        [*command, *names], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


# --------------------------------------------------------------------------- cases by name


def load_case(source: str, name: str, *, quick: bool) -> Case:
    """Build the case ``name`` from ``source``: a module name or a ``.py`` file path.

    The module must define ``CASES``: a mapping from case name to a factory
    ``factory(quick: bool) -> Case``.
    """
    module = _import_source(source)
    factories = module.CASES
    if name not in factories:
        raise KeyError(f"{source} has no case {name!r}; it has {', '.join(factories)}")
    case: Case = factories[name](quick)
    return case


def _import_source(source: str) -> Any:
    if source.endswith(".py"):
        module_name = "_lossatlas_bench_" + os.path.splitext(os.path.basename(source))[0]
        if module_name in sys.modules:
            return sys.modules[module_name]
        spec = importlib.util.spec_from_file_location(module_name, source)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import benchmark cases from {source}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(source)


# --------------------------------------------------------------------------- a whole case


def run_case(
    case: Case,
    *,
    source: str,
    quick: bool = False,
    repeats: int = 7,
    warmup: int = 1,
    memory: bool = True,
    threads: int | None = None,
    clock: str = "wall",
    progress: Callable[[str], None] | None = None,
) -> CaseResult:
    """Measure every variant of ``case`` (see the module docstring for how)."""
    timer = time.perf_counter if clock == "wall" else time.process_time
    if case.first_call:
        times = first_call_times(
            case, source, quick=quick, threads=threads, repeats=repeats, progress=progress
        )
    else:
        times = time_variants(case, repeats=repeats, warmup=warmup, clock=timer, progress=progress)
    medians = {name: statistics.median(values) for name, values in times.items()}
    floor = medians[case.floor]
    ours = next((medians[v.name] for v in case.variants if v.ours), None)
    input_bytes = _first_input_bytes(case)
    peaks: dict[str, int | None] = dict.fromkeys(medians)
    method = "not measured"
    if case.first_call:  # steady-state memory says nothing here; running it would compile
        method = "not measured (a first-call case: wall time of the first call, fresh process)"
    elif memory:
        if progress is not None:
            progress(f"{case.name}: peak memory in a fresh process")
        peaks, method = peak_memory(case, source, quick=quick, threads=threads)
    results = []
    for variant in case.variants:
        saved = None if case.first_call else saved_bytes(variant, case.inputs())
        results.append(
            VariantResult(
                name=variant.name,
                median_s=medians[variant.name],
                times_s=times[variant.name],
                vs_floor=medians[variant.name] / floor,
                speedup_of_ours=None if ours is None else medians[variant.name] / ours,
                saved_bytes=saved,
                saved_vs_input=None if saved is None else saved / input_bytes,
                peak_extra_bytes=peaks.get(variant.name),
                ours=variant.ours,
                note=variant.note,
            )
        )
    return CaseResult(case.name, case.description, case.floor, results, list(case.skipped), method)


def _first_input_bytes(case: Case) -> int:
    first = case.inputs()[0]
    return max(1, first.numel() * first.element_size())


# --------------------------------------------------------------------------- reporting


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def to_json(results: Sequence[CaseResult], *, settings: dict[str, Any] | None = None) -> str:
    """The results as JSON (with the machine and the settings)."""
    payload = {
        "machine": machine(),
        "settings": settings or {},
        "cases": [asdict(result) for result in results],
    }
    return json.dumps(payload, indent=2)


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.1f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def print_results(results: Sequence[CaseResult], *, console: Any = None) -> None:
    """Print one rich table per case, with the machine on top."""
    from rich.console import Console
    from rich.table import Table

    # A pipe or file gets 140 columns, so the tables are not squeezed to 80.
    console = console or Console(width=None if sys.stdout.isatty() else 140)
    info = machine()
    console.print(
        f"[bold]lossatlas bench[/bold] -- {info['cpu']}, {info['cores']} cores, "
        f"{info['threads']} torch threads, torch {info['torch']}, Python {info['python']}"
    )
    console.print(
        "time: median forward+backward; / floor and / lossatlas: that time divided by the "
        "floor's and lossatlas's; saved: bytes kept for backward (x input: in units of the "
        "first input); peak extra: resident memory above the inputs",
        highlight=False,
    )
    for result in results:
        table = Table(title=f"{result.name}: {result.description}", title_justify="left")
        table.add_column("variant", no_wrap=True)
        table.add_column("median ms", justify="right")
        table.add_column("/ floor", justify="right")
        table.add_column("/ lossatlas", justify="right")
        table.add_column("saved MB", justify="right")
        table.add_column("x input", justify="right")
        table.add_column("peak extra MB", justify="right")
        for v in result.variants:
            name = f"[cyan]{v.name}[/cyan]" if v.ours else v.name
            if v.name == result.floor:
                name += " [dim](floor)[/dim]"
            table.add_row(
                name,
                f"{v.median_s * 1e3:,.1f}",
                _ratio(v.vs_floor),
                _ratio(v.speedup_of_ours),
                _mb(v.saved_bytes),
                "-" if v.saved_vs_input is None else f"{v.saved_vs_input:.1f}",
                _mb(v.peak_extra_bytes),
            )
        console.print(table)
        notes = [f"  {v.name}: {v.note}" for v in result.variants if v.note]
        notes += [f"  skipped {name}: {reason}" for name, reason in result.skipped]
        notes.append(f"  peak memory: {result.memory_method}")
        for line in notes:
            console.print(line, highlight=False, markup=False)


@contextlib.contextmanager
def num_threads(threads: int | None) -> Iterator[None]:
    """Set torch's intra-op threads for a block (``None``: leave them)."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
