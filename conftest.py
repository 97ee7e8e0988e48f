"""Imports lossatlas before pytest collects the doctests under ``src/`` (tests: tests/conftest.py).

``--import-mode=importlib`` imports a collected file by its path unless its module is already
in ``sys.modules``. Collected before the package was imported, ``src/lossatlas/detection/iou.py``
made pytest import ``lossatlas`` (which imports every family) and then create a second
``lossatlas.detection`` from its ``__init__.py`` over the first: the new one lacks the submodule
attributes (``lossatlas.detection.balanced_l1``), so tests that reach a submodule through its
package failed whenever the doctests were collected first. Importing the package here, by the
normal import system, makes every later import by path a look-up.
"""

import lossatlas  # noqa: F401
