"""The one home of input validation.

Every check raises before any arithmetic, with a typed error (``TypeError`` for a wrong kind of
object or dtype, ``ValueError`` for a wrong shape or value) whose message names the argument,
what was expected and what came.

Checks on shapes, dtypes and hyperparameters are always on: they cost nothing. Checks on tensor
*values* (class indices in range, probabilities in [0, 1], CTC lengths) read the tensor, which
is a device sync on an accelerator, so they can be switched off globally:

* ``lossatlas.set_value_checks(False)``,
* ``with lossatlas.value_checks(False): ...``,
* the environment variable ``LOSSATLAS_VALUE_CHECKS=0`` (read at import).

Value checks are skipped while ``torch.compile`` traces, since they would break the graph.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

_FALSE_WORDS = {"0", "false", "no", "off"}
_value_checks_enabled: bool = os.environ.get("LOSSATLAS_VALUE_CHECKS", "1").strip().lower() not in (
    _FALSE_WORDS
)


def set_value_checks(enabled: bool) -> None:
    """Switch the checks on tensor values (index ranges, probability ranges, lengths) on or off.

    Shape, dtype and hyperparameter checks stay on whatever this says.

    Examples:
        >>> import lossatlas as la
        >>> la.set_value_checks(False)
        >>> la.value_checks_enabled()
        False
        >>> la.set_value_checks(True)
    """
    global _value_checks_enabled
    _value_checks_enabled = bool(enabled)


@contextmanager
def value_checks(enabled: bool) -> Iterator[None]:
    """Context manager that sets the value checks for the duration of a block.

    Examples:
        >>> import lossatlas as la
        >>> with la.value_checks(False):
        ...     la.value_checks_enabled()
        False
    """
    previous = _value_checks_enabled
    set_value_checks(enabled)
    try:
        yield
    finally:
        set_value_checks(previous)


def value_checks_enabled() -> bool:
    """Whether value checks run now (never while ``torch.compile`` traces)."""
    if not _value_checks_enabled:
        return False
    return not torch.compiler.is_compiling()


# --------------------------------------------------------------------------- messages


def describe(value: Any) -> str:
    """A short description of what came, for error messages."""
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__} {value!r}"


def suggest(value: str, choices: Sequence[str]) -> str:
    """``" Did you mean 'x'?"`` for a near miss among ``choices``, else ``""``."""
    matches = difflib.get_close_matches(str(value).lower(), [c.lower() for c in choices], n=1)
    if not matches:
        return ""
    original = next(c for c in choices if c.lower() == matches[0])
    return f" Did you mean {original!r}?"


# --------------------------------------------------------------------------- options


def check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    """Raise unless ``value`` is one of ``choices``; suggest the nearest one."""
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        hint = suggest(value, choices) if isinstance(value, str) else ""
        raise ValueError(f"{name} must be one of {listed}, got {value!r}.{hint}")


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    integer: bool = False,
) -> None:
    """Raise unless ``value`` is a finite real number (an int if ``integer``) in the interval."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "an int" if integer else "a real number"
        raise TypeError(f"{name} must be {kind}, got {describe(value)}")
    if integer and not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {describe(value)}")
    # ``x - x == 0`` is False exactly for inf and NaN. Unlike ``math.isfinite`` it traces under
    # ``torch.compile``, where a float option becomes symbolic once its value changes between
    # calls (a second module instance, a new margin), so recompiling does not break the graph.
    if not value - value == 0:
        raise ValueError(f"{name} must be finite, got {value!r}")
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if too_low or too_high:
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ValueError(f"{name} must be in {left}{lo}, {hi}{right}, got {value!r}")


def check_bool(name: str, value: Any) -> None:
    """Raise a ``TypeError`` unless ``value`` is a ``bool`` (a flag option)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool (True or False), got {describe(value)}")


# --------------------------------------------------------------------------- tensors


def check_tensor(name: str, value: Any) -> Tensor:
    """Raise a ``TypeError`` unless ``value`` is a tensor; return it."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {describe(value)}")
    return value


def check_floating(name: str, value: Any) -> Tensor:
    """Raise a ``TypeError`` unless ``value`` is a floating-point tensor."""
    check_tensor(name, value)
    if not value.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor (float16, bfloat16, float32 or float64), "
            f"got {describe(value)}"
        )
    return value


def check_integer(name: str, value: Any) -> Tensor:
    """Raise a ``TypeError`` unless ``value`` is an integer (class-index) tensor."""
    check_tensor(name, value)
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise TypeError(
            f"{name} must be an integer tensor of class indices (torch.long), got {describe(value)}"
        )
    return value


def _is_mask(value: Any) -> bool:
    return isinstance(value, Tensor) and not (value.is_floating_point() or value.is_complex())


def index_target(value: Any) -> Any:
    """A bool or integer class-index target (masks are often ``uint8`` or ``bool``) as long.

    Anything else is returned unchanged, for the checks to judge; the values are checked by
    :func:`check_class_indices` as for any class-index target.
    """
    return value.long() if _is_mask(value) and value.dtype != torch.long else value


def binary_target(value: Any, like: Any) -> Any:
    """A bool or integer ``{0, 1}`` mask as the floating dtype of ``like`` (the logits).

    Anything else (a float target, a non-tensor) is returned unchanged. Integer values other
    than 0 and 1 then fail :func:`check_probabilities` with their position.
    """
    if not _is_mask(value):
        return value
    floating = isinstance(like, Tensor) and like.is_floating_point()
    return value.to(like.dtype if floating else torch.get_default_dtype())


def check_same_device(*named: tuple[str, Any]) -> None:
    """Raise a ``ValueError`` naming both tensors and devices unless all are on one device.

    Entries that are not tensors (an absent optional weight, a float option) are skipped.
    Called by the two-tensor shape checks below, so every loss that checks its shapes checks
    its devices too; without it a device mix ends in a torch ``RuntimeError`` naming no argument.
    """
    first: tuple[str, Tensor] | None = None
    for name, tensor in named:
        if not isinstance(tensor, Tensor):
            continue
        if first is None:
            first = (name, tensor)
        elif tensor.device != first[1].device:
            raise ValueError(
                f"{name} must be on the same device as {first[0]} ({first[1].device}), "
                f"got {tensor.device}; move both to one device (e.g. {name}.to({first[0]}.device))"
            )


def check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    """Raise unless ``a`` and ``b`` have exactly the same shape (never a silent broadcast).

    Also raises unless they are on the same device (:func:`check_same_device`).
    """
    check_same_device((name_a, a), (name_b, b))
    if a.shape != b.shape:
        raise ValueError(
            f"{name_b} must have the same shape as {name_a} {tuple(a.shape)}, "
            f"got {tuple(b.shape)} (lossatlas does not broadcast; reshape explicitly)"
        )


def check_broadcasts_to(name: str, value: Tensor, input: Tensor) -> None:
    """Raise unless ``value`` broadcasts to ``input``'s shape without changing it (weights)."""
    try:
        shape = torch.broadcast_shapes(value.shape, input.shape)
    except RuntimeError:
        shape = None
    if shape != input.shape:
        raise ValueError(
            f"{name} must broadcast to the input's shape {tuple(input.shape)} without changing "
            f"it, got {tuple(value.shape)}"
        )


def check_shape(name: str, value: Tensor, expected: tuple[int | None, ...], what: str = "") -> None:
    """Raise unless ``value.shape`` matches ``expected`` (``None`` is any size)."""
    ok = value.dim() == len(expected) and all(
        e is None or e == s for e, s in zip(expected, value.shape, strict=False)
    )
    if not ok:
        shown = ", ".join("*" if e is None else str(e) for e in expected)
        shown = f"({shown},)" if len(expected) == 1 else f"({shown})"  # as Python prints it
        detail = f" {what}" if what else ""
        raise ValueError(f"{name} must have shape {shown}{detail}, got {tuple(value.shape)}")


def check_dim(name: str, value: Tensor, *, min_dim: int, what: str = "") -> None:
    """Raise unless ``value`` has at least ``min_dim`` dimensions."""
    if value.dim() < min_dim:
        detail = f" {what}" if what else ""
        raise ValueError(
            f"{name} must have at least {min_dim} dimensions{detail}, got shape "
            f"{tuple(value.shape)}"
        )


def check_class_weight(name: str, weight: Tensor | None, num_classes: int) -> None:
    """Raise unless ``weight`` is ``None`` or a floating 1-D tensor of ``num_classes`` entries."""
    if weight is None:
        return
    check_floating(name, weight)
    if weight.shape != (num_classes,):
        raise ValueError(
            f"{name} must have shape ({num_classes},) (one weight per class), "
            f"got {tuple(weight.shape)}"
        )


def check_class_counts(name: str, value: Any) -> Tensor:
    """Per-class counts or probabilities as a checked 1-D float64 tensor of finite values > 0.

    ``value`` is a sequence or a 1-D tensor with at least one entry. The positivity of a
    tensor's entries is a value check (skipped when value checks are off).
    """
    if isinstance(value, Tensor):
        if value.dtype == torch.bool or value.is_complex():
            raise TypeError(f"{name} must hold real numbers, got {describe(value)}")
        counts = value.detach().to(torch.float64)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for i, entry in enumerate(value):
            check_number(f"{name}[{i}]", entry, low=0.0, low_inclusive=False)
        counts = torch.tensor([float(v) for v in value], dtype=torch.float64)
    else:
        raise TypeError(f"{name} must be a sequence or a 1-D tensor, got {describe(value)}")
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError(
            f"{name} must be 1-D with one entry per class, got shape {tuple(counts.shape)}"
        )
    if isinstance(value, Tensor) and value_checks_enabled():
        bad = ~(counts > 0) | ~torch.isfinite(counts)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(f"{name} must be finite and > 0, got {float(counts[i])!r} at {i}")
    return counts


def check_index_target(
    logits: Tensor, target: Tensor, *, logits_name: str = "input", target_name: str = "target"
) -> None:
    """Shapes for class-index targets: logits ``(N, C, d1, ...)`` or ``(C,)``, target without C."""
    check_integer(target_name, target)
    check_same_device((logits_name, logits), (target_name, target))
    if logits.dim() == 0:
        raise ValueError(f"{logits_name} must have a class dimension, got a 0-dim tensor")
    expected = (logits.shape[0], *logits.shape[2:]) if logits.dim() >= 2 else ()
    if tuple(target.shape) != tuple(expected):
        raise ValueError(
            f"{target_name} of class indices must have shape {tuple(expected)} for "
            f"{logits_name} of shape {tuple(logits.shape)} (class dimension 1 removed), "
            f"got {tuple(target.shape)}"
        )


def check_class_target(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None,
    ignore_index: int,
    allow_probabilities: bool,
) -> bool:
    """Validate a class-index or class-probability target against ``(N, C, ...)`` scores.

    Returns:
        ``True`` when ``target`` holds class indices, ``False`` for probabilities.
    """
    check_floating("input", input)
    check_tensor("target", target)
    if input.dim() == 0:
        raise ValueError("input must have a class dimension, got a 0-dim tensor")
    num_classes = input.shape[1] if input.dim() >= 2 else input.shape[0]
    check_class_weight("weight", weight, num_classes)
    if target.is_floating_point():
        if not allow_probabilities:
            raise TypeError(f"target must hold class indices (torch.long), got {describe(target)}")
        check_probability_shape(input, target, what="class probabilities")
    return check_target_values(input, target, num_classes, ignore_index=ignore_index)


def check_probability_shape(input: Tensor, target: Tensor, *, what: str) -> None:
    """Raise unless a floating ``target`` has the shape of the ``(N, C, ...)`` scores.

    A float target shaped like class indices ``(N, ...)`` gets a ``TypeError`` that says
    class indices must be ``torch.long`` (``what`` names the probability targets).
    """
    if target.shape == input.shape:
        return
    expected = (input.shape[0], *input.shape[2:]) if input.dim() >= 2 else ()
    if tuple(target.shape) == tuple(expected):
        raise TypeError(
            f"target has the shape of class indices {tuple(target.shape)} but dtype "
            f"{target.dtype}; class indices must be torch.long, and {what} "
            f"must have the input's shape {tuple(input.shape)}"
        )
    check_same_shape("input", input, "target", target)


def check_target_values(
    input: Tensor, target: Tensor, num_classes: int, *, ignore_index: int | None
) -> bool:
    """Check the values of a class-probability or class-index target (shapes already checked).

    Returns:
        ``True`` when ``target`` holds class indices (each in ``[0, num_classes)`` or
        ``ignore_index``), ``False`` for probabilities (each in ``[0, 1]``).
    """
    if target.is_floating_point():
        check_probabilities("target", target)
        return False
    check_index_target(input, target)
    check_class_indices("target", target, num_classes, ignore_index=ignore_index)
    return True


# --------------------------------------------------------------------------- values


def check_class_indices(
    name: str, target: Tensor, num_classes: int, *, ignore_index: int | None = None
) -> None:
    """Raise if an index is outside ``[0, num_classes)`` (and not ``ignore_index``).

    The message names the first bad value and its position. A value check: skipped when value
    checks are off. ``ignore_index`` itself must be an int (a ``TypeError`` naming it, checked
    always; not while ``torch.compile`` traces, where it is a symbolic int).
    """
    if ignore_index is not None and not torch.compiler.is_compiling():
        check_number("ignore_index", ignore_index, integer=True)
    if not value_checks_enabled() or target.numel() == 0:
        return
    smallest, largest = torch.aminmax(target)  # one pass; the full scan only when it fails
    if bool((smallest >= 0) & (largest < num_classes)):
        return
    bad = (target < 0) | (target >= num_classes)
    if ignore_index is not None:
        bad &= target != ignore_index
    if bool(bad.any()):
        position = tuple(int(i) for i in bad.nonzero()[0])
        value = int(target[position])
        allowed = f" or ignore_index={ignore_index}" if ignore_index is not None else ""
        raise ValueError(
            f"{name} has class index {value} at position {position}; expected values in "
            f"[0, {num_classes}){allowed}"
        )


def check_in_range(
    name: str,
    value: Tensor,
    low: float,
    high: float,
    *,
    what: str = "values",
) -> None:
    """Raise if any entry is outside ``[low, high]`` or NaN (a value check)."""
    if not value_checks_enabled() or value.numel() == 0:
        return
    # One fused reduction pass (no bool temporaries); a NaN makes both comparisons False.
    smallest, largest = torch.aminmax(value)
    if bool((smallest >= low) & (largest <= high)):
        return
    bad = ~((value >= low) & (value <= high))
    position = tuple(int(i) for i in bad.nonzero()[0])
    got = float(value[position].detach())
    raise ValueError(
        f"{name} must hold {what} in [{low:g}, {high:g}], got {got!r} at position {position}"
    )


def check_probabilities(name: str, value: Tensor) -> None:
    """Raise if any entry is outside [0, 1] (a value check)."""
    check_in_range(name, value, 0.0, 1.0, what="probabilities")


def check_signs(name: str, value: Tensor) -> None:
    """Raise unless every entry is -1 or +1 (a value check)."""
    if not value_checks_enabled() or value.numel() == 0:
        return
    bad = (value != 1) & (value != -1)
    if bool(bad.any()):
        position = tuple(int(i) for i in bad.nonzero()[0])
        got = value[position].item()
        raise ValueError(
            f"{name} must hold labels in {{-1, +1}}, got {got!r} at position {position}"
        )
