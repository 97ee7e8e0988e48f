"""GAN losses, gradient penalties and the perceptual loss.

Reference values: the textbook formulas written out with ``torch.sigmoid``/``log`` in float64
(Goodfellow et al. 2014 eq. 1 and section 3; Arjovsky et al. 2017 algorithm 1; Mao et al.
2017 eq. 2 with a, b, c = 0, 1, 1; Lim and Ye 2017 / Miyato et al. 2018 hinge), gradients
computed by hand with ``torch.autograd.grad`` (Gulrajani et al. 2017 algorithm 1; Mescheder
et al. 2018 eq. 9), and ``F.l1_loss`` / ``F.mse_loss`` for the identity extractor.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lossatlas as la
from lossatlas import testing as lt
from lossatlas.generative.gan import GAN_KINDS

D = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _logits(seed=0, n_real=5, n_fake=7, scale=2.0):
    g = _gen(seed)
    return (
        torch.randn(n_real, 1, generator=g, dtype=D) * scale,
        torch.randn(n_fake, 1, generator=g, dtype=D) * scale,
    )


def _textbook_discriminator(kind, r, f):
    d_r, d_f = torch.sigmoid(r), torch.sigmoid(f)
    if kind in ("minimax", "non_saturating"):  # -E log D(x) - E log(1 - D(G(z)))
        return -d_r.log().mean() - (1 - d_f).log().mean()
    if kind == "wasserstein":  # critic minimises E D(G(z)) - E D(x)
        return f.mean() - r.mean()
    if kind == "least_squares":  # 1/2 E (D(x) - b)^2 + 1/2 E (D(G(z)) - a)^2, a=0, b=1
        return 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f**2).mean()
    return torch.clamp(1 - r, min=0).mean() + torch.clamp(1 + f, min=0).mean()  # hinge


def _textbook_generator(kind, f):
    d_f = torch.sigmoid(f)
    return {
        "minimax": (1 - d_f).log(),  # min_G E log(1 - D(G(z)))
        "non_saturating": -d_f.log(),  # max_G E log D(G(z))
        "wasserstein": -f,
        "least_squares": 0.5 * (f - 1) ** 2,  # c = 1
        "hinge": -f,
    }[kind]


# --------------------------------------------------------------------------- adversarial


@pytest.mark.parametrize("kind", GAN_KINDS)
@pytest.mark.parametrize("seed", range(3))
def test_discriminator_matches_textbook(kind, seed):
    r, f = _logits(seed)
    torch.testing.assert_close(
        la.gan_discriminator_loss(r, f, kind=kind),
        _textbook_discriminator(kind, r, f),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize("kind", GAN_KINDS)
@pytest.mark.parametrize("seed", range(3))
def test_generator_matches_textbook(kind, seed):
    _, f = _logits(seed)
    expected = _textbook_generator(kind, f)
    torch.testing.assert_close(
        la.gan_generator_loss(f, kind=kind, reduction="none"), expected, rtol=1e-12, atol=1e-12
    )
    torch.testing.assert_close(
        la.gan_generator_loss(f, kind=kind), expected.mean(), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("kind", GAN_KINDS)
def test_discriminator_reductions_with_different_batch_sizes(kind):
    r, f = _logits(1, n_real=3, n_fake=8)
    none = la.gan_discriminator_loss(r, f, kind=kind, reduction="none")
    assert none.shape == (11, 1)
    mean = la.gan_discriminator_loss(r, f, kind=kind)
    torch.testing.assert_close(mean, none[:3].mean() + none[3:].mean())
    torch.testing.assert_close(
        la.gan_discriminator_loss(r, f, kind=kind, reduction="sum"), none.sum()
    )
    # An empty fake batch counts 0 in the mean (never NaN).
    only_real = la.gan_discriminator_loss(r, f[:0], kind=kind)
    torch.testing.assert_close(only_real, none[:3].mean())


def test_patch_discriminator_shapes():
    g = _gen(2)
    r, f = (
        torch.randn(2, 1, 4, 4, generator=g, dtype=D),
        torch.randn(3, 1, 4, 4, generator=g, dtype=D),
    )
    torch.testing.assert_close(
        la.gan_discriminator_loss(r, f, kind="hinge"), _textbook_discriminator("hinge", r, f)
    )
    with pytest.raises(ValueError, match=r"fake_logits must have the shape of real_logits"):
        la.gan_discriminator_loss(r, f[:, :, :2])


@pytest.mark.parametrize("kind", GAN_KINDS)
def test_generator_loss_decreases_as_fake_logits_rise(kind):
    # least_squares decreases up to its target c = 1 only; minimax is monotone but saturates.
    top = 1.0 if kind == "least_squares" else 20.0
    f = torch.linspace(-20.0, top, 400, dtype=D)
    values = la.gan_generator_loss(f, kind=kind, reduction="none")
    assert (values[1:] < values[:-1]).all()


def test_minimax_generator_saturates_where_non_saturating_does_not():
    # Goodfellow et al. section 3: when D rejects fakes confidently, log(1 - D) has a vanishing
    # gradient, -log D a strong one.
    f = torch.tensor([-15.0], dtype=D, requires_grad=True)
    (g_minimax,) = torch.autograd.grad(la.gan_generator_loss(f, kind="minimax"), f)
    (g_ns,) = torch.autograd.grad(la.gan_generator_loss(f, kind="non_saturating"), f)
    assert abs(float(g_minimax)) < 1e-6 < 0.99 < abs(float(g_ns))


@pytest.mark.parametrize("kind", GAN_KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_extreme_logits_are_finite(kind, dtype):
    r = torch.tensor([1e4, -1e4, 0.0], dtype=dtype, requires_grad=True)
    f = torch.tensor([-1e4, 1e4], dtype=dtype, requires_grad=True)
    d = la.gan_discriminator_loss(r, f, kind=kind)
    g = la.gan_generator_loss(f, kind=kind)
    (d + g).backward()
    assert d.dtype == torch.float32 and g.dtype == torch.float32
    assert torch.isfinite(d) and torch.isfinite(g)
    assert torch.isfinite(r.grad.float()).all() and torch.isfinite(f.grad.float()).all()


@pytest.mark.parametrize("kind", GAN_KINDS)
def test_every_kind_passes_the_generic_contract(kind):
    # The catalog example uses the default kind; run the generic checks on every kind too.
    for name in ("gan_discriminator_loss", "gan_generator_loss"):
        spec = la.get(name)
        example = spec.make_example(batch=3)
        example.kwargs["kind"] = kind
        lt.check_reductions(spec, example)
        lt.check_module(spec, example)
        lt.check_gradcheck(spec, example)


def test_unknown_kind_suggests_the_nearest():
    r, f = _logits()
    with pytest.raises(ValueError, match=r"kind must be one of .* Did you mean 'least_squares'"):
        la.gan_discriminator_loss(r, f, kind="least_square")
    with pytest.raises(ValueError, match=r"Did you mean 'non_saturating'"):
        la.gan_generator_loss(f, kind="non-saturating")
    with pytest.raises(ValueError, match=r"Did you mean 'wasserstein'"):
        la.nn.GANGeneratorLoss(kind="wasserstien")
    with pytest.raises(ValueError, match="kind must be one of"):
        la.nn.GANDiscriminatorLoss(kind="wgan-gp")


def test_bad_logits_raise():
    with pytest.raises(TypeError, match="real_logits must be a floating-point tensor"):
        la.gan_discriminator_loss(torch.tensor([1]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="fake_logits must have at least 1 dimensions"):
        la.gan_generator_loss(torch.tensor(1.0))


def test_modules_equal_functionals():
    r, f = _logits(4)
    for kind in GAN_KINDS:
        torch.testing.assert_close(
            la.nn.GANDiscriminatorLoss(kind=kind)(r, f), la.gan_discriminator_loss(r, f, kind=kind)
        )
        torch.testing.assert_close(
            la.nn.GANGeneratorLoss(kind=kind, reduction="sum")(f),
            la.gan_generator_loss(f, kind=kind, reduction="sum"),
        )
    assert repr(la.nn.GANGeneratorLoss(kind="hinge")) == (
        "GANGeneratorLoss(kind='hinge', reduction='mean')"
    )


# --------------------------------------------------------------------------- penalties


def _critic(seed=0, features=3):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(features, 8), nn.Softplus(), nn.Linear(8, 1)).double()


def _samples(seed=0, n=6, features=3):
    g = _gen(seed)
    return (
        torch.randn(n, features, generator=g, dtype=D),
        torch.randn(n, features, generator=g, dtype=D),
    )


def _gp_by_hand(critic, real, fake, eps):
    """Gulrajani et al. algorithm 1 with torch.autograd.grad."""
    mixed = (eps[:, None] * real + (1 - eps[:, None]) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (grad.norm(dim=1) - 1) ** 2


def test_gradient_penalty_equals_hand_reference_value_and_parameter_gradients():
    critic = _critic()
    real, fake = _samples()
    eps = torch.rand(6, generator=_gen(1), dtype=D)
    ours = la.gradient_penalty(critic, real, fake, interpolation=eps, reduction="none")
    ref = _gp_by_hand(critic, real, fake, eps)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    g_ours = torch.autograd.grad(ours.mean(), list(critic.parameters()), materialize_grads=True)
    g_ref = torch.autograd.grad(ref.mean(), list(critic.parameters()), materialize_grads=True)
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_gradient_penalty_draws_eps_from_the_generator():
    critic = _critic()
    real, fake = _samples()
    eps = torch.rand(6, generator=_gen(5), dtype=D)
    torch.testing.assert_close(
        la.gradient_penalty(critic, real, fake, generator=_gen(5)),
        _gp_by_hand(critic, real, fake, eps).mean(),
    )


def test_gradient_penalty_on_images_and_target_norm():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(12, 1)).double()
    real, fake = torch.randn(4, 2, 4, 4, dtype=D), torch.randn(4, 2, 4, 4, dtype=D)
    eps = torch.full((4,), 0.3, dtype=D)
    mixed = (0.3 * real + 0.7 * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed)
    expected = ((grad.flatten(1).norm(dim=1) - 2.0) ** 2).sum()
    torch.testing.assert_close(
        la.gradient_penalty(
            critic, real, fake, interpolation=eps, target_norm=2.0, reduction="sum"
        ),
        expected,
    )


def test_gradient_penalty_trains_the_critic():
    # Minimising the penalty alone drives a linear critic's gradient norm |w| from 5 to 1:
    # possible only because the gradient's graph is kept (create_graph=True).
    critic = nn.Linear(2, 1, bias=False).double()
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 4.0]]))
    real, fake = _samples(features=2)
    optimizer = torch.optim.SGD(critic.parameters(), lr=0.05)
    generator = _gen(0)
    for _ in range(100):
        optimizer.zero_grad()
        la.gradient_penalty(critic, real, fake, generator=generator).backward()
        optimizer.step()
    assert abs(float(critic.weight.detach().norm()) - 1.0) < 1e-3


def test_gradient_penalty_zero_gradient_is_finite():
    # A critic that ignores its input: norm 0, penalty target_norm^2, no NaN from sqrt at 0.
    weight = torch.tensor(1.5, dtype=D, requires_grad=True)

    def critic(x):
        return weight * torch.ones(x.shape[0], dtype=D)

    real, fake = _samples()
    real.requires_grad_(True)
    penalty = la.gradient_penalty(critic, real, fake)
    torch.testing.assert_close(penalty, torch.tensor(1.0, dtype=D))
    penalty.backward()
    assert real.grad is None or torch.isfinite(real.grad).all()


def test_penalties_do_not_flag_or_change_the_callers_tensors():
    critic = _critic()
    real, fake = _samples()
    before = real.clone()
    la.gradient_penalty(critic, real, fake).backward()
    la.r1_penalty(critic, real).backward()
    assert not real.requires_grad and not fake.requires_grad and torch.equal(real, before)


def test_penalties_under_no_grad_return_a_plain_value():
    critic = _critic()
    real, fake = _samples()
    with torch.no_grad():
        gp = la.gradient_penalty(critic, real, fake, generator=_gen(0))
        r1 = la.r1_penalty(critic, real)
    assert not gp.requires_grad and not r1.requires_grad
    torch.testing.assert_close(
        gp, la.gradient_penalty(critic, real, fake, generator=_gen(0)).detach()
    )


def test_r1_penalty_equals_hand_reference():
    critic = _critic(3)
    real, _ = _samples(3)
    x = real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    ref = grad.square().sum(1)  # ||grad D(x)||^2, no gamma / 2 (the caller's weight)
    ours = la.r1_penalty(critic, real, reduction="none")
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    g_ours = torch.autograd.grad(ours.mean(), list(critic.parameters()), materialize_grads=True)
    g_ref = torch.autograd.grad(ref.mean(), list(critic.parameters()), materialize_grads=True)
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    # A real tensor that requires grad is differentiated through (gradcheck of the harness).
    leaf = real.clone().requires_grad_(True)
    la.r1_penalty(critic, leaf).backward()
    assert leaf.grad is not None and torch.isfinite(leaf.grad).all()


def test_penalty_errors():
    critic = _critic()
    real, fake = _samples()
    with pytest.raises(TypeError, match="critic must be a callable"):
        la.gradient_penalty("D", real, fake)
    with pytest.raises(ValueError, match=r"fake must have the same shape as real"):
        la.gradient_penalty(critic, real, fake[:3])
    with pytest.raises(ValueError, match=r"interpolation must have shape \(6,\)"):
        la.gradient_penalty(critic, real, fake, interpolation=torch.rand(5, dtype=D))
    with pytest.raises(ValueError, match=r"interpolation must hold values in \[0, 1\]"):
        la.gradient_penalty(critic, real, fake, interpolation=torch.full((6,), 1.5, dtype=D))
    with pytest.raises(ValueError, match="target_norm"):
        la.gradient_penalty(critic, real, fake, target_norm=-1.0)
    with pytest.raises(TypeError, match="critic must return a tensor"):
        la.r1_penalty(lambda x: [x], real)
    with pytest.raises(TypeError, match="real must be a floating-point tensor"):
        la.r1_penalty(critic, real.long())


# --------------------------------------------------------------------------- perceptual


@pytest.mark.parametrize(("distance", "reference"), [("l1", F.l1_loss), ("l2", F.mse_loss)])
def test_perceptual_identity_is_the_distance(distance, reference):
    g = _gen(6)
    x, y = (
        torch.randn(3, 2, 5, 5, generator=g, dtype=D),
        torch.randn(3, 2, 5, 5, generator=g, dtype=D),
    )
    for features in (nn.Identity(), lambda t: t, lambda t: [t], lambda t: {"pixels": t}):
        torch.testing.assert_close(
            la.perceptual_loss(x, y, features=features, distance=distance), reference(x, y)
        )
    per_sample = la.perceptual_loss(
        x, y, features=nn.Identity(), distance=distance, reduction="none"
    )
    torch.testing.assert_close(per_sample, reference(x, y, reduction="none").flatten(1).mean(1))


def test_perceptual_layers_and_weights_on_a_conv_extractor():
    torch.manual_seed(0)

    class Extractor(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
            self.conv2 = nn.Conv2d(4, 2, 3, stride=2)

        def forward(self, t):
            a = torch.relu(self.conv1(t))
            return {"relu1": a, "relu2": torch.relu(self.conv2(a))}

    extractor = Extractor().double().requires_grad_(False).eval()
    x = torch.randn(2, 3, 8, 8, dtype=D, requires_grad=True)
    y = torch.randn(2, 3, 8, 8, dtype=D)
    maps_x, maps_y = extractor(x), extractor(y)
    expected = (
        0.2 * (maps_x["relu1"] - maps_y["relu1"]).square().mean()
        + 3.0 * (maps_x["relu2"] - maps_y["relu2"]).square().mean()
    )
    ours = la.perceptual_loss(
        x, y, features=extractor, layers=["relu1", "relu2"], weights=[0.2, 3.0], distance="l2"
    )
    torch.testing.assert_close(ours, expected)
    ours.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    only2 = la.perceptual_loss(x, y, features=extractor, layers=["relu2"])
    torch.testing.assert_close(only2, (maps_x["relu2"] - maps_y["relu2"]).abs().mean())
    module = la.nn.PerceptualLoss(features=extractor, layers=["relu2"])
    assert dict(module.named_children())["features"] is extractor  # a submodule
    torch.testing.assert_close(module(x, y), only2)


def test_perceptual_list_layers_select_positions():
    x, y = torch.ones(2, 3, dtype=D), torch.zeros(2, 3, dtype=D)

    def maps(t):
        return [t, 3 * t]

    torch.testing.assert_close(
        la.perceptual_loss(x, y, features=maps, layers=[1]), torch.tensor(3.0, dtype=D)
    )
    torch.testing.assert_close(la.perceptual_loss(x, y, features=maps), torch.tensor(4.0, dtype=D))


def test_perceptual_errors():
    x, y = torch.ones(2, 3), torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"Did you mean 'relu1'"):
        la.perceptual_loss(x, y, features=lambda t: {"relu1": t}, layers=["relu_1"])
    with pytest.raises(ValueError, match=r"layers names 2, but the features have the maps"):
        la.perceptual_loss(x, y, features=lambda t: [t, t], layers=[2])
    with pytest.raises(ValueError, match="weights must have one entry per layer"):
        la.perceptual_loss(x, y, features=lambda t: [t, t], layers=[0, 1], weights=[1.0])
    with pytest.raises(ValueError, match="weights must have one entry per feature map"):
        la.perceptual_loss(x, y, features=lambda t: [t, t], weights=[1.0])
    with pytest.raises(ValueError, match=r"weights\[0\] must be in"):
        la.perceptual_loss(x, y, features=nn.Identity(), weights=[-1.0])
    with pytest.raises(TypeError, match="features must be a callable"):
        la.perceptual_loss(x, y, features="vgg16")
    with pytest.raises(TypeError, match="features must return a tensor"):
        la.perceptual_loss(x, y, features=lambda t: 3.0)
    with pytest.raises(ValueError, match="must have the batch size 2 first"):
        la.perceptual_loss(x, y, features=lambda t: t.sum(0))
    with pytest.raises(ValueError, match=r"target must have the same shape as input"):
        la.perceptual_loss(x, y[:1], features=nn.Identity())
    with pytest.raises(ValueError, match="Did you mean 'l2'"):
        la.perceptual_loss(x, y, features=nn.Identity(), distance="L2")
    with pytest.raises(ValueError, match="Did you mean 'l1'"):
        la.nn.PerceptualLoss(features=nn.Identity(), distance="l1_")
