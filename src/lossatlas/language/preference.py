r"""Preference optimisation on sequence log-probabilities: DPO (and IPO, cDPO), ORPO, SimPO, KTO.

Each loss takes per-sequence log-probabilities of the chosen and rejected responses (summed over
the response tokens, or averaged where the method says so; :func:`sequence_log_probs` makes them
from ``(logits, labels)``) and, where the method has one, the frozen reference model's. They
return the loss as a tensor; with ``return_parts=True`` a :class:`lossatlas.LossParts` whose
parts are the diagnostics TRL logs: the implicit rewards of the chosen and rejected responses,
their margin and the reward accuracy (all detached, batch means).
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import math
from functools import partial
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import Interval, NonNegative, Positive
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_class_indices,
    check_floating,
    check_in_range,
    check_index_target,
    check_same_device,
    check_same_shape,
    check_shape,
)
from lossatlas.compose import LossParts

#: A flip probability in [0, 0.5] (cDPO's label smoothing).
HalfUnitInterval = Annotated[float, Interval(0.0, 0.5)]

__all__ = [
    "dpo_loss",
    "kto_loss",
    "orpo_loss",
    "sequence_log_probs",
    "simpo_loss",
]


def _check_log_probs(**tensors: Tensor) -> tuple[Tensor, ...]:
    """1-D floating log-probabilities (``<= 0``) of one shape, in their compute dtype."""
    names = list(tensors)
    first = tensors[names[0]]
    check_same_device(*tensors.items())  # before a value check reads a tensor
    for name, value in tensors.items():
        check_floating(name, value)
        check_shape(name, value, (None,), what="(one log-probability per sequence)")
        check_same_shape(names[0], first, name, value)
        check_in_range(name, value, -math.inf, 0.0, what="log-probabilities")
    dtype = compute_dtype(*tensors.values())
    return tuple(upcast(value, dtype) for value in tensors.values())


def _batch_mean(values: Tensor) -> Tensor:
    """The detached mean of a diagnostic, 0 for an empty batch."""
    values = values.detach()
    return values.mean() if values.numel() else values.sum()


def _logistic(z: Tensor, label_smoothing: float) -> Tensor:
    """``-(1 - eps) log sigmoid(z) - eps log sigmoid(-z)`` (cDPO: flipped w.p. ``eps``)."""
    return -(1.0 - label_smoothing) * F.logsigmoid(z) - label_smoothing * F.logsigmoid(-z)


def _rewards_parts(total: Tensor, chosen: Tensor, rejected: Tensor) -> LossParts:
    margin = chosen - rejected
    return LossParts(
        total,
        {
            "rewards/chosen": _batch_mean(chosen),
            "rewards/rejected": _batch_mean(rejected),
            "rewards/margins": _batch_mean(margin),
            "rewards/accuracies": _batch_mean((margin > 0).to(total.dtype)),
        },
    )


def sequence_log_probs(
    logits: Tensor,
    labels: Tensor,
    *,
    mask: Tensor | None = None,
    ignore_index: int = -100,
    average: bool = False,
) -> Tensor:
    r"""Per-sequence log-probabilities of ``labels`` under ``logits``, summed or averaged.

    ``log p(y_t) = x_{t,y_t} - logsumexp_v x_{t,v}``: a gather and a log-sum-exp, so the
    ``B x T x V`` log-softmax is never held (only ``logits`` itself is, once). Tokens whose label
    is ``ignore_index`` or whose ``mask`` is 0 (prompt and padding) are left out. Shift the
    labels yourself for causal language models (``logits[:, :-1]``, ``labels[:, 1:]``).

    .. math::
        \log \pi(y \mid x) = \sum_{t:\, m_t = 1} \left(x_{t, y_t} - \log \sum_v e^{x_{t,v}}\right)

    Args:
        logits: ``(B, T, V)``.
        labels: ``(B, T)`` token ids, ``ignore_index`` where a token does not count.
        mask: ``(B, T)``, 1 for the tokens that count (optional, with ``ignore_index``).
        ignore_index: Label value of tokens that do not count.
        average: Divide each sum by its number of counted tokens (ORPO, SimPO); an empty
            sequence gives 0.

    Returns:
        ``(B,)`` in float32 for half-precision logits.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> logits = torch.zeros(1, 3, 4)  # uniform over 4 tokens: log(1/4) each
        >>> la.sequence_log_probs(logits, torch.tensor([[1, 2, -100]]))
        tensor([-2.7726])
    """
    check_floating("logits", logits)
    check_shape("logits", logits, (None, None, None), what="(B, T, V)")
    check_index_target(logits.transpose(1, 2), labels, logits_name="logits", target_name="labels")
    check_class_indices("labels", labels, logits.shape[-1], ignore_index=ignore_index)
    keep = labels != ignore_index
    if mask is not None:
        check_same_shape("labels", labels, "mask", mask)
        keep = keep & mask.bool()
    dtype = compute_dtype(logits)
    x = upcast(logits, dtype)
    safe = torch.where(keep, labels, torch.zeros_like(labels))
    token = x.gather(-1, safe.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(x, dim=-1)
    return per_sequence(token, keep, average=average)


def per_sequence(token: Tensor, keep: Tensor, *, average: bool) -> Tensor:
    """Sum (or mean) of the kept per-token log-probs ``(B, T)`` per sequence; empty gives 0."""
    total = torch.where(keep, token, torch.zeros_like(token)).sum(-1)
    if not average:
        return total
    count = keep.sum(-1).to(total.dtype)
    return total / torch.where(count == 0, torch.ones_like(count), count)


# --------------------------------------------------------------------------- declarations


def _log_probs(
    generator: torch.Generator,
    *,
    batch: int,
    dtype: torch.dtype,
    scale: float,
    count: int,
    low: float,
    high: float,
) -> Example:
    """``count`` log-probability vectors in ``[-high, -low]`` (times ``scale``), two trainable."""
    values = [
        -ex.uniform(generator, batch, dtype=torch.float64, low=low, high=high) * max(scale, 1e-3)
        for _ in range(count)
    ]
    return Example(tuple(v.to(dtype) for v in values), grad_args=(0, 1))


#: Summed log-probabilities of chosen/rejected responses under the policy and reference.
_pairs = partial(_log_probs, count=4, low=0.5, high=5.0)
#: Length-averaged log-probabilities of chosen/rejected responses (policy only).
_policy_pairs = partial(_log_probs, count=2, low=0.2, high=3.0)
#: KTO's policy/reference log-probabilities of the desirable, undesirable and KL sets.
_kto_example = partial(_log_probs, count=6, low=0.5, high=5.0)


def _trl_dpo(pc: Tensor, pr: Tensor, rc: Tensor, rr: Tensor, *, reduction: str = "mean") -> Tensor:
    """TRL DPOTrainer.dpo_loss, loss_type="sigmoid", beta=0.1, label_smoothing=0."""
    logits = (pc - pr) - (rc - rr)
    losses = -F.logsigmoid(0.1 * logits)
    return {"none": losses, "mean": losses.mean(), "sum": losses.sum()}[reduction]


_PREFERENCE = Family(
    tasks=("language",),
    input_kind="sequence log-probabilities (policy and reference)",
    target_kind="none (chosen vs rejected is implied)",
    target_type=TargetKind.NONE,
    examples=_pairs,
    properties={"non_negative"},
    twice_differentiable=True,
    args={
        "beta": "Reward scale ``> 0``.",
        "label_smoothing": "cDPO's flip probability in ``[0, 0.5]``.",
        "return_parts": "Return a :class:`lossatlas.LossParts` with the reward diagnostics.",
    },
    returns='``(B,)`` for ``"none"``, else a scalar (or ``LossParts``).',
    raises={
        "TypeError": "Non-floating tensors.",
        "ValueError": "Batch sizes that differ, a log-probability > 0.",
    },
)
#: The reference-free losses (ORPO, SimPO): the policy's length-averaged log-probabilities.
_POLICY_ONLY = _PREFERENCE.derive(
    input_kind="length-averaged sequence log-probabilities (policy)",
    examples=_policy_pairs,
    args={
        "chosen_logps": "``(B,)`` length-averaged log-probabilities of the chosen responses"
        " (``sequence_log_probs(..., average=True)``).",
        "rejected_logps": "``(B,)`` of the rejected responses.",
    },
)


# --------------------------------------------------------------------------- functionals


@_PREFERENCE.loss(
    formula=r"-\log \sigma\!\left(\beta \left[\log\frac{\pi(y_w)}{\pi_{ref}(y_w)}"
    r" - \log\frac{\pi(y_l)}{\pi_{ref}(y_l)}\right]\right)",
    oracle=_trl_dpo,
    use_when="align an LLM to pairwise preferences (with a reference)",
    peers={"TRL": "DPOTrainer(loss_type='sigmoid'|'ipo'): same values, same reward metrics"},
)
def dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor,
    reference_rejected_logps: Tensor,
    *,
    beta: Positive = 0.1,
    label_smoothing: HalfUnitInterval = 0.0,
    loss_type: Literal["sigmoid", "ipo"] = "sigmoid",
    return_parts: bool = False,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Direct preference optimisation (Rafailov et al. 2023), with cDPO and IPO variants.

    The policy's log-ratio to the reference on the chosen response minus that on the rejected
    one, ``h``, is pushed up through a logistic loss: ``-log sigmoid(beta h)``. With
    ``label_smoothing = eps`` (cDPO, preferences flipped with probability ``eps``) it is
    ``-(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h)``; ``loss_type="ipo"``
    (Azar et al. 2023) is the squared loss ``(h - 1 / (2 beta))^2``. When the policy equals the
    reference (``h = 0``) the sigmoid loss is ``log 2``. Inputs are summed per-token
    log-probabilities (:func:`sequence_log_probs`; IPO's paper averages them -- pass
    ``average=True`` there).

    .. math::
        \ell = -\log\sigma(\beta h),\quad
        h = \big(\log\pi(y_w) - \log\pi_{ref}(y_w)\big)
            - \big(\log\pi(y_l) - \log\pi_{ref}(y_l)\big)

    Args:
        policy_chosen_logps: ``(B,)`` log-probabilities of the chosen responses (``<= 0``).
        policy_rejected_logps: ``(B,)`` of the rejected responses.
        reference_chosen_logps: ``(B,)`` under the frozen reference model.
        reference_rejected_logps: ``(B,)`` under the reference model.
        beta: Strength of the KL constraint to the reference (``> 0``; 0.1 in the paper).
        loss_type: ``"sigmoid"`` (DPO) or ``"ipo"``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"`` over the batch.

    Raises:
        ValueError: Batch sizes that differ, a log-probability > 0, ``beta <= 0``.

    Example:
        >>> pc, pr = torch.tensor([-5.0, -8.0]), torch.tensor([-9.0, -7.0])
        >>> rc, rr = torch.tensor([-6.0, -8.0]), torch.tensor([-8.0, -8.0])
        >>> la.dpo_loss(pc, pr, rc, rr, reduction="none")
        tensor([0.5981, 0.7444])

    References:
        R. Rafailov, A. Sharma, E. Mitchell, S. Ermon, C. D. Manning, C. Finn, `Direct
        Preference Optimization: Your Language Model is Secretly a Reward Model
        <https://arxiv.org/abs/2305.18290>`_, NeurIPS 2023.

        M. G. Azar et al., `A General Theoretical Paradigm to Understand Learning from Human
        Preferences <https://arxiv.org/abs/2310.12036>`_, AISTATS 2024 (IPO).
    """
    pc, pr, rc, rr = _check_log_probs(
        policy_chosen_logps=policy_chosen_logps,
        policy_rejected_logps=policy_rejected_logps,
        reference_chosen_logps=reference_chosen_logps,
        reference_rejected_logps=reference_rejected_logps,
    )
    chosen, rejected = pc - rc, pr - rr
    h = chosen - rejected
    if loss_type == "ipo":
        losses = (h - 1.0 / (2.0 * beta)) ** 2
    else:
        losses = _logistic(beta * h, label_smoothing)
    total = reduce_loss(losses, reduction)
    if return_parts:
        return _rewards_parts(total, beta * chosen, beta * rejected)  # type: ignore[return-value]
    return total


def _log1m_exp(x: Tensor) -> Tensor:
    """``log(1 - exp(x))`` for ``x < 0``, accurate near 0 and far below it."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


@_POLICY_ONLY.loss(
    formula=r"-\log\sigma\!\left(\log\frac{p_w}{1 - p_w} - \log\frac{p_l}{1 - p_l}\right)",
    use_when="preference tuning without a reference model (+ SFT)",
    peers={"TRL": "ORPOTrainer: beta weighs the odds-ratio term as lambda here"},
)
def orpo_loss(
    chosen_logps: Tensor,
    rejected_logps: Tensor,
    *,
    chosen_nll: Tensor | None = None,
    beta: NonNegative = 0.1,
    return_parts: bool = False,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Odds-ratio preference optimisation (Hong et al. 2024), on the policy alone.

    The log odds ratio of the chosen over the rejected response, with odds
    ``p / (1 - p)`` of the length-averaged likelihood ``p = exp(mean log-prob)``, through a
    logistic loss, weighted by ``beta`` (the paper's ``lambda``) and added to the supervised
    NLL of the chosen response when ``chosen_nll`` is given. Needs no reference model.
    ``log(1 - p)`` is computed as ``log(-expm1(log p))``: finite for every log-probability
    below 0.

    .. math::
        \ell = \mathrm{NLL}(y_w) - \beta \log \sigma\!\left(\log\frac{p_w}{1 - p_w}
               - \log\frac{p_l}{1 - p_l}\right)

    Args:
        chosen_logps: ``(B,)`` length-averaged log-probabilities of the chosen responses
            (``< 0``; ``sequence_log_probs(..., average=True)``).
        chosen_nll: ``(B,)`` SFT negative log-likelihood of the chosen responses, or ``None``
            for the odds-ratio term alone.
        beta: Weight of the odds-ratio term (``lambda``; 0.1 in the paper and TRL).
        return_parts: Return a :class:`lossatlas.LossParts` (``nll``, ``odds_ratio``, and the
            log-odds diagnostics).

    Example:
        >>> la.orpo_loss(torch.tensor([-0.5]), torch.tensor([-1.5]), reduction="none")
        tensor([0.0171])

    References:
        J. Hong, N. Lee, J. Thorne, `ORPO: Monolithic Preference Optimization without
        Reference Model <https://arxiv.org/abs/2403.07691>`_, EMNLP 2024.
    """
    chosen, rejected = _check_log_probs(chosen_logps=chosen_logps, rejected_logps=rejected_logps)
    log_odds = (chosen - rejected) - (_log1m_exp(chosen) - _log1m_exp(rejected))
    ratio = -F.logsigmoid(log_odds)
    losses = beta * ratio
    if chosen_nll is not None:
        check_floating("chosen_nll", chosen_nll)
        check_same_shape("chosen_logps", chosen_logps, "chosen_nll", chosen_nll)
        losses = losses + upcast(chosen_nll, losses.dtype)
    total = reduce_loss(losses, reduction)
    if return_parts:
        parts = _rewards_parts(total, beta * chosen, beta * rejected).parts
        parts["odds_ratio"] = _batch_mean(ratio)
        parts["log_odds"] = _batch_mean(log_odds)
        return LossParts(total, parts)  # type: ignore[return-value]
    return total


@_POLICY_ONLY.loss(
    formula=r"-\log\sigma\!\left(\beta (\bar{\log\pi}(y_w) - \bar{\log\pi}(y_l)) - \gamma\right)",
    use_when="reference-free DPO with length normalisation",
    peers={"TRL": "CPOTrainer(loss_type='simpo'): gamma there is simpo_gamma (ratio gamma/beta)"},
)
def simpo_loss(
    chosen_logps: Tensor,
    rejected_logps: Tensor,
    *,
    beta: Positive = 2.0,
    gamma: NonNegative = 0.5,
    label_smoothing: HalfUnitInterval = 0.0,
    return_parts: bool = False,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Simple preference optimisation (Meng et al. 2024): length-normalised, reference-free.

    The difference of the length-averaged log-probabilities, scaled by ``beta``, must exceed a
    target margin ``gamma``: ``-log sigmoid(beta (avg_w - avg_l) - gamma)``. The paper tunes
    ``beta`` in [2, 2.5] and ``gamma / beta`` in [0.3, 0.8]; TRL's ``simpo_gamma`` is this
    ``gamma`` divided by ``beta``. ``gamma = 0`` with summed inputs and a zero reference is DPO.

    .. math::
        \ell = -\log\sigma\!\left(\beta\,(\bar{\ell}_w - \bar{\ell}_l) - \gamma\right)

    Args:
        gamma: Target reward margin ``>= 0``.

    Example:
        >>> la.simpo_loss(torch.tensor([-0.5]), torch.tensor([-1.5]), reduction="none")
        tensor([0.2014])

    References:
        Y. Meng, M. Xia, D. Chen, `SimPO: Simple Preference Optimization with a
        Reference-Free Reward <https://arxiv.org/abs/2405.14734>`_, NeurIPS 2024.
    """
    chosen, rejected = _check_log_probs(chosen_logps=chosen_logps, rejected_logps=rejected_logps)
    z = beta * (chosen - rejected) - gamma
    losses = _logistic(z, label_smoothing)
    total = reduce_loss(losses, reduction)
    if return_parts:
        return _rewards_parts(total, beta * chosen, beta * rejected)  # type: ignore[return-value]
    return total


@_PREFERENCE.loss(
    formula=r"w_D (1 - \sigma(\beta(r_w - z_0))) + w_U (1 - \sigma(\beta(z_0 - r_l)))",
    examples=_kto_example,
    properties={"non_negative", "bounded"},
    # The per-sample losses of the two sets are concatenated: "mean" is over both sets.
    use_when="binary feedback (good/bad) instead of pairs",
    peers={"TRL": "KTOTrainer(loss_type='kto'): same KL estimate (detached, clamped at 0)"},
)
def kto_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor,
    reference_rejected_logps: Tensor,
    policy_kl_logps: Tensor,
    reference_kl_logps: Tensor,
    *,
    beta: Positive = 0.1,
    desirable_weight: NonNegative = 1.0,
    undesirable_weight: NonNegative = 1.0,
    return_parts: bool = False,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Kahneman-Tversky optimisation (Ethayarajh et al. 2024): unpaired good/bad feedback.

    Desirable responses are pushed above, undesirable ones below, a reference point ``z_0``:
    the policy's KL from the reference estimated on mismatched prompt/completion pairs
    (``policy_kl_logps`` against ``reference_kl_logps``), averaged over the batch, clamped at
    0 and detached -- as the paper and TRL do. The chosen and rejected sets need not have the
    same size (each is 1-D); their per-sample losses are concatenated, so ``"mean"`` averages
    over both. Each term is bounded by its weight.

    .. math::
        \ell_w = w_D\,(1 - \sigma(\beta (r_w - z_0))),\quad
        \ell_l = w_U\,(1 - \sigma(\beta (z_0 - r_l))),\quad
        r = \log\frac{\pi(y)}{\pi_{ref}(y)}

    Args:
        policy_chosen_logps: ``(B_w,)`` policy log-probabilities of the desirable responses.
        policy_rejected_logps: ``(B_l,)`` of the undesirable responses.
        reference_chosen_logps: ``(B_w,)`` under the reference model.
        reference_rejected_logps: ``(B_l,)`` under the reference model.
        policy_kl_logps: ``(K,)`` policy log-probabilities of mismatched completions.
        reference_kl_logps: ``(K,)`` the same under the reference model.
        desirable_weight: ``w_D >= 0``.
        undesirable_weight: ``w_U >= 0`` (the paper balances ``w_D n_D / (w_U n_U)`` in
            [1, 4/3]).
        return_parts: Return a :class:`lossatlas.LossParts` with the rewards and ``kl``.

    Returns:
        ``(B_w + B_l,)`` for ``"none"`` (chosen first), else a scalar (or ``LossParts``).

    Raises:
        ValueError: Policy and reference sizes that differ, a log-probability > 0.

    Example:
        >>> out = la.kto_loss(torch.tensor([-4.0]), torch.tensor([-9.0]), torch.tensor([-5.0]),
        ...                   torch.tensor([-8.0]), torch.tensor([-6.0]), torch.tensor([-6.5]),
        ...                   reduction="none")
        >>> out
        tensor([0.4875, 0.4626])

    References:
        K. Ethayarajh, W. Xu, N. Muennighoff, D. Jurafsky, D. Kiela, `KTO: Model Alignment as
        Prospect Theoretic Optimization <https://arxiv.org/abs/2402.01306>`_, ICML 2024.
    """
    check_same_device(
        ("policy_chosen_logps", policy_chosen_logps),
        ("policy_rejected_logps", policy_rejected_logps),
        ("policy_kl_logps", policy_kl_logps),
    )
    pc, rc = _check_log_probs(
        policy_chosen_logps=policy_chosen_logps, reference_chosen_logps=reference_chosen_logps
    )
    pr, rr = _check_log_probs(
        policy_rejected_logps=policy_rejected_logps,
        reference_rejected_logps=reference_rejected_logps,
    )
    pk, rk = _check_log_probs(
        policy_kl_logps=policy_kl_logps, reference_kl_logps=reference_kl_logps
    )
    dtype = compute_dtype(pc, pr, pk)
    pc, rc, pr, rr, pk, rk = (upcast(t, dtype) for t in (pc, rc, pr, rr, pk, rk))
    diff = (pk - rk).detach()
    kl = (diff.sum() / max(diff.numel(), 1)).clamp(min=0)
    chosen, rejected = pc - rc, pr - rr
    chosen_losses = desirable_weight * (1 - torch.sigmoid(beta * (chosen - kl)))
    rejected_losses = undesirable_weight * (1 - torch.sigmoid(beta * (kl - rejected)))
    total = reduce_loss(torch.cat([chosen_losses, rejected_losses]), reduction)
    if return_parts:
        parts = _rewards_parts(total, beta * chosen, beta * rejected).parts
        del parts["rewards/margins"], parts["rewards/accuracies"]
        parts["kl"] = kl
        return LossParts(total, parts)  # type: ignore[return-value]
    return total


# --------------------------------------------------------------------------- modules


class DPOLoss(LossModule, functional=dpo_loss):
    """Module form of :func:`lossatlas.dpo_loss`."""


class ORPOLoss(LossModule, functional=orpo_loss):
    """Module form of :func:`lossatlas.orpo_loss`."""


class SimPOLoss(LossModule, functional=simpo_loss):
    """Module form of :func:`lossatlas.simpo_loss`."""


class KTOLoss(LossModule, functional=kto_loss):
    """Module form of :func:`lossatlas.kto_loss`."""
