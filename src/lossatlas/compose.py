"""Composition: a weighted sum of named losses, the total as a tensor and each part on request.

Losses such as Dice + CE, or SSD's localisation + confidence, are sums of parts that are worth
watching separately. :func:`combine` builds such a sum from any losses (functions or modules).
Like every composite loss here (``dice_ce_loss``, ``dice_focal_loss``, ``ssd_loss``) it returns
the total as a tensor, usable wherever a torch loss is; with ``return_parts=True`` the same
computation returns a :class:`LossParts` whose ``total`` is what you call ``backward`` on and
whose ``parts`` hold each term's unweighted value for logging (see
:class:`lossatlas.LossHistory`, which takes either).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple, NoReturn

from torch import Tensor, nn

from lossatlas._validation import check_bool, check_number

__all__ = ["CombinedLoss", "LossParts", "combine"]


def _is_scalar(value: Any) -> bool:
    if isinstance(value, Tensor):
        return value.dim() == 0
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _refuse(op: str) -> NoReturn:
    raise TypeError(
        f"LossParts does not support {op!r}: use .total (e.g. out.total + aux_loss), or "
        f"call the loss without return_parts=True to get a tensor"
    )


class LossParts(NamedTuple):
    """A total loss and its named parts.

    Scaling by a number (``2 * out``, ``out / 4``, ``-out``) scales the total and every part
    alike; adding, subtracting or any other arithmetic raises ``TypeError`` (add to
    ``out.total`` instead) -- a ``LossParts`` never turns into a longer tuple.

    Attributes:
        total: ``sum_i weight_i * parts[i]``; call ``backward`` on it.
        parts: Each term's unweighted value, by name.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> out = la.LossParts(torch.tensor(3.0), {"dice": torch.tensor(1.0)})
        >>> (out / 2).total, (out / 2).parts["dice"]
        (tensor(1.5000), tensor(0.5000))
        >>> out + torch.tensor(1.0)
        Traceback (most recent call last):
        ...
        TypeError: LossParts does not support '+': use .total (e.g. out.total + aux_loss)...
    """

    total: Tensor
    parts: dict[str, Tensor]

    def detached(self) -> dict[str, float]:
        """``{"total": ..., <part>: ...}`` as Python floats, for logging."""
        values = {"total": float(self.total.detach())}
        values.update({name: float(value.detach()) for name, value in self.parts.items()})
        return values

    def scaled(self, factor: float | Tensor) -> LossParts:
        """The total and every part multiplied by ``factor`` (a number or 0-d tensor)."""
        if not _is_scalar(factor):
            raise TypeError(
                f"LossParts scales by a number or a 0-d tensor, got {type(factor).__name__}"
                + (f" of shape {tuple(factor.shape)}" if isinstance(factor, Tensor) else "")
            )
        return LossParts(
            self.total * factor, {name: value * factor for name, value in self.parts.items()}
        )

    def __mul__(self, other: Any) -> LossParts:
        return self.scaled(other)

    def __rmul__(self, other: Any) -> LossParts:
        return self.scaled(other)

    def __truediv__(self, other: Any) -> LossParts:
        if isinstance(other, LossParts):
            _refuse("/")
        if not _is_scalar(other):
            return self.scaled(other)  # raises the TypeError that says what scales
        return self.scaled(1.0 / other)

    def __neg__(self) -> LossParts:
        return self.scaled(-1.0)


#: The arithmetic a :class:`LossParts` refuses (a longer tuple or nonsense otherwise), by method.
_REFUSED = {
    "__add__": "+",
    "__radd__": "+",
    "__sub__": "-",
    "__rsub__": "-",
    "__rtruediv__": "/",
    "__pow__": "**",
    "__matmul__": "@",
    "__rmatmul__": "@",
    "__floordiv__": "//",
    "__mod__": "%",
}


def _refusing(method: str, op: str) -> Callable[[LossParts, Any], NoReturn]:
    def refuse(self: LossParts, other: Any) -> NoReturn:
        _refuse(op)

    refuse.__name__, refuse.__qualname__ = method, f"LossParts.{method}"
    return refuse


for _method, _op in _REFUSED.items():
    setattr(LossParts, _method, _refusing(_method, _op))


def weighted_sum(
    parts: Mapping[str, Tensor], weights: Mapping[str, float], *, return_parts: bool = False
) -> Tensor | LossParts:
    """``sum_i weights[i] * parts[i]`` (the one place parts are summed), with its parts on request.

    Returns the total tensor, or ``LossParts(total, parts)`` with ``return_parts=True``.
    """
    total: Tensor | None = None
    for name, value in parts.items():
        term = value * weights[name]
        total = term if total is None else total + term
    if total is None:
        raise ValueError("a combined loss needs at least one part")
    return LossParts(total, dict(parts)) if return_parts else total


class CombinedLoss(nn.Module):
    """A weighted sum of named losses, each applied to the same inputs.

    Terms that are ``nn.Module`` instances are registered as submodules, so their buffers and
    parameters move with ``.to()`` and are saved in ``state_dict()``. A term that itself returns
    parts (a :class:`LossParts` or a tuple whose first entry is the loss) contributes its total.

    Args:
        terms: ``name -> (loss, weight)``.
        return_parts: Return :class:`LossParts` ``(total, parts)`` instead of the total tensor.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> loss = la.combine(ce=(la.nn.CrossEntropyLoss(), 1.0),
        ...                   smooth=(la.nn.LabelSmoothingCrossEntropyLoss(epsilon=0.1), 0.5),
        ...                   return_parts=True)
        >>> out = loss(torch.tensor([[1.0, 2.0]]), torch.tensor([0]))
        >>> out.total
        tensor(1.9449)
        >>> {name: round(float(v), 4) for name, v in out.parts.items()}
        {'ce': 1.3133, 'smooth': 1.2633}
    """

    def __init__(
        self,
        terms: Mapping[str, tuple[Callable[..., Any], float]],
        *,
        return_parts: bool = False,
    ) -> None:
        super().__init__()
        if not terms:
            raise ValueError("combine needs at least one named loss, got none")
        check_bool("return_parts", return_parts)
        self.return_parts = return_parts
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

    def forward(self, *inputs: Any, **kwargs: Any) -> Tensor | LossParts:
        parts = {}
        for name, loss, _ in self.terms():
            value = loss(*inputs, **kwargs)
            parts[name] = value if isinstance(value, Tensor) else value[0]
        return weighted_sum(parts, self.weights, return_parts=self.return_parts)

    def extra_repr(self) -> str:
        shown = [f"{name}={weight:g}" for name, weight in self.weights.items()]
        return ", ".join(shown + (["return_parts=True"] if self.return_parts else []))


def combine(
    *, return_parts: bool = False, **terms: tuple[Callable[..., Any], float]
) -> CombinedLoss:
    r"""A :class:`CombinedLoss` from ``name=(loss, weight)`` keyword pairs.

    .. math::
        \mathcal{L} = \sum_i \lambda_i \mathcal{L}_i

    Args:
        return_parts: Make the module return :class:`LossParts` ``(total, parts)`` (each part
            unweighted) instead of the total tensor; the same single computation either way.
            (So no term can be called ``return_parts``.)
        **terms: ``name=(loss, weight)``; ``loss`` is a function or an ``nn.Module`` called with
            the combined loss's inputs.

    Returns:
        The module; calling it returns the total, a scalar tensor (or :class:`LossParts` with
        ``return_parts=True``).

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> loss = la.combine(bce=(la.binary_cross_entropy_with_logits, 2.0))
        >>> loss(torch.zeros(2), torch.ones(2))
        tensor(1.3863)
        >>> la.combine(bce=(la.binary_cross_entropy_with_logits, 2.0), return_parts=True)(
        ...     torch.zeros(2), torch.ones(2)).parts
        {'bce': tensor(0.6931)}
    """
    return CombinedLoss(terms, return_parts=return_parts)
