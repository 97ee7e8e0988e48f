"""Margin-softmax heads: ArcFace, CosFace, SphereFace.

Reference logits are computed by hand in the test from the papers' definitions, one entry at
a time with :mod:`math` (ArcFace: Deng et al. 2019, eq. 3, with the ``th``/``mm`` fallback and
``easy_margin`` of the official insightface code; CosFace: Wang et al. 2018, eq. 4;
SphereFace: Liu et al. 2017, eq. 7 ``psi``); losses against ``torch.nn.functional.cross_entropy``
of those logits.
"""

import math

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la

F64 = torch.float64
HEADS = {
    "arcface": (la.arcface_logits, la.arcface_loss, la.nn.ArcFaceLoss),
    "cosface": (la.cosface_logits, la.cosface_loss, la.nn.CosFaceLoss),
    "sphereface": (la.sphereface_logits, la.sphereface_loss, la.nn.SphereFaceLoss),
}


def close(actual, expected, *, rtol=1e-6, atol=1e-9):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


def problem(seed=0, n=6, c=4, d=5):
    g = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(n, d, generator=g, dtype=F64) * 2
    weight = torch.randn(c, d, generator=g, dtype=F64)
    target = torch.randint(0, c, (n,), generator=g)
    return embeddings, weight, target


def hand_cosines(embeddings, weight):
    rows = []
    for e in embeddings.tolist():
        row = []
        for w in weight.tolist():
            dot = sum(a * b for a, b in zip(e, w, strict=True))
            row.append(dot / math.sqrt(sum(a * a for a in e)) / math.sqrt(sum(b * b for b in w)))
        rows.append(row)
    return rows


def hand_logits(embeddings, weight, target, psi, scale):
    """``scale * psi(theta)`` for the target entry, ``scale * cos(theta)`` elsewhere."""
    cosines = hand_cosines(embeddings, weight)
    out = [
        [scale * (psi(math.acos(c)) if j == int(target[i]) else c) for j, c in enumerate(row)]
        for i, row in enumerate(cosines)
    ]
    return torch.tensor(out, dtype=F64)


def arcface_psi(margin, easy_margin=False):
    def psi(theta):
        if easy_margin:
            return math.cos(theta + margin) if math.cos(theta) > 0 else math.cos(theta)
        if theta < math.pi - margin:  # insightface: cos(theta) > th = cos(pi - m)
            return math.cos(theta + margin)
        return math.cos(theta) - margin * math.sin(margin)  # mm = sin(pi - m) * m

    return psi


def sphereface_psi(m):
    def psi(theta):
        k = math.floor(m * theta / math.pi)
        return (-1) ** k * math.cos(m * theta) - 2 * k

    return psi


def at_angle(theta):
    """A 2-D embedding at angle ``theta`` from the centre (1, 0)."""
    return torch.tensor([[math.cos(theta), math.sin(theta)]], dtype=F64)


CENTRES_2D = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=F64)


class TestLogitsByHand:
    @pytest.mark.parametrize("margin", [0.5, 0.2, 1.2])
    @pytest.mark.parametrize("easy_margin", [False, True])
    def test_arcface(self, margin, easy_margin):
        e, w, t = problem(1)
        out = la.arcface_logits(e, w, t, scale=30.0, margin=margin, easy_margin=easy_margin)
        close(out, hand_logits(e, w, t, arcface_psi(margin, easy_margin), 30.0))

    @pytest.mark.parametrize("margin", [0.35, 0.0, 0.8])
    def test_cosface(self, margin):
        e, w, t = problem(2)
        out = la.cosface_logits(e, w, t, scale=30.0, margin=margin)
        close(out, hand_logits(e, w, t, lambda theta: math.cos(theta) - margin, 30.0))

    @pytest.mark.parametrize("margin", [1, 2, 3, 4])
    def test_sphereface(self, margin):
        e, w, t = problem(3, n=12)
        out = la.sphereface_logits(e, w, t, scale=10.0, margin=margin)
        close(out, hand_logits(e, w, t, sphereface_psi(margin), 10.0))

    def test_arcface_fallback_branch(self):
        # theta = 3 rad > pi - 0.5: the target logit is cos(3) - 0.5 sin(0.5), not cos(3.5).
        out = la.arcface_logits(at_angle(3.0), CENTRES_2D, torch.tensor([0]), scale=1.0, margin=0.5)
        assert float(out[0, 0]) == pytest.approx(math.cos(3.0) - 0.5 * math.sin(0.5), rel=1e-9)
        # theta = 2 rad: margin applied unless easy_margin (cos(2) < 0 keeps cos(2)).
        hard = la.arcface_logits(at_angle(2.0), CENTRES_2D, torch.tensor([0]), scale=1.0)
        easy = la.arcface_logits(
            at_angle(2.0), CENTRES_2D, torch.tensor([0]), scale=1.0, easy_margin=True
        )
        assert float(hard[0, 0]) == pytest.approx(math.cos(2.5), rel=1e-9)
        assert float(easy[0, 0]) == pytest.approx(math.cos(2.0), rel=1e-9)

    @pytest.mark.parametrize(
        ("name", "options"),
        [
            ("arcface", {"margin": 0.5}),
            ("arcface", {"margin": 1.0}),
            ("sphereface", {"margin": 4}),
            ("sphereface", {"margin": 3}),
            ("cosface", {"margin": 0.35}),
        ],
    )
    def test_target_logit_decreases_with_the_angle(self, name, options):
        logits_fn = HEADS[name][0]
        thetas = torch.linspace(0.01, math.pi - 0.01, 400, dtype=F64)
        embeddings = torch.stack([thetas.cos(), thetas.sin()], dim=1)
        target = torch.zeros(400, dtype=torch.long)
        target_logit = logits_fn(embeddings, CENTRES_2D, target, scale=1.0, **options)[:, 0]
        assert (target_logit.diff() < 0).all()

    def test_sphereface_psi_continuous_at_the_joins(self):
        m = 4
        for k in range(1, m):
            theta = k * math.pi / m
            left = la.sphereface_logits(
                at_angle(theta - 1e-9), CENTRES_2D, torch.tensor([0]), scale=1.0, margin=m
            )[0, 0]
            right = la.sphereface_logits(
                at_angle(theta + 1e-9), CENTRES_2D, torch.tensor([0]), scale=1.0, margin=m
            )[0, 0]
            assert float(left) == pytest.approx(float(right), abs=1e-6)
            # From the left segment: (-1)^(k-1) cos(k pi) - 2(k-1) = -1 - 2k + 2 = 1 - 2k.
            assert float(left) == pytest.approx(1 - 2 * k, abs=1e-6)

    def test_logits_do_not_depend_on_norms(self):
        e, w, t = problem(4)
        for name, (logits_fn, _, _) in HEADS.items():
            options = {"margin": 2} if name == "sphereface" else {}
            close(logits_fn(e * 7.0, w * 0.1, t, **options), logits_fn(e, w, t, **options))


class TestLossIsCrossEntropyOfLogits:
    @pytest.mark.parametrize("name", list(HEADS))
    @pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
    @pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
    def test_loss(self, name, label_smoothing, reduction):
        logits_fn, loss_fn, _ = HEADS[name]
        e, w, t = problem(5)
        logits = logits_fn(e, w, t, scale=16.0)
        expected = F.cross_entropy(logits, t, label_smoothing=label_smoothing, reduction=reduction)
        out = loss_fn(e, w, t, scale=16.0, label_smoothing=label_smoothing, reduction=reduction)
        close(out, expected)

    def test_no_margin_is_normalised_softmax_for_all_three(self):
        e, w, t = problem(6)
        cosine_ce = F.cross_entropy(16.0 * F.normalize(e, dim=1) @ F.normalize(w, dim=1).T, t)
        close(la.arcface_loss(e, w, t, scale=16.0, margin=0.0), cosine_ce)
        close(la.cosface_loss(e, w, t, scale=16.0, margin=0.0), cosine_ce)
        close(la.sphereface_loss(e, w, t, scale=16.0, margin=1), cosine_ce)

    def test_margin_makes_the_loss_larger(self):
        e, w, t = problem(7)
        plain = la.cosface_loss(e, w, t, margin=0.0, reduction="none")
        for loss in (
            la.arcface_loss(e, w, t, reduction="none"),
            la.cosface_loss(e, w, t, reduction="none"),
        ):
            assert (loss > plain).all()


class TestStability:
    @pytest.mark.parametrize("name", list(HEADS))
    @pytest.mark.parametrize("dtype", [torch.float32, F64])
    @pytest.mark.parametrize("sign", [1.0, -1.0])
    def test_finite_gradients_aligned_and_opposite(self, name, dtype, sign):
        _, loss_fn, _ = HEADS[name]
        g = torch.Generator().manual_seed(8)
        weight = torch.randn(4, 6, generator=g).to(dtype).requires_grad_(True)
        target = torch.tensor([0, 1, 2, 3, 1])
        # Each embedding exactly on (sign=1) or opposite (sign=-1) its class centre.
        embeddings = (sign * 3.0 * weight.detach()[target]).requires_grad_(True)
        loss = loss_fn(embeddings, weight, target)  # default scale 64 and margins
        assert torch.isfinite(loss)
        grads = torch.autograd.grad(loss, (embeddings, weight))
        for grad in grads:
            assert torch.isfinite(grad).all()

    @pytest.mark.parametrize("name", list(HEADS))
    def test_half_precision_and_extreme_norms(self, name):
        _, loss_fn, _ = HEADS[name]
        e, w, t = problem(9)
        out = loss_fn((e * 1e4).half(), w.half(), t)
        assert out.dtype == torch.float32 and torch.isfinite(out)

    @pytest.mark.parametrize("name", list(HEADS))
    def test_empty_batch(self, name):
        _, loss_fn, _ = HEADS[name]
        e = torch.zeros(0, 5, requires_grad=True)
        out = loss_fn(e, torch.randn(3, 5), torch.zeros(0, dtype=torch.long))
        assert float(out.detach()) == 0.0


class TestModules:
    @pytest.mark.parametrize("name", list(HEADS))
    def test_module_owns_centres_and_calls_functional(self, name):
        logits_fn, loss_fn, module_cls = HEADS[name]
        options = {"scale": 8.0, "margin": 2 if name == "sphereface" else 0.3}
        head = module_cls(4, 5, label_smoothing=0.05, reduction="sum", **options)
        assert isinstance(head.weight, torch.nn.Parameter)
        assert head.weight.shape == (4, 5)
        assert "weight" in head.state_dict()
        e, _, t = problem(10)
        e = e.float()
        close(
            head(e, t), loss_fn(e, head.weight, t, label_smoothing=0.05, reduction="sum", **options)
        )
        close(head.logits(e, t), logits_fn(e, head.weight, t, **options))
        assert "num_classes=4, embedding_dim=5" in repr(head)
        head.to(F64)
        assert head(e.double(), t).dtype == F64

    def test_bad_options_fail_at_construction(self):
        with pytest.raises(ValueError, match=r"margin must be in \[0, 3.14159\), got 4.0"):
            la.nn.ArcFaceLoss(3, 4, margin=4.0)
        with pytest.raises(TypeError, match="easy_margin must be a bool"):
            la.nn.ArcFaceLoss(3, 4, easy_margin=1)
        with pytest.raises(TypeError, match="margin must be an int"):
            la.nn.SphereFaceLoss(3, 4, margin=1.5)
        with pytest.raises(ValueError, match=r"margin must be in \[1, inf\], got 0"):
            la.nn.SphereFaceLoss(3, 4, margin=0)
        with pytest.raises(ValueError, match=r"scale must be in \(0, inf\]"):
            la.nn.CosFaceLoss(3, 4, scale=0.0)
        with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
            la.nn.CosFaceLoss(3, 4, label_smoothing=2.0)
        with pytest.raises(ValueError, match=r"num_classes must be in \[1, inf\]"):
            la.nn.CosFaceLoss(0, 4)
        with pytest.raises(ValueError, match="reduction must be one of"):
            la.nn.SphereFaceLoss(3, 4, reduction="avg")


class TestErrors:
    def test_class_index_out_of_range(self):
        e, w, _ = problem(11, n=3, c=4)
        with pytest.raises(
            ValueError,
            match=r"target has class index 4 at position \(2,\); "
            r"expected values in \[0, 4\)",
        ):
            la.arcface_loss(e, w, torch.tensor([0, 1, 4]))

    def test_shapes(self):
        e, w, t = problem(12, n=3, c=4, d=5)
        with pytest.raises(
            ValueError, match=r"weight must have shape \(\*, 5\) \(num_classes, D\)"
        ):
            la.cosface_loss(e, w[:, :4], t)
        with pytest.raises(ValueError, match=r"embeddings must have shape \(\*, \*\) \(N, D\)"):
            la.cosface_loss(e[0], w, t)
        with pytest.raises(ValueError, match=r"target must have shape \(3,\) \(N,\)"):
            la.sphereface_loss(e, w, t[:2])
        with pytest.raises(TypeError, match="target must be an integer tensor"):
            la.arcface_loss(e, w, t.double())


@pytest.fixture
def one_thread():
    """Tiny problems run far faster on one thread than on a shared, loaded CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("arcface", {"scale": 16.0, "margin": 0.3}),
        ("arcface", {}),
        ("cosface", {"scale": 16.0, "margin": 0.2}),
        ("cosface", {}),
        ("sphereface", {"scale": 16.0, "margin": 2}),
        ("sphereface", {}),
    ],
)
def test_training_separates_three_gaussian_clusters(name, options):
    """A linear embedding 8-D -> 4-D trained with each head classifies held-out points."""
    module_cls = HEADS[name][2]
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    means = torch.randn(3, 8, generator=g) * 3.0

    def sample(n):
        labels = torch.randint(0, 3, (n,), generator=g)
        return means[labels] + torch.randn(n, 8, generator=g), labels

    x_train, y_train = sample(300)
    x_test, y_test = sample(300)
    backbone = torch.nn.Linear(8, 4)
    head = module_cls(3, 4, **options)
    optimizer = torch.optim.Adam([*backbone.parameters(), *head.parameters()], lr=0.05)
    with torch.no_grad():
        before = head(backbone(x_train), y_train)
    for _ in range(150):
        optimizer.zero_grad()
        loss = head(backbone(x_train), y_train)
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.5 * float(before)
    with torch.no_grad():
        cosines = F.normalize(backbone(x_test), dim=1) @ F.normalize(head.weight, dim=1).T
    accuracy = (cosines.argmax(dim=1) == y_test).float().mean()
    assert accuracy >= 0.95, f"{name}: held-out accuracy {accuracy:.3f}"


@pytest.mark.parametrize("name", list(HEADS))
def test_module_compiles_fullgraph(name):
    head = HEADS[name][2](3, 4)
    e, _, t = problem(13, n=5, c=3, d=4)
    e = e.float()
    compiled = torch.compile(head, fullgraph=True, backend="eager")
    close(compiled(e, t), head(e, t), rtol=1e-5, atol=1e-5)
