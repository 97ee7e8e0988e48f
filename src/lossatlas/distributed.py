r"""The one home of the collectives that make batch-dependent losses exact across processes.

Under DDP or FSDP (directly, or through Lightning, Accelerate or Ray Train) each process sees a
shard of the batch. A loss whose value depends on more than one sample -- a mean over the
non-ignored tokens, a batch Dice ratio, the negatives of InfoNCE, GHM's histogram -- is then
wrong unless the shards talk to each other. The losses that need it take
``process_group=`` (``None``: local, as before; a group such as
``torch.distributed.group.WORLD``: exact over that group) and use the three tools here:

* :func:`active_group` -- ``None`` for no group or a group of one process (so the local code
  runs, unchanged), the group otherwise; a clear error when ``torch.distributed`` is not
  initialised or this process is not a member;
* :func:`all_sum` -- a differentiable all-reduce sum;
* :func:`gather_rows` -- a differentiable all-gather along dim 0 for shards of different
  sizes (an empty one included): the sizes first, then the rows padded to the largest shard,
  then the padding sliced away.

The contract, for any partition of a batch over ``W`` processes: the loss returned on every
rank equals the single-process loss on the concatenated batch, and after DDP's gradient
averaging (sum over ranks / ``W``) the parameter gradients equal the single-process ones.
Both follow from using the exact adjoints of the collectives: the backward of an all-sum
all-sums the incoming gradients (every rank's loss depends on every rank's terms), the
backward of an all-gather reduce-scatters them. The gradient that reaches a rank's own
terms is therefore ``W`` times its share, which DDP's division by ``W`` cancels. The common
shortcut -- gather without gradient, or average per-rank means -- is off by a factor of
``W`` for the gathered part or by the shard imbalance (``tests/distributed`` shows both).

Every rank runs the same collectives in the same order whatever its shard, so an empty shard
never leaves the others waiting. :func:`check_shards` compares shapes across ranks before the
collectives whose size depends on them (one small all-gather of ``(ndim, dtype, *shape)``): a
rank whose class count or feature size differs raises the same ``ValueError`` on every rank,
naming the rank and the shapes, instead of hanging or summing unrelated numbers. It reads the
gathered shapes on the host, so -- like the value checks -- it is skipped while
``torch.compile`` traces and when value checks are off (``lossatlas.set_value_checks``);
:func:`gather_rows` always exchanges the sizes, because it needs them to slice.

Which torch collectives (and why): torch's functional collectives
(``torch.distributed._functional_collectives``) trace under ``torch.compile`` (inductor
lowers them) and are used when the dispatcher has autograd kernels for both
``_c10d_functional::all_reduce`` and ``_c10d_functional::all_gather_into_tensor``. The
all-gather got one with ``all_gather_tensor_autograd`` (pytorch#123989, torch 2.4); the
differentiable ``all_reduce`` (sum only) came with pytorch#168140 (late 2025) and is in torch
2.13. On an older torch the fallback is ``torch.distributed.nn.functional`` (``all_reduce``
and ``all_gather`` with autograd; eager only: it refuses to run under ``torch.compile``). The
choice is made by asking the dispatcher, not by a version number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import Tensor

from lossatlas._validation import value_checks_enabled

if TYPE_CHECKING or dist.is_available():
    from torch.distributed import ProcessGroup
else:  # a torch built without distributed support: the annotation still resolves
    ProcessGroup = Any

__all__ = [
    "GRAPH_BREAK_WITH_GROUP",
    "ProcessGroup",
    "active_group",
    "all_sum",
    "check_shards",
    "gather_rows",
    "rank",
    "world_size",
]

# Dimensions carried by the shape metadata; a deeper tensor's trailing dimensions are folded
# into the last slot (their product), which is enough to tell shards apart.
_META_DIMS = 12
_DTYPES = (
    torch.float64,
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.bool,
)


def _funcol_has_autograd() -> bool:
    """Whether torch's functional all-reduce and all-gather carry autograd kernels."""
    if not dist.is_available():
        return False
    try:
        import torch.distributed._functional_collectives  # registers the autograd kernels
    except ImportError:  # pragma: no cover - very old torch
        return False
    has = torch._C._dispatch_has_kernel_for_dispatch_key
    try:
        return bool(
            has("_c10d_functional::all_reduce", "Autograd")
            and has("_c10d_functional::all_gather_into_tensor", "Autograd")
        )
    except RuntimeError:  # pragma: no cover - the op is not registered at all
        return False


#: The losses whose ``process_group`` path ``torch.compile(fullgraph=True)`` cannot capture whole:
#: they gather shards of any size, and the sizes are read on the host (a graph break there;
#: without ``fullgraph`` they compile around it). Every other loss's group path is fixed-size
#: all-sums, which trace (``tests/distributed`` compiles them with ``fullgraph=True``).
GRAPH_BREAK_WITH_GROUP: dict[str, str] = {
    "info_nce_loss": "gathers the keys (and, symmetric, the queries) of shards of any size",
    "lovasz_hinge_loss": "gathers every rank's pixels when per_image=False",
    "lovasz_softmax_loss": "gathers every rank's pixels when per_image=False",
    **{
        name: "gathers every rank's embeddings and labels (shards of any size)"
        for name in (
            "circle_loss",
            "lifted_structure_loss",
            "mined_contrastive_loss",
            "mined_triplet_loss",
            "multi_similarity_loss",
            "npair_loss",
            "proxy_anchor_loss",
            "supcon_loss",
        )
    },
}

#: ``True``: torch's functional collectives (trace under compile); ``False``: the
#: ``torch.distributed.nn.functional`` fallback. Tests switch it to run both paths.
USE_FUNCTIONAL_COLLECTIVES: bool = _funcol_has_autograd()


# --------------------------------------------------------------------------- groups


def active_group(process_group: ProcessGroup | None) -> ProcessGroup | None:
    """The group to reduce over, or ``None`` to run the local code.

    ``None`` and a group of one process both give ``None`` (a group of size 1 is exactly the
    local loss).

    Raises:
        RuntimeError: A group was given but ``torch.distributed`` is not available or not
            initialised, or this process is not a member of the group.
        TypeError: ``process_group`` is not a ``ProcessGroup``.

    Examples:
        >>> import lossatlas.distributed as ld
        >>> ld.active_group(None) is None, ld.world_size(None), ld.rank(None)
        (True, 1, 0)
    """
    if process_group is None:
        return None
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(
            "process_group was given but torch.distributed is not initialised: call "
            "torch.distributed.init_process_group(...) first (torchrun, Lightning and "
            "Accelerate do), or pass process_group=None for the local loss"
        )
    if not isinstance(process_group, dist.ProcessGroup):
        raise TypeError(
            "process_group must be a torch.distributed.ProcessGroup (e.g. "
            f"torch.distributed.group.WORLD) or None, got {type(process_group).__name__}"
        )
    if dist.get_rank(process_group) < 0:
        raise RuntimeError(
            f"this process (global rank {dist.get_rank()}) is not a member of the process "
            "group it was given"
        )
    if dist.get_world_size(process_group) == 1:
        return None
    return process_group


def world_size(process_group: ProcessGroup | None) -> int:
    """Number of processes in the group (1 for ``None``)."""
    group = active_group(process_group)
    return 1 if group is None else dist.get_world_size(group)


def rank(process_group: ProcessGroup | None) -> int:
    """This process's rank in the group (0 for ``None``)."""
    group = active_group(process_group)
    return 0 if group is None else dist.get_rank(group)


# --------------------------------------------------------------------------- metadata


def _encode(tensor: Tensor) -> Tensor:
    """``(ndim, dtype code, *shape)`` padded with -1 to a fixed length, as int64."""
    shape = list(tensor.shape)
    if len(shape) > _META_DIMS:
        folded = 1
        for size in shape[_META_DIMS - 1 :]:
            folded *= size
        shape = [*shape[: _META_DIMS - 1], folded]
    code = _DTYPES.index(tensor.dtype) if tensor.dtype in _DTYPES else len(_DTYPES)
    row = [tensor.dim(), code, *shape] + [-1] * (_META_DIMS - len(shape))
    return torch.tensor(row, dtype=torch.int64, device=tensor.device)


def _decode(row: list[int]) -> tuple[tuple[int, ...], str]:
    ndim, code = row[0], row[1]
    shape = tuple(row[2 : 2 + min(ndim, _META_DIMS)])
    dtype = str(_DTYPES[code]).replace("torch.", "") if code < len(_DTYPES) else "other"
    return shape, dtype


@torch.compiler.disable(reason="lossatlas.distributed reads the shards' shapes on the host")
def _exchange_metadata(tensor: Tensor, group: ProcessGroup) -> list[list[int]]:
    """Every rank's ``(ndim, dtype, *shape)`` row; one small all-gather (a host read)."""
    mine = _encode(tensor)
    rows = [torch.empty_like(mine) for _ in range(dist.get_world_size(group))]
    dist.all_gather(rows, mine, group=group)
    return [row.tolist() for row in rows]


def _check_metadata(rows: list[list[int]], name: str, dims: tuple[int, ...] | None) -> None:
    """Raise the same ``ValueError`` on every rank when the shards' shapes disagree.

    ``dims`` are the dimensions that must agree (``None``: all but dim 0); the number of
    dimensions and the dtype must agree too.
    """
    decoded = [_decode(row) for row in rows]

    def key(item: tuple[tuple[int, ...], str]) -> tuple[Any, ...]:
        shape, dtype = item
        kept = shape[1:] if dims is None else tuple(shape[d] for d in dims if d < len(shape))
        return (len(shape), kept, dtype)

    if all(key(item) == key(decoded[0]) for item in decoded):
        return
    bad = next(r for r, item in enumerate(decoded) if key(item) != key(decoded[0]))
    shown = "; ".join(f"rank {r}: {shape} {dtype}" for r, (shape, dtype) in enumerate(decoded))
    what = (
        "every dimension but dim 0 (the batch)"
        if dims is None
        else "dimension" + ("s " if len(dims) > 1 else " ") + ", ".join(map(str, dims))
    )
    raise ValueError(
        f"{name} differs across the ranks of the process group: rank {bad} has shape "
        f"{decoded[bad][0]} ({decoded[bad][1]}), rank 0 has {decoded[0][0]} "
        f"({decoded[0][1]}); every rank must agree on the number of dimensions, the dtype and "
        f"{what} (the same class count or feature size). All ranks: {shown}"
    )


def check_shards(
    process_group: ProcessGroup | None,
    name: str,
    tensor: Tensor,
    *,
    dims: tuple[int, ...] | None = None,
) -> None:
    """Raise on every rank if ``tensor``'s shape or dtype differs across the group's ranks.

    One small all-gather of ``(ndim, dtype, *shape)`` and a host read of it, done before the
    collectives whose sizes depend on the shape, so a mismatch is an error that names the rank
    and the shapes, never a hang. Like the value checks it is skipped while ``torch.compile``
    traces and when they are switched off (``lossatlas.set_value_checks(False)``).

    Args:
        process_group: The group (``None`` or a group of one process: nothing to check).
        name: The argument's name, for the message.
        tensor: This rank's shard.
        dims: The dimensions that must agree (e.g. ``(1,)``, the class dimension, when the
            spatial sizes may differ); ``None`` for every dimension but the batch (dim 0).

    Raises:
        ValueError: The shards disagree; the message names the first rank that differs from
            rank 0 and lists every rank's shape.
    """
    group = active_group(process_group)
    if group is None or not value_checks_enabled():
        return
    _check_metadata(_exchange_metadata(tensor, group), name, dims)


# --------------------------------------------------------------------------- collectives


def all_sum(tensor: Tensor, process_group: ProcessGroup | None) -> Tensor:
    """The sum of ``tensor`` over the ranks of the group, differentiable.

    Its backward all-sums the incoming gradients (the exact adjoint), so after DDP's
    averaging the gradients are those of one process on the whole batch. ``None`` or a group
    of one process returns ``tensor`` itself.

    Args:
        tensor: The same shape and dtype on every rank (a caller whose sums take their shape
            from an input checks that input first with :func:`check_shards`).
        process_group: The group, or ``None``.

    Returns:
        The elementwise sum over the ranks, on every rank.
    """
    group = active_group(process_group)
    if group is None:
        return tensor
    if USE_FUNCTIONAL_COLLECTIVES:
        from torch.distributed import _functional_collectives as funcol

        return funcol.all_reduce(tensor, "sum", group)
    from torch.distributed.nn import functional as dist_nn

    return dist_nn.all_reduce(tensor, op=dist.ReduceOp.SUM, group=group)


def gather_rows(
    tensor: Tensor, process_group: ProcessGroup | None, *, name: str = "tensor"
) -> tuple[Tensor, list[int]]:
    """All ranks' rows of ``tensor`` concatenated along dim 0, differentiable, uneven shards.

    The shard sizes are exchanged first (with the rest of the shape, so a rank whose feature
    size differs raises on every rank instead of hanging), each shard is padded to the
    largest, gathered, and the padding is sliced away. The backward reduce-scatters the
    gradients, so every rank's rows receive the gradient of every rank's use of them. An
    empty shard takes part like any other.

    Args:
        tensor: ``(n_r, ...)`` on rank ``r``; the trailing shape and the dtype must agree.
        process_group: The group, or ``None``.
        name: What the tensor is, for the error message.

    Returns:
        ``(gathered, sizes)``: the ``(sum n_r, ...)`` rows in rank order, and the list of
        ``n_r`` (rank ``r``'s rows start at ``sum(sizes[:r])``). ``None`` or a group of one
        process returns ``(tensor, [n])``.

    Raises:
        ValueError: A 0-dim tensor, or trailing shapes or dtypes that differ across ranks.
    """
    if tensor.dim() == 0:
        raise ValueError(f"{name} must have a batch dimension to gather, got a 0-dim tensor")
    group = active_group(process_group)
    if group is None:
        return tensor, [tensor.shape[0]]
    rows = _exchange_metadata(tensor, group)
    _check_metadata(rows, name, None)
    sizes = [row[2] for row in rows]
    largest = max(sizes)
    padded = tensor
    if tensor.shape[0] < largest:
        padding = tensor.new_zeros((largest - tensor.shape[0], *tensor.shape[1:]))
        padded = torch.cat([tensor, padding])
    if USE_FUNCTIONAL_COLLECTIVES:
        from torch.distributed import _functional_collectives as funcol

        stacked = funcol.all_gather_single(padded.contiguous(), 0, group)
        pieces = stacked.split(largest)
    else:
        from torch.distributed.nn import functional as dist_nn

        pieces = dist_nn.all_gather(padded.contiguous(), group=group)
    gathered = torch.cat([piece[:size] for piece, size in zip(pieces, sizes, strict=True)])
    return gathered, sizes
