"""``lossatlas bench``: forward+backward time and memory of the losses against alternatives.

>>> from lossatlas.bench import available_cases
>>> "linear_cross_entropy_32k" in available_cases()
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lossatlas.bench.engine import (
    Case,
    CaseResult,
    Variant,
    VariantResult,
    load_case,
    num_threads,
    print_results,
    run_case,
    to_json,
)

__all__ = [
    "BUILTIN",
    "Case",
    "CaseResult",
    "Variant",
    "VariantResult",
    "available_cases",
    "print_results",
    "run_bench",
    "run_case",
    "to_json",
]

#: The module that holds the built-in cases (``CASES``: name -> factory).
BUILTIN = "lossatlas.bench.cases"


def available_cases(source: str = BUILTIN) -> list[str]:
    """The case names ``source`` defines, in running order."""
    from lossatlas.bench.engine import _import_source

    return list(_import_source(source).CASES)


def run_bench(
    cases: Sequence[str] | None = None,
    quick: bool = False,
    *,
    repeats: int | None = None,
    warmup: int = 1,
    memory: bool = True,
    threads: int | None = None,
    clock: str = "wall",
    source: str = BUILTIN,
    progress: Callable[[str], None] | None = None,
) -> list[CaseResult]:
    """Run benchmark cases and return their results (print them with :func:`print_results`).

    Args:
        cases: Case names (see :func:`available_cases`); ``None`` runs them all.
        quick: Small sizes and no ``torch.compile`` variants: a smoke run of seconds.
        repeats: Timed rounds per variant (median reported); default 7, 3 with ``quick``.
        warmup: Untimed runs of each variant first.
        memory: Measure peak extra memory in a fresh child process per case.
        threads: torch intra-op threads for the run (``None``: torch's default).
        clock: ``"wall"`` (``time.perf_counter``) or ``"cpu"`` (the process's CPU time, all
            threads: steadier on a loaded machine).
        source: The module (or ``.py`` file) whose ``CASES`` to run.
        progress: Called with a short message as the run advances.

    Returns:
        One :class:`CaseResult` per case, in order.

    Raises:
        KeyError: An unknown case name (the message lists the known ones).
        ValueError: A bad ``clock`` or a non-positive ``repeats``.
    """
    from lossatlas._validation import check_choice

    check_choice("clock", clock, ("wall", "cpu"))
    if repeats is None:
        repeats = 3 if quick else 7
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    known = available_cases(source)
    names = list(known) if not cases else list(cases)
    for name in names:
        if name not in known:
            from lossatlas._validation import suggest

            raise KeyError(
                f"no benchmark case {name!r}; known: {', '.join(known)}.{suggest(name, known)}"
            )
    results: list[CaseResult] = []
    with num_threads(threads):
        for name in names:
            if progress is not None:
                progress(f"{name}: building inputs")
            case = load_case(source, name, quick=quick)
            results.append(
                run_case(
                    case,
                    source=source,
                    quick=quick,
                    repeats=repeats,
                    warmup=warmup,
                    memory=memory,
                    threads=threads,
                    clock=clock,
                    progress=progress,
                )
            )
    return results


def summary(results: Sequence[CaseResult]) -> dict[str, Any]:
    """Median seconds per case and variant (a compact view of the results)."""
    return {r.name: {v.name: v.median_s for v in r.variants} for r in results}
