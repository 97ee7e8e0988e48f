"""Cross-entropy family: torch parity for every option combination, the seeds' numbers, errors.

Reference values come from ``torch.nn.functional`` (computed in the test) and from the printed
outputs in ``seeds/003_481cf3fcd381fdfa.txt`` (sections 1.1, 1.2, 2, 3, 4).
"""

import itertools

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la

F64 = torch.float64

# seeds/003_*, section 1.1: three samples, two classes.
SEED_LOGITS = torch.tensor([[1.0, 2.0], [1.0, 3.0], [1.0, 3.0]])
SEED_TARGET = torch.tensor([0, 1, 1])
# seeds/003_*, section 3: four samples, two "neurons", one-hot targets.
SEED_SCORES = torch.tensor([[1.0, 2.0], [2.0, 2.0], [3.0, 4.0], [4.0, 5.0]])
SEED_ONEHOT = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])


def close(actual, expected, *, rtol=1e-6, atol=1e-9):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


class TestSeedValues:
    def test_ce_reductions(self):
        # Printed: tensor([1.3133, 0.1269, 0.1269]) tensor(1.5671) tensor(0.5224)
        none = la.cross_entropy(SEED_LOGITS, SEED_TARGET, reduction="none")
        close(none, torch.tensor([1.3133, 0.1269, 0.1269]), atol=5.1e-5, rtol=0)
        assert (
            round(float(la.cross_entropy(SEED_LOGITS, SEED_TARGET, reduction="sum")), 4) == 1.5671
        )
        assert round(float(la.cross_entropy(SEED_LOGITS, SEED_TARGET)), 4) == 0.5224

    def test_ce_hand_computed_first_sample(self):
        # seeds/003_* verify by hand: -x_class + log(sum exp x) = 1.3132617 for [1, 2], class 0.
        value = la.cross_entropy(SEED_LOGITS[:1].double(), SEED_TARGET[:1], reduction="none")
        close(
            value,
            torch.tensor([-1.0 + torch.log(torch.tensor(torch.e) + torch.e**2).item()], dtype=F64),
        )

    def test_ce_weighted(self):
        # Printed: tensor([1.3133, 0.2539, 0.2539]) tensor(1.8210) tensor(0.3642), and the
        # article's worked mean (1.3133 + 0.2539 + 0.2539) / (1 + 2 + 2) = 0.3642.
        weight = torch.tensor([1.0, 2.0])
        none = la.cross_entropy(SEED_LOGITS, SEED_TARGET, weight=weight, reduction="none")
        close(none, torch.tensor([1.3133, 0.2539, 0.2539]), atol=5.1e-5, rtol=0)
        total = la.cross_entropy(SEED_LOGITS, SEED_TARGET, weight=weight, reduction="sum")
        assert round(float(total), 4) == 1.8210
        assert round(float(la.cross_entropy(SEED_LOGITS, SEED_TARGET, weight=weight)), 4) == 0.3642

    def test_nll(self):
        # Printed: NLL Loss tensor([-1., -3., -3.]) tensor(-7.) tensor(-2.3333)
        weight = torch.tensor([1.0, 1.0])
        none = la.nll_loss(SEED_LOGITS, SEED_TARGET, weight=weight, reduction="none")
        close(none, torch.tensor([-1.0, -3.0, -3.0]))
        assert float(la.nll_loss(SEED_LOGITS, SEED_TARGET, reduction="sum")) == -7.0
        assert round(float(la.nll_loss(SEED_LOGITS, SEED_TARGET)), 4) == -2.3333

    @pytest.mark.parametrize("use_logits", [False, True])
    def test_bce(self, use_logits):
        # Printed (BCELoss on sigmoid, and BCEWithLogitsLoss): the 4x2 matrix, sum 11.7856,
        # mean 1.4732.
        expected = torch.tensor(
            [[0.3133, 2.1269], [0.1269, 2.1269], [3.0486, 0.0181], [4.0181, 0.0067]]
        )
        weight = torch.tensor([1.0, 1.0])
        if use_logits:
            fn, x = la.binary_cross_entropy_with_logits, SEED_SCORES
        else:
            fn, x = la.binary_cross_entropy, torch.sigmoid(SEED_SCORES)
        close(fn(x, SEED_ONEHOT, weight=weight, reduction="none"), expected, atol=5.1e-5, rtol=0)
        assert round(float(fn(x, SEED_ONEHOT, weight=weight, reduction="sum")), 4) == 11.7856
        assert round(float(fn(x, SEED_ONEHOT, weight=weight)), 4) == 1.4732


REDUCTIONS = ["none", "mean", "sum"]


def _ce_case(spatial, prob_target, seed=0, C=4, N=6):
    g = torch.Generator().manual_seed(seed)
    shape = (N, C, *spatial)
    logits = torch.randn(*shape, generator=g, dtype=F64)
    if prob_target:
        target = torch.softmax(torch.randn(*shape, generator=g, dtype=F64), dim=1)
    else:
        target = torch.randint(0, C, (N, *spatial), generator=g)
        target[0] = -100 if not spatial else target[0]
        target.view(-1)[1] = 2  # ensure a fixed class somewhere
        target.view(-1)[-1] = -100  # one ignored element
    return logits, target


@pytest.mark.parametrize(
    ("spatial", "prob_target", "weighted", "smoothing", "reduction"),
    list(itertools.product([(), (3, 2)], [False, True], [False, True], [0.0, 0.2], REDUCTIONS)),
)
def test_cross_entropy_matches_torch(spatial, prob_target, weighted, smoothing, reduction):
    logits, target = _ce_case(spatial, prob_target)
    weight = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=F64) if weighted else None
    kwargs = dict(weight=weight, label_smoothing=smoothing, reduction=reduction)
    expected = F.cross_entropy(logits, target, **kwargs)
    close(la.cross_entropy(logits, target, **kwargs), expected)
    close(la.nn.CrossEntropyLoss(**kwargs)(logits, target), expected)
    close(torch.nn.CrossEntropyLoss(**kwargs)(logits, target), expected)


@pytest.mark.parametrize(
    ("weighted", "ignore_index", "reduction"),
    list(itertools.product([False, True], [-100, 1], REDUCTIONS)),
)
def test_nll_loss_matches_torch(weighted, ignore_index, reduction):
    logits, target = _ce_case((), False, seed=1)
    log_p = torch.log_softmax(logits, dim=1)
    target = torch.where(target == -100, torch.tensor(ignore_index), target)
    weight = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=F64) if weighted else None
    kwargs = dict(weight=weight, ignore_index=ignore_index, reduction=reduction)
    close(la.nll_loss(log_p, target, **kwargs), F.nll_loss(log_p, target, **kwargs))


@pytest.mark.parametrize(
    ("spatial", "weighted", "epsilon", "reduction"),
    list(itertools.product([(), (2, 3)], [False, True], [0.0, 0.1, 1.0], REDUCTIONS)),
)
def test_label_smoothing_ce_equals_torch_label_smoothing(spatial, weighted, epsilon, reduction):
    logits, target = _ce_case(spatial, False, seed=2)
    weight = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=F64) if weighted else None
    ours = la.label_smoothing_cross_entropy(
        logits, target, epsilon=epsilon, weight=weight, reduction=reduction
    )
    expected = F.cross_entropy(
        logits, target, weight=weight, label_smoothing=epsilon, reduction=reduction
    )
    close(ours, expected)


def test_label_smoothing_spreads_epsilon_over_all_classes():
    # Worked by hand: smoothed target puts 1 - eps + eps/C on the true class, eps/C elsewhere.
    logits = torch.tensor([[0.3, -1.2, 2.0]], dtype=F64)
    eps, C = 0.3, 3
    log_p = torch.log_softmax(logits, dim=1)[0]
    q = torch.full((C,), eps / C, dtype=F64)
    q[1] += 1 - eps
    expected = -(q * log_p).sum()
    close(la.label_smoothing_cross_entropy(logits, torch.tensor([1]), epsilon=eps), expected)


@pytest.mark.parametrize(
    ("weighted", "pos_weighted", "reduction"),
    list(itertools.product([False, True], [False, True], REDUCTIONS)),
)
def test_bce_family_matches_torch(weighted, pos_weighted, reduction):
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(5, 3, generator=g, dtype=F64) * 3
    target = torch.rand(5, 3, generator=g, dtype=F64)
    weight = torch.rand(3, generator=g, dtype=F64) if weighted else None
    pos_weight = torch.rand(3, generator=g, dtype=F64) * 3 if pos_weighted else None
    close(
        la.binary_cross_entropy_with_logits(
            logits, target, weight=weight, pos_weight=pos_weight, reduction=reduction
        ),
        F.binary_cross_entropy_with_logits(
            logits, target, weight=weight, pos_weight=pos_weight, reduction=reduction
        ),
    )
    probs = torch.sigmoid(logits)
    close(
        la.binary_cross_entropy(probs, target, weight=weight, reduction=reduction),
        F.binary_cross_entropy(probs, target, weight=weight, reduction=reduction),
    )


class TestSafeReductions:
    def test_all_ignored_is_zero_with_zero_grad(self):
        logits = torch.randn(4, 3, dtype=F64, requires_grad=True)
        target = torch.full((4,), -100)
        assert torch.isnan(F.cross_entropy(logits, target))  # torch: NaN
        loss = la.cross_entropy(logits, target)
        assert float(loss.detach()) == 0.0
        loss.backward()
        assert torch.equal(logits.grad, torch.zeros_like(logits))

    def test_all_ignored_weighted_nll_and_smoothing(self):
        logits = torch.randn(2, 3, dtype=F64, requires_grad=True)
        target = torch.full((2,), 7)
        w = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
        for loss in (
            la.nll_loss(logits, target, ignore_index=7, weight=w),
            la.cross_entropy(logits, target, ignore_index=7, label_smoothing=0.3),
            la.label_smoothing_cross_entropy(logits, target, ignore_index=7),
        ):
            assert float(loss.detach()) == 0.0

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
    def test_extreme_logits_finite(self, dtype):
        logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]], dtype=dtype, requires_grad=True)
        loss = la.cross_entropy(logits, torch.tensor([1, 0]))
        loss.backward()
        assert loss.dtype == torch.float32
        assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
        assert float(loss.detach()) == pytest.approx(
            2e4, rel=1e-2
        )  # -log softmax at the wrong class
        bce = la.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        assert torch.isfinite(bce)

    def test_bf16_autocast(self):
        layer = torch.nn.Linear(3, 2)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = layer(torch.randn(4, 3) * 1e3)
            loss = la.binary_cross_entropy_with_logits(logits, torch.ones(4, 2, dtype=logits.dtype))
        assert loss.dtype == torch.float32 and torch.isfinite(loss)


class TestErrors:
    def test_target_out_of_range_names_value_and_position(self):
        target = torch.tensor([[0, 1, 2], [3, 4, 9]])
        with pytest.raises(ValueError, match=r"class index 9 at position \(1, 2\)"):
            la.cross_entropy(torch.randn(2, 8, 3), target)

    def test_negative_index_named(self):
        with pytest.raises(ValueError, match=r"class index -1 at position \(2,\).*\[0, 3\)"):
            la.cross_entropy(torch.randn(3, 3), torch.tensor([0, 1, -1]))

    def test_value_checks_can_be_switched_off(self):
        target = torch.tensor([0, 1, -5])
        with la.value_checks(False):
            assert not la.value_checks_enabled()
            la.nll_loss(torch.randn(3, 2), target, ignore_index=-5)
        assert la.value_checks_enabled()

    def test_float_target_of_index_shape(self):
        with pytest.raises(TypeError, match="shape of class indices .* must be torch.long"):
            la.cross_entropy(torch.randn(3, 4), torch.tensor([0.0, 1.0, 2.0]))

    def test_integer_logits(self):
        with pytest.raises(TypeError, match="input must be a floating-point tensor.*int64"):
            la.cross_entropy(torch.ones(3, 4, dtype=torch.long), torch.tensor([0, 1, 2]))

    def test_bce_input_outside_unit_interval(self):
        with pytest.raises(ValueError, match=r"input must hold probabilities in \[0, 1\], got 1.5"):
            la.binary_cross_entropy(torch.tensor([0.2, 1.5]), torch.tensor([0.0, 1.0]))

    @pytest.mark.parametrize("fn", [la.binary_cross_entropy, la.binary_cross_entropy_with_logits])
    def test_bce_shapes_must_match(self, fn):
        with pytest.raises(ValueError, match=r"target must have the same shape as input \(4, 1\)"):
            fn(torch.rand(4, 1), torch.rand(4))

    def test_unknown_reduction_suggests(self):
        with pytest.raises(ValueError, match="Did you mean 'sum'"):
            la.cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), reduction="summ")

    def test_weight_shape(self):
        with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
            la.cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), weight=torch.ones(4))

    def test_index_target_shape(self):
        with pytest.raises(ValueError, match=r"class indices must have shape \(2, 5\)"):
            la.cross_entropy(torch.randn(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))


def test_module_buffers_move_and_save():
    module = la.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([2.0, 3.0]))
    assert "pos_weight" in module.state_dict()
    assert module.double().pos_weight.dtype == F64
    assert "pos_weight=[2.0, 3.0]" in repr(
        la.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([2.0, 3.0]))
    )
