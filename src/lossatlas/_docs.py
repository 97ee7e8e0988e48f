"""Docstring sections that losses share, written once and filled into each loss's ``__doc__``.

A family states the text its losses share -- the ``Args:`` of options they all take, the
``Returns:``, the ``Raises:`` -- once, in its :class:`lossatlas._catalog.Family`::

    _MARGIN = Family(
        ...,
        args={"input": "Real scores ``f``, any shape.", "target": "Labels in {-1, +1}."},
        returns='Same shape as ``input`` for ``"none"``, else a scalar.',
        raises={"TypeError": "Non-floating ``input``.", "ValueError": "Shapes that differ."},
    )

and each loss's docstring keeps only what is its own. The ``@FAMILY.loss`` decorator writes the
shared text into the function's ``__doc__``, so ``help()``, ``lossatlas show``, the doctests and
the Sphinx pages (autodoc reads ``__doc__``) show the whole docstring:

* ``Args:`` -- a parameter the docstring leaves out gets the family's text for it (for
  ``reduction``, else its annotation's choices: ``"none" | "mean" | "sum".``); it is inserted
  after the documented parameter that precedes it in the signature.
  A parameter the docstring describes keeps the docstring's text. The section is created
  (before ``Returns:``) when the docstring has none.
* ``Returns:`` -- the family's text where the docstring has no ``Returns:`` section.
* ``Raises:`` -- the family's entries, each replaced by the docstring's entry for the same
  exception; the docstring's other entries follow.
* ``Example:`` -- the package's imports (``>>> import torch``, ``>>> import lossatlas as la``,
  each unless the section has it) and the family's doctest lines (``example=``: shared inputs)
  first (after a sentence that opens the section), then the loss's own call.
* ``References:`` -- the family's entries (``references=``: the paper or library every loss of
  the family cites) after the docstring's own, each entry one paragraph; an entry the docstring
  already cites is not repeated. The section is created when the docstring has none.

Every parameter of a declared loss ends up documented, or the declaration fails
(:func:`fill_docstring` raises): a new option cannot be added without its description.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The sections of a Google-style docstring in the order the package writes them.
_ORDER = ("Args", "Returns", "Raises", "Warning", "Note", "Example", "Examples", "References")
_HEADER = re.compile(r"^([A-Z][A-Za-z ]*):\s*$")
_ARG = re.compile(r"^    (\*{0,2}[A-Za-z_]\w*)\s*(\([^)]*\))?:(\s|$)")
_RAISE = re.compile(r"^    ([A-Za-z_][\w.]*):(\s|$)")
_LITERAL = re.compile(r"``.+?``")
#: The imports every declared loss's ``Example:`` starts with (:class:`SharedDocs` ``imports``).
DOCTEST_IMPORTS = (">>> import torch", ">>> import lossatlas as la")
#: Filled text is wrapped to this width (the docstring's own lines, after its indentation).
_WIDTH = 92


@dataclass(frozen=True)
class SharedDocs:
    """The docstring text a family's losses share (see the module docstring)."""

    args: Mapping[str, str] = field(default_factory=dict)
    returns: str | None = None
    raises: Mapping[str, str] = field(default_factory=dict)
    example: str | None = None
    references: Sequence[str] = ()
    imports: Sequence[str] = ()

    def derive(self, changes: Mapping[str, Any]) -> SharedDocs:
        """These docs with a sub-family's ``changes``.

        ``args`` and ``raises`` entries are added or replaced, ``references`` added; ``returns``
        and ``example`` replaced.
        """
        merged = {**vars(self), **changes}
        for name in ("args", "raises"):
            merged[name] = {**getattr(self, name), **changes.get(name, {})}
        merged["references"] = (*self.references, *changes.get("references", ()))
        return SharedDocs(**merged)

    @classmethod
    def split(cls, fields: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``fields`` cut into (the docstring text of this class's fields, the others)."""
        names = cls.__dataclass_fields__
        docs = {name: value for name, value in fields.items() if name in names}
        return docs, {name: value for name, value in fields.items() if name not in names}


def _reduction_text(choices: Sequence[Any]) -> str:
    return " | ".join(f'``"{choice}"``' for choice in choices) + "."


def _wrap(text: str, width: int, first: int = 0) -> list[str]:
    """``text`` in lines of at most ``width`` characters (the first ``first`` shorter).

    Text with line breaks keeps them; a double-backtick literal is never broken.
    """
    text = inspect.cleandoc(text)
    if "\n" in text:
        return text.split("\n")
    joined = _LITERAL.sub(lambda m: m.group().replace(" ", "\0"), text)
    lines = textwrap.wrap(
        joined, width, initial_indent="\0" * first, break_long_words=False, break_on_hyphens=False
    )
    lines = [line.replace("\0", " ") for line in lines] or [""]
    lines[0] = lines[0][first:]
    return lines


def _entry(name: str, text: str) -> list[str]:
    """A section entry: ``name: text`` with later lines of ``text`` indented under it."""
    first, *rest = _wrap(text, _WIDTH - 4, first=len(name) + 2)
    return [f"    {name}: {first}".rstrip()] + [f"        {line}".rstrip() for line in rest]


def _split(lines: list[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The lines before the first section, and each section as (name, body lines)."""
    head: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    for line in lines:
        match = _HEADER.match(line)
        if match:
            sections.append((match.group(1), []))
        elif sections:
            sections[-1][1].append(line)
        else:
            head.append(line)
    return head, sections


def _entries(body: list[str], pattern: re.Pattern[str]) -> list[tuple[str | None, list[str]]]:
    """A section's body cut into entries (name, lines); trailing blank lines dropped."""
    entries: list[tuple[str | None, list[str]]] = []
    for line in body:
        match = pattern.match(line)
        if match:
            entries.append((match.group(1).lstrip("*"), [line]))
        elif entries:
            entries[-1][1].append(line)
        elif line.strip():
            entries.append((None, [line]))
    while entries and entries[-1][1] and not entries[-1][1][-1].strip():
        entries[-1][1].pop()
    return entries


def _join(entries: Sequence[tuple[str | None, list[str]]]) -> list[str]:
    return [line for _, lines in entries for line in lines]


def _insert(sections: list[tuple[str, list[str]]], name: str, body: list[str]) -> None:
    """Insert a section before the first one that the package writes after it."""
    rank = _ORDER.index(name)
    for i, (other, _) in enumerate(sections):
        if other in _ORDER and _ORDER.index(other) > rank:
            sections.insert(i, (name, body))
            return
    sections.append((name, body))


def _fill_args(
    body: list[str],
    params: Sequence[str],
    describe: Callable[[str], str | None],
    owner: str,
) -> list[str] | None:
    entries = _entries(body, _ARG)
    documented = {name for name, _ in entries}
    missing = [p for p in params if p not in documented]
    if not missing:
        return None
    for name in missing:
        text = describe(name)
        if text is None:
            raise TypeError(
                f"{owner}: parameter {name!r} is in neither the docstring's Args: nor its "
                "family's Family(args=...)"
            )
        before = params[: params.index(name)]
        at = 0  # after the last entry of a parameter that comes earlier in the signature
        for i, (entry, _) in enumerate(entries):
            if entry in before:
                at = i + 1
        entries.insert(at, (name, _entry(name, text)))
    return _join(entries)


def _fill_raises(body: list[str], shared: Mapping[str, str]) -> list[str] | None:
    entries = _entries(body, _RAISE)
    own = {name: lines for name, lines in entries if name is not None}
    if all(kind in own for kind in shared):
        return None
    merged: list[tuple[str | None, list[str]]] = [
        (kind, own.get(kind) or _entry(kind, text)) for kind, text in shared.items()
    ]
    merged += [(name, lines) for name, lines in entries if name not in shared]
    return _join(merged)


def fill_docstring(
    doc: str | None,
    params: Sequence[str],
    shared: SharedDocs,
    *,
    choices: Mapping[str, Sequence[Any]] | None = None,
    owner: str = "a loss",
) -> str | None:
    r"""``doc`` with the shared sections filled in (see the module docstring).

    Args:
        doc: The docstring as written (``__doc__``), or ``None``.
        params: The parameters to document, in signature order.
        shared: The family's shared text.
        choices: An option's choices (from its ``Literal`` annotation), for ``reduction``.
        owner: Names the loss in the error.

    Returns:
        The filled docstring, indented as ``doc`` was; ``doc`` itself where nothing is missing.

    Raises:
        TypeError: If a parameter is documented nowhere.

    Examples:
        >>> docs = SharedDocs(args={"input": "Scores."}, returns="A scalar.")
        >>> print(fill_docstring("Loss.\n\nArgs:\n    target: Labels.\n",
        ...                      ["input", "target"], docs))
        Loss.
        <BLANKLINE>
        Args:
            input: Scores.
            target: Labels.
        <BLANKLINE>
        Returns:
            A scalar.
    """
    if doc is None:
        return None
    choices = choices or {}

    def describe(name: str) -> str | None:
        if name in shared.args:
            return shared.args[name]
        if name == "reduction" and choices.get(name):
            return _reduction_text(choices[name])
        return None

    lines = doc.expandtabs().split("\n")
    indent = min((len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()), default=0)
    body = [lines[0].strip()] + [line[indent:] for line in lines[1:]]
    head, sections = _split(body)
    found = dict(sections)
    changed = False

    def put(name: str, body: list[str] | None) -> None:
        """The section ``name`` replaced by ``body``, or inserted where there is none."""
        nonlocal sections, changed
        if body is None:
            return
        changed = True
        if name in found:
            sections = [(n, body if n == name else b) for n, b in sections]
        else:
            _insert(sections, name, body)

    put("Args", _fill_args(found.get("Args", []), params, describe, owner))
    if shared.returns is not None and "Yields" not in found:
        put("Returns", None if "Returns" in found else _text(shared.returns))
    if shared.raises:
        put("Raises", _fill_raises(found.get("Raises", []), shared.raises))
    for i, (name, section) in enumerate(sections):
        if name in ("Example", "Examples"):
            filled = _fill_example(_trimmed(section), shared)
            if filled is not None:
                changed = True
                sections[i] = (name, filled)
    if shared.references:
        put("References", _fill_references(found.get("References", []), shared.references))
    if not changed:
        return doc
    out = _trimmed(head)
    for name, section in sections:
        out += ["", f"{name}:", *_trimmed(section)]
    pad = " " * indent
    text = "\n".join([out[0]] + [pad + line if line else "" for line in out[1:]])
    return text + "\n" + pad if lines[-1].strip() == "" else text


def _fill_example(lines: list[str], shared: SharedDocs) -> list[str] | None:
    """The section with the imports it lacks and the family's setup before its first doctest.

    After a sentence that opens the section; the setup goes after the leading imports.
    """
    have = {line.strip() for line in lines}
    imports = [f"    {line}" for line in shared.imports if line not in have]
    text = inspect.cleandoc(shared.example or "")
    setup = [f"    {line}".rstrip() for line in text.split("\n")] if text else []
    if _holds(lines, setup):
        setup = []
    if not imports and not setup:
        return None
    at = next((j for j, line in enumerate(lines) if line.lstrip().startswith(">>>")), len(lines))
    end = at
    while end < len(lines) and re.match(r">>> (import|from) ", lines[end].strip()):
        end += 1
    return lines[:at] + imports + lines[at:end] + setup + lines[end:]


def _holds(lines: list[str], block: list[str]) -> bool:
    """Whether ``block`` stands in ``lines`` as consecutive lines."""
    return any(lines[i : i + len(block)] == block for i in range(len(lines) - len(block) + 1))


def _fill_references(body: list[str], shared: Sequence[str]) -> list[str] | None:
    """The section's own entries, then each shared entry it does not already cite."""
    own = " ".join(" ".join(body).split())
    missing = [entry for entry in shared if " ".join(entry.split()) not in own]
    if not missing:
        return None
    out = _trimmed(body)
    for entry in missing:
        out += ([""] if out else []) + _text(entry)
    return out


def _text(paragraph: str) -> list[str]:
    return [f"    {line}".rstrip() for line in _wrap(paragraph, _WIDTH)]


def _trimmed(lines: list[str]) -> list[str]:
    """``lines`` without blank lines at either end."""
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def documented_params(doc: str | None) -> list[str]:
    """The parameter names a docstring's ``Args:`` section describes, in order."""
    lines = inspect.cleandoc(doc or "").split("\n")
    _, sections = _split(lines)
    body = dict(sections).get("Args", [])
    return [name for name, _ in _entries(body, _ARG) if name is not None]
