"""Losses from other packages and modules: the ``lossatlas.losses`` entry points and imports.

A package makes its losses part of every user's catalog by naming, in the entry-point group
:data:`ENTRY_POINT_GROUP`, a module whose import registers them with ``@la.register``
(``pyproject.toml``)::

    [project.entry-points."lossatlas.losses"]
    mylosses = "mypackage.losses"

For one command, a module of your own is imported with ``lossatlas --import mymodule ...``
or the environment variable :data:`IMPORT_VARIABLE` (comma-separated module names or paths
to ``.py`` files). Both load lazily, the first time the catalog is listed or looked up, so
``import lossatlas`` stays as fast as before; a plugin that fails to import is reported in one
:class:`PluginWarning` line naming it, and the rest of the catalog works.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
import threading
import warnings
from pathlib import Path
from types import ModuleType

#: The entry-point group whose entries name modules that register losses when imported.
ENTRY_POINT_GROUP = "lossatlas.losses"

#: Modules (names, or paths to ``.py`` files) to import before the catalog is first read,
#: comma-separated. ``lossatlas --import`` adds to it, so compare's worker processes see it too.
IMPORT_VARIABLE = "LOSSATLAS_IMPORT"


class PluginWarning(UserWarning):
    """A plugin (an entry point or a :data:`IMPORT_VARIABLE` module) failed to load."""


_lock = threading.RLock()
_loaded = False


def ensure_loaded() -> None:
    """Load the plugins once per process (the catalog calls this before it is read).

    Re-entrant: a plugin that reads the catalog while it is imported sees what is registered
    so far instead of loading the plugins again.
    """
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        _loaded = True
        for message in load_plugins():
            warnings.warn(message, PluginWarning, stacklevel=3)


def load_plugins() -> list[str]:
    """Import every entry point of :data:`ENTRY_POINT_GROUP` and every module of the variable.

    Returns:
        One line per plugin that failed, naming it and the error (empty when all loaded).
    """
    errors: list[str] = []
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()
        except Exception as error:
            dist = f", from {entry.dist.name}" if entry.dist is not None else ""
            errors.append(
                f"lossatlas: plugin {entry.name!r} ({entry.value}{dist}) failed to load: "
                f"{one_line(error)}"
            )
    for name in imports_from_environment():
        try:
            import_plugin(name)
        except Exception as error:
            errors.append(
                f"lossatlas: {IMPORT_VARIABLE} module {name!r} failed to load: {one_line(error)}"
            )
    return errors


def imports_from_environment() -> list[str]:
    """The modules named by :data:`IMPORT_VARIABLE`, in order, without blanks."""
    value = os.environ.get(IMPORT_VARIABLE, "")
    return [name.strip() for name in value.split(",") if name.strip()]


def add_to_environment(names: list[str]) -> None:
    """Append ``names`` to :data:`IMPORT_VARIABLE` (inherited by worker processes).

    Paths of files are made absolute, so a process started elsewhere finds them.
    """
    current = imports_from_environment()
    names = [str(Path(n).resolve()) if _is_path(n) else n for n in names]
    os.environ[IMPORT_VARIABLE] = ",".join(current + [n for n in names if n not in current])


def _is_path(name: str) -> bool:
    return name.endswith(".py") or os.sep in name or bool(os.altsep and os.altsep in name)


def import_plugin(name: str) -> ModuleType:
    """Import a module by name, or a ``.py`` file by path, so its registrations run.

    A module name is looked up on ``sys.path`` and then in the current directory (the
    ``lossatlas`` script, unlike ``python -m``, does not search it).

    Raises:
        ImportError: If there is no such module or file (or whatever its import raises).
    """
    if _is_path(name):
        return _import_file(Path(name))
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        here = os.getcwd()
        top = name.split(".", 1)[0]
        if error.name != top or here in sys.path or "" in sys.path:
            raise
        sys.path.append(here)
        return importlib.import_module(name)


def _import_file(path: Path) -> ModuleType:
    path = path.resolve()
    if not path.is_file():
        raise ImportError(f"no file {str(path)!r}")
    name = path.stem
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) == str(path):
        return existing
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {str(path)!r} as a module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")
