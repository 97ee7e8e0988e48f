"""The base of every ``nn.Module`` twin: a thin wrapper over a functional.

A twin stores the functional's keyword options, registers tensor-valued options (class weights,
``pos_weight``, priors) as buffers so ``.to(device)`` and ``state_dict()`` carry them, checks
the options once at construction (fail at step 0, not step 10 000), shows them in ``repr`` and
never changes itself in ``forward``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from lossatlas._reduction import check_reduction


class LossModule(nn.Module):
    """Module form of a functional loss; subclasses set :attr:`functional`.

    Subclasses are one-liners::

        class CrossEntropyLoss(LossModule):
            functional = staticmethod(cross_entropy)

            def __init__(self, *, weight=None, ignore_index=-100, reduction="mean"):
                super().__init__(weight=weight, ignore_index=ignore_index, reduction=reduction)
    """

    functional: ClassVar[Callable[..., Any]]
    #: Called with the options at construction; raises on a bad value.
    check_options: ClassVar[Callable[..., None] | None] = None
    #: The reductions the functional accepts.
    reductions: ClassVar[tuple[str, ...]] = ("none", "mean", "sum")

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self._option_names: tuple[str, ...] = tuple(options)
        self._tensor_options: tuple[str, ...] = tuple(
            name for name, value in options.items() if isinstance(value, Tensor)
        )
        check = type(self).check_options
        if check is not None:
            check(**options)
        elif "reduction" in options:
            check_reduction(options["reduction"], type(self).reductions)
        for name, value in options.items():
            if isinstance(value, Tensor):
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


def as_option_tensor(value: Any, *, like: Tensor | None = None) -> Tensor | None:
    """A sequence or number option turned into a float tensor (``None`` stays ``None``)."""
    if value is None:
        return None
    tensor = torch.as_tensor(value, dtype=torch.get_default_dtype() if like is None else like.dtype)
    return tensor if like is None else tensor.to(like.device)
