"""Sphinx configuration of the lossatlas documentation (``make docs``)."""

import doctest
import sys
import types
import typing
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent / "src"))  # document this checkout, installed or not

import lossatlas  # noqa: E402

project = "lossatlas"
author = "lossatlas developers"
copyright = "lossatlas developers"
release = version = lossatlas.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "myst_parser",
    "katex_prerender",
    "lossatlas_pages",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "node_modules", "Thumbs.db", ".DS_Store"]
root_doc = "index"

# Google-style docstrings (STYLE.md), signatures as written
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_member_order = "bysource"
# Option types by the names the signatures use (``delta: Positive = 1.0``), not expanded into
# ``Annotated[float, Interval(low=0.0, ...)]``: every module-level alias of the package.
_ALIAS_KINDS = (typing.Annotated, typing.Literal, typing.Union, types.UnionType)
autodoc_type_aliases = {
    name: name
    for module_name, module in list(sys.modules.items())
    if module_name.startswith("lossatlas")
    for name, value in vars(module).items()
    if name[:1].isupper() and typing.get_origin(value) in _ALIAS_KINDS
}
autodoc_class_signature = "separated"
python_maximum_signature_line_length = 90
add_module_names = False

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# the same flags as pytest's doctests (pyproject: NORMALIZE_WHITESPACE, ELLIPSIS)
doctest_default_flags = (
    doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS | doctest.DONT_ACCEPT_TRUE_FOR_1
)
doctest_global_setup = "import torch\nimport lossatlas as la"

html_theme = "furo"
html_title = f"lossatlas {release}"
html_static_path = ["_static"]
html_css_files = ["lossatlas.css"]
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None
