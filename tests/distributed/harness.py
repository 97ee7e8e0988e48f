"""Run a job in W gloo processes on 127.0.0.1 and bring each rank's results back.

One spawn per world size runs many cases (start-up and the rendezvous cost seconds on a
loaded 2-core machine, a case costs milliseconds). Every collective has a timeout
(``init_process_group(timeout=...)``), and the parent waits with a deadline and terminates the
children it started if it passes, so a hang is a failure, never a stuck suite.

The job is named ``"module:function"``; the module must be importable in the children (this
directory is put on ``sys.path``, which spawn passes on). The function is called as
``function(rank, world_size, group)`` and returns a picklable dict.
"""

from __future__ import annotations

import datetime
import importlib
import os
import queue
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

HERE = Path(__file__).resolve().parent
#: A collective that waits longer than this raises in the children (a hang becomes an error).
COLLECTIVE_TIMEOUT = datetime.timedelta(seconds=45)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _entry(rank: int, world_size: int, port: int, job: str, results: Any) -> None:
    torch.set_num_threads(1)
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        dist.init_process_group(
            "gloo",
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=world_size,
            timeout=COLLECTIVE_TIMEOUT,
        )
        module_name, function_name = job.split(":")
        function = getattr(importlib.import_module(module_name), function_name)
        out = function(rank, world_size, dist.group.WORLD)
        results.put((rank, out))
    except BaseException:  # report it to the parent rather than dying silently
        results.put((rank, {"__crash__": traceback.format_exc()}))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run(job: str, world_size: int, *, deadline: float = 480.0) -> list[dict[str, Any]]:
    """Run ``job`` on ``world_size`` processes; return each rank's dict, in rank order."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    context = mp.start_processes(
        _entry,
        args=(world_size, free_port(), job, results),
        nprocs=world_size,
        join=False,
        start_method="spawn",
    )
    out: dict[int, dict[str, Any]] = {}
    end = time.monotonic() + deadline
    try:
        while len(out) < world_size:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"{job} on {world_size} processes: no result from ranks "
                    f"{sorted(set(range(world_size)) - set(out))} within {deadline:.0f} s"
                )
            try:
                rank, value = results.get(timeout=min(left, 1.0))
            except queue.Empty:  # no result yet: has a child died?
                if not all(p.is_alive() for p in context.processes) and results.empty():
                    time.sleep(0.5)
                    if results.empty():
                        codes = [p.exitcode for p in context.processes]
                        raise RuntimeError(
                            f"{job}: a child exited without a result ({codes})"
                        ) from None
                continue
            out[rank] = value
        context.join(timeout=max(1.0, end - time.monotonic()))
    finally:
        for process in context.processes:
            if process.is_alive():
                process.terminate()
                process.join(5)
    crashes = {r: v["__crash__"] for r, v in out.items() if "__crash__" in v}
    if crashes:
        raise RuntimeError("\n".join(f"rank {r}:\n{tb}" for r, tb in sorted(crashes.items())))
    return [out[r] for r in range(world_size)]


def _summary(world_size: int) -> None:
    """Print the run time and, per loss and partition, the worst error of each alternative."""
    start = time.monotonic()
    per_rank = run("cases:run_all", world_size)
    print(f"world size {world_size}: {time.monotonic() - start:.1f} s (spawn included)")
    rows: dict[tuple[str, str], list[float]] = {}
    for result in per_rank:
        for key, checks in result["losses"].items():
            case, sizes = key.split("@")
            worst = rows.setdefault((case, sizes), [0.0, 0.0, 0.0])
            for reduction in ("mean", "sum"):
                got = checks[reduction]
                worst[0] = max(worst[0], got["value_err"], got["grad_err"])
            # The naive alternative of the usual reduction, "mean": its value on the worst rank
            # and its DDP-averaged gradient, relative to one process on the whole batch.
            worst[1] = max(worst[1], checks["mean"]["naive_value_err"])
            worst[2] = max(worst[2], checks["mean"]["naive_grad_err"])
    print("relative errors (max-norm); exact: value and gradients of mean and sum;")
    print("naive: the local loss (a mean of per-rank means after DDP), reduction='mean'")
    print(f"{'loss':42s} {'shards':10s} {'exact':>9s} {'naive value':>12s} {'naive grad':>11s}")
    for (case, sizes), (exact, value, grad) in rows.items():
        print(f"{case:42s} {sizes:10s} {exact:9.1e} {value:12.3f} {grad:11.3f}")


if __name__ == "__main__":  # PYTHONPATH=src python tests/distributed/harness.py [2] [3]
    for size in [int(arg) for arg in sys.argv[1:]] or [2, 3]:
        _summary(size)
