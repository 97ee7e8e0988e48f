"""What the losses over ``(query, key)`` embeddings share: their example and the key chunks.

InfoNCE (:mod:`lossatlas.ranking.contrastive`) and SigLIP (:mod:`lossatlas.ranking.siglip`)
take the keys a chunk at a time, each chunk under activation checkpointing, so neither forward
nor backward holds the ``N x N`` logits. :func:`chunk_plan` chooses the width and how a chunk
runs; :func:`query_keys` is the catalog example of both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

from lossatlas import _examples as ex
from lossatlas._catalog import Example

#: Elements of one chunk of logits (queries x keys): 8 Mi, 32 MiB in float32. At N = 8192 a
#: chunk is 1024 keys wide; below ``CHUNK_ELEMENTS / N`` keys there is one chunk (no overhead).
CHUNK_ELEMENTS = 1 << 23

_DIM = 4


def query_keys(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    """Example ``(query (N, 4), key (N, 4))``, both taking gradients."""
    query = ex.normal(generator, batch, _DIM, dtype=dtype, scale=scale)
    key = ex.normal(generator, batch, _DIM, dtype=dtype, scale=scale)
    return Example((query, key), grad_args=(0, 1))


def direct(fn: Any, *args: Any) -> Any:
    """``fn(*args)``: a chunk that holds every logit anyway (no recomputation in backward)."""
    return fn(*args)


def checkpointed(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` under non-reentrant checkpointing when a gradient will be taken."""
    needs_grad = torch.is_grad_enabled() and any(
        isinstance(a, torch.Tensor) and a.requires_grad for a in args
    )
    if not needs_grad or torch._C._are_functorch_transforms_active():
        return fn(*args)
    return checkpoint(fn, *args, use_reentrant=False, preserve_rng_state=False)


def chunk_plan(
    num_queries: int, num_keys: int, chunk: int | None
) -> tuple[int, Callable[..., Any], bool]:
    """``(width, run, compiling)``: keys per chunk, how each runs, whether compiling.

    The width is ``chunk`` or about :data:`CHUNK_ELEMENTS` logits' worth (at least 64 keys).
    Under ``torch.compile`` the sizes are symbolic, so the caller takes one chunk per key set
    (a loop over chunks would unroll per batch size and recompile for each), run directly.
    """
    width = chunk or max(64, CHUNK_ELEMENTS // max(num_queries, 1))
    compiling = torch.compiler.is_compiling()
    run = checkpointed if not compiling and num_keys > width else direct
    return width, run, compiling
