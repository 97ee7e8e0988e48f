"""Where the (loss, seed) runs of ``lossatlas compare`` run: here, in worker processes, or Ray.

A comparison is a grid of independent runs, each a pure function of its :class:`RunSpec` (the
data, the initial weights and the batch order all follow from the seed). An engine takes that
function and the list of specs and hands back one result per spec, in the specs' order, whatever
order the runs finished in:

* ``jobs=1`` runs them one after another in this process;
* ``jobs=N`` runs them in ``N`` spawned worker processes with one torch thread each (several
  single-threaded runs use the cores better than one run with several threads fighting over
  tiny matrices);
* ``engine="ray"`` sends each run to a Ray cluster as a task (a local instance limited to this
  machine's cores unless ``address`` names a running cluster).

Because every run seeds its own generators and uses one intra-op thread wherever it executes,
the engines give identical results run by run. Progress is one bar: runs report each finished
epoch through ``tick`` (worker processes through a queue; Ray runs advance the bar when they
finish). ``Ctrl-C`` stops the workers at once and returns the runs that finished, marked
``interrupted``, so the caller can still write them down and ``--resume`` later.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue as queue_module
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal

from lossatlas._optional import require

__all__ = [
    "ENGINES",
    "EngineError",
    "GridOutcome",
    "RunSpec",
    "check_ray",
    "default_jobs",
    "run_grid",
]

#: The engines ``run_grid`` knows.
ENGINES = ("local", "ray")

Engine = Literal["local", "ray"]

#: ``run(spec, tick)``: one run; ``tick()`` once per finished epoch. Must be picklable
#: (a module-level function or a ``functools.partial`` of one) for worker processes and Ray.
RunFunction = Callable[["RunSpec", Callable[[], None]], dict[str, Any]]


class EngineError(RuntimeError):
    """An engine could not start (no such cluster, Ray missing or failing to start)."""


@dataclass(frozen=True, order=True)
class RunSpec:
    """One cell of the grid: a candidate loss under one seed.

    Attributes:
        candidate: The candidate's key.
        seed: The seed.
        epochs: How many ``tick`` calls the run makes (its share of the progress bar).
    """

    candidate: str
    seed: int
    epochs: int = 1

    @property
    def key(self) -> tuple[str, int]:
        """``(candidate, seed)``: what identifies the run in a report."""
        return (self.candidate, self.seed)


@dataclass
class GridOutcome:
    """What an engine hands back.

    Attributes:
        results: ``spec.key`` -> the run's result, for every run that finished, in the specs'
            order.
        interrupted: Whether ``Ctrl-C`` stopped the grid before every run finished.
    """

    results: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    interrupted: bool = False


def default_jobs() -> int:
    """The number of cores this process may run on (``os.sched_getaffinity`` where it exists)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def run_grid(
    run: RunFunction,
    specs: Sequence[RunSpec],
    *,
    jobs: int = 1,
    engine: Engine = "local",
    address: str | None = None,
    on_tick: Callable[[int], None] | None = None,
    on_result: Callable[[RunSpec, dict[str, Any]], None] | None = None,
) -> GridOutcome:
    """Run every spec and collect the results, stopping cleanly on ``Ctrl-C``.

    Args:
        run: ``run(spec, tick) -> dict``; it calls ``tick()`` after each epoch. For ``jobs > 1``
            and Ray it must be picklable.
        specs: The runs, in the order the results are to be listed.
        jobs: Worker processes (local engine) or concurrent tasks (a local Ray instance's CPUs).
        engine: ``"local"`` or ``"ray"``.
        address: A running Ray cluster (``"ray://head:10001"`` or ``"head:6379"``); without it
            Ray starts a local instance limited to ``jobs`` CPUs.
        on_tick: Called with a number of finished epochs as they are reported (the progress bar).
        on_result: Called in this process with each finished run, as it finishes (to save it).

    Returns:
        The :class:`GridOutcome`.

    Raises:
        ValueError: For ``jobs < 1``, an unknown engine or ``address`` without Ray.
        EngineError: If Ray is not installed, or cannot start or reach ``address``.
        Exception: Whatever a run raised, re-raised here after the other workers are stopped.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive number of processes, got {jobs!r}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if address is not None and engine != "ray":
        raise ValueError("address names a Ray cluster: use it with engine='ray'")
    tick = on_tick or (lambda n: None)
    results: dict[tuple[str, int], dict[str, Any]] = {}

    def finished(spec: RunSpec, result: dict[str, Any]) -> None:
        results[spec.key] = result
        if on_result is not None:
            on_result(spec, result)

    interrupted = False
    try:
        if engine == "ray":
            _run_ray(run, specs, jobs, address, tick, finished)
        elif jobs == 1 or len(specs) <= 1:
            for spec in specs:
                finished(spec, run(spec, lambda: tick(1)))
        else:
            _run_processes(run, specs, jobs, tick, finished)
    except KeyboardInterrupt:
        interrupted = True
    ordered = {s.key: results[s.key] for s in specs if s.key in results}
    return GridOutcome(ordered, interrupted)


# --------------------------------------------------------------------------- worker processes

_TICKS: Any = None  # the worker's end of the progress queue


def _init_worker(ticks: Any) -> None:
    global _TICKS
    _TICKS = ticks
    # Ctrl-C is the parent's to handle: it stops the workers itself and keeps what finished.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    torch.set_num_threads(1)


def _worker_tick() -> None:
    _TICKS.put(1)


def _call_in_worker(run: RunFunction, spec: RunSpec) -> dict[str, Any]:
    return run(spec, _worker_tick)


def _drain(ticks: Any, tick: Callable[[int], None]) -> None:
    count = 0
    with contextlib.suppress(queue_module.Empty, OSError, EOFError):
        while True:
            count += ticks.get_nowait()
    if count:
        tick(count)


def _run_processes(
    run: RunFunction,
    specs: Sequence[RunSpec],
    jobs: int,
    tick: Callable[[int], None],
    finished: Callable[[RunSpec, dict[str, Any]], None],
) -> None:
    # spawn, not fork: a forked copy of a process whose torch thread pools already ran can hang
    context = mp.get_context("spawn")
    ticks = context.Queue()
    pool = ProcessPoolExecutor(
        max_workers=min(jobs, len(specs)),
        mp_context=context,
        initializer=_init_worker,
        initargs=(ticks,),
    )
    clean = False
    try:
        # the workers start during the first submit: they inherit an ignored SIGINT, so a
        # Ctrl-C while they import torch does not print a traceback from each of them
        with _sigint_ignored():
            futures: dict[Future[dict[str, Any]], RunSpec] = {
                pool.submit(_call_in_worker, run, spec): spec for spec in specs
            }
        pending: set[Future[dict[str, Any]]] = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(ticks, tick)
            for future in sorted(done, key=lambda f: futures[f]):
                finished(futures[future], future.result())
        _drain(ticks, tick)
        clean = True
    finally:
        if not clean:
            _stop_workers(pool)
        pool.shutdown(wait=True, cancel_futures=True)
        ticks.close()
        ticks.join_thread()


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Terminate the pool's processes now (Ctrl-C or a failed run), waiting a bounded time."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    deadline = time.monotonic() + 10.0
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(1.0)


# --------------------------------------------------------------------------- Ray


def _call_in_ray(run: RunFunction, spec: RunSpec) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    return run(spec, lambda: None)


def check_ray(address: str | None) -> None:
    """Fail now, in one line, if Ray is missing or ``address`` does not answer.

    Raises:
        EngineError: Saying which.
    """
    try:
        require("ray", "ray", purpose="--engine ray")
    except ImportError as error:
        raise EngineError(str(error)) from None
    if address is not None:
        _check_reachable(address)


def start_ray(jobs: int, address: str | None) -> tuple[Any, bool]:
    """Connect to ``address`` or start a local Ray instance limited to ``jobs`` CPUs.

    Returns:
        The ``ray`` module, initialised, and whether this call initialised it (then the caller
        shuts it down: that stops a local instance and only disconnects from a cluster).

    Raises:
        EngineError: If Ray is not installed, ``address`` does not answer, or Ray fails to start
            (the message says why, in one line).
    """
    try:
        ray = require("ray", "ray", purpose="--engine ray")
    except ImportError as error:
        raise EngineError(str(error)) from None
    if ray.is_initialized():
        return ray, False
    if address is not None:
        _check_reachable(address)
    try:
        if address is None:
            # everything on loopback: the local instance talks to itself through 127.0.0.1
            ray.init(
                num_cpus=jobs,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                _node_ip_address="127.0.0.1",
            )
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except KeyboardInterrupt:
        raise
    except Exception as error:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        text = str(error).strip()
        first = text.splitlines()[0] if text else ""
        raise EngineError(f"could not start {where}: {type(error).__name__}: {first}") from None
    return ray, True


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on an address nothing listens on (``ray.init`` would retry for a minute)."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise EngineError(
            f"--address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379 or ray://10.0.0.5:10001)"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise EngineError(f"no Ray cluster answers at {address}: {reason}") from None


def _run_ray(
    run: RunFunction,
    specs: Sequence[RunSpec],
    jobs: int,
    address: str | None,
    tick: Callable[[int], None],
    finished: Callable[[RunSpec, dict[str, Any]], None],
) -> None:
    ray, started = start_ray(jobs, address)
    remote = ray.remote(num_cpus=1, max_retries=0)(_call_in_ray)
    refs: dict[Any, RunSpec] = {}
    try:
        refs = {remote.remote(run, spec): spec for spec in specs}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            for ref in done:
                spec = refs[ref]
                result = ray.get(ref)
                tick(spec.epochs)
                finished(spec, result)
    except BaseException:
        with _sigint_ignored():  # a second Ctrl-C must not break the clean-up
            for ref in refs:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            with _sigint_ignored():
                ray.shutdown()


def pending_specs(specs: Iterable[RunSpec], done: Iterable[tuple[str, int]]) -> list[RunSpec]:
    """The specs whose ``(candidate, seed)`` is not among ``done`` (what ``--resume`` runs)."""
    finished = set(done)
    return [s for s in specs if s.key not in finished]
