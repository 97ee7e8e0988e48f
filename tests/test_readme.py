"""The README's Python examples run as written, and its table of losses is current."""

import re
from pathlib import Path

import pytest

from lossatlas.docs import markdown_table, readme_table

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("block", range(len(BLOCKS)))
def test_readme_python_block_runs(block):
    namespace: dict = {}
    exec(compile(BLOCKS[block], f"README.md python block {block}", "exec"), namespace)
    if "cubic_loss" in namespace:  # the registration example adds to the catalog
        import lossatlas as la

        la.unregister("cubic_loss")


def test_readme_table_is_current():
    assert readme_table(README) == markdown_table(), (
        "README.md's table of losses is stale: run `make readme`"
    )
