"""Dice losses: forward+backward time and memory kept for backward, against the alternatives.

Cases (fp32 CPU):

* ``dice_loss`` (softmax, class indices, N=8, C=4, 256x256): lossatlas's fused path (a custom
  autograd function that keeps only the logits and the labels and recomputes the softmax in
  backward), the same maths with plain differentiable ops (lossatlas's fallback), MONAI
  ``DiceLoss(softmax=True, to_onehot_y=True)``, the seeds' multi-class Dice snippet
  (``seeds/000_*``: softmax, a one-vs-rest loop over the foreground classes), and
  ``F.cross_entropy`` as the floor (one softmax pass).
* ``binary_dice_loss`` (sigmoid, one channel, N=8, 512x512, the global form with smooth=1):
  fused, plain, MONAI ``DiceLoss(sigmoid=True, batch=True)``, the seeds' binary snippet
  (``seeds/002_*``: sigmoid, flatten, smooth=1), and ``F.binary_cross_entropy_with_logits``.

Each variant's forward+backward is timed with the variants interleaved (warm-up excluded,
medians), ratios against the case's baseline. "saved" is the bytes the autograd graph keeps for
backward as seen by ``torch.autograd.graph.saved_tensors_hooks`` (aliases of the inputs
included); "extra" counts only distinct storages that are not the caller's inputs, i.e. memory
the loss adds until backward.

Run ``python benchmarks/bench_dice.py [--repeats 15] [--threads 2] [--cpu-time]``;
``lossatlas bench`` calls :func:`cases` and :func:`run_case`.
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
from lossatlas.segmentation import _overlap


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
    inputs: tuple[Tensor, ...] = field(default_factory=tuple)  # other inputs (labels, masks)


@dataclass
class Result:
    """Median forward+backward seconds, bytes saved for backward, extra bytes kept."""

    name: str
    seconds: float
    saved_bytes: int
    extra_bytes: int
    ratio: float = float("nan")


# --------------------------------------------------------------------------- the seeds


def seed_multiclass_dice(inputs: Tensor, targets: Tensor) -> Tensor:
    """``seeds/000_*`` ``DiceLoss.forward`` without weights.

    The seed sums ``dim=(2, 3)`` of ``(N, H, W)`` slices, which raises; summing the spatial
    dims ``(1, 2)`` is the evident intent and is what runs here.
    """
    num_classes = inputs.size(1)
    inputs_soft = F.softmax(inputs, dim=1)
    dice = inputs.new_zeros(())
    for i in range(1, num_classes):
        input_i = inputs_soft[:, i]
        target_i = (targets == i).float()
        intersection = (input_i * target_i).sum(dim=(1, 2))
        union = input_i.sum(dim=(1, 2)) + target_i.sum(dim=(1, 2))
        dice = dice + (2.0 * intersection / (union + 1e-7)).mean()
    return 1 - dice / float(num_classes - 1)


def seed_binary_dice(inputs: Tensor, targets: Tensor, smooth: float = 1.0) -> Tensor:
    """``seeds/002_*`` ``DiceLoss.forward`` (sigmoid, flatten, ``smooth=1``), verbatim maths."""
    inputs = torch.sigmoid(inputs).view(-1)
    targets = targets.view(-1)
    intersection = (inputs * targets).sum()
    dice = (2.0 * intersection + smooth) / (inputs.sum() + targets.sum() + smooth)
    return 1 - dice


# --------------------------------------------------------------------------- cases


def plain(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """``fn`` with lossatlas's plain differentiable ops instead of the fused function."""

    def run(x: Tensor) -> Tensor:
        original = _overlap.use_custom_autograd
        _overlap.use_custom_autograd = lambda *tensors: False
        try:
            return fn(x)
        finally:
            _overlap.use_custom_autograd = original

    return run


def unchecked(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """``fn`` with the value checks (class-index and [0, 1] range scans) switched off."""

    def run(x: Tensor) -> Tensor:
        with la.value_checks(False):
            return fn(x)

    return run


def cases(*, scale: int = 1) -> list[Case]:
    """The Dice benchmark cases (``scale`` multiplies the batch size)."""
    generator = torch.Generator().manual_seed(0)
    n, c, side = 8 * scale, 4, 256
    softmax_logits = torch.randn(n, c, side, side, generator=generator)
    labels = torch.randint(0, c, (n, side, side), generator=generator)
    binary_logits = torch.randn(n, 1, 2 * side, 2 * side, generator=generator)
    masks = (torch.rand(n, 1, 2 * side, 2 * side, generator=generator) > 0.7).float()

    def binary(x: Tensor) -> Tensor:
        return la.binary_dice_loss(x, masks, batch=True, smooth_nr=1.0, smooth_dr=1.0)

    softmax_variants = [
        Variant("lossatlas dice_loss (fused)", lambda x: la.dice_loss(x, labels)),
        Variant("lossatlas dice_loss (plain ops)", plain(lambda x: la.dice_loss(x, labels))),
        Variant(
            "lossatlas dice_loss (fused, no value checks)",
            unchecked(lambda x: la.dice_loss(x, labels)),
        ),
        Variant("seeds/000 multi-class Dice", lambda x: seed_multiclass_dice(x, labels)),
        Variant("F.cross_entropy (floor)", lambda x: F.cross_entropy(x, labels)),
    ]
    binary_variants = [
        Variant("lossatlas binary_dice_loss (fused)", binary),
        Variant("lossatlas binary_dice_loss (plain ops)", plain(binary)),
        Variant("lossatlas binary_dice_loss (fused, no value checks)", unchecked(binary)),
        Variant("seeds/002 binary Dice", lambda x: seed_binary_dice(x, masks)),
        Variant(
            "F.binary_cross_entropy_with_logits (floor)",
            lambda x: F.binary_cross_entropy_with_logits(x, masks),
        ),
    ]
    try:
        from monai.losses import DiceLoss
    except ImportError:  # MONAI is optional: the case runs without it
        pass
    else:
        monai_softmax = DiceLoss(softmax=True, to_onehot_y=True)
        monai_binary = DiceLoss(sigmoid=True, batch=True, smooth_nr=1.0, smooth_dr=1.0)
        index = labels.unsqueeze(1)
        softmax_variants.insert(
            2, Variant("MONAI DiceLoss(softmax=True)", lambda x: monai_softmax(x, index))
        )
        binary_variants.insert(
            2, Variant("MONAI DiceLoss(sigmoid=True)", lambda x: monai_binary(x, masks))
        )
    return [
        Case(
            "dice_loss",
            f"softmax Dice, class indices, N={n}, C={c}, {side}x{side}, fp32",
            lambda: softmax_logits.clone(),
            softmax_variants,
            softmax_variants[0].name,
            (labels,),
        ),
        Case(
            "binary_dice_loss",
            f"sigmoid Dice (global, smooth=1), N={n}, 1x{2 * side}x{2 * side}, fp32",
            lambda: binary_logits.clone(),
            binary_variants,
            binary_variants[0].name,
            (masks,),
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
    """Time every variant's forward+backward, interleaved; medians after the warm-up."""
    clock = time.thread_time if cpu_time else time.perf_counter
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
    lines = [
        f"{case.name}: {case.description}",
        f"  {'variant':52s} {'ms':>8s} {'ratio':>7s} {'saved MB':>9s} {'extra MB':>9s}",
    ]
    for r in results:
        lines.append(
            f"  {r.name:52s} {r.seconds * 1e3:8.2f} {r.ratio:7.2f} "
            f"{r.saved_bytes / 2**20:9.1f} {r.extra_bytes / 2**20:9.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with the thread's CPU clock (robust on a loaded machine)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{'CPU time' if args.cpu_time else 'wall time'}, median of {args.repeats}"
    )
    for case in cases():
        print(
            format_results(
                case,
                run_case(case, repeats=args.repeats, warmup=args.warmup, cpu_time=args.cpu_time),
            )
        )


if __name__ == "__main__":
    main()
