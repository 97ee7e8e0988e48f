"""Docstring text a family shares is written once and filled into each loss's ``__doc__``."""

import doctest
import inspect
import textwrap

import pytest
import torch
from torch import Tensor

import lossatlas as la
from lossatlas._catalog import Family
from lossatlas._docs import SharedDocs, documented_params, fill_docstring
from lossatlas._reduction import Reduction, reduce_loss

SHARED = SharedDocs(
    args={"input": "Scores, any shape.", "target": "Labels,\nsame shape."},
    returns='Same shape as ``input`` for ``"none"``, else a scalar.',
    raises={"TypeError": "Non-floating ``input``.", "ValueError": "Shapes that differ."},
)


def _doc(text):
    """A docstring as a function body holds it: first line flush, the rest indented."""
    first, _, rest = textwrap.dedent(text).strip("\n").partition("\n")
    return first + "\n" + textwrap.indent(rest, "    ") + "\n    "


def test_missing_args_returns_and_raises_are_filled_in_signature_order():
    doc = _doc(
        """
        Loss.

        Args:
            margin: Its own text.

        Raises:
            ValueError: Its own error.

        Example:
            >>> 1 + 1
            2
        """
    )
    filled = fill_docstring(doc, ["input", "target", "margin"], SHARED)
    assert inspect.cleandoc(filled) == textwrap.dedent(
        """\
        Loss.

        Args:
            input: Scores, any shape.
            target: Labels,
                same shape.
            margin: Its own text.

        Returns:
            Same shape as ``input`` for ``"none"``, else a scalar.

        Raises:
            TypeError: Non-floating ``input``.
            ValueError: Its own error.

        Example:
            >>> 1 + 1
            2"""
    )
    # indented as written: the body lines keep the function's four spaces
    assert filled.splitlines()[2] == "    Args:"


def test_an_option_between_documented_ones_goes_after_its_predecessor():
    doc = "Loss.\n\n    Args:\n        input: Mine.\n        reduction: Mine too.\n    "
    filled = fill_docstring(doc, ["input", "target", "reduction"], SHARED)
    assert documented_params(filled) == ["input", "target", "reduction"]
    assert "input: Mine." in filled and "Scores" not in filled


def test_nothing_missing_leaves_the_docstring_as_written():
    doc = _doc(
        """
        Loss.

        Args:
            input: A.
            target: B.

        Returns:
            C.

        Raises:
            TypeError: D.
            ValueError: E.
        """
    )
    assert fill_docstring(doc, ["input", "target"], SHARED) is doc
    assert fill_docstring(None, ["input"], SHARED) is None


def test_only_newlines_end_lines():
    # a form feed (``"\f"`` in a non-raw docstring) is text, not a line break
    doc = "Loss \f here.\n\n    Args:\n        input: A\fB.\n    "
    filled = fill_docstring(doc, ["input", "target"], SHARED)
    assert documented_params(filled) == ["input", "target"]
    assert "Loss \f here." in filled and "input: A\fB." in filled


def test_reduction_is_described_from_its_choices():
    filled = fill_docstring(
        "Loss.", ["reduction"], SharedDocs(), choices={"reduction": ("none", "sum")}
    )
    assert 'reduction: ``"none"`` | ``"sum"``.' in filled


def test_an_undocumented_parameter_fails_the_declaration():
    with pytest.raises(TypeError, match="my_loss: parameter 'gamma' is in neither"):
        fill_docstring("Loss.", ["input", "gamma"], SHARED, owner="my_loss")


def test_derive_adds_to_the_shared_text():
    family = Family(tasks=("binary",), args={"input": "A."}, raises={"TypeError": "B."})
    child = family.derive(args={"target": "C."}, returns="D.", curve="margin")
    assert child.docs.args == {"input": "A.", "target": "C."}
    assert child.docs.raises == {"TypeError": "B."} and child.docs.returns == "D."
    assert child.fields == {"tasks": ("binary",), "curve": "margin"}
    assert family.docs.returns is None
    assert child.derive(returns="E.").docs.args == child.docs.args
    with pytest.raises(TypeError, match="unknown declaration fields"):
        Family(arg={"input": "A."})


def test_the_family_decorator_writes_the_whole_docstring():
    family = Family(
        tasks=("regression",),
        input_kind="predictions",
        target_kind="real values",
        args={"input": "Predictions, any shape.", "target": "Targets, same shape."},
        returns='A scalar unless ``reduction`` is ``"none"``.',
    )

    @family.loss(formula=r"|r|^3")
    def _shared_docs_cubic_loss(input: Tensor, target: Tensor, *, reduction: Reduction = "mean"):
        """Cubic loss.

        Example:
            >>> float(_shared_docs_cubic_loss(torch.tensor([2.0]), torch.zeros(1)))
            8.0
        """
        return reduce_loss((input - target).abs() ** 3, reduction)

    try:
        doc = inspect.getdoc(_shared_docs_cubic_loss)
        assert documented_params(doc) == ["input", "target", "reduction"]
        assert "Returns:\n    A scalar unless" in doc
        assert la.get("_shared_docs_cubic_loss").summary == "Cubic loss"
        # the doctest of the filled docstring still runs
        runner = doctest.DocTestRunner()
        globs = {"torch": torch, "_shared_docs_cubic_loss": _shared_docs_cubic_loss}
        for test in doctest.DocTestFinder().find(_shared_docs_cubic_loss, globs=globs):
            runner.run(test)
        # the package's two imports lead the example, then the loss's own line
        assert runner.summarize(verbose=False) == doctest.TestResults(0, 3)
        imports = ">>> import torch\n    >>> import lossatlas as la"
        assert f"Example:\n    {imports}\n    >>> float(" in doc
    finally:
        from lossatlas._catalog import _CATALOG

        _CATALOG.pop("_shared_docs_cubic_loss", None)


def _params(function):
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    params = inspect.signature(function).parameters.values()
    return [p.name for p in params if p.kind not in variadic]


@pytest.mark.parametrize("spec", [s for s in la.catalog() if not s.custom], ids=lambda s: s.name)
def test_every_loss_documents_every_parameter_once(spec):
    documented = documented_params(spec.function.__doc__)
    assert sorted(documented) == sorted(_params(spec.function))
    for section in ("Returns:", "Raises:"):
        assert inspect.getdoc(spec.function).count(f"\n{section}\n") == 1, section


def test_napoleon_reads_every_filled_parameter():
    napoleon = pytest.importorskip("sphinx.ext.napoleon")
    config = napoleon.Config(napoleon_use_param=True)
    for spec in la.catalog():
        if spec.custom:
            continue
        rst = str(napoleon.GoogleDocstring(inspect.getdoc(spec.function), config))
        for name in _params(spec.function):
            assert f":param {name}:" in rst, (spec.name, name)
        assert ":returns:" in rst and ":raises" in rst, spec.name


def test_family_references_follow_the_own_ones_once():
    barron = 'J. T. Barron, "A General and Adaptive Robust Loss Function", CVPR 2019'
    shared = SharedDocs(references=(barron,))
    own = _doc(
        """
        Loss.

        References:
            A. Author, "Own Paper", 2020.
        """
    )
    filled = fill_docstring(own, [], shared)
    assert la._catalog.parse_references(filled) == ('A. Author, "Own Paper", 2020.', barron)
    # a docstring that already cites the entry (wrapped differently) is left as written
    cites = own.replace(
        '"Own Paper", 2020.',
        '"Own Paper", 2020.\n\n        J. T. Barron, "A General and\n'
        '        Adaptive Robust Loss Function", CVPR 2019',
    )
    assert fill_docstring(cites, [], shared) == cites
    # no References section: one is made, after Example
    made = fill_docstring(_doc("Loss.\n\nExample:\n    >>> 1\n    1\n"), [], shared)
    assert made.index("Example:") < made.index("References:")
    assert la._catalog.parse_references(made) == (barron,)
    # a sub-family adds to the family's entries
    assert shared.derive({"references": ("B.",)}).references == (barron, "B.")


def test_family_references_reach_the_catalog():
    for name in ("cauchy_loss", "welsch_loss", "charbonnier_loss", "geman_mcclure_loss"):
        refs = la.get(name).references
        assert len(refs) == 2 and refs[1].startswith("J. T. Barron, "), (name, refs)
    assert la.get("general_robust_loss").references[0].startswith("J. T. Barron, ")
    assert len(la.get("general_robust_loss").references) == 2  # not cited twice
    tv = "torchvision.ops: https://pytorch.org/vision/stable/ops.html"
    assert [
        n
        for n in ("iou_loss", "giou_loss", "diou_loss", "ciou_loss", "eiou_loss", "siou_loss")
        if tv in la.get(n).references
    ] == ["iou_loss", "giou_loss", "diou_loss", "ciou_loss"]


def test_example_setup_goes_after_an_opening_sentence():
    shared = SharedDocs(example=">>> import torch\n>>> x = torch.ones(2)")
    doc = _doc(
        """
        Loss.

        Example:
            A sentence before the doctest.

            >>> x.sum()
            tensor(2.)
        """
    )
    filled = fill_docstring(doc, [], shared)
    example = filled[filled.index("Example:") :]
    assert example.index("A sentence") < example.index(">>> import torch") < example.index("sum")
    assert fill_docstring(filled, [], shared) == filled  # filling twice changes nothing
    (test,) = doctest.DocTestFinder().find(filled, "filled", globs={})
    assert doctest.DocTestRunner().run(test).failed == 0


@pytest.mark.parametrize("spec", [s for s in la.catalog() if not s.custom], ids=lambda s: s.name)
def test_every_example_imports_torch_and_lossatlas_once(spec):
    doc = inspect.getdoc(spec.function)
    example = doc[doc.index("Example") :]
    for line in (">>> import torch", ">>> import lossatlas as la"):
        assert sum(row.strip() == line for row in example.split("\n")) == 1, line
