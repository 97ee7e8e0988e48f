"""Input preparation shared by the regression families (point-wise, quantile, likelihood)."""

from __future__ import annotations

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
