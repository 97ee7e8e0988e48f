"""The foundation: reduction, validation, the catalog and registration, the CLI."""

import os
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

import lossatlas as la
from lossatlas import _examples as ex
from lossatlas import testing as lt
from lossatlas._reduction import reduce_loss, safe_divide
from lossatlas._validation import check_choice, check_number, check_same_shape
from lossatlas.cli import main


class TestReduction:
    def test_modes(self):
        loss = torch.tensor([1.0, 2.0, 6.0])
        assert torch.equal(reduce_loss(loss, "none"), loss)
        assert float(reduce_loss(loss, "sum")) == 9.0
        assert float(reduce_loss(loss, "mean")) == 3.0
        assert float(reduce_loss(loss, "mean", denominator=torch.tensor(4.5))) == 2.0

    def test_batchmean_only_where_allowed(self):
        loss = torch.ones(4, 3)
        with pytest.raises(ValueError, match="reduction must be one of"):
            reduce_loss(loss, "batchmean")
        allowed = ("none", "mean", "sum", "batchmean")
        assert float(reduce_loss(loss, "batchmean", allowed=allowed)) == 3.0

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
    def test_half_precision_is_summed_in_float32(self, dtype):
        loss = torch.full((4,), 60000.0, dtype=dtype)  # the float16 sum (240000) overflows
        assert reduce_loss(loss, "none").dtype == dtype
        for reduction, expected in (("sum", 4 * float(loss[0])), ("mean", float(loss[0]))):
            value = reduce_loss(loss, reduction)
            assert value.dtype == torch.float32 and float(value) == expected

    def test_zero_denominator_is_zero_in_graph(self):
        x = torch.randn(3, requires_grad=True)
        loss = reduce_loss(x * 0, "mean", denominator=torch.tensor(0.0))
        assert loss.requires_grad and float(loss.detach()) == 0.0
        loss.backward()
        assert torch.equal(x.grad, torch.zeros(3))

    def test_fractional_denominator_divides_exactly(self):
        assert float(safe_divide(torch.tensor(1.0), torch.tensor(0.5))) == 2.0

    def test_compiles_without_graph_break(self):
        fn = torch.compile(
            lambda x: reduce_loss(x * 0, "mean", denominator=x.sum() * 0),
            fullgraph=True,
            backend="eager",
        )
        assert float(fn(torch.ones(3))) == 0.0


class TestValidation:
    def test_choice_suggests(self):
        with pytest.raises(ValueError, match="got 'mena'. Did you mean 'mean'"):
            check_choice("reduction", "mena", ("none", "mean", "sum"))

    def test_choice_without_near_miss(self):
        with pytest.raises(ValueError, match=r"got 'xyz'\.$"):
            check_choice("reduction", "xyz", ("none", "mean", "sum"))

    def test_number(self):
        with pytest.raises(ValueError, match=r"quantile must be in \(0, 1\), got 1.0"):
            check_number("quantile", 1.0, low=0, high=1, low_inclusive=False, high_inclusive=False)
        with pytest.raises(TypeError, match="gamma must be a real number, got str"):
            check_number("gamma", "2")
        with pytest.raises(ValueError, match="gamma must be finite"):
            check_number("gamma", float("nan"))

    def test_same_shape_never_broadcasts(self):
        with pytest.raises(
            ValueError,
            match=r"target must have the same shape as input \(3,\), "
            r"got \(3, 1\)",
        ):
            check_same_shape("input", torch.zeros(3), "target", torch.zeros(3, 1))

    def test_environment_variable_switches_value_checks_off(self):
        code = (
            "import torch, lossatlas as la; print(la.value_checks_enabled()); "
            "la.binary_cross_entropy(torch.tensor([0.5]), torch.tensor([0.5]))"
        )
        env = {**os.environ, "LOSSATLAS_VALUE_CHECKS": "0"}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "False"

    def test_value_checks_skipped_under_compile(self):
        fn = torch.compile(la.binary_cross_entropy, fullgraph=True, backend="eager")
        fn(torch.tensor([0.25, 0.5]), torch.tensor([0.0, 1.0]))


def _cubic_examples(generator, *, batch, dtype, scale):
    x = ex.normal(generator, batch, dtype=dtype, scale=scale)
    return la.Example((x, ex.normal(generator, batch, dtype=dtype)))


def _cubic_perfect(generator, *, batch, dtype, scale):
    x = ex.normal(generator, batch, dtype=dtype)
    return la.Example((x, x.clone()))


class TestCatalog:
    def test_lookup(self):
        spec = la.get("cross_entropy")
        assert spec.module is la.nn.CrossEntropyLoss
        assert "multiclass" in spec.tasks
        assert spec.options["label_smoothing"] == 0.0
        with pytest.raises(KeyError, match="Did you mean 'cross_entropy'"):
            la.get("cross_entropi")

    def test_for_task(self):
        names = [spec.name for spec in la.for_task("binary")]
        assert "binary_cross_entropy_with_logits" in names
        with pytest.raises(ValueError, match="Did you mean 'regression'"):
            la.for_task("regresion")

    def test_bad_declaration(self):
        with pytest.raises(ValueError, match="task of 'x' must be one of"):
            la.LossSpec(
                name="x",
                function=lambda a: a,
                tasks=("nope",),
                input_kind="",
                target_kind="",
                formula="",
            )
        with pytest.raises(ValueError, match="claims zero_at_perfect"):
            la.LossSpec(
                name="x",
                function=lambda a: a,
                tasks=("binary",),
                input_kind="",
                target_kind="",
                formula="",
                properties=frozenset({"zero_at_perfect"}),
            )

    def test_register_function_gets_the_generic_checks_and_cli(self):
        @la.register(
            tasks=("regression",),
            input_kind="predictions",
            target_kind="real values",
            formula=r"|\hat y - y|^3",
            examples=_cubic_examples,
            perfect=_cubic_perfect,
            properties=("non_negative", "zero_at_perfect"),
            same_shape=(0, 1),
            references=("a test",),
            curve="residual",
        )
        def cubic_loss(input, target, *, reduction="mean"):
            """Cubic error."""
            check_same_shape("input", input, "target", target)
            error = (input - target).to(torch.promote_types(input.dtype, torch.float32))
            return la.reduce_loss(error.abs() ** 3, reduction)

        try:
            spec = la.get("cubic_loss")
            assert spec.custom and spec in la.for_task("regression")
            lt.check_loss(spec, compile=True)
            result = CliRunner().invoke(main, ["list", "--task", "regression", "--format", "names"])
            assert "cubic_loss" in result.output.split()
            with pytest.raises(ValueError, match="already in the catalog"):
                la.register(
                    name="cubic_loss",
                    tasks=("regression",),
                    input_kind="",
                    target_kind="",
                    formula="",
                )(lambda a, b: a)
        finally:
            la.unregister("cubic_loss")
        assert "cubic_loss" not in [s.name for s in la.catalog()]

    def test_register_module_class(self):
        @la.register(
            tasks=("regression",),
            input_kind="predictions",
            target_kind="real values",
            formula=r"(\hat y - y)^4",
        )
        class QuarticLoss(torch.nn.Module):
            def __init__(self, *, scale: float = 1.0):
                super().__init__()
                self.scale = scale

            def forward(self, input, target):
                return ((input - target) ** 4).mean() * self.scale

        try:
            spec = la.get("quartic_loss")
            assert spec.module is QuarticLoss
            assert float(spec.function(torch.ones(2), torch.zeros(2), scale=2.0)) == 2.0
        finally:
            la.unregister("quartic_loss")

    def test_builtin_cannot_be_unregistered(self):
        with pytest.raises(ValueError, match="built-in"):
            la.unregister("cross_entropy")


class TestCLI:
    def test_list_and_show(self):
        runner = CliRunner()
        result = runner.invoke(main, ["list"])
        assert result.exit_code == 0, result.output
        assert "cross_entropy" in result.output
        result = runner.invoke(main, ["show", "cross_entropy"])
        assert result.exit_code == 0
        for text in ("formula", "label_smoothing", "la.cross_entropy(", "Bishop"):
            assert text in result.output

    def test_show_unknown_suggests(self):
        result = CliRunner().invoke(main, ["show", "nll_los"])
        assert result.exit_code != 0
        assert "Did you mean 'nll_loss'" in result.output

    def test_python_dash_m(self):
        out = subprocess.run(
            [sys.executable, "-m", "lossatlas", "list", "--format", "names"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "cross_entropy" in out.stdout.split()
