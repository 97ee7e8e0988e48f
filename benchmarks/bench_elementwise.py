"""The fused element-wise losses (focal, Dice, BCE family) against their alternatives.

Usage::

    python benchmarks/bench_elementwise.py [--threads 2] [--repeats 7] [--json elementwise.json]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from bench_all import main

if __name__ == "__main__":
    main(
        sys.argv[1:],
        default_cases=["binary_focal", "softmax_focal", "dice", "binary_dice", "bce"],
        description=__doc__.split("\n", 1)[0],
    )
