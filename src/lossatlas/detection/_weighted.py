"""mmdetection's ``weight`` and ``avg_factor``, written once for the detection losses with them.

mmdetection's ``weight_reduce_loss`` (``mmdet/models/losses/utils.py``) multiplies the unreduced
loss by ``weight`` and then reduces it: ``"mean"`` divides the weighted sum by the number of
elements, or, when ``avg_factor`` is given, by ``avg_factor`` alone (heads pass the number of
positives); ``"none"`` ignores ``avg_factor``; ``"sum"`` with ``avg_factor`` is an error. The
module twins take both per call too, as ``forward(input, target, weight=None, avg_factor=None)``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from lossatlas._module import LossModule
from lossatlas._options import Positive
from lossatlas._reduction import reduce_loss
from lossatlas._validation import check_floating, check_same_device

#: ``avg_factor``: ``None``, or the positive number ``"mean"`` divides the weighted sum by.
AvgFactor = Positive | None

#: The ``Args:`` text of ``avg_factor`` and ``reduction``, for the families whose losses take
#: them (``Family(args={**WEIGHTED_ARGS, ...})``).
WEIGHTED_ARGS = {
    "avg_factor": '``None``, or a number ``> 0`` that ``"mean"`` divides the weighted sum by'
    " instead of the element count (mmdetection's ``weight_reduce_loss``; heads pass the number"
    ' of positives). Ignored by ``"none"``; an error with ``"sum"``, as in mmdetection.',
    "reduction": '``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` is the weighted sum over the'
    ' number of entries of the ``"none"`` result (0 for none), or over ``avg_factor`` when'
    " given.",
}


def check_weight(weight: Tensor | None, input: Tensor, shape: tuple[int, ...], what: str) -> None:
    """Raise unless ``weight`` is ``None`` or a floating tensor broadcasting to ``shape``.

    ``shape`` is the unreduced loss's shape; ``what`` says what one weight is for (the message).
    """
    if weight is None:
        return
    check_floating("weight", weight)
    check_same_device(("input", input), ("weight", weight))
    if weight.dim() > len(shape) or any(
        w not in (1, s) for w, s in zip(reversed(weight.shape), reversed(shape), strict=False)
    ):
        raise ValueError(
            f"weight must broadcast to the unreduced loss's shape {tuple(shape)} ({what}) "
            f"without changing it, got {tuple(weight.shape)}"
        )


def check_rows(name: str, value: Tensor, rows: int, what: str) -> None:
    """Raise unless ``value`` has shape ``(rows,)``: one entry per row of the input."""
    if value.shape != (rows,):
        raise ValueError(
            f"{name} must have shape ({rows},) ({what} per row of input), got {tuple(value.shape)}"
        )


def weighted_reduce(
    loss: Tensor, reduction: str, *, weight: Tensor | None, avg_factor: float | None
) -> Tensor:
    """``loss * weight`` reduced as mmdetection's ``weight_reduce_loss``.

    Raises:
        ValueError: ``avg_factor`` with ``reduction="sum"`` (as mmdetection).
    """
    if weight is not None:
        loss = loss * weight.to(loss.dtype)
    if avg_factor is None or reduction == "none":
        return reduce_loss(loss, reduction)
    if reduction == "sum":
        raise ValueError(
            f"avg_factor={avg_factor!r} cannot be used with reduction='sum' (as in "
            "mmdetection): use reduction='mean', which divides the sum by avg_factor"
        )
    return reduce_loss(loss, reduction, denominator=avg_factor)


class WeightedModule(LossModule):
    """A twin that takes mmdetection's ``weight`` and ``avg_factor`` per call too.

    ``forward(input, target, weight=None, avg_factor=None)``: each given one replaces the
    constructor's for that call.
    """

    def forward(
        self,
        input: Tensor,
        target: Tensor,
        weight: Tensor | None = None,
        avg_factor: float | None = None,
    ) -> Any:
        return self.call(input, target, weight=weight, avg_factor=avg_factor)

    def call(self, *inputs: Tensor, weight: Tensor | None, avg_factor: float | None) -> Any:
        """The functional on ``inputs`` with this call's ``weight`` and ``avg_factor``, if any."""
        options = self.options()
        if weight is not None:
            options["weight"] = weight
        if avg_factor is not None:
            options["avg_factor"] = avg_factor
        return type(self).functional(*inputs, **options)
