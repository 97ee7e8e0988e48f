"""Batch-dependent losses are exact across processes (issue 13): gloo on CPU, 2 and 3 ranks.

One spawn per world size runs every case (``cases.py``), and one test per world size checks all
of its results, so pytest-xdist never spawns the same world twice. A failure lists every case,
rank, reduction and check that failed, with its relative error.

``PYTHONPATH=src python tests/distributed/harness.py`` prints the run time and, per loss and
partition, the error of the exact path and of the naive alternatives.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import lossatlas as la

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

#: The naive alternatives must be off by more than this somewhere (they are off by 5-100%).
NAIVE_MIN_ERROR = 1e-3


def _failures(per_rank_results: list[dict]) -> tuple[list[str], dict[str, float]]:
    """Every check that failed on any rank, and the worst naive error per loss case."""
    failed: list[str] = []
    naive: dict[str, float] = {}
    for rank, per_rank in enumerate(per_rank_results):
        for key, result in per_rank["losses"].items():
            case = key.split("@")[0]
            for reduction, checks in result.items():
                for name in ("value", "grad"):
                    if f"{name}_ok" in checks and not checks[f"{name}_ok"]:
                        failed.append(
                            f"rank {rank} {key} {reduction} {name}: "
                            f"relative error {checks[f'{name}_err']:.3g}"
                        )
                for name in ("naive_value_err", "naive_grad_err"):
                    if name in checks:
                        naive[case] = max(naive.get(case, 0.0), checks[name])
        for key, result in per_rank["special"].items():
            if not result["ok"]:
                failed.append(f"rank {rank} {key}: {result['detail']}")
    return failed, naive


# One test per world size, so pytest-xdist never spawns the same world twice on two workers.
@pytest.mark.parametrize("world_size", [2, 3])
def test_losses_exact_across_processes(world_size):
    """Value on every rank and DDP-averaged gradients == one process; the naive ones are not."""
    per_rank = harness.run("cases:run_all", world_size)
    failed, naive = _failures(per_rank)
    right = sorted(case for case, err in naive.items() if err < NAIVE_MIN_ERROR)
    if right:
        failed.append(f"the naive alternative is not wrong for {right}: the test cannot fail")
    assert not failed, "\n".join(failed)


def test_process_group_without_init_raises():
    assert not torch.distributed.is_initialized()
    logits, target = torch.randn(3, 4), torch.tensor([0, 1, 2])
    # A real (unregistered) group object: the option's annotation admits it, the loss then
    # says torch.distributed is not initialised.
    group = torch.distributed.ProcessGroup(torch.distributed.HashStore(), 0, 2)
    with pytest.raises(RuntimeError, match="torch.distributed is not initialised"):
        la.cross_entropy(logits, target, process_group=group)
