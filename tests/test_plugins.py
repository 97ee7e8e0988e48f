"""Losses from outside the library: entry-point plugins, ``--import``, re-registration, defaults.

The entry-point test builds a path-based distribution in ``tmp_path`` (a package and its
``*.dist-info`` with ``entry_points.txt``), the way an installed plugin package looks to
``importlib.metadata``, and runs the CLI in a subprocess whose ``PYTHONPATH`` holds it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import lossatlas as la
from lossatlas import _plugins
from lossatlas._catalog import TargetKind
from lossatlas.cli import main
from lossatlas.testing import check_loss

SRC = Path(la.__file__).resolve().parent.parent

PLUGIN_SOURCE = '''
"""A plugin package: importing it registers its loss."""
import lossatlas as la


@la.register(tasks=("regression",), input_kind="predictions", target_kind="real values",
             formula=r"|\\hat y - y|^3", use_when="a plugin's own loss")
def {name}(input, target, *, power=3.0, reduction="mean"):
    """Cubic error from a plugin package."""
    return la.reduce_loss((input - target).abs() ** power, reduction)
'''


def write_distribution(site: Path, package: str, entry_points: str, source: str) -> None:
    """A package and its ``.dist-info`` (METADATA, entry_points.txt), as pip would install it."""
    (site / package).mkdir(parents=True)
    (site / package / "__init__.py").write_text(source, encoding="utf-8")
    info = site / f"{package}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")


def run_lossatlas(*args: str, pythonpath: Path | None = None, **env: str):
    paths = [str(SRC)] + ([str(pythonpath)] if pythonpath else [])
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), **env}
    environment.pop(_plugins.IMPORT_VARIABLE, None)
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "lossatlas", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )


@pytest.fixture
def plugin_site(tmp_path):
    """A site directory with a working plugin and a broken one."""
    site = tmp_path / "site"
    write_distribution(
        site,
        "cubeplug",
        "[lossatlas.losses]\ncube = cubeplug\n",
        PLUGIN_SOURCE.format(name="cube_plugin_loss"),
    )
    write_distribution(
        site,
        "brokenplug",
        "[lossatlas.losses]\nbroken = brokenplug\n",
        'raise RuntimeError("this plugin is broken\\nsecond line")\n',
    )
    return site


def test_an_installed_plugin_shows_in_list_and_show(plugin_site):
    listed = run_lossatlas(
        "list", "--task", "regression", "--format", "names", pythonpath=plugin_site
    )
    assert listed.returncode == 0, listed.stderr
    assert "cube_plugin_loss" in listed.stdout.split()
    assert "mse_loss" in listed.stdout.split()
    # the broken plugin: one line naming it, and the command still works
    errors = [line for line in listed.stderr.splitlines() if line.strip()]
    assert errors == [
        "lossatlas: plugin 'broken' (brokenplug, from brokenplug) failed to load: "
        "RuntimeError: this plugin is broken"
    ], listed.stderr
    shown = run_lossatlas("show", "cube_plugin_loss", pythonpath=plugin_site)
    assert shown.returncode == 0, shown.stderr
    for text in ("Cubic error from a plugin package", "a plugin's own loss", "power", "3.0"):
        assert text in shown.stdout
    table = run_lossatlas("list", pythonpath=plugin_site)
    assert "cube_plugin_loss" in table.stdout and "a plugin's own loss" in table.stdout


def test_a_plugin_loads_when_the_catalog_is_first_read_not_at_import(plugin_site):
    code = textwrap.dedent(
        """
        import sys, warnings
        import lossatlas as la
        assert "cubeplug" not in sys.modules  # import lossatlas does not load plugins
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            spec = la.get("cube_plugin_loss")
        print(spec.custom)
        for warning in caught:
            print(warning.category.__name__, warning.message)
        """
    )
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(plugin_site)])}
    environment.pop(_plugins.IMPORT_VARIABLE, None)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "True",
        "PluginWarning lossatlas: plugin 'broken' (brokenplug, from brokenplug) failed to load: "
        "RuntimeError: this plugin is broken",
    ]


def write_module(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(PLUGIN_SOURCE.format(name=name), encoding="utf-8")
    return path


def forget(name: str) -> None:
    la.unregister(name)
    sys.modules.pop(name, None)


def test_import_option_registers_a_module_for_one_command(tmp_path, monkeypatch):
    path = write_module(tmp_path, "my_import_loss")
    monkeypatch.delenv(_plugins.IMPORT_VARIABLE, raising=False)
    try:
        result = CliRunner().invoke(main, ["--import", str(path), "show", "my_import_loss"])
        assert result.exit_code == 0, result.output
        assert "Cubic error from a plugin package" in result.output
        # for the command only (compare's workers saw it through the variable meanwhile)
        assert _plugins.IMPORT_VARIABLE not in os.environ
    finally:
        forget("my_import_loss")


def test_import_by_module_name_from_the_current_directory_and_by_variable(tmp_path):
    write_module(tmp_path, "cwd_loss")
    write_module(tmp_path / "elsewhere", "env_loss")
    environment = {**os.environ, "PYTHONPATH": str(SRC)}
    script = [sys.executable, "-c", "import sys; from lossatlas.cli import main; sys.exit(main())"]
    base = {"cwd": tmp_path, "capture_output": True, "text": True, "timeout": 300}
    # the console script's sys.path has no current directory; --import looks there too
    out = subprocess.run(
        [*script, "--import", "cwd_loss", "list", "--format", "names"],
        env={**environment, _plugins.IMPORT_VARIABLE: ""},
        **base,
    )
    assert out.returncode == 0, out.stderr
    assert "cwd_loss" in out.stdout.split() and "env_loss" not in out.stdout.split()
    env_path = str(tmp_path / "elsewhere" / "env_loss.py")
    out = subprocess.run(
        [*script, "show", "env_loss"],
        env={**environment, _plugins.IMPORT_VARIABLE: f" cwd_loss , {env_path}"},
        **base,
    )
    assert out.returncode == 0, out.stderr
    assert "Cubic error from a plugin package" in out.stdout
    out = subprocess.run(
        [*script, "list", "--format", "names"],
        env={**environment, _plugins.IMPORT_VARIABLE: "no_such_module_x"},
        **base,
    )
    assert out.returncode == 0 and "mse_loss" in out.stdout.split()
    assert out.stderr.strip() == (
        f"lossatlas: {_plugins.IMPORT_VARIABLE} module 'no_such_module_x' failed to load: "
        "ModuleNotFoundError: No module named 'no_such_module_x'"
    )


def test_import_of_a_missing_module_is_one_line_and_exits_non_zero():
    result = CliRunner().invoke(main, ["--import", "no_such_module_y", "list"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: --import no_such_module_y: ModuleNotFoundError: No module named 'no_such_module_y'"
    )


@pytest.mark.slow
def test_compare_workers_see_an_imported_loss(tmp_path):
    pytest.importorskip("sklearn", reason="compare's embedded data needs scikit-learn")
    path = write_module(tmp_path, "worker_loss")
    out = tmp_path / "report"
    result = run_lossatlas(
        "--import",
        str(path),
        "compare",
        "--losses",
        "mse,worker_loss",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--jobs",
        "2",
        "--no-tensorboard",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    runs = [r for r in report["runs"] if r["candidate"] == "worker_loss"]
    assert len(runs) == 2 and all(r["status"] == "ok" for r in runs), runs


# --------------------------------------------------------------------------- re-registration

CELL = """
@la.register(tasks=("regression",), input_kind="predictions", target_kind="real values",
             formula="|r|^3")
def cell_loss(input, target, *, reduction="mean"):
    return la.reduce_loss((input - target).abs() ** {power}, reduction)
"""


def run_cell(power: int = 3) -> dict:
    """One run of a notebook cell: a new function object, module ``__main__``."""
    namespace = {"la": la, "__name__": "__main__"}
    exec(compile(CELL.format(power=power), "<cell>", "exec"), namespace)
    return namespace


def test_running_a_cell_again_replaces_quietly_and_a_different_loss_fails():
    import warnings

    first = run_cell()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            second = run_cell()  # same module and qualified name: replaced, no warning
        assert second["cell_loss"] is not first["cell_loss"]
        assert la.get("cell_loss").function is second["cell_loss"]
        edited = run_cell(power=4)  # edited and re-run: the same definition, replaced
        assert la.get("cell_loss").function is edited["cell_loss"]

        def cell_loss(input, target, *, reduction="mean"):  # another function, same name
            return la.reduce_loss((input - target).abs(), reduction)

        register = la.register(
            tasks=("regression",), input_kind="predictions", target_kind="real values", formula="r"
        )
        with pytest.raises(ValueError, match=r"already in the catalog .*replace=True"):
            register(cell_loss)
        assert la.get("cell_loss").function is edited["cell_loss"]
        la.register(
            tasks=("regression",),
            input_kind="predictions",
            target_kind="real values",
            formula="r",
            replace=True,
        )(cell_loss)
        assert la.get("cell_loss").function is cell_loss
    finally:
        la.unregister("cell_loss")


def test_same_code_is_the_same_loss_even_for_lambdas_and_builtins_are_never_replaced():
    kinds = {"tasks": ("regression",), "input_kind": "predictions", "target_kind": "real values"}
    make = "lambda input, target, *, reduction='mean': la.reduce_loss(input - target, reduction)"
    try:
        la.register(name="cell_lambda_loss", formula="r", **kinds)(eval(make, {"la": la}))
        la.register(name="cell_lambda_loss", formula="r", **kinds)(eval(make, {"la": la}))
        with pytest.raises(ValueError, match="already in the catalog"):
            la.register(name="cell_lambda_loss", formula="r", **kinds)(lambda input, target: input)
    finally:
        la.unregister("cell_lambda_loss")
    with pytest.raises(ValueError, match="'mse_loss' is a built-in loss"):
        la.register(name="mse_loss", formula="r", replace=True, **kinds)(lambda a, b: a)
    assert la.get("mse_loss").function is la.mse_loss


def test_a_module_class_registered_again_is_replaced_and_another_class_is_not():
    kinds = {"tasks": ("regression",), "input_kind": "predictions", "target_kind": "real values"}
    source = textwrap.dedent(
        """
        class QuinticLoss(torch.nn.Module):
            def forward(self, input, target):
                return ((input - target) ** 5).mean()
        """
    )
    try:
        for _ in range(2):
            namespace = {"torch": torch, "__name__": "__main__"}
            exec(source, namespace)
            la.register(formula="r^5", **kinds)(namespace["QuinticLoss"])
        assert la.get("quintic_loss").module is namespace["QuinticLoss"]

        class Other(torch.nn.Module):
            def forward(self, input, target):
                return (input - target).mean()

        with pytest.raises(ValueError, match="already in the catalog"):
            la.register(name="quintic_loss", formula="r", **kinds)(Other)
    finally:
        la.unregister("quintic_loss")


# --------------------------------------------------------------------------- examples from kinds


def test_check_loss_on_an_unregistered_function_says_what_to_do():
    def my_loss(input, target):
        return (input - target).mean()

    with pytest.raises(TypeError) as raised:
        check_loss(my_loss)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("my_loss is not in the catalog: register it first with @la.register(")
    assert "la.get('my_loss')" in message


def test_register_builds_examples_for_class_indices_and_check_loss_passes():
    kinds = {"tasks": ("multiclass",), "input_kind": "logits", "target_kind": "class indices"}

    @la.register(formula=r"-\log p_y", **kinds)
    def plain_ce_loss(input, target, *, reduction="mean"):
        """Cross-entropy, reduced by the library."""
        return la.reduce_loss(F.cross_entropy(input, target, reduction="none"), reduction)

    try:
        spec = la.get("plain_ce_loss")
        assert spec.target_type is TargetKind.CLASS_INDICES
        example = spec.make_example(batch=5)
        logits, target = example.args
        assert logits.shape == (5, 4) and target.dtype == torch.long
        assert int(target.min()) >= 0 and int(target.max()) < 4
        skipped = check_loss(plain_ce_loss, compile=False)  # the function itself, or its name
        assert "check_dtypes" not in skipped and "check_gradcheck" not in skipped
    finally:
        la.unregister("plain_ce_loss")


@pytest.mark.parametrize(
    ("input_kind", "target_kind", "target_type", "inputs_in", "targets_in"),
    [
        ("probabilities", "binary labels", TargetKind.PROBABILITIES, (0.0, 1.0), {0.0, 1.0}),
        ("logits", "probabilities in [0, 1]", TargetKind.PROBABILITIES, None, {0.0, 1.0}),
        ("scores", "labels in {-1, +1}", TargetKind.SIGNS, None, {-1.0, 1.0}),
        ("log-probabilities", "binary labels", TargetKind.PROBABILITIES, (-1e9, 0.0), {0.0, 1.0}),
    ],
)
def test_examples_from_kinds_are_valid_inputs(
    input_kind, target_kind, target_type, inputs_in, targets_in
):
    @la.register(
        name="kind_loss",
        tasks=("binary",),
        input_kind=input_kind,
        target_kind=target_kind,
        formula="x",
    )
    def kind_loss(input, target, *, reduction="mean"):
        return la.reduce_loss(input * target, reduction)

    try:
        spec = la.get("kind_loss")
        assert spec.target_type is target_type
        example = spec.make_example(batch=64, dtype=torch.float32)
        scores, target = example.args
        assert scores.shape == target.shape == (64, 3) and scores.dtype == torch.float32
        assert set(target.unique().tolist()) == targets_in
        if inputs_in is not None:
            assert inputs_in[0] <= float(scores.min()) and float(scores.max()) <= inputs_in[1]
        else:
            assert float(scores.min()) < 0 < float(scores.max())
    finally:
        la.unregister("kind_loss")


def test_a_kind_with_no_built_examples_says_how_to_declare_them():
    @la.register(tasks=("detection",), input_kind="boxes", target_kind="boxes", formula="x")
    def box_loss(input, target, *, reduction="mean"):
        return la.reduce_loss((input - target).abs(), reduction)

    try:
        with pytest.raises(
            ValueError, match="declares no examples .* pass examples= to la.register"
        ):
            check_loss("box_loss")
    finally:
        la.unregister("box_loss")
