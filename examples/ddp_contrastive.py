"""Train a tiny model with InfoNCE and batch Dice under DDP, exact across processes.

Run on CPU with two processes (gloo, localhost only)::

    torchrun --standalone --nproc-per-node 2 examples/ddp_contrastive.py

Each step, the ranks hold shards of different sizes (5 and 3 samples). With
``process_group=torch.distributed.group.WORLD`` every rank's InfoNCE sees the keys of every rank
as negatives and the batch Dice sums its intersections over every rank, so the loss printed on
each rank is the same number -- the loss of one process on the whole batch -- and DDP's
averaged gradients are that process's gradients. The last line compares with the local losses
(``process_group=None``), which differ per rank and from the true value.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import lossatlas as la

STEPS = 30
SHARDS = (5, 3)  # uneven on purpose: 8 samples per step in all


class Tiny(nn.Module):
    """An embedding head (for InfoNCE) and a 1x1-conv segmentation head (for Dice)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
        self.segment = nn.Conv2d(2, 3, kernel_size=1)

    def forward(self, views: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.embed(views), self.segment(images)


def batch(step: int, rank: int, world: int) -> tuple[torch.Tensor, ...]:
    """This rank's shard of step ``step``'s batch (the same full batch on every rank)."""
    g = torch.Generator().manual_seed(step)
    total = sum(SHARDS[:world])
    points = torch.randn(total, 8, generator=g)
    views = torch.stack([points + 0.1 * torch.randn(total, 8, generator=g) for _ in range(2)])
    images = torch.randn(total, 2, 6, 6, generator=g)
    masks = (images[:, 0] > 0).long() + (images[:, 1] > 1).long()  # classes 0, 1, 2
    lo = sum(SHARDS[:rank])
    hi = lo + SHARDS[rank]
    return views[:, lo:hi], images[lo:hi], masks[lo:hi]


def losses(model: nn.Module, shard: tuple[torch.Tensor, ...], group: object) -> torch.Tensor:
    """``[InfoNCE, batch Dice]`` of a shard, exact over ``group`` (``None``: this rank only)."""
    views, images, masks = shard
    n = views.shape[1]
    embedded, logits = model(torch.cat([views[0], views[1]]), images)
    contrastive = la.info_nce_loss(
        embedded[:n], embedded[n:], temperature=0.2, symmetric=True, process_group=group
    )
    dice = la.dice_loss(logits, masks, batch=True, process_group=group)
    return torch.stack([contrastive, dice])


def main() -> None:
    """Train for a few steps under DDP, print each rank's loss, compare with the local one."""
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    rank, world = dist.get_rank(), dist.get_world_size()
    if world > len(SHARDS):
        raise SystemExit(f"this example shards its batch over at most {len(SHARDS)} processes")
    torch.manual_seed(0)
    model = DistributedDataParallel(Tiny())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    group = dist.group.WORLD
    for step in range(STEPS):
        parts = losses(model, batch(step, rank, world), group)
        optimizer.zero_grad()
        parts.sum().backward()
        optimizer.step()
        if step % 10 == 0 or step == STEPS - 1:
            print(
                f"rank {rank} step {step:2d}: info_nce {parts[0].item():.6f}  "
                f"batch dice {parts[1].item():.6f}",
                flush=True,
            )
    # The logged value is the same on every rank; the local (naive) one is not.
    with torch.no_grad():
        shard = batch(STEPS, rank, world)
        exact = losses(model.module, shard, group)
        local = losses(model.module, shard, None)
    gathered = [torch.zeros(2) for _ in range(world)]
    dist.all_gather(gathered, exact)
    same = all(torch.equal(g, gathered[0]) for g in gathered)
    print(
        f"rank {rank}: exact {exact.tolist()} (identical on every rank: {same}); "
        f"local only {local.tolist()}",
        flush=True,
    )
    dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
