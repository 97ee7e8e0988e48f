"""``lossatlas list`` fits an 80-column terminal; list, show, the markdown list and the task
pages show "use when"."""

import dataclasses
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from rich.console import Console

import lossatlas as la
from lossatlas import _catalog, cli
from lossatlas._catalog import TASKS
from lossatlas.docs import markdown_table, task_page

# A "use when" line of the declared maximum length (~60 characters).
SIXTY = "x" * 27 + " when the data " + "y" * 18


def _list_output(monkeypatch, width, *args):
    monkeypatch.setattr(cli, "console", Console(width=width, force_terminal=False))
    result = CliRunner().invoke(cli.main, ["list", *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


@pytest.fixture
def every_loss_declares_use_when(monkeypatch):
    for name, spec in list(_catalog._CATALOG.items()):
        monkeypatch.setitem(_catalog._CATALOG, name, dataclasses.replace(spec, use_when=SIXTY))


def test_list_fits_80_columns_with_every_loss_on_at_most_two_lines(
    monkeypatch, every_loss_declares_use_when
):
    lines = _list_output(monkeypatch, 80)
    assert max(len(line) for line in lines) <= 80
    specs = la.catalog()
    groups = {spec.tasks[0] for spec in specs}
    # Title, per group a blank line and a heading, at most two lines per loss, the footer.
    assert len(lines) <= 1 + 2 * len(groups) + 2 * len(specs) + 2, len(lines)
    names = [line.split()[0] for line in lines if line.startswith("  ") and line.split()]
    listed = [n for n in names if n in {s.name for s in specs}]
    assert sorted(listed) == sorted(s.name for s in specs)  # each loss once
    assert sum(SIXTY[:20] in line for line in lines) == len(specs)


def test_list_falls_back_to_the_summary_and_still_fits(monkeypatch):
    lines = _list_output(monkeypatch, 80)
    assert max(len(line) for line in lines) <= 80
    text = " ".join(" ".join(lines).split())
    for spec in la.catalog():
        shown = " ".join((spec.use_when or spec.summary).replace("``", "").split())
        assert shown in text, spec.name  # wrapped, never cut
    assert "``" not in text


def test_list_one_task(monkeypatch):
    lines = _list_output(monkeypatch, 80, "--task", "segmentation")
    assert lines[0].startswith(f"{TASKS['segmentation']} (segmentation):")
    names = {line.split()[0] for line in lines[1:] if line.startswith("  ")}
    assert {s.name for s in la.for_task("segmentation")} <= names


def test_list_in_a_real_80_column_subprocess():
    env = {**os.environ, "COLUMNS": "80"}
    out = subprocess.run(
        [sys.executable, "-m", "lossatlas", "list"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.splitlines()
    assert max(len(line) for line in out) <= 80
    groups = {spec.tasks[0] for spec in la.catalog()}
    # Title, per group a blank line and a heading, at most two lines per loss, the footer (a
    # four-column table took four to five lines per loss before).
    assert len(out) <= 1 + 2 * len(groups) + 2 * len(la.catalog()) + 2, len(out)


def test_show_markdown_and_task_page_show_use_when(monkeypatch):
    spec = la.get("huber_loss")
    line = "outliers in the targets; MSE near zero"
    monkeypatch.setitem(_catalog._CATALOG, "huber_loss", dataclasses.replace(spec, use_when=line))
    monkeypatch.setattr(cli, "console", Console(width=80, force_terminal=False))
    result = CliRunner().invoke(cli.main, ["show", "huber_loss"])
    assert result.exit_code == 0
    assert f"use when  {line}" in result.output
    assert f"| {line} |" in markdown_table()  # lossatlas list --format markdown
    assert line in task_page("regression")  # the site's page of the task
    # Without one, show prints no empty "use when" line.
    monkeypatch.setitem(_catalog._CATALOG, "huber_loss", dataclasses.replace(spec, use_when=""))
    assert "use when" not in CliRunner().invoke(cli.main, ["show", "huber_loss"]).output
