"""Focal family: forward+backward time and memory kept for backward, against the alternatives.

Cases (fp32 CPU, ratios against the floor ``F.binary_cross_entropy_with_logits`` /
``F.cross_entropy``):

* ``binary_focal_loss`` (alpha=0.25, gamma=2, hard targets, N=4M logits): lossatlas's default
  path (custom autograd, kernel compiled by ``torch.compile``), the same function with
  ``la.fused(False)`` (the kernel op by op), without value checks, the plain differentiable ops
  (lossatlas's path under an outer ``torch.compile``), the torchvision-style eager formula, kornia's
  ``binary_focal_loss_with_logits``, and the BCE floor.
* ``balanced_binary_cross_entropy`` (alpha=0.75, N=4M): fused against its torch equivalent
  ``0.25 * BCE(pos_weight=3)`` and the BCE floor.
* ``focal_loss`` (softmax, gamma=2, N=500k, C=8): fused, eager kernels, no value checks, plain
  ops, the eager per-sample formula, kornia's ``focal_loss``, and the ``F.cross_entropy`` floor.

Timing interleaves the variants (warm-up excluded, which also absorbs the one-off compilation)
and reports medians. "saved" is the bytes the autograd graph keeps for backward as seen by
``torch.autograd.graph.saved_tensors_hooks``; "extra" counts distinct storages that are not the
caller's inputs (memory the loss adds until backward).

Run ``python benchmarks/bench_focal.py [--repeats 15] [--threads 2] [--cpu-time]``;
``lossatlas bench`` can call :func:`cases` and :func:`run_case`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

import lossatlas as la
from lossatlas.classification import _fused_focal


@dataclass
class Variant:
    """One way of computing the loss: ``run(logits)`` returns the scalar loss."""

    name: str
    run: Callable[[Tensor], Tensor]


@dataclass
class Case:
    """Variants of one computation on the same inputs; ratios are against ``baseline``."""

    name: str
    description: str
    make_logits: Callable[[], Tensor]
    variants: list[Variant]
    baseline: str
    inputs: tuple[Tensor, ...] = field(default_factory=tuple)


@dataclass
class Result:
    """Median forward+backward seconds, bytes saved for backward, extra bytes kept."""

    name: str
    seconds: float
    saved_bytes: int
    extra_bytes: int
    ratio: float = float("nan")


# --------------------------------------------------------------------------- alternatives


def torchvision_focal(x: Tensor, t: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """``torchvision.ops.sigmoid_focal_loss`` (``reduction="mean"``) with ordinary ops."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** gamma)
    alpha_t = alpha * t + (1 - alpha) * (1 - t)
    return (alpha_t * loss).mean()


def eager_softmax_focal(x: Tensor, y: Tensor, gamma: float = 2.0) -> Tensor:
    """Per-sample softmax focal loss with ordinary ops (Lin et al. 2017, no alpha)."""
    log_pt = F.log_softmax(x, dim=1).gather(1, y.unsqueeze(1)).squeeze(1)
    return (-((1 - log_pt.exp()) ** gamma) * log_pt).mean()


def plain(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """``fn`` on lossatlas's plain differentiable ops instead of the custom autograd."""

    def run(x: Tensor) -> Tensor:
        original = _fused_focal.use_custom_autograd
        _fused_focal.use_custom_autograd = lambda *tensors: False
        try:
            return fn(x)
        finally:
            _fused_focal.use_custom_autograd = original

    return run


def eager_kernels(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """``fn`` with the fused kernels run op by op (``la.fused(False)``)."""

    def run(x: Tensor) -> Tensor:
        with la.fused(False):
            return fn(x)

    return run


def unchecked(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """``fn`` with the value checks (target range, class indices) switched off."""

    def run(x: Tensor) -> Tensor:
        with la.value_checks(False):
            return fn(x)

    return run


# --------------------------------------------------------------------------- cases


def cases(*, scale: int = 1) -> list[Case]:
    """The focal benchmark cases (``scale`` multiplies the sizes)."""
    generator = torch.Generator().manual_seed(0)
    n_binary = 4_000_000 * scale
    binary_logits = torch.randn(n_binary, generator=generator)
    binary_target = torch.randint(0, 2, (n_binary,), generator=generator).float()
    n, c = 500_000 * scale, 8
    class_logits = torch.randn(n, c, generator=generator)
    labels = torch.randint(0, c, (n,), generator=generator)

    def focal(x: Tensor) -> Tensor:
        return la.binary_focal_loss(x, binary_target)

    def balanced(x: Tensor) -> Tensor:
        return la.balanced_binary_cross_entropy(x, binary_target)

    def softmax_focal(x: Tensor) -> Tensor:
        return la.focal_loss(x, labels)

    bce = Variant(
        "F.binary_cross_entropy_with_logits (floor)",
        lambda x: F.binary_cross_entropy_with_logits(x, binary_target),
    )
    pos_weight = torch.tensor(3.0)
    binary_variants = [
        Variant("lossatlas binary_focal_loss (fused, compiled)", focal),
        Variant("lossatlas binary_focal_loss (fused, eager kernels)", eager_kernels(focal)),
        Variant("lossatlas binary_focal_loss (fused, no value checks)", unchecked(focal)),
        Variant("lossatlas binary_focal_loss (plain ops)", plain(focal)),
        Variant("torchvision-style eager focal", lambda x: torchvision_focal(x, binary_target)),
        bce,
    ]
    balanced_variants = [
        Variant("lossatlas balanced_binary_cross_entropy (fused)", balanced),
        Variant("lossatlas balanced_binary_cross_entropy (eager kernels)", eager_kernels(balanced)),
        Variant(
            "0.25 * BCE(pos_weight=3) (torch)",
            lambda x: (
                0.25 * F.binary_cross_entropy_with_logits(x, binary_target, pos_weight=pos_weight)
            ),
        ),
        bce,
    ]
    softmax_variants = [
        Variant("lossatlas focal_loss (fused, compiled)", softmax_focal),
        Variant("lossatlas focal_loss (fused, eager kernels)", eager_kernels(softmax_focal)),
        Variant("lossatlas focal_loss (fused, no value checks)", unchecked(softmax_focal)),
        Variant("lossatlas focal_loss (plain ops)", plain(softmax_focal)),
        Variant("eager per-sample focal", lambda x: eager_softmax_focal(x, labels)),
        Variant("F.cross_entropy (floor)", lambda x: F.cross_entropy(x, labels)),
    ]
    try:
        import kornia.losses as kornia_losses
    except ImportError:  # kornia is optional: the cases run without it
        pass
    else:
        binary_variants.insert(
            5,
            Variant(
                "kornia binary_focal_loss_with_logits",
                lambda x: kornia_losses.binary_focal_loss_with_logits(
                    x.view(-1, 1),
                    binary_target.view(-1, 1),
                    alpha=0.25,
                    gamma=2.0,
                    reduction="mean",
                ),
            ),
        )
        softmax_variants.insert(
            5,
            Variant(
                "kornia focal_loss (its mean is / C)",
                lambda x: kornia_losses.focal_loss(x, labels, alpha=None, reduction="mean"),
            ),
        )
    return [
        Case(
            "binary_focal_loss",
            f"sigmoid focal (alpha=0.25, gamma=2), N={n_binary:,}, fp32",
            lambda: binary_logits.clone(),
            binary_variants,
            bce.name,
            (binary_target,),
        ),
        Case(
            "balanced_binary_cross_entropy",
            f"alpha-balanced BCE (alpha=0.75), N={n_binary:,}, fp32",
            lambda: binary_logits.clone(),
            balanced_variants,
            bce.name,
            (binary_target,),
        ),
        Case(
            "focal_loss",
            f"softmax focal (gamma=2), N={n:,}, C={c}, fp32",
            lambda: class_logits.clone(),
            softmax_variants,
            softmax_variants[-1].name,
            (labels,),
        ),
    ]


# --------------------------------------------------------------------------- running


def saved_bytes(case: Case, variant: Variant) -> tuple[int, int]:
    """Bytes the graph saves for backward (all, and distinct non-input storages)."""
    logits = case.make_logits().requires_grad_(True)
    inputs = {t.untyped_storage().data_ptr() for t in (logits, *case.inputs)}
    total = 0
    extra: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in inputs:
            extra[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        variant.run(logits)
    return total, sum(extra.values())


def run_case(
    case: Case, *, repeats: int = 15, warmup: int = 3, cpu_time: bool = False
) -> list[Result]:
    """Time every variant's forward+backward, interleaved; medians after the warm-up.

    ``cpu_time`` uses the process's CPU clock (all intra-op threads), which a loaded machine
    disturbs less than the wall clock.
    """
    clock = time.process_time if cpu_time else time.perf_counter
    times: dict[str, list[float]] = {v.name: [] for v in case.variants}
    for step in range(warmup + repeats):
        for variant in case.variants:
            logits = case.make_logits().requires_grad_(True)
            start = clock()
            variant.run(logits).backward()
            elapsed = clock() - start
            if step >= warmup:
                times[variant.name].append(elapsed)
    results = []
    for variant in case.variants:
        saved, extra = saved_bytes(case, variant)
        results.append(Result(variant.name, statistics.median(times[variant.name]), saved, extra))
    base = next(r.seconds for r in results if r.name == case.baseline)
    for result in results:
        result.ratio = result.seconds / base
    return results


def format_results(case: Case, results: list[Result]) -> str:
    """A plain-text table: variant, median ms, ratio, MB saved, MB extra."""
    input_mb = case.make_logits().numel() * 4 / 2**20
    lines = [
        f"{case.name}: {case.description} (one input-sized fp32 tensor = {input_mb:.1f} MB)",
        f"  {'variant':56s} {'ms':>8s} {'ratio':>7s} {'saved MB':>9s} {'extra MB':>9s}",
    ]
    for r in results:
        lines.append(
            f"  {r.name:56s} {r.seconds * 1e3:8.2f} {r.ratio:7.2f} "
            f"{r.saved_bytes / 2**20:9.1f} {r.extra_bytes / 2**20:9.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--case", action="append", help="run only this case (repeatable)")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with the process's CPU clock (robust on a loaded machine)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{'CPU time' if args.cpu_time else 'wall time'}, median of {args.repeats}"
    )
    for case in cases():
        if args.case and case.name not in args.case:
            continue
        results = run_case(case, repeats=args.repeats, warmup=args.warmup, cpu_time=args.cpu_time)
        print(format_results(case, results))


if __name__ == "__main__":
    main()
