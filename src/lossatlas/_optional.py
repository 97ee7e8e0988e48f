"""The one home of optional imports.

The losses need only torch. Plots need matplotlib (the ``plot`` extra); ``lossatlas compare``
needs scikit-learn too (the ``lab`` extra), and TensorBoard logging needs ``tensorboard``.
Everything that uses them imports them here, lazily, so ``import lossatlas`` never pays for
them and a missing one gives an error that says how to install it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: What each optional top-level module is installed as (pip name).
_PIP_NAMES = {"sklearn": "scikit-learn"}


def require(module: str, extra: str, *, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise an ``ImportError`` that says how to install it.

    Args:
        module: The module to import (``"matplotlib.pyplot"``, ``"sklearn.metrics"``).
        extra: The lossatlas extra that installs it (``"plot"``, ``"lab"``).
        purpose: What needs it, for the message (``"lossatlas.plot_loss"``).

    Returns:
        The imported module.

    Raises:
        ImportError: If the module is not installed, naming ``pip install 'lossatlas[extra]'``.

    Examples:
        >>> from lossatlas._optional import require
        >>> require("math", "plot").sqrt(4.0)
        2.0
        >>> require("no_such_module_xyz", "plot", purpose="this example")
        Traceback (most recent call last):
        ...
        ImportError: this example needs 'no_such_module_xyz', which is not installed: ...
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        top = module.split(".", 1)[0]
        # Only a missing optional package is ours to explain; a broken install re-raises as is.
        if error.name is not None and error.name.split(".", 1)[0] != top:
            raise
        who = purpose or "this feature"
        pip_name = _PIP_NAMES.get(top, top)
        raise ImportError(
            f"{who} needs {top!r}, which is not installed: pip install 'lossatlas[{extra}]' "
            f"(or pip install {pip_name})"
        ) from None


def require_all(modules: tuple[str, ...], extra: str, *, purpose: str) -> None:
    """Check, before any work starts, that every module a command needs imports.

    Args:
        modules: Top-level modules to import (``("sklearn", "matplotlib")``).
        extra: The lossatlas extra that installs them.
        purpose: What needs them (``"lossatlas compare"``).

    Raises:
        ImportError: One line naming every missing module and ``pip install
            'lossatlas[extra]'``.

    Examples:
        >>> from lossatlas._optional import require_all
        >>> require_all(("math", "json"), "lab", purpose="this example")
        >>> require_all(("math", "no_such_module_xyz"), "lab", purpose="this example")
        Traceback (most recent call last):
        ...
        ImportError: this example needs no_such_module_xyz, not installed: pip install ...
    """
    missing = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            if error.name is not None and error.name.split(".", 1)[0] != module.split(".", 1)[0]:
                raise  # a broken install, not a missing package: show it as it is
            missing.append(_PIP_NAMES.get(module, module))
    if missing:
        raise ImportError(
            f"{purpose} needs {', '.join(missing)}, not installed: pip install 'lossatlas[{extra}]'"
        )


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (files only, no window)."""
    matplotlib = require("matplotlib", "plot", purpose="plotting")
    if matplotlib.get_backend().lower() != "agg" and not _interactive_session():
        matplotlib.use("Agg")
    return require("matplotlib.pyplot", "plot", purpose="plotting")


def _interactive_session() -> bool:
    """Whether a notebook or IPython is driving matplotlib (then keep the user's backend)."""
    import sys

    return "IPython" in sys.modules or hasattr(sys, "ps1")
