"""``linear_cross_entropy`` against the eager, compiled and torch-chunked LM heads and the GEMMs.

N=2048 tokens, H=1024, V=16384 and 32768, float32. Usage::

    python benchmarks/bench_lm_head.py [--threads 2] [--repeats 7] [--json lm_head.json]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from bench_all import main

if __name__ == "__main__":
    main(
        sys.argv[1:],
        default_cases=["linear_cross_entropy_16k", "linear_cross_entropy_32k"],
        description=__doc__.split("\n", 1)[0],
    )
