"""Every built-in benchmark case of ``lossatlas bench`` (ratios, bytes saved, peak memory).

Usage::

    python benchmarks/bench_all.py [--quick] [--case NAME ...] [--repeats 7] [--threads 2]
                                   [--clock wall|cpu] [--no-memory] [--json results.json]

The other ``bench_*.py`` scripts run a subset through the same :func:`main`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console

from lossatlas.bench import available_cases, print_results, run_bench, to_json


def main(
    argv: Sequence[str] | None = None,
    *,
    default_cases: Sequence[str] | None = None,
    description: str | None = None,
) -> None:
    parser = argparse.ArgumentParser(description=description or __doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, no torch.compile")
    parser.add_argument(
        "--case", action="append", choices=available_cases(), help="run only this case (repeatable)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per variant")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory child")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    results = run_bench(
        args.case or default_cases,
        args.quick,
        repeats=args.repeats,
        warmup=args.warmup,
        memory=not args.no_memory,
        threads=args.threads,
        clock=args.clock,
        progress=lambda message: console.log(message),
    )
    print_results(results)
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k != "json"}
        with open(args.json, "w") as out:
            out.write(to_json(results, settings=settings))


if __name__ == "__main__":
    main(sys.argv[1:])
