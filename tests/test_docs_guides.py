"""The guides' claims that name losses match the code (the guides are built by ``make docs``;
these checks need no Sphinx)."""

import inspect
import re
from pathlib import Path

import lossatlas as la

GUIDES = Path(__file__).resolve().parent.parent / "docs" / "guides"


def test_distributed_guide_names_exactly_the_losses_that_take_a_process_group():
    text = (GUIDES / "distributed.md").read_text(encoding="utf-8")
    table = text[text.index("## Which losses take it") : text.index("## What the shortcuts")]
    named = set(re.findall(r"`([a-z0-9_]+)`", table))
    catalog = {spec.name: spec for spec in la.catalog() if not spec.custom}
    taking = {
        name
        for name, spec in catalog.items()
        if "process_group" in inspect.signature(spec.function).parameters
    }
    assert taking, "no loss takes a process group"
    assert taking - named == set(), "losses that take process_group, missing from the guide"
    assert (named & set(catalog)) - taking == set(), "named in the guide, without process_group"


def test_guides_name_only_real_losses():
    """Every ``{doc}`` link to a loss page names a catalog entry (the build checks the target
    exists; this says which guide is stale when a loss is renamed)."""
    names = {spec.name for spec in la.catalog()}
    for guide in GUIDES.glob("*.md"):
        linked = set(re.findall(r"</losses/([a-z0-9_]+)>", guide.read_text(encoding="utf-8")))
        assert linked <= names, (guide.name, linked - names)
