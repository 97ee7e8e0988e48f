"""Composition: a weighted sum of named losses that reports the total and each part.

Losses such as Dice + CE, or SSD's localisation + confidence, are sums of parts that are worth
watching separately. :func:`combine` builds such a sum from any losses (functions or modules);
it returns a :class:`LossParts` whose ``total`` is what you call ``backward`` on and whose
``parts`` hold each term's unweighted value for logging (see :class:`lossatlas.LossHistory`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from torch import Tensor, nn

from lossatlas._validation import check_number

__all__ = ["CombinedLoss", "LossParts", "combine"]


class LossParts(NamedTuple):
    """A total loss and its named parts.

    Attributes:
        total: ``sum_i weight_i * parts[i]``; call ``backward`` on it.
        parts: Each term's unweighted value, by name.
    """

    total: Tensor
    parts: dict[str, Tensor]

    def detached(self) -> dict[str, float]:
        """``{"total": ..., <part>: ...}`` as Python floats, for logging."""
        values = {"total": float(self.total.detach())}
        values.update({name: float(value.detach()) for name, value in self.parts.items()})
        return values


def weighted_sum(parts: Mapping[str, Tensor], weights: Mapping[str, float]) -> LossParts:
    """``LossParts`` of ``sum_i weights[i] * parts[i]`` (the one place parts are summed)."""
    total: Tensor | None = None
    for name, value in parts.items():
        term = value * weights[name]
        total = term if total is None else total + term
    if total is None:
        raise ValueError("a combined loss needs at least one part")
    return LossParts(total, dict(parts))


class CombinedLoss(nn.Module):
    """A weighted sum of named losses, each applied to the same inputs.

    Terms that are ``nn.Module`` instances are registered as submodules, so their buffers and
    parameters move with ``.to()`` and are saved in ``state_dict()``. A term that itself returns
    parts (a :class:`LossParts` or a tuple whose first entry is the loss) contributes its total.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> loss = la.combine(ce=(la.nn.CrossEntropyLoss(), 1.0),
        ...                   smooth=(la.nn.LabelSmoothingCrossEntropyLoss(epsilon=0.1), 0.5))
        >>> out = loss(torch.tensor([[1.0, 2.0]]), torch.tensor([0]))
        >>> out.total
        tensor(1.9449)
        >>> {name: round(float(v), 4) for name, v in out.parts.items()}
        {'ce': 1.3133, 'smooth': 1.2633}
    """

    def __init__(self, terms: Mapping[str, tuple[Callable[..., Any], float]]) -> None:
        super().__init__()
        if not terms:
            raise ValueError("combine needs at least one named loss, got none")
        self.weights: dict[str, float] = {}
        self._functions: dict[str, Callable[..., Any]] = {}
        self.losses = nn.ModuleDict()
        for name, term in terms.items():
            if not (isinstance(term, tuple) and len(term) == 2 and callable(term[0])):
                raise TypeError(
                    f"term {name!r} must be a (loss, weight) pair with a callable loss, "
                    f"got {term!r}"
                )
            loss, weight = term
            check_number(f"weight of {name!r}", weight)
            self.weights[name] = float(weight)
            if isinstance(loss, nn.Module):
                self.losses[name] = loss
            else:
                self._functions[name] = loss

    def terms(self) -> Iterator[tuple[str, Callable[..., Any], float]]:
        """``(name, loss, weight)`` in the order they were given."""
        for name, weight in self.weights.items():
            loss = self.losses[name] if name in self.losses else self._functions[name]
            yield name, loss, weight

    def forward(self, *inputs: Any, **kwargs: Any) -> LossParts:
        parts = {}
        for name, loss, _ in self.terms():
            value = loss(*inputs, **kwargs)
            parts[name] = value if isinstance(value, Tensor) else value[0]
        return weighted_sum(parts, self.weights)

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={weight:g}" for name, weight in self.weights.items())


def combine(**terms: tuple[Callable[..., Any], float]) -> CombinedLoss:
    r"""A :class:`CombinedLoss` from ``name=(loss, weight)`` keyword pairs.

    .. math::
        \mathcal{L} = \sum_i \lambda_i \mathcal{L}_i

    Args:
        **terms: ``name=(loss, weight)``; ``loss`` is a function or an ``nn.Module`` called with
            the combined loss's inputs.

    Returns:
        The module; calling it returns :class:`LossParts` ``(total, parts)``.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> loss = la.combine(bce=(la.binary_cross_entropy_with_logits, 2.0))
        >>> loss(torch.zeros(2), torch.ones(2)).total
        tensor(1.3863)
    """
    return CombinedLoss(terms)
