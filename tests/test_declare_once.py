"""Each loss is declared once, at its ``def``: constraints, family presets, derived twins, stub."""

import inspect
import math
import pydoc
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import lossatlas as la
from lossatlas._catalog import Family, TargetKind, options_of, parse_references
from lossatlas._options import (
    Check,
    Interval,
    NonNegative,
    Positive,
    PositiveInt,
    UnitInterval,
    check_value,
    validator,
)
from lossatlas._reduction import Reduction
from lossatlas._stubs import render_nn_stub

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "lossatlas"
FAMILY_DIRS = [
    "classification",
    "detection",
    "distribution",
    "generative",
    "image",
    "language",
    "ranking",
    "regression",
    "segmentation",
    "sequence",
]


# --------------------------------------------------------------------------- the vocabulary


def _f(
    x,
    *,
    a: NonNegative = 1.0,
    p: UnitInterval | None = None,
    r: Reduction = "mean",
    flag: bool = False,
    k: int = 3,
    s: tuple[float, ...] | None = None,
):
    return x


def test_interval_messages_name_the_option():
    options = validator(_f)
    with pytest.raises(ValueError, match=r"a must be in \[0, inf\], got -1"):
        options({"a": -1})
    with pytest.raises(ValueError, match="a must be finite, got nan"):
        options({"a": math.nan})
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        options({"p": 1.5})
    options({"p": None, "a": 0})


def test_choices_suggest_the_nearest():
    with pytest.raises(ValueError, match="Did you mean 'mean'"):
        validator(_f)({"r": "meen"})


def test_bool_int_and_sequence_kinds():
    options = validator(_f)
    with pytest.raises(TypeError, match=r"flag must be a bool \(True or False\), got str 'False'"):
        options({"flag": "False"})
    with pytest.raises(TypeError, match="k must be an int, got float 2.5"):
        options({"k": 2.5})
    with pytest.raises(TypeError, match="k must be an int, got bool True"):
        options({"k": True})
    with pytest.raises(TypeError, match="s must be None or a sequence"):
        options({"s": "abc"})


def test_union_picks_the_arm_of_the_value():
    hint = UnitInterval | tuple[UnitInterval, ...] | torch.Tensor | None
    check_value("alpha", (0.2, 0.5), hint)
    check_value("alpha", torch.ones(2), hint)
    with pytest.raises(ValueError, match=r"alpha\[1\] must be in \[0, 1\], got 2.0"):
        check_value("alpha", (0.2, 2.0), hint)
    with pytest.raises(TypeError, match="alpha must be None, a real number in"):
        check_value("alpha", "balanced", hint)


def test_custom_check_and_its_invalid_values():
    def even(name, value):
        if value % 2:
            raise ValueError(f"{name} must be even, got {value}")

    from typing import Annotated

    def g(x, *, n: Annotated[int, Check(even, invalid=(3,))] = 2):
        return x

    options = validator(g)
    with pytest.raises(ValueError, match="n must be even, got 3"):
        options({"n": 3})
    assert options.invalid_values("n") == [3, 2.5, math.nan]


def test_invalid_values_lie_just_outside():
    assert Interval(0.0, 1.0).outside() == [-1e-3, 1.0 + 1e-3]
    assert Interval(0.0, None, low_inclusive=False).outside() == [0.0]
    assert Interval(1).outside(integer=True) == [0]


def test_a_default_that_breaks_its_constraint_is_a_bug():
    def h(x, *, a: NonNegative = -1.0):
        return x

    with pytest.raises(TypeError, match="a default breaks its constraint"):
        validator(h)


# --------------------------------------------------------------------------- family + decorator


def test_family_fills_name_references_and_reductions():
    spec = la.get("binary_focal_loss")
    assert spec.name == spec.function.__name__ == "binary_focal_loss"
    assert spec.references[0].startswith("T.-Y. Lin")
    assert "https://arxiv.org/abs/1708.02002" in spec.references[0]
    assert spec.reductions == ("none", "mean", "sum")
    assert spec.target_type is TargetKind.PROBABILITIES
    assert la.get("focal_loss").target_type is TargetKind.CLASS_INDICES


def test_family_rejects_unknown_fields():
    with pytest.raises(TypeError, match="unknown declaration fields"):
        Family(taks=("binary",))


def test_parse_references_keeps_entries_apart():
    doc = textwrap.dedent(
        """Summary.

        References:
            A. B, `Title One <https://a.org>`_,
            NeurIPS 2020.

            C. D, Title Two, 2021.

        Note:
            not a reference.
        """
    )
    assert parse_references(doc) == (
        "A. B, Title One, https://a.org, NeurIPS 2020.",
        "C. D, Title Two, 2021.",
    )


def test_options_are_checked_at_call_time():
    x, y = torch.randn(3, 2), torch.tensor([0, 1, 1])
    with pytest.raises(ValueError, match=r"gamma must be in \[0, inf\]"):
        la.focal_loss(x, y, gamma=-0.5)


# --------------------------------------------------------------------------- derived twins


def test_typo_in_a_twin_option_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="unexpected keyword argument 'gama'. Did you mean 'gamma'"):
        la.nn.FocalLoss(gama=2)


def test_derived_twin_shows_the_real_signature():
    sig = inspect.signature(la.nn.FocalLoss)
    assert list(sig.parameters) == ["alpha", "gamma", "ignore_index", "reduction", "process_group"]
    assert sig.parameters["gamma"].default == 2.0
    assert sig.parameters["gamma"].kind is inspect.Parameter.KEYWORD_ONLY


def test_derived_twin_checks_at_construction_and_buffers_sequences():
    with pytest.raises(ValueError, match=r"gamma must be in \[0, inf\]"):
        la.nn.FocalLoss(gamma=-1.0)
    focal = la.nn.FocalLoss(alpha=[0.25, 0.75])
    assert "alpha" in dict(focal.named_buffers())
    x, y = torch.randn(4, 2), torch.tensor([0, 1, 1, 0])
    torch.testing.assert_close(focal(x, y), la.focal_loss(x, y, alpha=[0.25, 0.75]))


def _twins():
    """Every loss module: the catalog's twins and every ``LossModule`` lossatlas.nn exports."""
    exported = {
        obj
        for name in la.nn.__all__
        if isinstance(obj := getattr(la.nn, name), type)
        and issubclass(obj, la.nn.LossModule)
        and obj is not la.nn.LossModule
    }
    return exported | {s.module for s in la.catalog() if s.module is not None and not s.custom}


def test_every_twin_is_derived_or_stateful():
    """At most 12 loss modules write their own ``__init__``; a stateful twin derives its too.

    A twin's constructor is hand-written unless it is the derived one (a stateful twin declares
    only its ``init_state`` hook); one inherited from a hand-written base counts as hand-written.
    """
    own_init = sorted(
        cls.__name__
        for cls in _twins()
        if not getattr(cls.__init__, "__lossatlas_derived__", False)
    )
    assert len(own_init) <= 12, own_init


def test_stateful_twin_shows_state_then_options():
    sig = inspect.signature(la.nn.ArcFaceLoss)
    assert list(sig.parameters) == [
        "num_classes",
        "embedding_dim",
        *(p for p in options_of(la.arcface_loss).defaults),
    ]
    assert sig.parameters["num_classes"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert sig.parameters["margin"].default == 0.5
    assert sig.parameters["margin"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "ArcFaceLoss(num_classes: 'PositiveInt', embedding_dim: 'PositiveInt', *, scale" in (
        pydoc.render_doc(la.nn.ArcFaceLoss, renderer=pydoc.plaintext)
    )


def test_typo_in_a_stateful_twin_option_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="unexpected keyword argument 'scle'. Did you mean 'scale'"):
        la.nn.ArcFaceLoss(10, 4, scle=2.0)
    with pytest.raises(TypeError, match="missing required argument 'embedding_dim'"):
        la.nn.ArcFaceLoss(10)
    with pytest.raises(ValueError, match=r"num_classes must be in \[1, inf\], got 0"):
        la.nn.ArcFaceLoss(0, 4)


def test_a_stateful_twin_declares_only_its_state():
    class Head(la.nn.LossModule, functional=la.focal_loss, catalog=False):
        call_options = ("ignore_index",)

        def init_state(
            self, num_classes: PositiveInt, *, gamma: NonNegative = 1.0, scale: Positive = 2.0
        ) -> None:
            self.register_buffer("counts", torch.zeros(num_classes))
            self.start = (gamma, scale)

    sig = inspect.signature(Head)
    assert list(sig.parameters) == [
        "num_classes",  # the hook's positional arguments, then the functional's options
        "alpha",
        "gamma",
        "reduction",
        "process_group",
        "scale",  # then the hook's own keyword-only ones
    ]
    assert sig.parameters["gamma"].default == 1.0  # the hook's default for the option it takes
    head = Head(3, gamma=0.5)
    assert head.start == (0.5, 2.0) and list(head.state_dict()) == ["counts"]
    assert head.options() == {"alpha": None, "reduction": "mean", "process_group": None}
    with pytest.raises(ValueError, match=r"gamma must be in \[0, inf\]"):
        Head(3, gamma=-1.0)  # the functional's check of the option the hook takes
    with pytest.raises(ValueError, match=r"scale must be in \(0, inf\]"):
        Head(3, scale=0.0)  # the hook's annotation of its own argument
    with pytest.raises(ValueError, match=r"num_classes must be in \[1, inf\]"):
        Head(0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'ignore_index'"):
        Head(3, ignore_index=1)  # a call option is not a constructor option
    with pytest.raises(TypeError, match="too many positional arguments"):
        Head(3, 4)
    with pytest.raises(TypeError, match="multiple values for argument 'num_classes'"):
        Head(3, num_classes=3)
    assert la.get("focal_loss").module is la.nn.FocalLoss  # catalog=False: not attached


def test_family_files_hold_no_declare_calls():
    offenders = [
        str(path.relative_to(PACKAGE))
        for folder in FAMILY_DIRS
        for path in (PACKAGE / folder).glob("*.py")
        if re.search(r"\bdeclare\(", path.read_text())
    ]
    assert not offenders, offenders


# --------------------------------------------------------------------------- the stub


def test_nn_stub_is_fresh():
    stub = (PACKAGE / "nn.pyi").read_text()
    assert stub == render_nn_stub(), "nn.pyi is stale: run `python scripts/generate_stubs.py`"


def test_nn_stub_exports_exactly_nn_all():
    # The stub has no __all__ of its own: what it exports (its classes and its ``import X as
    # X`` lines, the only names a stub re-exports) must be lossatlas.nn.__all__.
    import ast

    tree = ast.parse((PACKAGE / "nn.pyi").read_text())
    exported = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            exported |= {
                a.asname for a in node.names if a.asname is not None and a.asname == a.name
            }
    assert "__all__" not in {
        getattr(t, "id", None) for n in tree.body for t in getattr(n, "targets", [])
    }
    assert exported == set(la.nn.__all__)


def test_options_of_a_declared_loss_is_its_validator():
    assert options_of(la.focal_loss) is la.focal_loss.__lossatlas_options__


@pytest.mark.slow
def test_mypy_flags_a_typo_in_a_twin_option(tmp_path):
    pytest.importorskip("mypy")
    user = tmp_path / "user.py"
    user.write_text(
        "import torch\nimport lossatlas as la\n\n"
        "la.nn.FocalLoss(gama=2.0)\nla.nn.FocalLoss(gamma=2.0)\n"
        # A stateful twin: the state arguments, the options, and its own methods are typed.
        "la.nn.ArcFaceLoss(10, 4, scle=2.0)\nhead = la.nn.ArcFaceLoss(10, 4, scale=2.0)\n"
        "logits: torch.Tensor = head.logits(torch.randn(2, 4), torch.tensor([0, 1]))\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--no-error-summary",
            "--follow-imports=silent",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(user),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    lines = [line for line in result.stdout.splitlines() if "user.py" in line and "error" in line]
    assert len(lines) == 2, result.stdout
    assert 'Unexpected keyword argument "gama"' in lines[0], result.stdout
    assert 'Unexpected keyword argument "scle"' in lines[1], result.stdout
