"""The one switch for the fused (single-pass) loss kernels, and the lazy compiler they use.

Losses with a fused fast path (``binary_focal_loss``, ``focal_loss``, the Dice family...) wrap
a custom :class:`torch.autograd.Function` that computes the loss *and* its gradient in one pass
over the inputs and saves only the finished gradient for backward. Its kernel is a plain
function of tensors, compiled with :func:`torch.compile` (``dynamic=True``, so batch sizes never
trigger a recompile) the first time it runs.

The switch:

* ``lossatlas.set_fused(False)`` / ``with lossatlas.fused(False): ...`` / the environment
  variable ``LOSSATLAS_FUSED=0`` (read at import) turn compilation off: the focal kernels then
  run op by op (the same values, still saving only the gradient for backward). The Dice
  family's fast path is not compiled (it keeps only the logits and labels and recomputes the
  activation in backward with torch's own kernels); with the switch off it uses plain
  differentiable ops, which keep one input-sized tensor more.
* When ``torch.compile`` cannot build a kernel (no C++ compiler, an unsupported platform) the
  kernel warns once and runs eagerly from then on.
* Inside a caller's own ``torch.compile`` region the losses use plain differentiable ops
  instead, so the outer graph captures them (see :func:`use_custom_autograd`).

Examples:
    >>> import lossatlas as la
    >>> with la.fused(False):
    ...     la.fused_enabled()
    False
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

_FALSE_WORDS = {"0", "false", "no", "off"}
_fused_enabled: bool = os.environ.get("LOSSATLAS_FUSED", "1").strip().lower() not in _FALSE_WORDS


def set_fused(enabled: bool) -> None:
    """Turn the compiled fused kernels on or off (off: the same kernels run op by op).

    Examples:
        >>> import lossatlas as la
        >>> la.set_fused(False)
        >>> la.fused_enabled()
        False
        >>> la.set_fused(True)
    """
    global _fused_enabled
    _fused_enabled = bool(enabled)


@contextmanager
def fused(enabled: bool) -> Iterator[None]:
    """Context manager that sets :func:`set_fused` for the duration of a block."""
    previous = _fused_enabled
    set_fused(enabled)
    try:
        yield
    finally:
        set_fused(previous)


def fused_enabled() -> bool:
    """Whether fused kernels are compiled (the switch, not whether a compiler works)."""
    return _fused_enabled


def use_custom_autograd(*tensors: Tensor | None) -> bool:
    """Whether a loss may take its custom-autograd fast path for these tensors.

    Not while ``torch.compile`` traces (the outer graph should see plain ops), not under
    functorch transforms (``vmap``, ``grad``), and not when a tensor other than the first (the
    prediction) requires a gradient -- the fused kernels only differentiate the prediction.
    """
    if torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active():
        return False
    return not any(t is not None and t.requires_grad for t in tensors[1:])


class FusedKernel:
    """A tensor function compiled lazily with ``torch.compile(dynamic=True)``.

    Calls run the compiled version when :func:`fused_enabled` and compilation works, the plain
    function otherwise. The function must be a pure function of its arguments (tensors, plain
    numbers, bools); it is compiled once per distinct non-tensor argument values, dtype and rank.
    Sizes are dynamic: on CPU, inductor picks one strategy for small tensors (up to about 4096
    elements along a dimension) and one for large ones, so a kernel compiles at most once more
    when the first large batch follows small ones, and never again for a new batch size.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", "kernel")
        self.__doc__ = fn.__doc__
        self._compiled: Callable[..., Any] | None = None
        self._broken = False
        self._lock = threading.Lock()

    @property
    def compiles(self) -> bool:
        """Whether calls go to the compiled kernel (the switch is on and compiling works)."""
        return _fused_enabled and not self._broken

    def __call__(self, *args: Any) -> Any:
        if not _fused_enabled or self._broken:
            return self.fn(*args)
        if self._compiled is None:
            with self._lock:
                if self._compiled is None:
                    self._compiled = torch.compile(self.fn, dynamic=True, fullgraph=True)
        try:
            return self._compiled(*args)
        except _compile_errors() as error:  # no C++ compiler, unsupported backend...
            self._broken = True
            warnings.warn(
                f"lossatlas: compiling the fused kernel {self.__name__} failed "
                f"({type(error).__name__}: {error}); running it eagerly from now on. "
                "Set LOSSATLAS_FUSED=0 to skip the attempt.",
                RuntimeWarning,
                stacklevel=2,
            )
            return self.fn(*args)


def _compile_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "this kernel cannot be compiled here" (not a bad input).

    A run-time error of a compiled kernel (an index out of bounds with the value checks off)
    propagates instead, and does not switch the kernel to eager mode.
    """
    errors: list[type[BaseException]] = [OSError, torch._dynamo.exc.TorchDynamoException]
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
