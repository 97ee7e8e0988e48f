"""The base of every ``nn.Module`` twin: a thin wrapper over a functional.

A stateless twin is two lines; its constructor is derived from the functional's keyword options
(same names, defaults, annotations and checks)::

    class FocalLoss(LossModule, functional=focal_loss):
        '''Module form of :func:`lossatlas.focal_loss`; a per-class ``alpha`` is a buffer.'''

A twin stores the options, registers tensor-valued ones (class weights, ``pos_weight``, priors;
a sequence given for an option that takes a tensor becomes one) as buffers so ``.to(device)``
and ``state_dict()`` carry them, checks them once at construction (fail at step 0, not step
10 000), shows them in ``repr`` and never changes itself in ``forward``.

A twin that holds real state (learned class centres, running counts) declares only what is its
own, in an ``init_state`` hook; its constructor is derived all the same::

    class _MarginHead(LossModule):
        def init_state(self, num_classes: PositiveInt, embedding_dim: PositiveInt) -> None:
            self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))

    class ArcFaceLoss(_MarginHead, functional=arcface_loss, catalog=False):
        '''Module form of :func:`lossatlas.arcface_loss`; owns the class centres.'''

The constructor is ``ArcFaceLoss(num_classes, embedding_dim, *, scale=64.0, ...)``: the hook's
positional parameters come first, then the functional's keyword options (stored, checked and
buffered as above), then the hook's other keyword-only parameters. The hook's annotations are
their constraints, as a functional's are (``device``/``dtype`` go to torch, which checks them).
A keyword-only hook parameter named after an option takes that option over: it keeps the
functional's check, shows the hook's annotation and default (none: required) and is handed to
the hook instead of being stored. ``call_options`` names the options ``forward`` takes per call
(left out of the constructor); ``catalog=False`` keeps a twin whose inputs differ from its
functional's (its state is one of them) out of the catalog. The hook runs once the options are
stored, so it may read them (``self.bins``) or replace one with its resolved form. Static types
come from the generated stub ``lossatlas/nn.pyi`` (``python scripts/generate_stubs.py``), which
spells out each derived constructor.
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
from lossatlas._options import checker
from lossatlas._validation import suggest


class LossModule(nn.Module):
    """Module form of a functional loss; subclasses set :attr:`functional`.

    Subclasses name their functional in the class statement and need no body but a
    docstring::

        class CrossEntropyLoss(LossModule, functional=cross_entropy):
            '''Module form of :func:`lossatlas.cross_entropy`.'''
    """

    functional: ClassVar[Callable[..., Any]]
    #: Options of the functional that ``forward`` takes per call, not the constructor.
    call_options: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(
        cls,
        functional: Callable[..., Any] | None = None,
        catalog: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if functional is None:
            return
        cls.functional = staticmethod(functional)
        if "__init__" not in cls.__dict__:
            cls.__init__ = _derived_init(cls, functional)  # type: ignore[method-assign]
            setattr(cls, "__lossatlas_derived__", True)  # noqa: B010 (read by the stub generator)
        if catalog:
            attach_module(functional, cls)

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self._option_names: tuple[str, ...] = tuple(options)
        self._tensor_options: tuple[str, ...] = tuple(
            name for name, value in options.items() if isinstance(value, Tensor)
        )
        for name, value in options.items():
            self.keep(name, value)

    def keep(self, name: str, value: Any) -> None:
        """Hold ``value`` as an option is held: a tensor as a buffer, anything else as is."""
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
        return ", ".join(f"{name}={shown(getattr(self, name))}" for name in self._option_names)


def shown(value: Any) -> str:
    """An option's value as ``repr`` shows it (a large tensor by its shape)."""
    if isinstance(value, Tensor):
        return f"tensor(shape={tuple(value.shape)})" if value.numel() > 6 else f"{value.tolist()}"
    return repr(value)


#: Hook parameters handed to torch's factories, which check them.
_TORCH_CHECKED = frozenset({"device", "dtype"})
_KEYWORD = inspect.Parameter.KEYWORD_ONLY


def _derived_init(cls: type[LossModule], functional: Callable[..., Any]) -> Callable[..., None]:
    """A constructor with ``functional``'s keyword options: same names, defaults and checks.

    After the arguments of the twin's ``init_state`` hook when it has one (see the module doc).
    """
    options = options_of(functional)
    tensor_options = {name for name, hint in options.hints.items() if _takes_tensor(hint)}
    owner = f"{cls.__name__}()"
    hook = getattr(cls, "init_state", None)
    own = list(inspect.signature(hook).parameters.values())[1:] if hook is not None else []
    odd = [p.name for p in own if p.kind not in (_KEYWORD, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if odd:
        raise TypeError(
            f"{cls.__qualname__}.init_state: {odd[0]!r} is neither positional nor keyword-only"
        )
    hints = typing.get_type_hints(hook, include_extras=True) if hook is not None else {}
    positional = [p for p in own if p.kind is not _KEYWORD]
    taken = {p.name: p for p in own if p.kind is _KEYWORD and p.name in options.defaults}
    extra = [p for p in own if p.kind is _KEYWORD and p.name not in options.defaults]
    shown_options = [
        _taken_over(p, taken.get(p.name))
        for p in inspect.signature(functional).parameters.values()
        if p.kind is _KEYWORD and p.name not in cls.call_options
    ]
    state = [*positional, *extra]
    checks = {
        p.name: check
        for p in state
        if p.name not in _TORCH_CHECKED and (check := checker(hints.get(p.name, Any))) is not None
    }
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    signature = inspect.Signature(
        [self_param, *positional, *shown_options, *extra], return_annotation=None
    )
    names = list(signature.parameters)[1:]

    def __init__(self: LossModule, *args: Any, **given: Any) -> None:
        for name in given:  # before binding: the message suggests the nearest option
            if name not in names:
                raise TypeError(
                    f"{owner} got an unexpected keyword argument {name!r}.{suggest(name, names)}"
                )
        try:  # partial: a missing option is reported by ``options.bind``, as for functionals
            given = signature.bind_partial(self, *args, **given).arguments
        except TypeError as error:  # too many positional arguments, multiple values
            raise TypeError(f"{owner}: {error}") from None
        del given["self"]
        values: dict[str, Any] = {}
        for p in (*state, *taken.values()):
            values[p.name] = value = given.pop(p.name, p.default)
            if value is inspect.Parameter.empty:
                kind = "keyword " if p.kind is _KEYWORD else ""
                raise TypeError(f"{owner} missing required {kind}argument {p.name!r}")
            if p.name in checks:
                checks[p.name](p.name, value)
        given.update((name, values.pop(name)) for name in taken)
        bound = options.bind(given, owner=owner)
        for name in tensor_options:
            value = bound[name]
            if isinstance(value, Sequence) and not isinstance(value, str):
                bound[name] = torch.tensor([float(v) for v in value])
        hooked = {name: bound.pop(name) for name in (*taken, *cls.call_options)}
        LossModule.__init__(self, **bound)
        if hook is not None:
            hook(self, **values, **{name: hooked[name] for name in taken})

    __init__.__signature__ = signature  # type: ignore[attr-defined]
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__doc__ = f"Build the module; the options are those of ``{functional.__name__}``."
    __init__.__lossatlas_derived__ = True  # type: ignore[attr-defined]
    return __init__


def _taken_over(option: inspect.Parameter, own: inspect.Parameter | None) -> inspect.Parameter:
    """An option as the constructor shows it: the hook's annotation and default if it takes it."""
    if own is None:
        return option
    annotation = option.annotation if own.annotation is own.empty else own.annotation
    return option.replace(annotation=annotation, default=own.default)


def _takes_tensor(hint: Any) -> bool:
    arms = typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) else ()
    return Tensor in arms


def as_option_tensor(value: Any, *, like: Tensor | None = None) -> Tensor | None:
    """A sequence or number option turned into a float tensor (``None`` stays ``None``)."""
    if value is None:
        return None
    tensor = torch.as_tensor(value, dtype=torch.get_default_dtype() if like is None else like.dtype)
    return tensor if like is None else tensor.to(like.device)
