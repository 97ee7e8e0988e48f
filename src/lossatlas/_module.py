"""The base of every ``nn.Module`` twin: a thin wrapper over a functional.

A stateless twin is two lines; its constructor is derived from the functional's keyword options
(same names, defaults, annotations and checks)::

    class FocalLoss(LossModule, functional=focal_loss):
        '''Module form of :func:`lossatlas.focal_loss`; a per-class ``alpha`` is a buffer.'''

A twin stores the options, registers tensor-valued ones (class weights, ``pos_weight``, priors;
a sequence given for an option that takes a tensor becomes one) as buffers so ``.to(device)``
and ``state_dict()`` carry them, checks them once at construction (fail at step 0, not step
10 000), shows them in ``repr`` and never changes itself in ``forward``. Twins that hold real
state (learned class centres, running counts) write their own ``__init__``, check the options
with ``options_of(functional).bind(...)`` and call ``super().__init__(**options)``. Static
types come from the generated stub ``lossatlas/nn.pyi`` (``python scripts/generate_stubs.py``),
which spells out each derived constructor.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Union

import torch
from torch import Tensor, nn

from lossatlas._catalog import attach_module, options_of


class LossModule(nn.Module):
    """Module form of a functional loss; subclasses set :attr:`functional`.

    Subclasses name their functional in the class statement and need no body but a
    docstring::

        class CrossEntropyLoss(LossModule, functional=cross_entropy):
            '''Module form of :func:`lossatlas.cross_entropy`.'''
    """

    functional: ClassVar[Callable[..., Any]]

    def __init_subclass__(cls, functional: Callable[..., Any] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if functional is None:
            return
        cls.functional = staticmethod(functional)
        if "__init__" not in cls.__dict__:
            cls.__init__ = _derived_init(cls, functional)  # type: ignore[method-assign]
            setattr(cls, "__lossatlas_derived__", True)  # noqa: B010 (read by the stub generator)
        attach_module(functional, cls)

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self._option_names: tuple[str, ...] = tuple(options)
        self._tensor_options: tuple[str, ...] = tuple(
            name for name, value in options.items() if isinstance(value, Tensor)
        )
        for name, value in options.items():
            if isinstance(value, Tensor):
                # Not an inference tensor, even when the module is built under inference_mode
                # or no_grad: it must be usable (saved for backward) when training later.
                with torch.inference_mode(False):
                    self.register_buffer(name, value.detach().clone())
            else:
                setattr(self, name, value)

    def options(self) -> dict[str, Any]:
        """The keyword options passed to the functional (buffers included)."""
        return {name: getattr(self, name) for name in self._option_names}

    def forward(self, *inputs: Any) -> Any:
        return type(self).functional(*inputs, **self.options())

    def extra_repr(self) -> str:
        parts = []
        for name in self._option_names:
            value = getattr(self, name)
            if isinstance(value, Tensor):
                shown = (
                    f"tensor(shape={tuple(value.shape)})"
                    if value.numel() > 6
                    else (f"{value.tolist()}")
                )
                parts.append(f"{name}={shown}")
            else:
                parts.append(f"{name}={value!r}")
        return ", ".join(parts)


def _derived_init(cls: type[LossModule], functional: Callable[..., Any]) -> Callable[..., None]:
    """A constructor with ``functional``'s keyword options: same names, defaults and checks."""
    options = options_of(functional)
    tensor_options = {name for name, hint in options.hints.items() if _takes_tensor(hint)}
    owner = f"{cls.__name__}()"

    def __init__(self: LossModule, **given: Any) -> None:
        values = options.bind(given, owner=owner)
        for name in tensor_options:
            value = values[name]
            if isinstance(value, Sequence) and not isinstance(value, str):
                values[name] = torch.tensor([float(v) for v in value])
        LossModule.__init__(self, **values)

    params = [
        p
        for p in inspect.signature(functional).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    __init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [self_param, *params], return_annotation=None
    )
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__doc__ = f"Build the module; the options are those of ``{functional.__name__}``."
    return __init__


def _takes_tensor(hint: Any) -> bool:
    arms = typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) else ()
    return Tensor in arms


def as_option_tensor(value: Any, *, like: Tensor | None = None) -> Tensor | None:
    """A sequence or number option turned into a float tensor (``None`` stays ``None``)."""
    if value is None:
        return None
    tensor = torch.as_tensor(value, dtype=torch.get_default_dtype() if like is None else like.dtype)
    return tensor if like is None else tensor.to(like.device)
