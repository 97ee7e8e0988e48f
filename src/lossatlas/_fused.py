"""The one switch for the fused (single-pass) loss kernels, and the compiler they use.

Losses with a fused fast path (``binary_focal_loss``, ``focal_loss``, the Dice family...) wrap
a custom :class:`torch.autograd.Function` that computes the loss *and* its gradient in one pass
over the inputs and saves only the finished gradient for backward. Its kernel is a plain
function of tensors; on large inputs it is compiled with :func:`torch.compile`
(``dynamic=True``, so batch sizes never trigger a recompile).

When a kernel is compiled:

* Only for inputs of at least :func:`fused_min_numel` elements (default ``2**21``; the
  environment variable ``LOSSATLAS_FUSED_MIN_NUMEL``). Below that the same kernel runs op by op:
  a first call answers at once instead of after a compile of several seconds, and on small
  tensors the compiled kernel is no faster. Before a compile starts, one log line (logger
  ``lossatlas``, level WARNING) says so.
* Once per *variant*: dtype, device, rank and layout of the tensors (contiguous or not) and
  the non-tensor arguments. Each variant has its own compiled code and its own recompile
  budget, so alternating float32/float64 or contiguous/strided calls never exhausts a shared
  one. A kernel keeps at most :data:`MAX_VARIANTS` variants; further ones run op by op.
* When compiling a variant fails -- no C++ compiler, an unsupported platform, torch's recompile
  limit -- that variant warns once and runs op by op from then on; the other variants and the
  other kernels are unaffected. Nothing a single call does can switch fusion off for the
  process. A run-time error of a compiled kernel (an index out of range with the value checks
  off) propagates and changes nothing. :func:`fused_status` shows every variant's state.

The switch:

* ``lossatlas.set_fused(False)`` / ``with lossatlas.fused(False): ...`` / the environment
  variable ``LOSSATLAS_FUSED=0`` (read at import) turn compilation off: the focal kernels then
  run op by op (the same values, still saving only the gradient for backward). The Dice
  family's fast path is not compiled (it keeps only the logits and labels and recomputes the
  activation in backward with torch's own kernels); with the switch off it uses plain
  differentiable ops, which keep one input-sized tensor more.
* Inside a caller's own ``torch.compile`` region the losses use plain differentiable ops
  instead, so the outer graph captures them (see :func:`use_custom_autograd`).

Examples:
    >>> import lossatlas as la
    >>> with la.fused(False):
    ...     la.fused_enabled()
    False
"""

from __future__ import annotations

import logging
import os
import threading
import types
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

_LOG = logging.getLogger("lossatlas")
_FALSE_WORDS = {"0", "false", "no", "off"}
_fused_enabled: bool = os.environ.get("LOSSATLAS_FUSED", "1").strip().lower() not in _FALSE_WORDS
_min_numel: int = int(os.environ.get("LOSSATLAS_FUSED_MIN_NUMEL", str(1 << 21)))

#: The most compiled variants one kernel keeps (dtype x layout x options); more run op by op.
MAX_VARIANTS = 8


def set_fused(enabled: bool, *, min_numel: int | None = None) -> None:
    """Turn the compiled fused kernels on or off (off: the same kernels run op by op).

    Args:
        enabled: Compile the kernels (on large enough inputs).
        min_numel: If given, the smallest input (in elements) that is compiled for; ``0``
            compiles for every size.

    Examples:
        >>> import lossatlas as la
        >>> la.set_fused(False)
        >>> la.fused_enabled()
        False
        >>> la.set_fused(True)
    """
    global _fused_enabled, _min_numel
    _fused_enabled = bool(enabled)
    if min_numel is not None:
        if isinstance(min_numel, bool) or not isinstance(min_numel, int) or min_numel < 0:
            raise ValueError(f"min_numel must be an int >= 0, got {min_numel!r}")
        _min_numel = min_numel


@contextmanager
def fused(enabled: bool, *, min_numel: int | None = None) -> Iterator[None]:
    """Context manager that sets :func:`set_fused` for the duration of a block."""
    previous = (_fused_enabled, _min_numel)
    set_fused(enabled, min_numel=min_numel)
    try:
        yield
    finally:
        set_fused(previous[0], min_numel=previous[1])


def fused_enabled() -> bool:
    """Whether fused kernels are compiled (the switch, not whether a compiler works)."""
    return _fused_enabled


def fused_min_numel() -> int:
    """The smallest input, in elements, a fused kernel is compiled for (smaller: op by op)."""
    return _min_numel


def use_custom_autograd(*tensors: Tensor | None) -> bool:
    """Whether a loss may take its custom-autograd fast path for these tensors.

    Not while ``torch.compile`` traces (the outer graph should see plain ops), not under
    functorch transforms (``vmap``, ``grad``), and not when a tensor other than the first (the
    prediction) requires a gradient -- the fused kernels only differentiate the prediction.
    """
    if torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active():
        return False
    return not any(t is not None and t.requires_grad for t in tensors[1:])


@dataclass
class _Variant:
    """One compiled variant of a kernel: its own code object, so its own dynamo cache."""

    label: str
    compiled: Callable[..., Any]
    state: str = "not compiled yet"


class FusedKernel:
    """A tensor function compiled per variant (dtype, layout, options) on large inputs.

    The function must be a pure function of its arguments (tensors, plain numbers, bools).
    Sizes are dynamic: on CPU, inductor picks one strategy for small tensors (up to about 4096
    elements along a dimension) and one for large ones, so a variant compiles at most once more
    when the first large batch follows small ones, and never again for a new batch size.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", "kernel")
        self.__doc__ = fn.__doc__
        self._variants: dict[tuple[Any, ...], _Variant] = {}
        self._lock = threading.Lock()
        _KERNELS.append(self)

    @property
    def compiles(self) -> bool:
        """Whether calls may go to compiled variants (the switch is on)."""
        return _fused_enabled

    def status(self) -> dict[str, str]:
        """Each variant's label and state (``"compiled"``, or ``"eager: <why>"``)."""
        with self._lock:
            return {v.label: v.state for v in self._variants.values()}

    def reset(self) -> None:
        """Forget every compiled variant (they compile again on next use)."""
        with self._lock:
            self._variants.clear()

    def __call__(self, *args: Any) -> Any:
        if not _fused_enabled or torch.compiler.is_compiling() or _numel(args) < _min_numel:
            return self.fn(*args)
        variant = self._variant(args)
        if variant is None or variant.state.startswith("eager"):
            return self.fn(*args)
        if variant.state != "compiled":
            _LOG.warning(
                "lossatlas: compiling the fused kernel %s for %s (a few seconds, once per "
                "dtype and layout; LOSSATLAS_FUSED=0 skips it)",
                self.__name__,
                variant.label,
            )
        try:
            out = variant.compiled(*args)
        except _compile_errors() as error:  # no C++ compiler, the recompile limit...
            variant.state = f"eager: {type(error).__name__}"
            warnings.warn(
                f"lossatlas: compiling the fused kernel {self.__name__} for {variant.label} "
                f"failed ({type(error).__name__}: {str(error)[:200]}); this variant runs op by "
                "op from now on. Set LOSSATLAS_FUSED=0 to skip compiling.",
                RuntimeWarning,
                stacklevel=2,
            )
            return self.fn(*args)
        variant.state = "compiled"
        return out

    def _variant(self, args: tuple[Any, ...]) -> _Variant | None:
        key = tuple(_describe(a) for a in args)
        with self._lock:
            variant = self._variants.get(key)
            if variant is None:
                if len(self._variants) >= MAX_VARIANTS:
                    return None
                variant = _Variant(_label(key), _compile_copy(self.fn, len(self._variants)))
                self._variants[key] = variant
            return variant


#: Every kernel made by :func:`fused_kernel`, for :func:`fused_status`.
_KERNELS: list[FusedKernel] = []


def fused_status() -> dict[str, dict[str, str]]:
    """The compiled variants of every fused kernel and their state.

    Returns:
        ``{kernel name: {variant: state}}``; a variant is named by its tensors' dtype, device,
        rank and layout; its state is ``"compiled"``, ``"not compiled yet"`` or
        ``"eager: <error>"`` (compiling it failed; it runs op by op). Kernels never compiled
        (the switch off, only small inputs so far) have no variants.

    Examples:
        >>> import lossatlas as la
        >>> "_softmax_sum" in la.fused_status()
        True
    """
    return {kernel.__name__: kernel.status() for kernel in _KERNELS}


def _numel(args: tuple[Any, ...]) -> int:
    return max((a.numel() for a in args if isinstance(a, Tensor)), default=0)


def _describe(value: Any) -> Any:
    if isinstance(value, Tensor):
        layout = "contiguous" if value.is_contiguous() else "strided"
        return (str(value.dtype).removeprefix("torch."), value.device.type, value.dim(), layout)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return type(value).__name__


def _label(key: tuple[Any, ...]) -> str:
    tensors = [k for k in key if isinstance(k, tuple)]
    shown = ", ".join(f"{d} {dev} {r}-D {layout}" for d, dev, r, layout in tensors)
    others = [repr(k) for k in key if not isinstance(k, tuple)]
    return shown + (f" ({', '.join(others)})" if others else "")


def _compile_copy(fn: Callable[..., Any], index: int) -> Callable[..., Any]:
    """``torch.compile`` of a copy of ``fn`` with its own code object (its own dynamo cache).

    Dynamo keys its cache, and its recompile limit, on the code object: variants sharing one
    would exhaust it after a few dtypes and layouts.
    """
    if not isinstance(fn, types.FunctionType):  # a callable object: one shared cache
        return torch.compile(fn, dynamic=True, fullgraph=True)
    code = fn.__code__.replace(co_name=f"{fn.__code__.co_name}_v{index}")
    copy = types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    return torch.compile(copy, dynamic=True, fullgraph=True)


def _compile_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "this kernel cannot be compiled here" (not a bad input).

    A run-time error of a compiled kernel (an index out of bounds with the value checks off)
    propagates instead, and does not switch the variant to eager mode.
    """
    exc = torch._dynamo.exc
    errors: list[type[BaseException]] = [OSError, exc.TorchDynamoException]
    for name in ("FailOnRecompileLimitHit", "RecompileLimitExceeded"):
        error = getattr(exc, name, None)
        if isinstance(error, type) and issubclass(error, BaseException):
            errors.append(error)
    try:
        from torch._inductor import exc as inductor_exc
    except ImportError:  # pragma: no cover - inductor is part of every torch >= 2.0 build
        return tuple(errors)
    for name in ("InductorError", "CppCompileError", "CUDACompileError"):
        error = getattr(inductor_exc, name, None)
        if isinstance(error, type) and issubclass(error, BaseException):
            errors.append(error)
    return tuple(errors)


def fused_kernel(fn: Callable[..., Any]) -> FusedKernel:
    """Decorator: make ``fn`` a :class:`FusedKernel`."""
    return FusedKernel(fn)
