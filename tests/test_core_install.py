"""The core install (``pip install lossatlas``, no extras): one-line hints, never a traceback.

Each test runs the CLI or Python in a subprocess whose imports of every optional package are
blocked by a ``sitecustomize`` on ``PYTHONPATH`` (a meta-path finder that raises
``ModuleNotFoundError``), so it sees what a core-only install sees.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
# Everything outside the core dependencies (torch, numpy, click, rich) that lossatlas may use.
BLOCKED = (
    "sklearn",
    "scipy",
    "matplotlib",
    "tensorboard",
    "xgboost",
    "lightgbm",
    "ray",
    "monai",
    "kornia",
)

# The finder answers for the blocked packages with a loader that fails as a missing package
# does (probing with importlib.util.find_spec, as torch does at import, still works).
BLOCKER = f"""
import importlib.abc
import importlib.machinery
import sys

BLOCKED = {BLOCKED!r}


class _Missing(importlib.abc.Loader):
    def create_module(self, spec):
        raise ModuleNotFoundError(f"No module named {{spec.name!r}}", name=spec.name)

    def exec_module(self, module):
        raise AssertionError("unreachable")


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".", 1)[0] in BLOCKED:
            return importlib.machinery.ModuleSpec(name, _Missing())
        return None


sys.meta_path.insert(0, _Blocker())
"""


@pytest.fixture(scope="module")
def core_env(tmp_path_factory):
    site = tmp_path_factory.mktemp("core-only")
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(SRC)])
    env["COLUMNS"] = "80"
    return env


def _run(env, cwd, *args, code=None):
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "lossatlas", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


@pytest.mark.slow  # a fresh interpreter importing torch per test: ~10 s each on a loaded CPU
def test_the_blocker_blocks(core_env, tmp_path):
    out = _run(core_env, tmp_path, code="import sklearn")
    assert out.returncode != 0 and "No module named 'sklearn'" in out.stderr


def _assert_one_line_hint(out, extra):
    assert out.returncode != 0
    assert "Traceback" not in out.stderr + out.stdout
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert f"pip install 'lossatlas[{extra}]'" in lines[0]


def test_compare_exits_with_the_lab_hint_before_training(core_env, tmp_path):
    out = _run(core_env, tmp_path, "compare", "--quick")
    _assert_one_line_hint(out, "lab")
    assert "scikit-learn" in out.stderr and "matplotlib" in out.stderr
    assert not (tmp_path / "lossatlas-report").exists()


@pytest.mark.slow
def test_compare_with_own_data_exits_before_reading_or_training(core_env, tmp_path):
    csv = tmp_path / "data.csv"
    csv.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i * 0.5}\n" for i in range(60)))
    out = _run(core_env, tmp_path, "compare", "--data", str(csv), "--target", "y", "--quick")
    _assert_one_line_hint(out, "lab")
    assert "epoch" not in out.stdout.lower() and out.stdout == ""


@pytest.mark.slow
@pytest.mark.parametrize(
    "args", [("plot", "huber_loss", "-o", "x.png"), ("plot", "--activation", "relu")]
)
def test_plot_exits_with_the_plot_hint(core_env, tmp_path, args):
    out = _run(core_env, tmp_path, *args)
    _assert_one_line_hint(out, "plot")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_list_and_show_work(core_env, tmp_path):
    assert _run(core_env, tmp_path, "list").returncode == 0
    out = _run(core_env, tmp_path, "show", "dice_ce_loss")
    assert out.returncode == 0 and "dice_ce_loss" in out.stdout


@pytest.mark.slow
def test_tensorboard_logging_says_which_extra_in_one_line(core_env, tmp_path):
    code = textwrap.dedent(
        """
        import lossatlas as la
        try:
            la.LossHistory(tensorboard="runs")
        except ImportError as error:
            print(error)
        """
    )
    out = _run(core_env, tmp_path, code=code)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and "pip install 'lossatlas[lab]'" in lines[0]


@pytest.mark.slow
def test_boost_and_fit_need_no_extra(core_env, tmp_path):
    # The bridges compute with torch and NumPy only; xgboost / lightgbm are the caller's.
    code = textwrap.dedent(
        """
        import numpy as np
        from lossatlas.boost import grad_hess, xgboost_objective
        from lossatlas.fit import polyfit

        g, h = grad_hess("mse_loss", np.array([1.0, 2.0]), np.array([0.0, 0.0]))
        assert callable(xgboost_objective("pseudo_huber_loss", delta=1.0))
        x = np.linspace(0.0, 1.0, 20)
        coef = polyfit(x, 2.0 * x + 1.0, 1, loss="huber_loss")
        print(g.tolist(), h.tolist(), coef is not None)
        """
    )
    out = _run(core_env, tmp_path, code=code)
    assert out.returncode == 0, out.stderr
    # Per-example derivatives of (p - y)^2 worked by hand: 2 (p - y) and 2.
    assert out.stdout.split() == ["[2.0,", "4.0]", "[2.0,", "2.0]", "True"]
