"""Margin losses: the binary margin family and torch's soft / multi-label / multi-class margins.

Reference values come from ``torch.nn.functional`` (computed in the test), from scikit-learn's
metrics (``hinge_loss``, ``zero_one_loss``, ``log_loss``), from formulas worked in the test,
and from the examples printed in torch's documentation (``MultiLabelMarginLoss``: 0.85,
``MultiMarginLoss``: 0.325).
"""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la

F64 = torch.float64
REDUCTIONS = ("none", "mean", "sum")


def close(actual, expected, *, rtol=1e-6, atol=1e-9):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


def scores_and_signs(*shape, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(*shape, generator=g, dtype=F64) * scale
    signs = (torch.randint(0, 2, shape, generator=g) * 2 - 1).to(F64)
    return scores, signs


# --------------------------------------------------------------------------- binary family


class TestBinaryFormulas:
    # Margins y f = 2, 0.5, -0.5, 0 worked by hand below.
    SCORES = torch.tensor([2.0, 0.5, -0.5, 0.0], dtype=F64)
    LABELS = torch.tensor([1.0, 1.0, 1.0, -1.0], dtype=F64)

    def test_hinge_by_hand(self):
        # max(0, 1 - m): 1 - 2 < 0 -> 0; 0.5; 1.5; 1.
        out = la.hinge_loss(self.SCORES, self.LABELS, reduction="none")
        close(out, torch.tensor([0.0, 0.5, 1.5, 1.0], dtype=F64))
        # margin=2: max(0, 2 - m) = 0, 1.5, 2.5, 2.
        out = la.hinge_loss(self.SCORES, self.LABELS, margin=2.0, reduction="none")
        close(out, torch.tensor([0.0, 1.5, 2.5, 2.0], dtype=F64))

    def test_squared_hinge_is_hinge_squared(self):
        for margin in (0.0, 1.0, 2.5):
            hinge = la.hinge_loss(self.SCORES, self.LABELS, margin=margin, reduction="none")
            sq = la.squared_hinge_loss(self.SCORES, self.LABELS, margin=margin, reduction="none")
            close(sq, hinge**2)

    def test_perceptron_by_hand_and_is_hinge_with_zero_margin(self):
        out = la.perceptron_loss(self.SCORES, self.LABELS, reduction="none")
        close(out, torch.tensor([0.0, 0.0, 0.5, 0.0], dtype=F64))
        scores, signs = scores_and_signs(50)
        close(la.perceptron_loss(scores, signs), la.hinge_loss(scores, signs, margin=0.0))

    def test_exponential_by_hand(self):
        expected = torch.tensor([math.exp(-2), math.exp(-0.5), math.exp(0.5), 1.0], dtype=F64)
        close(la.exponential_loss(self.SCORES, self.LABELS, reduction="none"), expected)

    def test_logistic_by_hand(self):
        expected = torch.tensor(
            [math.log1p(math.exp(-m)) for m in (2.0, 0.5, -0.5, 0.0)], dtype=F64
        )
        close(la.logistic_loss(self.SCORES, self.LABELS, reduction="none"), expected)

    def test_logistic_equals_bce_with_logits_on_01_labels(self):
        scores, signs = scores_and_signs(6, 5, seed=3)
        expected = F.binary_cross_entropy_with_logits(scores, (signs + 1) / 2, reduction="none")
        close(la.logistic_loss(scores, signs, reduction="none"), expected)

    def test_zero_one_tie_counts_as_error(self):
        # y f = 2, 0.5 right; -0.5 wrong; 0 (a tie) counts as an error by the documented rule.
        out = la.zero_one_loss(self.SCORES, self.LABELS, reduction="none")
        close(out, torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=F64))
        assert float(la.zero_one_loss(torch.zeros(3), torch.ones(3))) == 1.0

    def test_zero_one_has_no_gradient(self):
        scores = self.SCORES.clone().requires_grad_(True)
        out = la.zero_one_loss(scores, self.LABELS)
        assert not out.requires_grad
        assert la.get("zero_one_loss").differentiable is False

    @pytest.mark.parametrize(
        "name",
        [
            "hinge_loss",
            "squared_hinge_loss",
            "perceptron_loss",
            "exponential_loss",
            "logistic_loss",
            "zero_one_loss",
        ],
    )
    def test_integer_labels_accepted(self, name):
        scores, signs = scores_and_signs(7)
        fn = getattr(la, name)
        close(fn(scores, signs.long(), reduction="none"), fn(scores, signs, reduction="none"))

    @pytest.mark.parametrize(
        "name",
        [
            "hinge_loss",
            "squared_hinge_loss",
            "perceptron_loss",
            "exponential_loss",
            "logistic_loss",
            "zero_one_loss",
        ],
    )
    def test_reductions_and_module(self, name):
        scores, signs = scores_and_signs(4, 3, seed=1)
        fn = getattr(la, name)
        none = fn(scores, signs, reduction="none")
        close(fn(scores, signs, reduction="sum"), none.sum())
        close(fn(scores, signs), none.mean())
        module = la.get(name).module(reduction="sum")
        close(module(scores, signs), none.sum())


class TestScikitLearn:
    def test_hinge_equals_sklearn(self):
        metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the reference")
        scores, signs = scores_and_signs(40, seed=5)
        expected = metrics.hinge_loss(signs.numpy(), scores.numpy())
        assert float(la.hinge_loss(scores, signs)) == pytest.approx(expected, rel=1e-12)

    def test_zero_one_equals_sklearn(self):
        metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the reference")
        scores, signs = scores_and_signs(40, seed=6)
        # No ties in continuous random scores, so sign(f) is the prediction.
        expected = metrics.zero_one_loss(signs.numpy(), torch.sign(scores).numpy())
        assert float(la.zero_one_loss(scores, signs)) == pytest.approx(expected, rel=1e-12)

    def test_logistic_equals_sklearn_log_loss(self):
        metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the reference")
        scores, signs = scores_and_signs(40, seed=7)
        expected = metrics.log_loss((signs > 0).numpy(), torch.sigmoid(scores).numpy())
        assert float(la.logistic_loss(scores, signs)) == pytest.approx(expected, rel=1e-9)


class TestExtremes:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
    @pytest.mark.parametrize("name", ["logistic_loss", "soft_margin_loss"])
    def test_softplus_forms_finite_at_1e4(self, name, dtype):
        scores = torch.tensor([-1e4, 1e4, 0.0], dtype=dtype, requires_grad=True)
        labels = torch.tensor([1.0, 1.0, -1.0], dtype=dtype)
        out = getattr(la, name)(scores, labels, reduction="none")
        assert out.dtype == torch.float32
        # softplus(x) = x for x this large, softplus(-x) = 0, softplus(0) = log 2 (the scores as
        # stored in ``dtype``: bfloat16 rounds 1e4 to 9984).
        big = float(scores[1].detach())
        close(out, torch.tensor([big, 0.0, math.log(2)]), rtol=1e-6, atol=1e-6)
        out.sum().backward()
        assert torch.isfinite(scores.grad).all() and (scores.grad.abs() <= 1).all()

    def test_torch_soft_margin_overflows_where_ours_does_not(self):
        # The reason soft_margin_loss is computed as softplus: torch gives inf here.
        scores, labels = torch.tensor([-1e3]), torch.tensor([1.0])
        assert torch.isinf(F.soft_margin_loss(scores, labels))
        assert float(la.soft_margin_loss(scores, labels)) == 1e3

    def test_exponential_overflow_is_the_documented_inf(self):
        labels = torch.ones(2)
        finite = la.exponential_loss(torch.tensor([-80.0, 0.0]), labels, reduction="none")
        close(finite, torch.tensor([math.exp(80.0), 1.0]), rtol=1e-6, atol=0)
        over = la.exponential_loss(torch.tensor([-100.0]), labels[:1])
        assert torch.isinf(over)  # exp(100) > float32 max: inf by design, never clamped
        assert la.get("exponential_loss").finite_at_extreme is False

    def test_exponential_half_input_computed_in_float32(self):
        # exp(20) = 4.85e8 overflows float16 (max 65504) but not the float32 compute dtype.
        out = la.exponential_loss(torch.tensor([-20.0], dtype=torch.float16), torch.ones(1))
        assert out.dtype == torch.float32
        assert float(out) == pytest.approx(math.exp(20.0), rel=1e-6)


class TestBinaryErrors:
    def test_label_zero_is_rejected_with_position(self):
        with pytest.raises(
            ValueError,
            match=r"target must hold labels in \{-1, \+1\}, got 0.0 "
            r"at position \(1,\)",
        ):
            la.hinge_loss(torch.zeros(3), torch.tensor([1.0, 0.0, -1.0]))

    def test_label_check_can_be_switched_off(self):
        with la.value_checks(False):
            out = la.hinge_loss(torch.zeros(2), torch.tensor([0.0, 1.0]), reduction="none")
        close(out, torch.tensor([1.0, 1.0]))

    def test_bool_target(self):
        with pytest.raises(TypeError, match="target must be a real tensor of labels"):
            la.perceptron_loss(torch.zeros(2), torch.tensor([True, False]))

    def test_integer_scores(self):
        with pytest.raises(TypeError, match="input must be a floating-point tensor"):
            la.exponential_loss(torch.tensor([1, 2]), torch.ones(2))

    def test_negative_margin(self):
        with pytest.raises(ValueError, match=r"margin must be in \[0, inf\], got -1.0"):
            la.hinge_loss(torch.zeros(2), torch.ones(2), margin=-1.0)

    def test_unknown_reduction_suggests(self):
        with pytest.raises(ValueError, match="Did you mean 'mean'"):
            la.hinge_loss(torch.zeros(2), torch.ones(2), reduction="meen")


# --------------------------------------------------------------------------- torch parity


class TestTorchParity:
    @pytest.mark.parametrize("reduction", REDUCTIONS)
    def test_soft_margin(self, reduction):
        scores, signs = scores_and_signs(5, 4, seed=2)
        expected = F.soft_margin_loss(scores, signs, reduction=reduction)
        close(la.soft_margin_loss(scores, signs, reduction=reduction), expected)
        close(la.logistic_loss(scores, signs, reduction=reduction), expected)
        close(
            la.nn.SoftMarginLoss(reduction=reduction)(scores, signs),
            torch.nn.SoftMarginLoss(reduction=reduction)(scores, signs),
        )

    @pytest.mark.parametrize(
        ("weighted", "soft", "reduction"),
        list(itertools.product([False, True], [False, True], REDUCTIONS)),
    )
    def test_multilabel_soft_margin(self, weighted, soft, reduction):
        g = torch.Generator().manual_seed(4)
        logits = torch.randn(6, 5, generator=g, dtype=F64) * 3
        target = torch.rand(6, 5, generator=g, dtype=F64)
        target = target if soft else target.round()
        weight = torch.rand(5, generator=g, dtype=F64) + 0.5 if weighted else None
        expected = F.multilabel_soft_margin_loss(logits, target, weight=weight, reduction=reduction)
        out = la.multilabel_soft_margin_loss(logits, target, weight=weight, reduction=reduction)
        close(out, expected)
        module = la.nn.MultiLabelSoftMarginLoss(weight=weight, reduction=reduction)
        close(
            module(logits, target),
            torch.nn.MultiLabelSoftMarginLoss(weight=weight, reduction=reduction)(logits, target),
        )
        if weighted:
            assert "weight" in module.state_dict()

    def test_multilabel_soft_margin_is_mean_bce_over_classes(self):
        g = torch.Generator().manual_seed(5)
        logits = torch.randn(3, 4, generator=g, dtype=F64)
        target = torch.rand(3, 4, generator=g, dtype=F64).round()
        weight = torch.tensor([1.0, 2.0, 0.5, 1.5], dtype=F64)
        bce = F.binary_cross_entropy_with_logits(logits, target, weight=weight, reduction="none")
        out = la.multilabel_soft_margin_loss(logits, target, weight=weight, reduction="none")
        close(out, bce.mean(dim=1))

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    def test_multilabel_margin(self, reduction):
        g = torch.Generator().manual_seed(6)
        scores = torch.randn(4, 5, generator=g, dtype=F64)
        target = torch.tensor(
            [[3, 0, -1, 1, 2], [0, 1, 2, 3, 4], [-1, 2, 2, 2, 2], [4, -1, 0, 0, 0]]
        )
        expected = F.multilabel_margin_loss(scores, target, reduction=reduction)
        close(la.multilabel_margin_loss(scores, target, reduction=reduction), expected)
        close(
            la.nn.MultiLabelMarginLoss(reduction=reduction)(scores, target),
            torch.nn.MultiLabelMarginLoss(reduction=reduction)(scores, target),
        )

    def test_multilabel_margin_torch_doc_example_and_1d(self):
        # torch.nn.MultiLabelMarginLoss docs: 0.25 * ((1-(0.1-0.2)) + (1-(0.1-0.4)) +
        # (1-(0.8-0.2)) + (1-(0.8-0.4))) = 0.85.
        scores = torch.tensor([[0.1, 0.2, 0.4, 0.8]], dtype=F64)
        target = torch.tensor([[3, 0, -1, 1]])
        assert float(la.multilabel_margin_loss(scores, target)) == pytest.approx(0.85, rel=1e-12)
        close(
            la.multilabel_margin_loss(scores[0], target[0], reduction="none"),
            F.multilabel_margin_loss(scores[0], target[0], reduction="none"),
        )

    @pytest.mark.parametrize(
        ("p", "margin", "weighted", "reduction"),
        list(itertools.product([1, 2], [1.0, 0.3, -0.5], [False, True], REDUCTIONS)),
    )
    def test_multi_margin(self, p, margin, weighted, reduction):
        g = torch.Generator().manual_seed(7)
        scores = torch.randn(6, 4, generator=g, dtype=F64)
        target = torch.randint(0, 4, (6,), generator=g)
        weight = torch.rand(4, generator=g, dtype=F64) + 0.5 if weighted else None
        expected = F.multi_margin_loss(
            scores, target, p=p, margin=margin, weight=weight, reduction=reduction
        )
        out = la.multi_margin_loss(
            scores, target, p=p, margin=margin, weight=weight, reduction=reduction
        )
        close(out, expected)
        module = la.nn.MultiMarginLoss(p=p, margin=margin, weight=weight, reduction=reduction)
        reference = torch.nn.MultiMarginLoss(p=p, margin=margin, weight=weight, reduction=reduction)
        close(module(scores, target), reference(scores, target))

    def test_multi_margin_torch_doc_example_and_1d(self):
        # torch.nn.MultiMarginLoss docs: 1/4 * ((1-(0.8-0.1)) + (1-(0.8-0.2)) + (1-(0.8-0.4)))
        # = 0.325.
        scores = torch.tensor([[0.1, 0.2, 0.4, 0.8]], dtype=F64)
        assert float(la.multi_margin_loss(scores, torch.tensor([3]))) == pytest.approx(0.325)
        close(
            la.multi_margin_loss(scores[0], torch.tensor(3), reduction="none"),
            F.multi_margin_loss(scores[0], torch.tensor(3), reduction="none"),
        )

    def test_gradients_match_torch(self):
        g = torch.Generator().manual_seed(8)
        scores = torch.randn(5, 4, generator=g, dtype=F64, requires_grad=True)
        target = torch.randint(0, 4, (5,), generator=g)
        weight = torch.rand(4, generator=g, dtype=F64) + 0.5
        (ours,) = torch.autograd.grad(
            la.multi_margin_loss(scores, target, p=2, weight=weight), scores
        )
        (theirs,) = torch.autograd.grad(
            F.multi_margin_loss(scores, target, p=2, weight=weight), scores
        )
        close(ours, theirs)

    def test_half_precision_gives_float32(self):
        scores = torch.randn(3, 4).half()
        out = la.multi_margin_loss(scores, torch.tensor([0, 1, 3]))
        assert out.dtype == torch.float32
        close(
            out, F.multi_margin_loss(scores.float(), torch.tensor([0, 1, 3])), rtol=1e-3, atol=1e-3
        )


class TestTorchParityErrors:
    def test_multi_margin_index_out_of_range(self):
        with pytest.raises(
            ValueError,
            match=r"target has class index 4 at position \(1,\); "
            r"expected values in \[0, 4\)",
        ):
            la.multi_margin_loss(torch.zeros(2, 4), torch.tensor([0, 4]))

    def test_multi_margin_bad_p(self):
        with pytest.raises(ValueError, match="p must be 1 or 2, got 3"):
            la.multi_margin_loss(torch.zeros(2, 4), torch.tensor([0, 1]), p=3)
        with pytest.raises(TypeError, match="p must be an int"):
            la.multi_margin_loss(torch.zeros(2, 4), torch.tensor([0, 1]), p=1.0)

    def test_multi_margin_target_shape_and_weight(self):
        with pytest.raises(ValueError, match=r"target of class indices must have shape \(2,\)"):
            la.multi_margin_loss(torch.zeros(2, 4), torch.tensor([[0], [1]]))
        with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
            la.multi_margin_loss(torch.zeros(2, 4), torch.tensor([0, 1]), weight=torch.ones(3))

    def test_multilabel_margin_index_before_end_marker(self):
        with pytest.raises(
            ValueError,
            match=r"target has class index 7 at position \(0, 1\); "
            r"expected values in \[0, 4\) or -1 \(the "
            r"end-of-labels marker\)",
        ):
            la.multilabel_margin_loss(torch.zeros(1, 4), torch.tensor([[0, 7, -1, 2]]))
        # After the first -1 entries are ignored, but torch's kernel still rejects them
        # outside [-1, C); so do we, before the kernel, with a message.
        with pytest.raises(ValueError, match=r"class index -5 at position \(0, 3\)"):
            la.multilabel_margin_loss(torch.zeros(1, 4), torch.tensor([[0, 1, -1, -5]]))

    def test_multilabel_margin_ignores_entries_after_end_marker(self):
        # torch reads each row up to its first -1; what follows is never looked at.
        scores = torch.tensor([[0.1, 0.2, 0.4, 0.8]], dtype=F64)
        for tail in (-1, 0, 3):
            out = la.multilabel_margin_loss(scores, torch.tensor([[3, 0, -1, tail]]))
            assert float(out) == pytest.approx(0.85)

    def test_multilabel_float_target_and_shape(self):
        with pytest.raises(TypeError, match="target must be an integer tensor"):
            la.multilabel_margin_loss(torch.zeros(1, 4), torch.zeros(1, 4))
        with pytest.raises(ValueError, match=r"input must have shape \(N, C\) or \(C,\)"):
            la.multilabel_margin_loss(torch.zeros(1, 2, 4), torch.zeros(1, 2, 4, dtype=torch.long))

    def test_multilabel_soft_margin_target_range(self):
        with pytest.raises(ValueError, match="target must hold probabilities in \\[0, 1\\]"):
            la.multilabel_soft_margin_loss(torch.zeros(1, 2), torch.tensor([[1.0, -1.0]]))


def test_compiled_loss_recompiles_for_a_new_margin():
    # A changed float option becomes symbolic on recompile; validation must still trace.
    scores, signs = scores_and_signs(6, seed=9)
    scores, signs = scores.float(), signs.float()
    compiled = torch.compile(la.hinge_loss, fullgraph=True, backend="eager")
    for margin in (1.0, 2.0, 3.0):
        close(compiled(scores, signs, margin=margin), la.hinge_loss(scores, signs, margin=margin))
    for margin in (0.5, 1.5):
        module = torch.compile(
            la.nn.MultiMarginLoss(margin=margin), fullgraph=True, backend="eager"
        )
        target = torch.tensor([0, 1, 2])
        close(
            module(scores.view(3, 2).repeat(1, 2), target),
            la.multi_margin_loss(scores.view(3, 2).repeat(1, 2), target, margin=margin),
        )


@pytest.mark.parametrize(
    "name",
    [
        "squared_hinge_loss",
        "exponential_loss",
        "logistic_loss",
        "soft_margin_loss",
        "multilabel_soft_margin_loss",
    ],
)
def test_second_derivatives_where_declared(name):
    spec = la.get(name)
    assert spec.twice_differentiable
    example = spec.make_example(batch=3)
    scores = example.args[0].detach().clone().requires_grad_(True)

    def fn(x):
        return spec.function(x, *example.args[1:], **example.kwargs)

    assert torch.autograd.gradgradcheck(fn, (scores,))
