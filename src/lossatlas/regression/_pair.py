"""Input checks and docstring text shared by the regression families.

The families: point-wise, robust, landmark, quantile and likelihood.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from lossatlas._reduction import compute_dtype, upcast
from lossatlas._validation import check_floating, check_same_shape


def prepare_pair(input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Validate a prediction/target pair of one shape and bring both to the compute dtype.

    Floating tensors of exactly the same shape (no broadcast); half precision is computed in
    float32. (The reduction is checked from each loss's signature.)
    """
    check_floating("input", input)
    check_floating("target", target)
    check_same_shape("input", input, "target", target)
    dtype = compute_dtype(input, target)
    return upcast(input, dtype), upcast(target, dtype)


#: The docstring text the regression families share (``Family(**PAIR_DOCS)``): a parameter,
#: ``Returns:`` or ``Raises:`` entry a loss's docstring leaves out is filled in from here.
PAIR_DOCS: dict[str, Any] = {
    "args": {
        "input": "Predictions, any shape.",
        "target": "Targets, the input's shape.",
        "reduction": '``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of'
        " elements (0 for an empty input).",
    },
    "returns": 'The input\'s shape for ``"none"``, else a scalar.',
    "raises": {
        "TypeError": "A non-floating tensor.",
        "ValueError": "Shapes that differ, an unknown reduction, an option outside the range"
        " its description gives.",
    },
}
