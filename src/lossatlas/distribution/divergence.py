r"""Divergences between discrete distributions given as log-probabilities: KL and Jensen–Shannon.

``kl_div`` has torch parity for every reduction, but defaults to ``"batchmean"``, the only
reduction that is the KL divergence (torch defaults to ``"mean"``, which also divides by the
number of classes). Both losses accept zero probabilities (``-inf`` log-probabilities) and stay
finite there, values and gradients alike.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_floating,
    check_in_range,
    check_probabilities,
    check_same_shape,
)

__all__ = ["js_div", "kl_div"]

KLReduction = Literal["none", "mean", "sum", "batchmean"]
_LOG2 = math.log(2.0)


_NUM_CLASSES = 5


def _log_probs(generator: torch.Generator, batch: int, dtype: torch.dtype, scale: float) -> Tensor:
    logits = ex.normal(generator, batch, _NUM_CLASSES, dtype=torch.float64, scale=scale)
    return torch.log_softmax(logits, dim=1).to(dtype)


def _kl_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    input = _log_probs(generator, batch, dtype, scale)
    return Example((input, ex.probability_rows(generator, batch, _NUM_CLASSES, dtype=dtype)))


def _kl_perfect(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    target = ex.probability_rows(generator, batch, _NUM_CLASSES, dtype=dtype)
    return Example((target.log(), target))


def _js_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    # Both arguments as log-probabilities, so the harness can check the symmetry.
    input = _log_probs(generator, batch, dtype, scale)
    target = _log_probs(generator, batch, dtype, 1.0)
    return Example((input, target), {"log_target": True}, grad_args=(0, 1))


def _js_perfect(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    log_p = _log_probs(generator, batch, dtype, scale)
    return Example((log_p.clone(), log_p), {"log_target": True}, grad_args=(0, 1))


def _torch_kl_div(input: Tensor, target: Tensor, **options: Any) -> Tensor:
    """``torch.nn.functional.kl_div`` without its warning about ``reduction="mean"``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return F.kl_div(input, target, **options)


_DIVERGENCE = Family(
    tasks=("distribution",),
    input_kind="log-probabilities",
    target_kind="probabilities (or log-probabilities)",
    target_type=TargetKind.DISTRIBUTION,
    same_shape=(0, 1),
    twice_differentiable=True,
    args={
        "target": "Probabilities in ``[0, 1]``, or log-probabilities with ``log_target=True``;"
        " the input's shape."
    },
)


def _check_distribution_pair(input: Tensor, target: Tensor, *, log_target: bool) -> None:
    """Floating tensors of one shape; log-probabilities <= 0 and probabilities in [0, 1]."""
    check_floating("input", input)
    check_floating("target", target)
    check_same_shape("input", input, "target", target)
    check_in_range("input", input, -math.inf, 0.0, what="log-probabilities")
    if log_target:
        check_in_range("target", target, -math.inf, 0.0, what="log-probabilities")
    else:
        check_probabilities("target", target)


@_DIVERGENCE.loss(
    formula=r"p \left(\log p - x\right)",
    properties={"zero_at_perfect"},
    examples=_kl_example,
    perfect=_kl_perfect,
    oracle=_torch_kl_div,
    use_when="match a target distribution (distillation, VAEs)",
    peers={"torch": "F.kl_div: same values; torch's default reduction 'mean' is not the KL"},
)
def kl_div(
    input: Tensor,
    target: Tensor,
    *,
    log_target: bool = False,
    reduction: KLReduction = "batchmean",
) -> Tensor:
    r"""Kullback–Leibler divergence ``KL(target || input)``, input as log-probabilities.

    The extra information needed to code samples of the target distribution ``P`` with the
    predicted ``Q``; 0 when they are equal. Values equal ``torch.nn.functional.kl_div`` for
    every reduction and ``log_target``; **the default reduction differs**: ``"batchmean"``
    (sum divided by the batch size ``N``) is the KL divergence averaged over samples, while
    torch's default ``"mean"`` divides by every element, ``N`` times the number of classes, and
    is not the KL. ``"mean"`` is still available, with torch's meaning.

    Zero target probabilities contribute exactly 0 (``0 log 0 = 0``), also when the input is
    ``-inf`` there, where torch gives NaN; the gradient with respect to ``input`` is finite.
    (With respect to a probability target the true derivative at 0 is ``-inf``.)

    .. math::
        \ell_{n,c} = p_{n,c} \left(\log p_{n,c} - x_{n,c}\right), \qquad
        p = y \text{ or } p = e^{y} \ (\texttt{log\_target=True})

    Args:
        input: Log-probabilities ``log q``, e.g. ``log_softmax(logits, dim=1)``; any shape,
            typically ``(N, C)``; entries ``<= 0`` (``-inf`` allowed).
        log_target: Whether ``target`` holds log-probabilities (more precise for tiny ones).
        reduction: ``"batchmean"`` (sum / ``N``; 0 for an empty batch) | ``"none"`` |
            ``"sum"`` | ``"mean"`` (sum / number of elements, torch's default, not the KL).

    Returns:
        The input's shape for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating tensors, a non-bool ``log_target``.
        ValueError: Shapes that differ, a positive log-probability, a probability outside
            [0, 1], an unknown reduction.

    Example:
        >>> p = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
        >>> log_q = torch.tensor([[0.25, 0.75], [0.5, 0.5]]).log()
        >>> la.kl_div(log_q, p, reduction="none")
        tensor([[ 0.3466, -0.2027],
                [ 0.6931,  0.0000]])
        >>> la.kl_div(log_q, p)
        tensor(0.4185)

    References:
        S. Kullback and R. A. Leibler, `On Information and Sufficiency
        <https://doi.org/10.1214/aoms/1177729694>`_, The Annals of Mathematical Statistics
        22(1), 1951.

        torch.nn.functional.kl_div,
        https://pytorch.org/docs/stable/generated/torch.nn.functional.kl_div.html
    """
    _check_distribution_pair(input, target, log_target=log_target)
    dtype = compute_dtype(input, target)
    input, target = upcast(input, dtype), upcast(target, dtype)
    # Where the target probability is 0 the term is 0 whatever the input; feed torch's kernel
    # zeros there so that 0 * (-inf) never happens (nor in the backward pass).
    if log_target:
        keep = target != -math.inf
        target = torch.where(keep, target, torch.zeros_like(target))
    else:
        keep = target > 0
    input = torch.where(keep, input, torch.zeros_like(input))
    loss = F.kl_div(input, target, reduction="none", log_target=log_target)
    return reduce_loss(loss, reduction, allowed=("none", "mean", "sum", "batchmean"))


@_DIVERGENCE.loss(
    formula=r"\tfrac{1}{2} \mathrm{KL}(P \| M) + \tfrac{1}{2} \mathrm{KL}(Q \| M),"
    r"\ M = \tfrac{1}{2}(P + Q)",
    properties={"non_negative", "zero_at_perfect", "symmetric", "bounded"},
    examples=_js_example,
    perfect=_js_perfect,
    use_when="a symmetric, bounded distance between distributions",
)
def js_div(
    input: Tensor,
    target: Tensor,
    *,
    dim: int = 1,
    log_target: bool = False,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Jensen–Shannon divergence between distributions along ``dim``, inputs as log-probabilities.

    The symmetrised, smoothed KL: the mean KL of ``P`` and ``Q`` to their mixture
    ``M = (P + Q) / 2``. Symmetric, 0 exactly when ``P = Q``, and bounded by ``log 2``, which
    it reaches for distributions with disjoint supports. Computed in log space (``log M`` by
    log-sum-exp), so zero probabilities, ``-inf`` (masked) log-probabilities included, give
    finite values and finite gradients, and disjoint supports give exactly ``log 2``.

    ``dim=1`` is the class dimension, as for the package's other losses: ``(N, C)`` and
    ``(N, C, d1, ...)`` inputs give one divergence per sample (and position).

    .. math::
        \mathrm{JS}(P, Q) = \tfrac{1}{2} \mathrm{KL}(P \,\|\, M)
            + \tfrac{1}{2} \mathrm{KL}(Q \,\|\, M), \qquad M = \tfrac{1}{2}(P + Q)

    Args:
        input: Log-probabilities ``log p`` (entries ``<= 0``, ``-inf`` allowed), at least
            one dimension; the distributions run along ``dim``.
        dim: The dimension that holds each distribution.
        log_target: Whether ``target`` holds log-probabilities. With ``True`` the loss is
            symmetric in its two arguments.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            distributions (elements of the input with ``dim`` removed).

    Returns:
        The input's shape without ``dim`` for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating tensors, a non-int ``dim``, a non-bool ``log_target``.
        ValueError: Shapes that differ, ``dim`` out of range, a positive log-probability, a
            probability outside [0, 1], an unknown reduction.

    Example:
        >>> log_p = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]).log()
        >>> q = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
        >>> la.js_div(log_p, q, reduction="none")
        tensor([0.0000, 0.6931])

    References:
        J. Lin, `Divergence measures based on the Shannon entropy
        <https://doi.org/10.1109/18.61115>`_, IEEE Transactions on Information Theory 37(1),
        1991.
    """
    _check_distribution_pair(input, target, log_target=log_target)
    if input.dim() == 0 or not -input.dim() <= dim < input.dim():
        raise ValueError(
            f"dim must index a dimension of the input of shape {tuple(input.shape)}, got {dim}"
        )
    dtype = compute_dtype(input, target)
    log_p = upcast(input, dtype)
    target = upcast(target, dtype)
    if log_target:
        log_q = target
    else:
        positive = target > 0
        safe = torch.where(positive, target, torch.ones_like(target))
        log_q = torch.where(positive, safe.log(), torch.full_like(target, -math.inf))
    # Every intermediate is kept finite where a probability is 0, in the forward and in the
    # backward pass: entries where both are 0 are replaced by 0 (their term is 0), and a
    # single zero's term p (log p - log m) is written p (log m - log m) = 0.
    zero_p = log_p == -math.inf
    zero_q = log_q == -math.inf
    both = zero_p & zero_q
    log_p = torch.where(both, torch.zeros_like(log_p), log_p)
    log_q = torch.where(both, torch.zeros_like(log_q), log_q)
    log_m = torch.logaddexp(log_p, log_q) - _LOG2
    ratio_p = torch.where(zero_p, log_m, log_p) - log_m
    ratio_q = torch.where(zero_q, log_m, log_q) - log_m
    terms = 0.5 * (log_p.exp() * ratio_p + log_q.exp() * ratio_q)
    return reduce_loss(terms.sum(dim=dim), reduction)


# --------------------------------------------------------------------------- modules


class KLDivLoss(LossModule, functional=kl_div):
    """Module form of :func:`lossatlas.kl_div` (default reduction ``"batchmean"``)."""


class JSDivLoss(LossModule, functional=js_div):
    """Module form of :func:`lossatlas.js_div`."""
