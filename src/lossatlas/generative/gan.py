r"""GAN losses (minimax, non-saturating, Wasserstein, least squares, hinge) and gradient penalties.

The discriminator (critic) outputs a raw score ``D(x)`` per sample -- a logit for the
``minimax``/``non_saturating`` kinds, an unbounded score for the others; no sigmoid is applied
by the caller. ``r`` is ``D`` on real data, ``f`` on generated data, ``sigma`` the sigmoid.

=================  ==========================================  ==========================
kind               discriminator, per real / fake element       generator, per element
=================  ==========================================  ==========================
``minimax``        ``softplus(-r)``, ``softplus(f)``            ``-softplus(f)``
``non_saturating`` ``softplus(-r)``, ``softplus(f)``            ``softplus(-f)``
``wasserstein``    ``-r``, ``f``                                ``-f``
``least_squares``  ``(r - 1)^2 / 2``, ``f^2 / 2``               ``(f - 1)^2 / 2``
``hinge``          ``relu(1 - r)``, ``relu(1 + f)``             ``-f``
=================  ==========================================  ==========================

``softplus(-r) = -log sigma(r)`` and ``softplus(f) = -log(1 - sigma(f))``, so the first two
rows are Goodfellow et al.'s ``-log D(x) - log(1 - D(G(z)))``, computed stably for any logit.

The discriminator's real and fake batches may differ in size. ``"mean"`` is the mean over the
real elements plus the mean over the fake elements (each expectation of the papers estimated
on its own batch); ``"sum"`` adds every term; ``"none"`` returns the real terms followed by the
fake ones, concatenated along dim 0 (shape ``(N_real + N_fake, ...)``), so ``"sum"`` is
``none.sum()`` but ``"mean"`` is not ``none.mean()`` unless weighted per batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family
from lossatlas._module import LossModule
from lossatlas._options import NonNegative
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, safe_sqrt, upcast
from lossatlas._validation import (
    check_dim,
    check_floating,
    check_in_range,
    check_same_device,
    check_same_shape,
    describe,
)

__all__ = [
    "gan_discriminator_loss",
    "gan_generator_loss",
    "gradient_penalty",
    "r1_penalty",
]

#: The adversarial objectives :func:`gan_discriminator_loss` and :func:`gan_generator_loss`
#: know.
GanKind = Literal["minimax", "non_saturating", "wasserstein", "least_squares", "hinge"]
GAN_KINDS: tuple[str, ...] = get_args(GanKind)


# --------------------------------------------------------------------------- examples


def _d_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    # Twice as many fakes as reals: the harness sees real and fake batches of different sizes.
    real = ex.normal(generator, batch, 1, dtype=dtype, scale=scale)
    fake = ex.normal(generator, 2 * batch, 1, dtype=dtype, scale=scale)
    return Example((real, fake), grad_args=(0, 1))


def _g_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    return Example((ex.normal(generator, batch, 1, dtype=dtype, scale=scale),))


class _SmoothCritic(nn.Module):
    """A small fixed critic with a smooth second derivative (softplus), for the examples."""

    def __init__(self, generator: torch.Generator, features: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.hidden = nn.Linear(features, 5, dtype=dtype)
        self.out = nn.Linear(5, 1, dtype=dtype)
        with torch.no_grad():
            for param in self.parameters():
                param.copy_(ex.normal(generator, *param.shape, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        return self.out(F.softplus(self.hidden(x))).squeeze(-1)


_FEATURES = 3


def _gp_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    critic = _SmoothCritic(generator, _FEATURES, dtype)
    real = ex.normal(generator, batch, _FEATURES, dtype=dtype, scale=scale)
    fake = ex.normal(generator, batch, _FEATURES, dtype=dtype, scale=scale)
    # A fixed interpolation makes every call on the example score the same points.
    eps = ex.uniform(generator, batch, dtype=dtype)
    return Example((critic, real, fake), {"interpolation": eps}, grad_args=(1, 2))


def _r1_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    critic = _SmoothCritic(generator, _FEATURES, dtype)
    real = ex.normal(generator, batch, _FEATURES, dtype=dtype, scale=scale)
    return Example((critic, real), grad_args=(1,))


_GAN = Family(
    tasks=("generative",),
    input_kind="discriminator logits on fake samples",
    target_kind="none",
    formula=r"-\log\sigma(f)\ \text{(non-saturating; see the docs for the other kinds)}",
    twice_differentiable=True,
)
# The penalties differentiate the critic with torch.autograd.grad, which
# torch.compile(fullgraph=True) cannot trace (it graph-breaks): compile=False.
_PENALTY = Family(
    tasks=("generative",),
    target_kind="none",
    properties={"non_negative"},
    compile=False,
)

# --------------------------------------------------------------------------- adversarial losses


def _real_fake_terms(real: Tensor, fake: Tensor, kind: str) -> tuple[Tensor, Tensor]:
    if kind in ("minimax", "non_saturating"):
        return F.softplus(-real), F.softplus(fake)
    if kind == "wasserstein":
        return -real, fake
    if kind == "least_squares":
        return 0.5 * (real - 1.0).square(), 0.5 * fake.square()
    return F.relu(1.0 - real), F.relu(1.0 + fake)  # hinge


def _generator_terms(fake: Tensor, kind: str) -> Tensor:
    if kind == "minimax":
        return -F.softplus(fake)
    if kind == "non_saturating":
        return F.softplus(-fake)
    if kind == "least_squares":
        return 0.5 * (fake - 1.0).square()
    return -fake  # wasserstein, hinge


@_GAN.loss(
    input_kind="discriminator logits on real and fake samples",
    target_kind="none (real vs fake is implied)",
    formula=r"\operatorname{mean}_i \ell_{real}(r_i) + \operatorname{mean}_j \ell_{fake}(f_j),"
    r"\ \text{e.g. } -\log\sigma(r) - \log(1 - \sigma(f))",
    examples=_d_example,
    # "mean" adds the real mean and the fake mean; "none" concatenates the terms.
    mean_of_none=False,
    # Real and fake may differ in batch size only; the harness's trailing-dim mismatch
    # must raise.
    same_shape=(0, 1),
)
def gan_discriminator_loss(
    real_logits: Tensor,
    fake_logits: Tensor,
    *,
    kind: GanKind = "non_saturating",
    reduction: Reduction = "mean",
) -> Tensor:
    r"""The discriminator's (critic's) loss of a GAN, for the five usual objectives.

    ``minimax`` and ``non_saturating`` share the discriminator loss, the binary cross-entropy
    of real against fake (Goodfellow et al. 2014); ``wasserstein`` is the critic loss of
    WGAN, ``E[D(fake)] - E[D(real)]`` (Arjovsky et al. 2017; add :func:`gradient_penalty` or
    clip the weights); ``least_squares`` is LSGAN with labels ``a = 0`` (fake), ``b = 1``
    (real) and the paper's factor 1/2 (Mao et al. 2017); ``hinge`` is the margin loss of
    Geometric GAN / SN-GAN (Lim and Ye 2017, Miyato et al. 2018). The table in
    :mod:`lossatlas.generative.gan` lists every term.

    .. math::
        L_D = \frac{1}{N_r}\sum_i \ell_{\text{real}}(r_i)
              + \frac{1}{N_f}\sum_j \ell_{\text{fake}}(f_j),
        \quad \text{e.g. non-saturating: } \ell_{\text{real}}(r) = -\log\sigma(r),\
        \ell_{\text{fake}}(f) = -\log(1 - \sigma(f))

    Args:
        real_logits: ``D`` on real samples, ``(N_real, ...)`` (logits for the two BCE kinds,
            raw scores otherwise).
        fake_logits: ``D`` on generated samples, ``(N_fake, ...)``; same shape as
            ``real_logits`` except the batch size. Pass ``D(G(z).detach())`` when the
            generator should not be updated.
        kind: ``"minimax"`` | ``"non_saturating"`` | ``"wasserstein"`` | ``"least_squares"`` |
            ``"hinge"``.
        reduction: ``"mean"``: mean over the real elements plus mean over the fake elements
            (an empty side counts 0); ``"sum"``: sum of all terms; ``"none"``: the real terms
            then the fake terms, concatenated along dim 0.

    Returns:
        ``(N_real + N_fake, ...)`` for ``"none"``, else a scalar; float32 for half inputs.

    Raises:
        TypeError: Non-floating inputs.
        ValueError: An unknown ``kind`` (with a suggestion), 0-dim inputs, shapes that differ
            beyond the batch size.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0])
        >>> la.gan_discriminator_loss(real, fake)  # mean(softplus(-2), log 2) + softplus(-1)
        tensor(0.7233)
        >>> la.gan_discriminator_loss(real, fake, kind="wasserstein")  # -1 + (-1)
        tensor(-2.)
        >>> la.gan_discriminator_loss(real, fake, kind="hinge")  # mean(0, 1) + 0
        tensor(0.5000)

    References:
        I. Goodfellow et al., Generative Adversarial Nets, NeurIPS 2014,
        https://arxiv.org/abs/1406.2661

        M. Arjovsky, S. Chintala and L. Bottou, Wasserstein GAN, ICML 2017,
        https://arxiv.org/abs/1701.07875

        X. Mao et al., Least Squares Generative Adversarial Networks, ICCV 2017,
        https://arxiv.org/abs/1611.04076

        J. H. Lim and J. C. Ye, Geometric GAN, 2017, https://arxiv.org/abs/1705.02894;
        T. Miyato et al., Spectral Normalization for GANs, ICLR 2018,
        https://arxiv.org/abs/1802.05957
    """
    check_same_device(("real_logits", real_logits), ("fake_logits", fake_logits))
    check_floating("real_logits", real_logits)
    check_floating("fake_logits", fake_logits)
    check_dim("real_logits", real_logits, min_dim=1, what="(a batch dimension first)")
    check_dim("fake_logits", fake_logits, min_dim=1, what="(a batch dimension first)")
    if real_logits.shape[1:] != fake_logits.shape[1:]:
        raise ValueError(
            f"fake_logits must have the shape of real_logits {tuple(real_logits.shape)} except "
            f"the batch size, got {tuple(fake_logits.shape)} (lossatlas does not broadcast)"
        )
    dtype = compute_dtype(real_logits, fake_logits)
    real_terms, fake_terms = _real_fake_terms(
        upcast(real_logits, dtype), upcast(fake_logits, dtype), kind
    )
    if reduction == "none":
        return torch.cat([real_terms, fake_terms], dim=0)
    if reduction == "sum":
        return real_terms.sum() + fake_terms.sum()
    return reduce_loss(real_terms, "mean") + reduce_loss(fake_terms, "mean")


@_GAN.loss(examples=_g_example)
def gan_generator_loss(
    fake_logits: Tensor,
    *,
    kind: GanKind = "non_saturating",
    reduction: Reduction = "mean",
) -> Tensor:
    r"""The generator's loss of a GAN, for the five usual objectives.

    ``minimax`` is Goodfellow et al.'s original ``log(1 - D(G(z)))``: it is negative and
    *saturates* -- its gradient ``-sigma(f)`` vanishes when the discriminator confidently
    rejects the fakes (``f -> -inf``), which is early in training. ``non_saturating`` is the
    paper's fix, ``-log D(G(z))`` (the "-log D trick"), with the same fixed point and a strong
    gradient there. ``wasserstein`` and ``hinge`` use ``-D(G(z))``; ``least_squares`` is
    LSGAN's ``(D(G(z)) - c)^2 / 2`` with ``c = 1``. Every kind decreases as the fake logits
    rise -- ``least_squares`` only up to its target ``c = 1``, beyond which it rises again, and
    ``minimax`` only numerically where it has not saturated.

    .. math::
        \ell_{\text{minimax}} = \log(1 - \sigma(f)),\quad
        \ell_{\text{ns}} = -\log\sigma(f),\quad
        \ell_{\text{w}} = \ell_{\text{hinge}} = -f,\quad
        \ell_{\text{ls}} = \tfrac12 (f - 1)^2

    Args:
        fake_logits: ``D`` on generated samples, any shape with a batch dimension first.
        kind: ``"minimax"`` | ``"non_saturating"`` | ``"wasserstein"`` | ``"least_squares"`` |
            ``"hinge"``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            elements.

    Returns:
        The shape of ``fake_logits`` for ``"none"``, else a scalar; float32 for half inputs.

    Raises:
        TypeError: Non-floating input.
        ValueError: An unknown ``kind`` (with a suggestion), a 0-dim input.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> fake = torch.tensor([-1.0, 1.0])
        >>> la.gan_generator_loss(fake, reduction="none")  # softplus(-f)
        tensor([1.3133, 0.3133])
        >>> la.gan_generator_loss(fake, kind="minimax", reduction="none")  # -softplus(f)
        tensor([-0.3133, -1.3133])
        >>> la.gan_generator_loss(fake, kind="least_squares", reduction="none")
        tensor([2., 0.])

    References:
        I. Goodfellow et al., Generative Adversarial Nets (minimax and the -log D trick),
        NeurIPS 2014, https://arxiv.org/abs/1406.2661

        M. Arjovsky et al., Wasserstein GAN, ICML 2017, https://arxiv.org/abs/1701.07875

        X. Mao et al., Least Squares GANs, ICCV 2017, https://arxiv.org/abs/1611.04076

        T. Miyato et al., Spectral Normalization for GANs (the hinge generator loss),
        ICLR 2018, https://arxiv.org/abs/1802.05957
    """
    check_floating("fake_logits", fake_logits)
    check_dim("fake_logits", fake_logits, min_dim=1, what="(a batch dimension first)")
    dtype = compute_dtype(fake_logits)
    return reduce_loss(_generator_terms(upcast(fake_logits, dtype), kind), reduction)


# --------------------------------------------------------------------------- penalties

Critic = Callable[[Tensor], Tensor]


def _check_critic(critic: Any) -> None:
    if not callable(critic):
        raise TypeError(f"critic must be a callable (an nn.Module), got {describe(critic)}")


def _input_gradient(critic: Critic, inputs: Tensor, create_graph: bool) -> Tensor:
    """``d sum(critic(inputs)) / d inputs``, differentiable when ``create_graph``."""
    if torch.is_inference_mode_enabled():
        # enable_grad cannot lift inference mode: torch would say "does not require grad".
        raise RuntimeError(
            "a gradient penalty needs autograd (it differentiates the critic at its inputs), "
            "and torch.inference_mode() disables it; compute the penalty outside inference "
            "mode (under torch.no_grad() it still works)"
        )
    if not inputs.requires_grad:
        # A fresh leaf that shares memory: the caller's tensor is not flagged.
        inputs = inputs.detach().requires_grad_(True)
    with torch.enable_grad():
        scores = critic(inputs)
        if not isinstance(scores, Tensor):
            raise TypeError(f"critic must return a tensor, got {describe(scores)}")
        (grad,) = torch.autograd.grad(
            scores.sum(),
            inputs,
            create_graph=create_graph,
            allow_unused=True,
            materialize_grads=True,
        )
    return grad


def _per_sample_sq_norm(grad: Tensor) -> Tensor:
    dtype = compute_dtype(grad)
    return upcast(grad, dtype).flatten(1).square().sum(1)


@_PENALTY.loss(
    input_kind="a critic with real and fake samples",
    formula=r"\left(\lVert \nabla_x D(\epsilon x_r + (1-\epsilon) x_f) \rVert_2 - 1\right)^2",
    examples=_gp_example,
    same_shape=(1, 2),
)
def gradient_penalty(
    critic: Critic,
    real: Tensor,
    fake: Tensor,
    *,
    interpolation: Tensor | None = None,
    generator: torch.Generator | None = None,
    target_norm: NonNegative = 1.0,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""WGAN-GP's gradient penalty on random interpolates of real and fake samples.

    Draws ``eps ~ U[0, 1)`` per sample, forms ``x = eps * real + (1 - eps) * fake`` and
    penalises the distance of the critic's input-gradient norm from ``target_norm`` (1 in the
    paper: the critic of the optimal transport plan has unit gradient norm along the
    interpolation lines). The graph of the gradient is kept (``create_graph=True`` whenever
    grad mode is on), so ``.backward()`` on the penalty trains the critic. The weight
    ``lambda`` (10 in the paper) is the caller's: ``loss_d = wgan_d + 10 * gradient_penalty(...)``.

    The penalty is differentiable in ``real`` and ``fake`` as well; in the critic step pass
    ``fake.detach()``, as for :func:`gan_discriminator_loss`. The critic must treat samples
    independently (no batch norm, as the paper says), so that ``d sum D / d x_i`` is sample
    ``i``'s gradient. A zero gradient has a finite (zero) derivative of its norm.

    .. math::
        \ell_i = \left(\lVert \nabla_x D(x)\rvert_{x = \hat x_i} \rVert_2 - c\right)^2,
        \quad \hat x_i = \epsilon_i x^{\text{real}}_i + (1 - \epsilon_i) x^{\text{fake}}_i

    Args:
        critic: The critic ``D``, a module or callable mapping ``(N, ...)`` to scores (any
            shape with the batch first).
        real: Real samples ``(N, ...)``.
        fake: Generated samples, same shape.
        interpolation: The ``eps_i`` ``(N,)`` in ``[0, 1]``; drawn uniformly when ``None``.
        generator: Random generator for ``eps`` (on ``real``'s device).
        target_norm: ``c``, the gradient norm aimed at (``>= 0``).
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by ``N``.

    Returns:
        ``(N,)`` for ``"none"``, else a scalar; float32 for half inputs.

    Raises:
        TypeError: A critic that is not callable or returns no tensor; non-floating inputs.
        ValueError: ``real`` and ``fake`` of different shapes, a bad ``interpolation`` shape
            or range, ``target_norm < 0``.

    Example:
        A linear critic ``D(x) = 3 x_0 + 4 x_1`` has gradient norm 5 everywhere:

        >>> import torch
        >>> import lossatlas as la
        >>> critic = lambda x: x @ torch.tensor([3.0, 4.0])
        >>> real, fake = torch.randn(6, 2), torch.randn(6, 2)
        >>> la.gradient_penalty(critic, real, fake)  # (5 - 1) ** 2
        tensor(16.)

    References:
        I. Gulrajani, F. Ahmed, M. Arjovsky, V. Dumoulin and A. Courville, Improved
        Training of Wasserstein GANs, NeurIPS 2017, https://arxiv.org/abs/1704.00028
    """
    _check_critic(critic)
    check_same_device(("real", real), ("fake", fake), ("interpolation", interpolation))
    check_floating("real", real)
    check_floating("fake", fake)
    check_dim("real", real, min_dim=1, what="(a batch dimension first)")
    check_same_shape("real", real, "fake", fake)
    batch = real.shape[0]
    if interpolation is None:
        eps = torch.rand(batch, generator=generator, dtype=real.dtype, device=real.device)
    else:
        check_floating("interpolation", interpolation)
        if interpolation.shape != (batch,):
            raise ValueError(
                f"interpolation must have shape ({batch},) (one eps per sample), got "
                f"{tuple(interpolation.shape)}"
            )
        check_in_range("interpolation", interpolation, 0.0, 1.0)
        eps = interpolation.to(real.dtype)
    eps = eps.view(batch, *([1] * (real.dim() - 1)))
    mixed = eps * real + (1.0 - eps) * fake
    grad = _input_gradient(critic, mixed, create_graph=torch.is_grad_enabled())
    sq_norm = _per_sample_sq_norm(grad)
    # sqrt with a zero-safe derivative: where the norm is 0, its (sub)gradient is taken as 0.
    norm = safe_sqrt(sq_norm)
    return reduce_loss((norm - target_norm).square(), reduction)


@_PENALTY.loss(
    input_kind="a critic with real samples",
    formula=r"\lVert \nabla_x D(x_r) \rVert_2^2",
    examples=_r1_example,
)
def r1_penalty(critic: Critic, real: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""R1 regulariser: the squared norm of the discriminator's gradient at real samples.

    Mescheder et al.'s zero-centred penalty on real data, which makes GAN training converge
    locally. This returns ``||grad D(x)||^2`` per sample *without* the factor ``gamma / 2``;
    the caller weights it (StyleGAN2: ``loss_d += (gamma / 2) * r1_penalty(D, real)`` with
    ``gamma = 10``). The gradient's graph is kept, so it trains. ``real`` need not require a
    gradient (it is not flagged); the critic must treat samples independently.

    .. math::
        \ell_i = \lVert \nabla_x D(x) \rvert_{x = x^{\text{real}}_i} \rVert_2^2

    Args:
        critic: The discriminator ``D``, a module or callable.
        real: Real samples ``(N, ...)``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by ``N``.

    Returns:
        ``(N,)`` for ``"none"``, else a scalar; float32 for half inputs.

    Raises:
        TypeError: A critic that is not callable or returns no tensor; non-floating ``real``.
        ValueError: A 0-dim ``real``.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> critic = lambda x: (x**2).sum(dim=1)  # gradient 2x
        >>> real = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
        >>> la.r1_penalty(critic, real, reduction="none").tolist()
        [4.0, 16.0]

    References:
        L. Mescheder, A. Geiger and S. Nowozin, Which Training Methods for GANs do actually
        Converge?, ICML 2018, https://arxiv.org/abs/1801.04406
    """
    _check_critic(critic)
    check_floating("real", real)
    check_dim("real", real, min_dim=1, what="(a batch dimension first)")
    grad = _input_gradient(critic, real, create_graph=torch.is_grad_enabled())
    return reduce_loss(_per_sample_sq_norm(grad), reduction)


# --------------------------------------------------------------------------- modules


class GANDiscriminatorLoss(LossModule, functional=gan_discriminator_loss):
    """Module form of :func:`lossatlas.gan_discriminator_loss`."""


class GANGeneratorLoss(LossModule, functional=gan_generator_loss):
    """Module form of :func:`lossatlas.gan_generator_loss`."""
