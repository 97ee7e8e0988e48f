"""Ranking, embedding and contrastive losses.

Reference values come from ``torch.nn.functional`` (computed in the test), from the
``MarginRankingLoss`` example printed in ``seeds/003_481cf3fcd381fdfa.txt`` (section 10), and
from formulas worked in the test (Hadsell et al. 2006 for the contrastive loss; cross-entropy
over cosine logits for InfoNCE, as issue 5 states it).
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


def gen(seed):
    return torch.Generator().manual_seed(seed)


def signs(n, seed):
    return (torch.randint(0, 2, (n,), generator=gen(seed)) * 2 - 1).to(F64)


# --------------------------------------------------------------------------- margin ranking


class TestMarginRankingSeed:
    # seeds/003_*, section 10: x1 = [[1], [2], [3]], x2 = [[2], [2], [2]], target [1, 1, -1].
    X1 = torch.tensor([[1.0], [2.0], [3.0]])
    X2 = torch.tensor([[2.0], [2.0], [2.0]])
    TARGET = torch.tensor([1.0, 1.0, -1.0])

    def test_seed_matrix_is_the_silent_broadcast(self):
        # What the seed prints (the torch of its day broadcast (3, 1) against (3,) silently):
        # a 3 x 3 matrix, entry [i, j] = max(0, -y_j (x1_i - x2_i)). Rebuilt here by
        # broadcasting explicitly; torch 2.13 itself now refuses with a RuntimeError.
        shape = (3, 3)
        out = F.margin_ranking_loss(
            self.X1.expand(shape),
            self.X2.expand(shape),
            self.TARGET.expand(shape),
            margin=0.0,
            reduction="none",
        )
        close(out, torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))

    def test_lossatlas_raises_instead(self):
        with pytest.raises(
            ValueError,
            match=r"target must have the same shape as input1 \(3, 1\), "
            r"got \(3,\) \(lossatlas does not broadcast",
        ):
            la.margin_ranking_loss(self.X1, self.X2, self.TARGET, reduction="none")

    def test_intended_pairs_are_the_seed_matrix_diagonal(self):
        out = la.margin_ranking_loss(
            self.X1.squeeze(1), self.X2.squeeze(1), self.TARGET, reduction="none"
        )
        close(out, torch.tensor([1.0, 0.0, 1.0]))

    def test_inputs_of_different_shapes(self):
        with pytest.raises(ValueError, match=r"input2 must have the same shape as input1 \(3,\)"):
            la.margin_ranking_loss(torch.zeros(3), torch.zeros(3, 1), torch.ones(3))


class TestTorchParity:
    @pytest.mark.parametrize(
        ("margin", "reduction"), list(itertools.product([0.0, 0.5, -0.3], REDUCTIONS))
    )
    def test_margin_ranking(self, margin, reduction):
        g = gen(1)
        x1, x2 = torch.randn(2, 7, generator=g, dtype=F64)
        y = signs(7, 2)
        expected = F.margin_ranking_loss(x1, x2, y, margin=margin, reduction=reduction)
        close(la.margin_ranking_loss(x1, x2, y, margin=margin, reduction=reduction), expected)
        close(
            la.nn.MarginRankingLoss(margin=margin, reduction=reduction)(x1, x2, y),
            torch.nn.MarginRankingLoss(margin=margin, reduction=reduction)(x1, x2, y),
        )

    @pytest.mark.parametrize(
        ("margin", "reduction"), list(itertools.product([1.0, 2.0, 0.0], REDUCTIONS))
    )
    def test_hinge_embedding(self, margin, reduction):
        x = torch.randn(4, 5, generator=gen(3), dtype=F64) * 2
        y = signs(20, 4).view(4, 5)
        expected = F.hinge_embedding_loss(x, y, margin=margin, reduction=reduction)
        close(la.hinge_embedding_loss(x, y, margin=margin, reduction=reduction), expected)
        close(
            la.nn.HingeEmbeddingLoss(margin=margin, reduction=reduction)(x, y),
            torch.nn.HingeEmbeddingLoss(margin=margin, reduction=reduction)(x, y),
        )

    @pytest.mark.parametrize(
        ("margin", "reduction"), list(itertools.product([0.0, 0.5, -0.5, 1.0], REDUCTIONS))
    )
    def test_cosine_embedding(self, margin, reduction):
        g = gen(5)
        x1, x2 = torch.randn(2, 6, 3, generator=g, dtype=F64)
        y = signs(6, 6)
        expected = F.cosine_embedding_loss(x1, x2, y, margin=margin, reduction=reduction)
        close(la.cosine_embedding_loss(x1, x2, y, margin=margin, reduction=reduction), expected)
        close(
            la.nn.CosineEmbeddingLoss(margin=margin, reduction=reduction)(x1, x2, y),
            torch.nn.CosineEmbeddingLoss(margin=margin, reduction=reduction)(x1, x2, y),
        )

    def test_cosine_embedding_single_pair(self):
        x1, x2 = torch.randn(2, 3, generator=gen(7), dtype=F64)
        y = torch.tensor(-1.0, dtype=F64)
        close(
            la.cosine_embedding_loss(x1, x2, y, reduction="none"),
            F.cosine_embedding_loss(x1, x2, y, reduction="none"),
        )

    @pytest.mark.parametrize(
        ("margin", "p", "eps", "swap", "reduction"),
        list(
            itertools.product([1.0, 0.2], [2.0, 1.0, 3.0], [1e-6, 0.0], [False, True], REDUCTIONS)
        ),
    )
    def test_triplet(self, margin, p, eps, swap, reduction):
        g = gen(8)
        a, pos, neg = torch.randn(3, 5, 4, generator=g, dtype=F64)
        options = {"margin": margin, "p": p, "eps": eps, "swap": swap, "reduction": reduction}
        expected = F.triplet_margin_loss(a, pos, neg, **options)
        close(la.triplet_margin_loss(a, pos, neg, **options), expected)
        close(
            la.nn.TripletMarginLoss(**options)(a, pos, neg),
            torch.nn.TripletMarginLoss(**options)(a, pos, neg),
        )

    @pytest.mark.parametrize(
        ("distance", "margin", "swap", "reduction"),
        list(itertools.product(["default", "cosine", "l1"], [1.0, 0.3], [False, True], REDUCTIONS)),
    )
    def test_triplet_with_distance(self, distance, margin, swap, reduction):
        functions = {
            "default": None,
            "cosine": lambda a, b: 1.0 - F.cosine_similarity(a, b),
            "l1": torch.nn.PairwiseDistance(p=1.0),
        }
        g = gen(9)
        a, pos, neg = torch.randn(3, 5, 4, generator=g, dtype=F64)
        options = {
            "distance_function": functions[distance],
            "margin": margin,
            "swap": swap,
            "reduction": reduction,
        }
        expected = F.triplet_margin_with_distance_loss(a, pos, neg, **options)
        close(la.triplet_margin_with_distance_loss(a, pos, neg, **options), expected)
        close(
            la.nn.TripletMarginWithDistanceLoss(**options)(a, pos, neg),
            torch.nn.TripletMarginWithDistanceLoss(**options)(a, pos, neg),
        )

    def test_default_distance_is_triplet_margin_loss(self):
        a, pos, neg = torch.randn(3, 6, 4, generator=gen(10), dtype=F64)
        close(
            la.triplet_margin_with_distance_loss(a, pos, neg, swap=True),
            la.triplet_margin_loss(a, pos, neg, swap=True),
        )

    def test_distance_module_is_a_submodule(self):
        distance = torch.nn.PairwiseDistance(p=1.0)
        loss = la.nn.TripletMarginWithDistanceLoss(distance_function=distance)
        assert loss.distance_function is distance
        assert dict(loss.named_children())["distance_function"] is distance

    def test_gradients_match_torch(self):
        a, pos, neg = (
            t.requires_grad_(True) for t in torch.randn(3, 5, 4, generator=gen(11), dtype=F64)
        )
        ours = torch.autograd.grad(la.triplet_margin_loss(a, pos, neg, swap=True), (a, pos, neg))
        theirs = torch.autograd.grad(F.triplet_margin_loss(a, pos, neg, swap=True), (a, pos, neg))
        for x, y in zip(ours, theirs, strict=True):
            close(x, y)

    def test_half_precision_gives_float32(self):
        a, pos, neg = torch.randn(3, 5, 4, generator=gen(12)).half()
        out = la.triplet_margin_loss(a, pos, neg)
        assert out.dtype == torch.float32
        close(out, F.triplet_margin_loss(a.float(), pos.float(), neg.float()))

    def test_empty_batch_mean_is_zero(self):
        empty = torch.zeros(0, 4, requires_grad=True)
        out = la.triplet_margin_loss(empty, empty, empty)
        assert float(out.detach()) == 0.0
        (grad,) = torch.autograd.grad(out, empty)
        assert grad.shape == (0, 4)


class TestEmbeddingErrors:
    def test_label_values(self):
        with pytest.raises(ValueError, match=r"target must hold labels in \{-1, \+1\}, got 0"):
            la.hinge_embedding_loss(torch.zeros(2), torch.tensor([1, 0]))
        with pytest.raises(TypeError, match="target must be a real tensor of labels"):
            la.margin_ranking_loss(torch.zeros(2), torch.zeros(2), torch.tensor([True, False]))

    def test_cosine_target_shape_and_margin(self):
        with pytest.raises(
            ValueError,
            match=r"target must have shape \(3,\) \(one label per "
            r"pair\) for inputs of shape \(3, 2\), got \(3, 1\)",
        ):
            la.cosine_embedding_loss(torch.ones(3, 2), torch.ones(3, 2), torch.ones(3, 1))
        with pytest.raises(ValueError, match=r"input1 must have shape \(N, D\) or \(D,\)"):
            la.cosine_embedding_loss(torch.ones(3, 2, 2), torch.ones(3, 2, 2), torch.ones(3, 2))

    def test_triplet_options(self):
        x = torch.ones(2, 3)
        with pytest.raises(ValueError, match=r"negative must have the same shape as anchor"):
            la.triplet_margin_loss(x, x, torch.ones(2, 4))

    def test_distance_function_errors(self):
        x = torch.ones(2, 3)
        with pytest.raises(TypeError, match="distance_function must return a floating tensor"):
            la.triplet_margin_with_distance_loss(x, x, x, distance_function=lambda a, b: 1.0)


# --------------------------------------------------------------------------- contrastive


class TestContrastive:
    def test_hand_formula_with_half_factor(self):
        # Hadsell et al. 2006, eq. (4): L = (1 - Y) 1/2 D^2 + Y 1/2 max(0, m - D)^2 with their
        # Y = 0 for similar pairs, i.e. our same = 1 - Y.
        g = gen(20)
        x1, x2 = torch.randn(2, 8, 3, generator=g, dtype=F64)
        same = torch.rand(8, generator=g, dtype=F64).round()
        for margin in (1.0, 2.5):
            d = torch.sqrt(((x1 - x2) ** 2).sum(dim=1))
            expected = 0.5 * same * d**2 + 0.5 * (1 - same) * torch.clamp(margin - d, min=0) ** 2
            for reduction in REDUCTIONS:
                out = la.contrastive_loss(x1, x2, same, margin=margin, reduction=reduction)
                ref = {"none": expected, "mean": expected.mean(), "sum": expected.sum()}
                close(out, ref[reduction])

    def test_bool_and_soft_labels(self):
        x1, x2 = torch.randn(2, 5, 3, generator=gen(21), dtype=F64)
        same = torch.tensor([True, False, True, False, False])
        close(la.contrastive_loss(x1, x2, same), la.contrastive_loss(x1, x2, same.to(F64)))
        # A soft label interpolates the two terms linearly.
        half = la.contrastive_loss(x1, x2, torch.full((5,), 0.5, dtype=F64), reduction="none")
        ones = la.contrastive_loss(x1, x2, torch.ones(5, dtype=F64), reduction="none")
        zeros = la.contrastive_loss(x1, x2, torch.zeros(5, dtype=F64), reduction="none")
        close(half, 0.5 * (ones + zeros))

    @pytest.mark.parametrize("dtype", [torch.float32, F64])
    def test_finite_gradient_at_zero_distance(self, dtype):
        x1 = torch.randn(4, 3, generator=gen(22)).to(dtype).requires_grad_(True)
        x2 = x1.detach().clone().requires_grad_(True)
        same = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=dtype)
        out = la.contrastive_loss(x1, x2, same, margin=2.0, reduction="none")
        # Identical embeddings: similar pairs cost 0, dissimilar ones 1/2 * margin^2 = 2.
        close(out, torch.tensor([0.0, 2.0, 0.0, 2.0], dtype=dtype))
        grads = torch.autograd.grad(out.sum(), (x1, x2))
        for grad in grads:
            assert torch.isfinite(grad).all()
            close(grad, torch.zeros_like(grad))

    def test_module_and_symmetry(self):
        x1, x2 = torch.randn(2, 5, 3, generator=gen(23), dtype=F64)
        same = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0], dtype=F64)
        module = la.nn.ContrastiveLoss(margin=1.5, reduction="sum")
        close(module(x1, x2, same), la.contrastive_loss(x1, x2, same, margin=1.5, reduction="sum"))
        close(la.contrastive_loss(x2, x1, same), la.contrastive_loss(x1, x2, same))

    def test_errors(self):
        x = torch.ones(3, 2)
        with pytest.raises(ValueError, match=r"same must have shape \(3,\) \(one label per pair\)"):
            la.contrastive_loss(x, x, torch.ones(3, 1))
        with pytest.raises(ValueError, match=r"same must hold probabilities in \[0, 1\], got -1.0"):
            la.contrastive_loss(x, x, torch.tensor([1.0, -1.0, 0.0]))
        with pytest.raises(TypeError, match="same must be a floating or bool tensor"):
            la.contrastive_loss(x, x, torch.tensor([1, 0, 1]))
        with pytest.raises(ValueError, match=r"x2 must have the same shape as x1 \(3, 2\)"):
            la.contrastive_loss(x, torch.ones(3, 3), torch.ones(3))


# --------------------------------------------------------------------------- InfoNCE


def info_nce_reference(q, k, t, negatives=None, reduction="mean"):
    """Issue 5's definition: cross_entropy(q_n @ k_n.T / t, arange(N)) (+ negatives' columns)."""
    qn, kn = F.normalize(q, dim=1), F.normalize(k, dim=1)
    logits = qn @ kn.T / t
    if negatives is not None:
        logits = torch.cat([logits, qn @ F.normalize(negatives, dim=1).T / t], dim=1)
    return F.cross_entropy(logits, torch.arange(q.shape[0]), reduction=reduction)


class TestInfoNCE:
    @pytest.mark.parametrize(
        ("temperature", "reduction"), list(itertools.product([0.07, 0.5, 1.0], REDUCTIONS))
    )
    def test_equals_cross_entropy_on_cosine_logits(self, temperature, reduction):
        q, k = torch.randn(2, 6, 5, generator=gen(30), dtype=F64) * 3
        out = la.info_nce_loss(q, k, temperature=temperature, reduction=reduction)
        close(out, info_nce_reference(q, k, temperature, reduction=reduction))

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    def test_extra_negatives(self, reduction):
        q, k = torch.randn(2, 4, 5, generator=gen(31), dtype=F64)
        negatives = torch.randn(7, 5, generator=gen(32), dtype=F64)
        out = la.info_nce_loss(q, k, temperature=0.2, negatives=negatives, reduction=reduction)
        close(out, info_nce_reference(q, k, 0.2, negatives, reduction=reduction))

    def test_symmetric_is_mean_of_both_directions(self):
        q, k = torch.randn(2, 6, 5, generator=gen(33), dtype=F64)
        forward = info_nce_reference(q, k, 0.1, reduction="none")
        backward = info_nce_reference(k, q, 0.1, reduction="none")
        out = la.info_nce_loss(q, k, temperature=0.1, symmetric=True, reduction="none")
        close(out, 0.5 * (forward + backward))
        close(
            la.info_nce_loss(q, k, temperature=0.1, symmetric=True),
            0.5 * (forward.mean() + backward.mean()),
        )
        close(la.info_nce_loss(k, q, temperature=0.1, symmetric=True), out.mean())

    def test_symmetric_with_negatives_uses_them_query_side_only(self):
        q, k = torch.randn(2, 4, 5, generator=gen(34), dtype=F64)
        negatives = torch.randn(3, 5, generator=gen(35), dtype=F64)
        out = la.info_nce_loss(q, k, symmetric=True, negatives=negatives, reduction="none")
        expected = 0.5 * (
            info_nce_reference(q, k, 0.07, negatives, reduction="none")
            + info_nce_reference(k, q, 0.07, reduction="none")
        )
        close(out, expected)

    @pytest.mark.parametrize("symmetric", [False, True])
    @pytest.mark.parametrize("kind", ["identical", "opposite", "all-equal"])
    def test_finite_at_temperature_001(self, kind, symmetric):
        q = torch.randn(5, 8, generator=gen(36)).requires_grad_(True)
        if kind == "identical":
            k = q.detach().clone()
        elif kind == "opposite":
            k = -q.detach().clone()
        else:
            q = torch.ones(5, 8, requires_grad=True)
            k = torch.ones(5, 8)
        k.requires_grad_(True)
        out = la.info_nce_loss(q, k, temperature=0.01, symmetric=symmetric)
        assert torch.isfinite(out)
        grads = torch.autograd.grad(out, (q, k))
        assert all(torch.isfinite(g).all() for g in grads)
        if kind == "all-equal":
            # Every logit is 1 / 0.01: the positive is one of N equal candidates -> log N.
            assert float(out.detach()) == pytest.approx(math.log(5), rel=1e-5)  # float32
        close(
            out.double(),
            info_nce_reference(q.double(), k.double(), 0.01)
            if not symmetric
            else 0.5
            * (
                info_nce_reference(q.double(), k.double(), 0.01)
                + info_nce_reference(k.double(), q.double(), 0.01)
            ),
            rtol=1e-4,
            atol=1e-4,
        )

    def test_zero_vector_is_finite(self):
        q = torch.zeros(3, 4, requires_grad=True)
        out = la.info_nce_loss(q, torch.randn(3, 4, generator=gen(37)))
        assert float(out.detach()) == pytest.approx(math.log(3))
        (grad,) = torch.autograd.grad(out, q)
        assert torch.isfinite(grad).all()

    def test_module(self):
        q, k = torch.randn(2, 4, 5, generator=gen(38), dtype=F64)
        negatives = torch.randn(3, 5, generator=gen(39), dtype=F64)
        module = la.nn.InfoNCELoss(temperature=0.3, symmetric=True)
        close(module(q, k), la.info_nce_loss(q, k, temperature=0.3, symmetric=True))
        close(
            module(q, k, negatives),
            la.info_nce_loss(q, k, temperature=0.3, symmetric=True, negatives=negatives),
        )

    def test_half_precision_and_empty(self):
        q, k = torch.randn(2, 4, 5, generator=gen(40))
        out = la.info_nce_loss(q.half(), k.half())
        assert out.dtype == torch.float32
        close(out, la.info_nce_loss(q.half().float(), k.half().float()))
        empty = torch.zeros(0, 5, requires_grad=True)
        assert float(la.info_nce_loss(empty, empty).detach()) == 0.0

    def test_errors(self):
        x = torch.ones(3, 4)
        with pytest.raises(ValueError, match=r"negatives must have shape \(\*, 4\)"):
            la.info_nce_loss(x, x, negatives=torch.ones(5, 3))
        with pytest.raises(ValueError, match=r"query must have shape \(\*, \*\) \(N, D\)"):
            la.info_nce_loss(torch.ones(4), torch.ones(4))
        with pytest.raises(ValueError, match=r"key must have the same shape as query \(3, 4\)"):
            la.info_nce_loss(x, torch.ones(2, 4))


def test_info_nce_with_every_option_compiles_fullgraph():
    q, k = torch.randn(2, 5, 4, generator=gen(50))
    negatives = torch.randn(3, 4, generator=gen(51))
    options = {"negatives": negatives, "symmetric": True, "temperature": 0.01}
    compiled = torch.compile(la.info_nce_loss, fullgraph=True, backend="eager")
    close(compiled(q, k, **options), la.info_nce_loss(q, k, **options), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("shape1", "shape2", "target_shape"),
    [
        ((3, 1), (1, 3), (3, 1)),  # torch 2.13 broadcasts this to (3, 3)
        ((3,), (3,), (1,)),  # and this, silently, to (3,)
    ],
)
def test_margin_ranking_rejects_what_torch_still_broadcasts(shape1, shape2, target_shape):
    with pytest.raises(ValueError, match="must have the same shape as input1"):
        la.margin_ranking_loss(torch.zeros(shape1), torch.zeros(shape2), torch.ones(target_shape))


@pytest.mark.parametrize("name", ["contrastive_loss", "info_nce_loss"])
def test_second_derivatives_where_declared(name):
    spec = la.get(name)
    assert spec.twice_differentiable
    example = spec.make_example(batch=3)
    x1, x2 = (a.detach().clone().requires_grad_(True) for a in example.args[:2])

    def fn(a, b):
        return spec.function(a, b, *example.args[2:], **example.kwargs)

    assert torch.autograd.gradgradcheck(fn, (x1, x2))
