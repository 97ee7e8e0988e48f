"""The package root re-exports each loss family's public names by name, listed in ``__all__``."""

import importlib
import sys

import lossatlas as la


def _family_modules():
    """The modules that hold declared losses (each exports its public names in ``__all__``)."""
    names = {spec.function.__module__ for spec in la.catalog() if not spec.custom}
    return [importlib.import_module(name) for name in sorted(names)]


def test_all_is_unique():
    assert len(la.__all__) == len(set(la.__all__))  # ruff's RUF022 keeps it sorted


def test_every_family_name_is_exported():
    modules = _family_modules()
    assert len(modules) >= 20
    missing = sorted(
        f"{module.__name__}.{name}"
        for module in modules
        for name in module.__all__
        if name not in la.__all__ or getattr(la, name) is not getattr(module, name)
    )
    assert not missing


def test_every_listed_name_exists_and_is_public():
    assert [name for name in la.__all__ if not hasattr(la, name)] == []
    assert all(not name.startswith("_") for name in la.__all__)
    assert "lossatlas.classification" in sys.modules  # imported, yet not listed
    assert "classification" not in la.__all__
