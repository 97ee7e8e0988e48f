"""The one home of reduction for every loss in the package.

Every loss computes its unreduced values and hands them to :func:`reduce_loss`. The rules:

* ``"none"`` returns the values as they are;
* ``"sum"`` adds them;
* ``"mean"`` divides the sum by a denominator: the number of elements, or -- for losses that
  weight or ignore elements -- the sum of the weights of the elements that count (as torch
  does for ``cross_entropy`` with ``weight``). A zero denominator (an empty batch, every target
  equal to ``ignore_index``, an all-void mask) gives ``0.0`` that stays in the autograd graph
  with a zero gradient, never NaN. The check is a ``torch.where``, so there is no host sync and
  nothing for ``torch.compile`` to break on.
* ``"batchmean"`` (only where a loss allows it, e.g. KL divergence) divides the sum by the
  size of the first dimension.

With ``process_group`` (see :mod:`lossatlas.distributed`) ``"sum"`` and ``"mean"`` are over
the whole batch of every rank of the group: the sum and the denominator are all-summed in one
differentiable collective, so each loss states its local denominator and gets the global one.

NaN policy (every loss): a NaN in any element a loss uses -- a prediction, a target, a weight
-- gives a NaN loss, or a ``ValueError`` where a value check already refuses it (probabilities
outside [0, 1]); never a finite number, so a diverged run never logs a good loss. Elements a loss
ignores (``ignore_index``, a zero mask, the offsets of unmatched priors) do not count. An
infinite input gives the loss's limit where it has one (a logit of ``+inf`` for a positive
label costs 0) and ``inf`` or NaN otherwise. Square roots go through :func:`safe_sqrt`, which
keeps a finite gradient at 0 without turning NaN into 0.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from lossatlas._validation import check_choice
from lossatlas.distributed import ProcessGroup, active_group, all_sum

Reduction = Literal["none", "mean", "sum"]
REDUCTIONS: tuple[str, ...] = ("none", "mean", "sum")


def check_reduction(reduction: str, allowed: tuple[str, ...] = REDUCTIONS) -> None:
    """Raise a ``ValueError`` (with a suggestion) unless ``reduction`` is one of ``allowed``."""
    check_choice("reduction", reduction, allowed)


def safe_divide(numerator: Tensor, denominator: Tensor | float) -> Tensor:
    """``numerator / denominator`` that is ``0`` (with a zero gradient) where the denominator is 0.

    Unlike a clamp, an exact zero is replaced by one, so fractional weight sums such as 0.5
    still divide exactly.
    """
    if isinstance(denominator, Tensor):
        return numerator / torch.where(denominator == 0, torch.ones_like(denominator), denominator)
    if isinstance(denominator, (int, torch.SymInt)):
        # An element count: under ``torch.compile(dynamic=True)`` it is a symbolic size, and
        # ``sym_max`` keeps it one (``torch.as_tensor(count)`` would bake the batch size into the
        # graph and recompile for every new one).
        return numerator / torch.sym_max(denominator, 1)
    return numerator / (denominator if denominator != 0 else 1.0)


def safe_sqrt(x: Tensor) -> Tensor:
    """``sqrt(x)`` whose gradient at ``x = 0`` is 0 (not inf), and that keeps NaN as NaN.

    The common ``where(x > 0, sqrt(x), 0)`` reads a NaN as "not positive" and returns 0, which
    makes a diverged run report a perfect distance; here the non-positive branch is ``x * 0``,
    which is 0 for ``x = 0`` (or a rounding-negative square) and NaN for NaN.

    Examples:
        >>> import torch
        >>> x = torch.tensor([4.0, 0.0, float("nan")], requires_grad=True)
        >>> y = safe_sqrt(x)
        >>> y
        tensor([2., 0., nan], grad_fn=<WhereBackward0>)
        >>> y[:2].sum().backward()
        >>> x.grad
        tensor([0.2500, 0.0000, 0.0000])
    """
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, 1.0).sqrt(), x * 0)


def reduce_loss(
    loss: Tensor,
    reduction: str,
    *,
    denominator: Tensor | float | None = None,
    allowed: tuple[str, ...] = REDUCTIONS,
    process_group: ProcessGroup | None = None,
    global_denominator: bool = False,
) -> Tensor:
    """Reduce unreduced loss values, on this process or over a process group.

    Args:
        loss: Unreduced loss values, any shape; weights and masks already applied.
        reduction: ``"none"``, ``"mean"``, ``"sum"`` (or ``"batchmean"`` when ``allowed``
            contains it).
        denominator: What ``"mean"`` divides the sum by. ``None`` means the number of
            elements of ``loss``. Losses with weights pass the sum of the weights of the
            elements that count; losses with ``ignore_index`` pass the number of kept ones.
        allowed: The reductions the calling loss accepts.
        process_group: ``None`` (this process), or a group over which ``"sum"`` adds and
            ``"mean"`` divides the global sum by the global denominator (this rank's
            ``denominator`` or element count, all-summed). ``"none"`` stays local.
        global_denominator: ``denominator`` is already the same global value on every rank
            (only the sum is all-summed).

    Returns:
        ``loss`` itself for ``"none"``, otherwise a 0-dim tensor, the same on every rank of
        ``process_group``. A zero denominator gives 0. Half-precision values (float16,
        bfloat16) are summed in float32 and the result is float32, as every built-in loss
        returns (so a user's loss reduced here meets the same dtype contract).

    Examples:
        >>> import torch
        >>> import lossatlas as la
        >>> la.reduce_loss(torch.tensor([1.0, 2.0, 6.0]), "mean")
        tensor(3.)
        >>> la.reduce_loss(torch.zeros(0), "mean")
        tensor(0.)
    """
    check_reduction(reduction, allowed)
    if reduction == "none":
        return loss
    half = loss.dtype in (torch.float16, torch.bfloat16)
    total = loss.sum(dtype=torch.float32 if half else None)
    group = active_group(process_group)
    if reduction == "sum":
        return total if group is None else all_sum(total, group)
    if reduction == "batchmean":
        denominator = loss.shape[0] if loss.dim() > 0 else 1
    elif denominator is None:
        denominator = loss.numel()
    if group is None:
        return safe_divide(total, denominator)
    denominator = torch.as_tensor(denominator, dtype=total.dtype, device=total.device)
    if global_denominator:
        return safe_divide(all_sum(total, group), denominator)
    both = all_sum(torch.stack([total, denominator]), group)
    return safe_divide(both[0], both[1])


def compute_dtype(*tensors: Tensor | None) -> torch.dtype:
    """The floating dtype a loss computes in: float32 for half-precision inputs, else theirs.

    Half-precision (float16, bfloat16) inputs are accumulated in float32 and the loss comes back
    in float32; float32 and float64 are kept.
    """
    dtypes = [t.dtype for t in tensors if t is not None and t.is_floating_point()]
    if not dtypes:
        return torch.get_default_dtype()
    dtype = dtypes[0]
    for other in dtypes[1:]:
        dtype = torch.promote_types(dtype, other)
    if dtype in (torch.float16, torch.bfloat16):
        return torch.float32
    return dtype


def upcast(tensor: Tensor, dtype: torch.dtype) -> Tensor:
    """``tensor`` in ``dtype`` when it is floating point (no copy when it already is)."""
    if tensor.is_floating_point() and tensor.dtype != dtype:
        return tensor.to(dtype)
    return tensor


def kept_weight(
    target: Tensor, *, weight: Tensor | None, ignore_index: int, dtype: torch.dtype
) -> Tensor:
    """Per-element weight of class-index targets: ``weight[target]``, 0 where ignored.

    Its sum is the denominator of a weighted ``"mean"`` (torch's definition).
    """
    kept = target != ignore_index
    if weight is None:
        return kept.to(dtype)
    safe_target = torch.where(kept, target, torch.zeros_like(target))
    return weight.to(dtype)[safe_target] * kept.to(dtype)
