"""Small builders of valid example inputs, shared by every declaration's ``examples`` function.

They take an explicit ``torch.Generator`` so every example is reproducible from a seed.
"""

from __future__ import annotations

import torch
from torch import Tensor


def normal(
    generator: torch.Generator, *shape: int, dtype: torch.dtype, scale: float = 1.0
) -> Tensor:
    """Standard normal values times ``scale``, made in float64 then cast (same draw per dtype)."""
    values = torch.randn(*shape, generator=generator, dtype=torch.float64) * scale
    return values.to(dtype)


def uniform(
    generator: torch.Generator, *shape: int, dtype: torch.dtype, low: float = 0.0, high: float = 1.0
) -> Tensor:
    """Uniform values in ``[low, high)``."""
    values = torch.rand(*shape, generator=generator, dtype=torch.float64) * (high - low) + low
    return values.to(dtype)


def class_indices(generator: torch.Generator, *shape: int, num_classes: int) -> Tensor:
    """Random class indices in ``[0, num_classes)`` as ``torch.long``."""
    return torch.randint(0, num_classes, shape, generator=generator)


def binary_labels(generator: torch.Generator, *shape: int, dtype: torch.dtype) -> Tensor:
    """Random {0, 1} labels in a floating dtype."""
    return torch.randint(0, 2, shape, generator=generator).to(dtype)


def sign_labels(generator: torch.Generator, *shape: int, dtype: torch.dtype) -> Tensor:
    """Random {-1, +1} labels in a floating dtype."""
    return (torch.randint(0, 2, shape, generator=generator) * 2 - 1).to(dtype)


def probability_rows(
    generator: torch.Generator, *shape: int, dtype: torch.dtype, dim: int = 1
) -> Tensor:
    """Random probability vectors (softmax of normal draws) along ``dim``."""
    return torch.softmax(normal(generator, *shape, dtype=torch.float64), dim=dim).to(dtype)
