r"""Negative log-likelihood regression losses: Poisson counts and Gaussian with a variance.

Both have torch parity. lossatlas adds exact-shape validation (the variance may still be
homoscedastic, as torch documents), value checks (counts and variances must be non-negative,
rates too when ``log_input=False``) that can be switched off, and a Gaussian NLL that has no
data-dependent Python branch, so it compiles with ``fullgraph=True``.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import Positive
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import check_floating, check_in_range, check_same_device, describe
from lossatlas.regression._pair import PAIR_DOCS, prepare_pair

__all__ = ["gaussian_nll_loss", "poisson_nll_loss"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _poisson_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    # The prediction is the rate, so ``scale`` multiplies the rate: the log-rate moves by
    # log(scale) (a log-rate of 1e4 would mean a rate of e^10000, beyond every float).
    rate = ex.uniform(generator, batch, 3, dtype=torch.float64, low=0.5, high=3.0)
    counts = torch.poisson(rate, generator=generator)
    return Example(((rate * scale).log().to(dtype), counts.to(dtype)))


def _gaussian_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    mean = ex.normal(generator, batch, 3, dtype=dtype, scale=scale)
    target = ex.normal(generator, batch, 3, dtype=dtype)
    var = ex.uniform(generator, batch, 3, dtype=dtype, low=0.5, high=2.0)
    return Example((mean, target, var), grad_args=(0, 2))


_LIKELIHOOD = Family(
    tasks=("regression",),
    target_kind="real values",
    target_type=TargetKind.REAL,
    same_shape=(0, 1),
    twice_differentiable=True,
    **PAIR_DOCS,
).derive(raises={"TypeError": "A non-floating tensor, a non-bool flag."})


@_LIKELIHOOD.loss(
    input_kind="log-rates (or rates with log_input=False)",
    target_kind="counts",
    formula=r"e^{x} - y\, x",
    examples=_poisson_example,
    oracle=F.poisson_nll_loss,
    use_when="count targets (events, clicks) with a Poisson rate",
    peers={"torch": "F.poisson_nll_loss: same values"},
)
def poisson_nll_loss(
    input: Tensor,
    target: Tensor,
    *,
    log_input: bool = True,
    full: bool = False,
    eps: Positive = 1e-8,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Negative log-likelihood of counts under a Poisson distribution, torch parity.

    With ``log_input=True`` (the default) the input is the log-rate and the loss is
    ``exp(x) - y x``; with ``log_input=False`` it is the rate and the loss is
    ``x - y log(x + eps)``. ``full=True`` adds Stirling's approximation of ``log(y!)``,
    ``y log y - y + 0.5 log(2 pi y)``, for targets above 1 (as torch does), which makes the
    loss the full negative log-likelihood up to that approximation.

    .. math::
        \ell_n = e^{x_n} - y_n x_n \quad (\texttt{log\_input=True}), \qquad
        \ell_n = x_n - y_n \log(x_n + \epsilon) \quad (\texttt{log\_input=False})

    Args:
        input: Log-rates (``log_input=True``) or rates ``>= 0``, any shape.
        target: Counts ``>= 0`` (need not be integers), the same shape.
        log_input: Whether ``input`` is the log of the rate.
        full: Add the Stirling term.
        eps: Added to the rate inside the log when ``log_input=False``, ``> 0``.

    Raises:
        ValueError: A negative target (or rate), shapes that differ, ``eps <= 0``, an unknown
            reduction.

    Example:
        >>> log_rate = torch.tensor([0.0, 1.0, 2.0])
        >>> la.poisson_nll_loss(log_rate, torch.tensor([1.0, 3.0, 5.0]), reduction="none")
        tensor([ 1.0000, -0.2817, -2.6109])

    References:
        torch.nn.functional.poisson_nll_loss,
        https://pytorch.org/docs/stable/generated/torch.nn.functional.poisson_nll_loss.html
    """
    input, target = prepare_pair(input, target)
    check_in_range("target", target, 0.0, math.inf, what="counts")
    if not log_input:
        check_in_range("input", input, 0.0, math.inf, what="rates (log_input=False)")
    loss = F.poisson_nll_loss(
        input, target, log_input=log_input, full=full, eps=eps, reduction="none"
    )
    return reduce_loss(loss, reduction)


def _variance_like(var: Tensor | float, input: Tensor) -> Tensor:
    """``var`` as a tensor that broadcasts to ``input`` in one of torch's documented ways."""
    if not isinstance(var, Tensor):
        if isinstance(var, bool) or not isinstance(var, (int, float)):
            raise TypeError(f"var must be a tensor or a float, got {describe(var)}")
        if var < 0:
            raise ValueError(f"var must be non-negative, got {var!r}")
        return torch.full_like(input, float(var))
    check_floating("var", var)
    if var.shape == input.shape:
        return var
    if input.dim() > 0 and var.shape == input.shape[:-1]:
        return var.unsqueeze(-1)
    if var.dim() == input.dim():
        mismatched = [(i, v) for i, v in zip(input.shape, var.shape, strict=True) if i != v]
        if len(mismatched) == 1 and mismatched[0][1] == 1:
            return var
    raise ValueError(
        f"var must have the input's shape {tuple(input.shape)}, that shape without its last "
        f"dimension {tuple(input.shape[:-1])}, or that shape with one dimension set to 1 "
        f"(one variance shared along it), got {tuple(var.shape)}"
    )


@_LIKELIHOOD.loss(
    input_kind="predicted means (and variances)",
    formula=r"\tfrac{1}{2}\left(\log \sigma^2 + (x - y)^2 / \sigma^2\right)",
    examples=_gaussian_example,
    oracle=F.gaussian_nll_loss,
    use_when="predicting a mean and its uncertainty (a variance)",
    peers={"torch": "F.gaussian_nll_loss: same values"},
)
def gaussian_nll_loss(
    input: Tensor,
    target: Tensor,
    var: Tensor | float,
    *,
    full: bool = False,
    eps: Positive = 1e-6,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Negative log-likelihood of targets under a Gaussian with predicted mean and variance.

    Heteroscedastic regression: the network predicts a mean and a variance per element and is
    charged ``log var`` for its uncertainty. The variance is clamped below at ``eps`` for
    stability; as in torch, the clamp is invisible to autograd (the gradient flows to ``var``
    as if unclamped). ``full=True`` adds the constant ``0.5 log(2 pi)``.

    ``var`` may be shared (homoscedastic), as torch documents: the input's shape without its
    last dimension, or the input's shape with one dimension set to 1; or a float. Input and
    target must match exactly.

    .. math::
        \ell_n = \frac{1}{2}\left(\log \max(\sigma^2_n, \epsilon)
                 + \frac{(x_n - y_n)^2}{\max(\sigma^2_n, \epsilon)}\right)

    Args:
        input: Predicted means, any shape.
        target: Targets, the same shape.
        var: Predicted variances ``>= 0`` (shapes above).
        full: Add ``0.5 log(2 pi)``.
        eps: Lower clamp of the variance, ``> 0``.

    Raises:
        ValueError: A negative variance, shapes that do not fit, ``eps <= 0``, an unknown
            reduction.

    Example:
        >>> mean, target = torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0])
        >>> la.gaussian_nll_loss(mean, target, torch.tensor([1.0, 0.5]), reduction="none")
        tensor([ 0.5000, -0.3466])

    References:
        D. A. Nix and A. S. Weigend, "Estimating the mean and variance of the target
        probability distribution", ICNN 1994, https://doi.org/10.1109/ICNN.1994.374138

        torch.nn.functional.gaussian_nll_loss,
        https://pytorch.org/docs/stable/generated/torch.nn.functional.gaussian_nll_loss.html
    """
    input, target = prepare_pair(input, target)
    check_same_device(("input", input), ("var", var))
    variance = _variance_like(var, input)
    check_in_range("var", variance, 0.0, math.inf, what="variances")
    variance = upcast(variance, compute_dtype(input, variance))
    # torch's clamp happens under no_grad on a clone: value clamped, gradient passed through.
    clamped = variance + (variance.clamp(min=eps) - variance).detach()
    loss = 0.5 * (torch.log(clamped) + (input - target).square() / clamped)
    if full:
        loss = loss + _HALF_LOG_2PI
    return reduce_loss(loss, reduction)


# --------------------------------------------------------------------------- modules


class PoissonNLLLoss(LossModule, functional=poisson_nll_loss):
    """Module form of :func:`lossatlas.poisson_nll_loss`."""


class GaussianNLLLoss(LossModule, functional=gaussian_nll_loss):
    """Module form of :func:`lossatlas.gaussian_nll_loss`, called as ``loss(input, target, var)``.

    The variance is an input, not an option.
    """
