"""The one home of option constraints: written in the signature, checked by one validator.

A loss states what each keyword option may be in its annotation, and nothing else checks it::

    def focal_loss(input, target, *, gamma: NonNegative = 2.0, reduction: Reduction = "mean")

:func:`validator` reads the signature once and builds a checker per option from the annotation:

* ``Annotated[float, Interval(low, high, ...)]`` (aliases :data:`Positive`, :data:`NonNegative`,
  :data:`UnitInterval`, :data:`OpenUnitInterval`, :data:`PositiveInt`...): a finite real (or
  int) in the interval;
* ``Literal["a", "b"]``: one of the choices, with "did you mean" for a near miss;
* ``bool`` (never a string such as ``"False"``), ``int`` (never ``2.5`` or ``True``), ``float``
  (finite), ``str``, classes such as ``Tensor`` or ``torch.Generator`` (``isinstance``),
  ``Callable`` (``callable``);
* ``X | None``: ``None`` or an ``X``; a union of several kinds picks the arm the value's type
  matches; ``Sequence[X]``: a sequence (not a string) whose entries are ``X``;
* ``Annotated[X, Check(function)]``: a loss's own rule (``function(name, value)`` raises).

The same checker runs at every call of the functional (the :func:`lossatlas._catalog.Family.loss`
decorator wraps it) and once when a module twin is built. Tensor checks -- shapes, dtypes, index
ranges -- are loss logic and stay explicit in each body.
"""

from __future__ import annotations

import collections.abc
import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from lossatlas._validation import check_bool, check_choice, check_number, describe

__all__ = [
    "Check",
    "Interval",
    "NonNegative",
    "NonNegativeInt",
    "OpenUnitInterval",
    "Positive",
    "PositiveInt",
    "UnitInterval",
    "check_value",
]


@dataclass(frozen=True)
class Interval:
    """A real (or integer) option in an interval; ``None`` bounds are unbounded."""

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True

    def check(self, name: str, value: Any, *, integer: bool = False) -> None:
        check_number(
            name,
            value,
            low=self.low,
            high=self.high,
            low_inclusive=self.low_inclusive,
            high_inclusive=self.high_inclusive,
            integer=integer,
        )

    def outside(self, *, integer: bool = False) -> list[float]:
        """Values just outside the interval (for the contract's generic option check)."""
        step = 1 if integer else 1e-3
        values: list[float] = []
        if self.low is not None:
            values.append(self.low if not self.low_inclusive and not integer else self.low - step)
        if self.high is not None:
            values.append(
                self.high if not self.high_inclusive and not integer else self.high + step
            )
        return values

    def describe(self) -> str:
        left = "[" if self.low_inclusive else "("
        right = "]" if self.high_inclusive else ")"
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        return f"{left}{lo}, {hi}{right}"


@dataclass(frozen=True)
class Check:
    """A loss's own rule for an option: ``function(name, value)`` raises on a bad value.

    Attributes:
        function: The check.
        invalid: Values the rule rejects, for the contract's generic option check.
        description: What the rule allows, for docs and stubs.
    """

    function: Callable[[str, Any], None]
    invalid: tuple[Any, ...] = ()
    description: str = ""


#: A real number > 0.
Positive = Annotated[float, Interval(0.0, None, low_inclusive=False)]
#: A real number >= 0.
NonNegative = Annotated[float, Interval(0.0)]
#: A real number in [0, 1].
UnitInterval = Annotated[float, Interval(0.0, 1.0)]
#: A real number in (0, 1).
OpenUnitInterval = Annotated[float, Interval(0.0, 1.0, low_inclusive=False, high_inclusive=False)]
#: An int >= 1.
PositiveInt = Annotated[int, Interval(1)]
#: An int >= 0.
NonNegativeInt = Annotated[int, Interval(0)]

Checker = Callable[[str, Any], None]


# --------------------------------------------------------------------------- building checkers


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType)


def _matcher(hint: Any) -> Callable[[Any], bool]:
    """A test of whether a value is of the kind ``hint`` names (its type, not its constraints).

    Built once per annotation, so a call runs plain ``isinstance`` tests (which
    ``torch.compile`` traces) and never compares typing objects.
    """
    if typing.get_origin(hint) is Annotated:
        return _matcher(typing.get_args(hint)[0])
    if hint is Any:
        return lambda value: True
    if hint is bool:
        return lambda value: isinstance(value, bool)
    if hint is int:
        return lambda value: isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return lambda value: isinstance(value, (int, float)) and not isinstance(value, bool)
    origin = typing.get_origin(hint)
    if origin is collections.abc.Callable or hint is collections.abc.Callable:
        return callable
    if origin in (collections.abc.Sequence, list, tuple):
        return lambda value: isinstance(value, (list, tuple))
    if origin is Literal:
        kinds = tuple({type(v) for v in typing.get_args(hint)})
        return lambda value: isinstance(value, kinds)
    if isinstance(hint, type):
        return lambda value: isinstance(value, hint)
    return lambda value: True


def _describe_hint(hint: Any) -> str:
    if typing.get_origin(hint) is Annotated:
        base, *meta = typing.get_args(hint)
        parts = [m.describe() for m in meta if isinstance(m, Interval)]
        parts += [m.description for m in meta if isinstance(m, Check) and m.description]
        kind = "an int" if base is int else "a real number"
        return f"{kind} in {parts[0]}" if parts else _describe_hint(base)
    if hint is type(None):
        return "None"
    if hint is bool:
        return "a bool"
    if hint is int:
        return "an int"
    if hint is float:
        return "a real number"
    if hint is str:
        return "a string"
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(hint))
    if origin in (collections.abc.Sequence, list, tuple):
        args = typing.get_args(hint)
        return f"a sequence of {_plural(_describe_hint(args[0]))}" if args else "a sequence"
    if origin is collections.abc.Callable or hint is collections.abc.Callable:
        return "a callable"
    if isinstance(hint, type):
        return (
            f"a {hint.__module__.split('.')[0]}.{hint.__name__}"
            if hint.__module__ not in ("builtins",)
            else f"a {hint.__name__}"
        )
    return str(hint)


def _plural(kind: str) -> str:
    """``"a real number in [0, 1]"`` -> ``"real numbers in [0, 1]"``."""
    words = kind.split(" ", 2)
    if words[0] in ("a", "an") and len(words) > 1:
        return " ".join([words[1] + "s", *words[2:]])
    return kind


def checker(hint: Any) -> Checker | None:
    """The checker for one annotation (``None`` when the annotation constrains nothing)."""
    if hint is Any or hint is inspect.Parameter.empty:
        return None
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *meta = typing.get_args(hint)
        base_check = checker(base)
        integer = base is int
        rules = [m for m in meta if isinstance(m, (Interval, Check))]
        # On a choice, a loss's own rule runs first: it can say why a value is not among the
        # choices (``reduction="none"`` of a compound loss).
        first = (
            [m for m in rules if isinstance(m, Check)] if typing.get_origin(base) is Literal else []
        )
        rules = [m for m in rules if m not in first]

        def check_annotated(name: str, value: Any) -> None:
            for own in first:
                own.function(name, value)
            if base_check is not None:
                base_check(name, value)
            for rule in rules:
                if isinstance(rule, Interval):
                    rule.check(name, value, integer=integer)
                else:
                    rule.function(name, value)

        return check_annotated
    if _is_union(hint):
        arms = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(arms) < len(typing.get_args(hint))
        arm_checks = [(_matcher(arm), checker(arm)) for arm in arms]
        kinds = (["None"] if optional else []) + [_describe_hint(a) for a in arms]
        wanted = kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " or " + kinds[-1]

        def check_union(name: str, value: Any) -> None:
            if value is None:
                if optional:
                    return
                raise TypeError(f"{name} must be {wanted}, got None")
            for matches, arm_check in arm_checks:
                if matches(value):
                    if arm_check is not None:
                        arm_check(name, value)
                    return
            raise TypeError(f"{name} must be {wanted}, got {describe(value)}")

        return check_union
    if origin is Literal:
        choices = typing.get_args(hint)
        if all(isinstance(c, str) for c in choices):
            return lambda name, value: check_choice(name, value, choices)

        def check_literal(name: str, value: Any) -> None:
            if isinstance(value, bool) or value not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {value!r}")

        return check_literal
    if hint is bool:
        return check_bool
    if hint is int:
        return lambda name, value: check_number(name, value, integer=True)
    if hint is float:
        return check_number
    if origin in (collections.abc.Sequence, list, tuple):
        args = typing.get_args(hint)
        entry = checker(args[0]) if args else None

        def check_sequence(name: str, value: Any) -> None:
            if isinstance(value, str) or not isinstance(value, collections.abc.Sequence):
                raise TypeError(f"{name} must be a sequence, got {describe(value)}")
            if entry is not None:
                for i, item in enumerate(value):
                    entry(f"{name}[{i}]", item)

        return check_sequence
    if origin is collections.abc.Callable or hint is collections.abc.Callable:

        def check_callable(name: str, value: Any) -> None:
            if not callable(value):
                raise TypeError(f"{name} must be a callable, got {describe(value)}")

        return check_callable
    if isinstance(hint, type):
        wanted = _describe_hint(hint)

        def check_instance(name: str, value: Any) -> None:
            if not isinstance(value, hint):
                raise TypeError(f"{name} must be {wanted}, got {describe(value)}")

        return check_instance
    return None


def check_value(name: str, value: Any, hint: Any) -> None:
    """Check one value against an annotation, for code that takes an option outside a signature.

    Examples:
        >>> check_value("gamma", -1.0, NonNegative)
        Traceback (most recent call last):
        ...
        ValueError: gamma must be in [0, inf], got -1.0
    """
    # Built once per annotation: building formats the bounds into messages, which
    # torch.compile(dynamic=True) cannot trace inside a loss body.
    key = id(hint)
    if key not in _VALUE_CHECKERS:
        _VALUE_CHECKERS[key] = (hint, checker(hint))
    check = _VALUE_CHECKERS[key][1]
    if check is not None:
        check(name, value)


#: ``id(annotation) -> (annotation, checker)`` for :func:`check_value` (the annotation is kept
#: so its id is never reused).
_VALUE_CHECKERS: dict[int, tuple[Any, Checker | None]] = {}


@dataclass(frozen=True)
class Validator:
    """The checkers of a function's keyword options, built once from its signature.

    Attributes:
        name: The function's name, for messages.
        hints: Option -> resolved annotation.
        defaults: Option -> default value.
        checks: Option -> checker (options whose annotation constrains nothing are absent).
    """

    name: str
    hints: Mapping[str, Any]
    defaults: Mapping[str, Any]
    checks: Mapping[str, Checker]

    def __call__(self, options: Mapping[str, Any]) -> None:
        """Check the given options (the defaults were checked once, when the loss was built)."""
        checks = self.checks
        for name, value in options.items():
            check = checks.get(name)
            if check is not None:
                check(name, value)

    def bind(self, options: Mapping[str, Any], *, owner: str) -> dict[str, Any]:
        """All options (defaults filled in), after a ``TypeError`` for an unknown name."""
        for name in options:
            if name not in self.defaults:
                from lossatlas._validation import suggest

                raise TypeError(
                    f"{owner} got an unexpected keyword argument {name!r}."
                    f"{suggest(name, list(self.defaults))}"
                )
        missing = [
            name
            for name, default in self.defaults.items()
            if default is inspect.Parameter.empty and name not in options
        ]
        if missing:
            raise TypeError(f"{owner} missing required keyword argument {missing[0]!r}")
        self(options)
        return {**self.defaults, **options}

    def choices(self, option: str) -> tuple[Any, ...]:
        """The choices of a ``Literal`` option (``()`` when it is not one)."""
        hint = self.hints.get(option)
        arms = typing.get_args(hint) if hint is not None and _is_union(hint) else (hint,)
        for arm in arms:
            if typing.get_origin(arm) is Annotated:
                arm = typing.get_args(arm)[0]
            if typing.get_origin(arm) is Literal:
                return typing.get_args(arm)
        return ()

    def invalid_values(self, option: str) -> list[Any]:
        """Values the option's constraint rejects: just outside an interval, NaN, a bad choice."""
        check = self.checks.get(option)
        if check is None:
            return []
        rejected = []
        for value in _candidates(self.hints[option]):
            try:
                check(option, value)
            except (TypeError, ValueError):
                rejected.append(value)
        return rejected


def _candidates(hint: Any) -> list[Any]:
    """Values near the edge of an annotation's constraint (the validator decides which fail)."""
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *meta = typing.get_args(hint)
        values: list[Any] = []
        for rule in meta:
            if isinstance(rule, Interval):
                values += rule.outside(integer=base is int)
            elif isinstance(rule, Check):
                values += list(rule.invalid)
        return values + _candidates(base)
    if _is_union(hint):
        return [v for arm in typing.get_args(hint) for v in _candidates(arm)]
    if origin is Literal:
        choices = typing.get_args(hint)
        return [f"{choices[0]}x"] if all(isinstance(c, str) for c in choices) else []
    if origin is collections.abc.Callable or hint is collections.abc.Callable:
        return ["not callable"]
    if hint is bool:
        return ["False"]
    if hint is int:
        return [2.5, math.nan]
    if hint is float:
        return [math.nan]
    return []


def validator(function: Callable[..., Any]) -> Validator:
    """The :class:`Validator` of ``function``'s keyword-only options, from its annotations.

    Raises:
        TypeError: A default that breaks its own constraint (a mistake in the loss's code).
    """
    function = inspect.unwrap(function)
    hints = typing.get_type_hints(function, include_extras=True)
    params = [
        p
        for p in inspect.signature(function).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    option_hints = {p.name: hints.get(p.name, Any) for p in params}
    defaults = {p.name: p.default for p in params}
    checks = {name: c for name, hint in option_hints.items() if (c := checker(hint)) is not None}
    result = Validator(function.__name__, option_hints, defaults, checks)
    try:
        result({k: v for k, v in defaults.items() if v is not inspect.Parameter.empty})
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{function.__qualname__}: a default breaks its constraint: {error}"
        ) from None
    return result
