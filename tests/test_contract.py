"""Layer 1: the generic contract, parametrised over every declaration in the catalog.

Every loss added to the catalog is tested here without a line of new test code. The checks
themselves live in :mod:`lossatlas.testing` so users can run them on their own registrations.
"""

import inspect

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import lossatlas as la
from lossatlas import testing as lt

SPECS = la.catalog()
IDS = [spec.name for spec in SPECS]
# Public functions whose names look like losses but are tools, not losses.
HELPERS = {"reduce_loss", "plot_loss"}

# The inductor backend compiles C++ for each loss (seconds each); a representative sample runs
# it, every loss runs the cheap graph-capture check with the eager backend.
INDUCTOR_SAMPLE = [
    "cross_entropy",
    "binary_cross_entropy_with_logits",
    "mse_loss",
    "huber_loss",
    "binary_focal_loss",
    "dice_loss",
    "log_cosh_loss",
]


def run(check, spec, **kwargs):
    """Run a generic check; one that does not apply to ``spec`` is a visible skip with a reason."""
    try:
        check(spec, **kwargs)
    except lt.NotApplicable as reason:
        pytest.skip(f"{spec.name}: {reason}")


@pytest.fixture(autouse=True)
def _uncompiled_fused_kernels():
    """Run the fused kernels eagerly here: compiling each one per dtype would cost minutes.

    The compiled kernels are checked against these eager ones in the family tests.
    """
    with la.fused(False):
        yield


def test_catalog_is_not_empty():
    assert len(SPECS) >= 5


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
class TestContract:
    def test_signature(self, spec):
        run(lt.check_signature, spec)

    def test_exported(self, spec):
        assert getattr(la, spec.name) is spec.function, f"la.{spec.name} is not the declared one"
        if spec.module is not None:
            assert getattr(la.nn, spec.module.__name__) is spec.module

    def test_docstring(self, spec):
        doc = inspect.getdoc(spec.function) or ""
        assert ".. math::" in doc, f"{spec.name}: no formula in the docstring"
        assert ">>>" in doc, f"{spec.name}: no runnable example in the docstring"
        assert spec.references, f"{spec.name}: no references"

    def test_reductions(self, spec):
        run(lt.check_reductions, spec)

    def test_module_equals_functional(self, spec):
        run(lt.check_module, spec)

    def test_dtypes(self, spec):
        run(lt.check_dtypes, spec)

    def test_gradcheck(self, spec):
        run(lt.check_gradcheck, spec)

    def test_compile_graph_capture(self, spec):
        run(lt.check_compile, spec, backend="eager")

    def test_shape_mismatch_raises(self, spec):
        run(lt.check_shape_mismatch, spec)

    def test_extreme_inputs_finite(self, spec):
        run(lt.check_extreme, spec)

    def test_empty_batch(self, spec):
        run(lt.check_empty, spec)

    def test_inputs_not_mutated(self, spec):
        run(lt.check_no_mutation, spec)

    def test_reference(self, spec):
        run(lt.check_reference, spec)

    def test_option_constraints(self, spec):
        run(lt.check_option_constraints, spec)

    @given(
        seed=st.integers(0, 2**31 - 1),
        batch=st.integers(1, 6),
        scale=st.sampled_from([0.1, 1.0, 5.0, 30.0]),
    )
    def test_properties(self, spec, seed, batch, scale):
        lt.check_properties(spec, seed=seed, batch=batch, scale=scale)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in INDUCTOR_SAMPLE if n in IDS])
def test_compile_inductor(name):
    run(lt.check_compile, la.get(name), backend="inductor")


def test_every_export_is_declared():
    declared = {spec.function for spec in SPECS}
    losses = [
        name
        for name in dir(la)
        if name.endswith(("_loss", "_entropy", "_div")) or name == "cross_entropy"
    ]
    for name in losses:
        obj = getattr(la, name)
        if callable(obj) and not name.startswith("_") and name not in HELPERS:
            assert obj in declared, f"la.{name} is exported but has no declaration"


def test_every_module_twin_is_exported():
    for spec in SPECS:
        if spec.module is not None:
            assert spec.module.__name__ in la.nn.__all__


def test_float16_autocast_bf16_gives_float32():
    logits = torch.randn(4, 3, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = la.cross_entropy(logits, torch.tensor([0, 1, 2, 0]))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.module is not None], ids=lambda s: s.name)
def test_module_defaults_equal_the_functional_defaults(spec):
    """A module twin repeats its functional's signature; this keeps the two from drifting."""
    init = inspect.signature(spec.module.__init__).parameters
    for name, default in spec.options.items():
        if name in init:
            assert init[name].default == default, (
                f"{spec.module.__name__}({name}={init[name].default!r}) but "
                f"{spec.name}({name}={default!r})"
            )
            assert init[name].kind is inspect.Parameter.KEYWORD_ONLY, f"{name} is not keyword-only"
