"""The README is a landing page that tells the truth: its examples run and print what they say,
its index of losses is generated from the catalog, every link resolves, and its other claims
(extras, make targets, measured figures, the compare run) match their one home."""

import ast
import re
from pathlib import Path

import pytest
import torch

import lossatlas as la
from lossatlas._catalog import TASKS, for_task
from lossatlas.docs import BEGIN, END, readme_index, readme_table

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, re.DOTALL)


def section(title: str) -> str:
    start = TEXT.index(f"\n## {title}\n")
    end = TEXT.find("\n## ", start + 1)
    return TEXT[start : end if end != -1 else None]


def test_readme_is_a_landing_page():
    # the 570-line generated table is gone: the site has a page per task and per loss
    assert len(TEXT.splitlines()) <= 200
    assert "| loss | module | input |" not in TEXT
    for command in ("make demo", "make test"):
        assert f"\n{command}" in TEXT


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 1


@pytest.mark.parametrize("block", range(len(BLOCKS)))
def test_readme_python_block_runs_and_prints_what_it_says(block):
    """Each statement runs; an expression followed by ``# tensor(...)`` or ``# [...]`` has that
    value, printed as Python prints it."""
    source = BLOCKS[block]
    lines = source.splitlines()
    namespace: dict = {}
    checked = 0
    for statement in ast.parse(source).body:
        code = ast.get_source_segment(source, statement)
        assert code is not None
        comment = lines[statement.end_lineno - 1].partition("  # ")[2].strip()
        if isinstance(statement, ast.Expr) and comment.startswith(("tensor(", "[")):
            value = eval(compile(code, f"README.md python block {block}", "eval"), namespace)
            assert str(value) == comment, (code, str(value), comment)
            checked += 1
        else:
            exec(compile(code, f"README.md python block {block}", "exec"), namespace)
    assert checked >= 1, "an example that shows no output checks nothing"


def test_readme_error_message_is_the_real_one():
    quoted = re.search(r"\(`(target has class index [^`]*?) \.\.\.`\)", TEXT.replace("\n", " "))
    assert quoted is not None
    logits = torch.zeros(3, 2)
    with pytest.raises(ValueError) as error:
        la.cross_entropy(logits, torch.tensor([0, 5, 1]))
    assert str(error.value).startswith(quoted.group(1))


def test_readme_index_is_current():
    assert readme_table(README) == readme_index(), (
        "README.md's index of losses is stale: run `make readme`"
    )


def test_readme_index_reaches_every_loss_with_true_counts():
    index = TEXT[TEXT.index(BEGIN) : TEXT.index(END)]
    named = set(re.findall(r"`([a-z0-9_]+)`", index))
    assert {spec.name for spec in la.catalog()} <= named
    for task in TASKS:
        specs = for_task(task)
        if specs:
            assert f"(`{task}`, {len(specs)}):" in index


def test_readme_links_resolve():
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", TEXT)
    assert len(links) >= 9  # the guides
    for link in links:
        assert not link.startswith("http"), f"the README links outside the repository: {link}"
        assert (ROOT / link).is_file(), f"README.md links to a missing file: {link}"
    guides = {path.name for path in (ROOT / "docs" / "guides").glob("*.md")}
    assert guides <= {Path(link).name for link in links}, "a guide the README does not link"


def test_readme_extras_are_pyproject_extras():
    pyproject = (ROOT / "pyproject.toml").read_text()
    block = pyproject.split("[project.optional-dependencies]\n")[1].split("\n[")[0]
    extras = set(re.findall(r"^([a-z]+) = \[", block, re.MULTILINE))
    assert {"plot", "lab", "test"} <= extras
    table = section("What to install")
    listed = set(re.findall(r"^\| `([a-z]+)` \|", table, re.MULTILINE))
    assert listed == extras


def test_readme_make_targets_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):", makefile, re.MULTILINE))
    used = set(re.findall(r"`?make ([a-z-]+)", TEXT))
    assert used and used <= targets, used - targets


def test_readme_performance_figures_come_from_the_guide():
    guide = (ROOT / "docs" / "guides" / "performance.md").read_text()
    figures = re.findall(r"\d+(?:\.\d+)?(?:×| MB)", section("Performance"))
    assert len(figures) >= 4
    for figure in figures:
        assert figure in guide, f"README's {figure} is not in docs/guides/performance.md"


def test_readme_names_every_compare_task():
    tasks = pytest.importorskip("lossatlas.lab.tasks", reason="compare needs the lab extra")
    paragraph = section("Pick the loss for your data: `lossatlas compare`")
    named = re.search(r"The tasks (.*?) come with embedded data", paragraph, re.DOTALL)
    assert named is not None
    assert set(re.findall(r"`([a-z-]+)`", named.group(1))) == set(tasks.COMPARE_TASKS)
    guide = (ROOT / "docs" / "guides" / "compare.md").read_text()
    for task in tasks.COMPARE_TASKS:
        assert f"| `{task}` |" in guide, f"the compare guide's table misses {task}"


def test_readme_compare_run_is_the_guides_run():
    """The README shows part of the real run the compare guide shows whole (one run, not two)."""
    guide = (ROOT / "docs" / "guides" / "compare.md").read_text()
    run = re.search(r"```text\n(\$ lossatlas compare.*?)```", TEXT, re.DOTALL)
    assert run is not None
    guide_lines = set(guide.splitlines())
    for line in run.group(1).splitlines():
        if not line.startswith("[..."):
            assert line in guide_lines, f"README's compare output differs from the guide's: {line}"
