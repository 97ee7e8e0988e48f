"""Dice losses (softmax and sigmoid) against MONAI, the seeds' snippets and the CE/BCE floors.

The cases live with the other built-in cases in :mod:`lossatlas.bench.cases` (``dice``,
``binary_dice``): lossatlas's fused path (a custom autograd function that keeps only the logits
and the labels and recomputes the activation in backward), the same loss with the fused paths
switched off (``la.fused(False)``: lossatlas's plain differentiable ops), MONAI ``DiceLoss``,
the seeds' multi-class (``seeds/000_*``) and binary (``seeds/002_*``) Dice snippets, and
``F.cross_entropy`` / ``F.binary_cross_entropy_with_logits`` as floors.

Usage::

    python benchmarks/bench_dice.py [--threads 2] [--repeats 7] [--clock cpu] [--json dice.json]
"""

from __future__ import annotations

import os
import sys

from lossatlas.bench.cases import binary_dice, dice
from lossatlas.bench.engine import Case

sys.path.insert(0, os.path.dirname(__file__))

from bench_all import main


def cases(*, quick: bool = False) -> list[Case]:
    """The Dice cases (``quick``: small sizes for a smoke run)."""
    return [dice(quick), binary_dice(quick)]


if __name__ == "__main__":
    main(sys.argv[1:], default_cases=["dice", "binary_dice"], description=__doc__.split("\n")[0])
