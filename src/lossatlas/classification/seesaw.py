r"""Long-tail losses with running statistics: Seesaw (class counts) and EQLv2 (gradient balance).

Both correct the penalty a frequent class puts on a rare one with statistics gathered during
training. The functionals take those statistics as an argument (so they are pure and can be
checked like any loss); the modules keep them as buffers and update them in ``forward`` while
training (``module.train()``), under a lock, so four threads sharing one module lose no update.
In ``eval()`` the statistics are read, never changed.
"""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import NonNegative, Positive, PositiveInt
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_class_indices,
    check_floating,
    check_in_range,
    check_index_target,
    check_same_device,
    check_shape,
)

__all__ = ["eqlv2_loss", "seesaw_loss"]


def _check_logits(
    input: Tensor, target: Tensor, *, background: bool, statistic: tuple[str, Tensor | None]
) -> None:
    # devices first: the value checks below read the tensors
    check_same_device(("input", input), ("target", target), statistic)
    check_floating("input", input)
    check_shape("input", input, (None, None), what="(N, C)")
    check_index_target(input, target)
    check_class_indices("target", target, input.shape[1] + int(background))


def _check_statistic(name: str, value: Tensor, num_classes: int) -> None:
    check_floating(name, value)
    check_shape(name, value, (num_classes,), what="(one value per class)")
    check_in_range(name, value, 0.0, float("inf"), what="non-negative values")


# --------------------------------------------------------------------------- declarations

_COUNTS = (40.0, 12.0, 3.0, 1.0)


def _seesaw_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    logits = ex.normal(generator, batch, len(_COUNTS), dtype=dtype, scale=scale)
    target = ex.class_indices(generator, batch, num_classes=len(_COUNTS))
    counts = torch.tensor(_COUNTS, dtype=dtype)
    return Example((logits, target, counts))


def _eqlv2_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    logits = ex.normal(generator, batch, len(_COUNTS), dtype=dtype, scale=scale)
    # Class indices with C = background (a row of negatives).
    target = ex.class_indices(generator, batch, num_classes=len(_COUNTS) + 1)
    ratio = torch.tensor([1.2, 0.8, 0.3, 0.05], dtype=dtype)
    return Example((logits, target, ratio))


_STATEFUL = Family(
    tasks=("multiclass", "imbalanced", "detection"),
    input_kind="logits",
    target_kind="class indices",
    target_type=TargetKind.CLASS_INDICES,
    properties={"non_negative"},
)


# --------------------------------------------------------------------------- functionals


@_STATEFUL.loss(
    formula=r"-\log \frac{e^{x_y}}{e^{x_y} + \sum_{c \ne y} S_{y c}\, e^{x_c}},"
    r"\ S_{yc} = M_{yc} C_{yc}",
    examples=_seesaw_example,
    # The compensation factor uses detached scores (as the paper and mmdetection): autograd
    # gives the published gradient, not the value's derivative (tests/test_seesaw.py).
    exact_gradient=False,
    use_when="long-tailed detection/classification; counts as state",
    peers={"mmdetection": "SeesawLoss (softmax part): same p, q, eps; counts updated per step"},
)
def seesaw_loss(
    input: Tensor,
    target: Tensor,
    cum_samples: Tensor,
    *,
    p: NonNegative = 0.8,
    q: NonNegative = 2.0,
    eps: Positive = 1e-2,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Seesaw loss (Wang et al. 2021): softmax CE with count-based mitigation and compensation.

    For a sample of class ``i``, the logit of every other class ``j`` is scaled inside the
    softmax by ``S_ij = M_ij C_ij``. The mitigation factor ``M_ij = (N_j / N_i)^p`` when class
    ``j`` has fewer cumulative samples than ``i`` (1 otherwise) stops frequent classes from
    drowning rare ones; the compensation factor ``C_ij = (sigma_j / sigma_i)^q`` when the
    prediction for ``j`` exceeds that for the true class (1 otherwise) restores the penalty on
    false positives. ``p = q = 0`` is cross-entropy. The softmax scores in ``C`` are detached,
    as in mmdetection. :class:`lossatlas.nn.SeesawLoss` keeps ``cum_samples`` and adds each
    batch's labels to it before computing, as mmdetection does.

    .. math::
        \ell = -\log \frac{e^{x_i}}{e^{x_i} + \sum_{j \ne i} S_{ij} e^{x_j}},\quad
        M_{ij} = \min(1, N_j / N_i)^p,\ C_{ij} = \max(1, \sigma_j / \sigma_i)^q

    Args:
        input: Logits ``(N, C)``.
        target: Class indices ``(N,)`` in ``[0, C)``.
        cum_samples: ``(C,)`` cumulative number of training samples per class (``>= 0``; a
            count below 1 is read as 1).
        p: Mitigation exponent ``>= 0`` (0.8 in the paper).
        q: Compensation exponent ``>= 0`` (2.0 in the paper).
        eps: Floor of the true class's score in the compensation ratio.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
        ``(N,)`` for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating input or counts, non-integer target.
        ValueError: A class index out of range, counts of the wrong shape or negative.

    Example:
        >>> logits = torch.tensor([[2.0, 1.0], [0.0, 1.0]])
        >>> la.seesaw_loss(logits, torch.tensor([0, 1]), torch.tensor([100.0, 10.0]),
        ...                reduction="none")
        tensor([0.0567, 0.3133])

    References:
        J. Wang, W. Zhang, Y. Zang, Y. Cao, J. Pang, T. Gong, K. Chen, Z. Liu, C. C. Loy,
        D. Lin, `Seesaw Loss for Long-Tailed Instance Segmentation
        <https://arxiv.org/abs/2008.10032>`_, CVPR 2021.
    """
    _check_logits(input, target, background=False, statistic=("cum_samples", cum_samples))
    num_classes = input.shape[1]
    _check_statistic("cum_samples", cum_samples, num_classes)
    dtype = compute_dtype(input, cum_samples)
    x = upcast(input, dtype)
    counts = upcast(cum_samples, dtype).to(x.device).clamp(min=1)
    onehot = F.one_hot(target, num_classes).to(dtype)
    weights = torch.ones_like(x)
    if p > 0:
        ratio = counts.unsqueeze(0) / counts.unsqueeze(1)  # [i, j] = N_j / N_i
        mitigation = torch.where(ratio < 1, ratio.pow(p), torch.ones_like(ratio))
        weights = weights * mitigation[target]
    if q > 0:
        scores = torch.softmax(x.detach(), dim=1)
        own = scores.gather(1, target.unsqueeze(1)).clamp(min=eps)
        score_ratio = scores / own
        weights = weights * torch.where(
            score_ratio > 1, score_ratio.pow(q), torch.ones_like(score_ratio)
        )
    adjusted = x + weights.log() * (1 - onehot)
    return reduce_loss(F.cross_entropy(adjusted, target, reduction="none"), reduction)


def _eqlv2_weights(
    pos_neg: Tensor | None, like: Tensor, *, gamma: float, mu: float, alpha: float
) -> tuple[Tensor, Tensor]:
    """Positive and negative weights ``(C,)`` from the gradient ratio (1 before any statistic)."""
    if pos_neg is None:
        ones = torch.ones(like.shape[1], dtype=like.dtype, device=like.device)
        return ones, ones
    neg_w = torch.sigmoid(gamma * (upcast(pos_neg, like.dtype).to(like.device) - mu))
    return 1 + alpha * (1 - neg_w), neg_w


@_STATEFUL.loss(
    formula=r"\sum_c \big[w^+_c y_c + w^-_c (1 - y_c)\big]\,\mathrm{BCE}(x_c, y_c),"
    r"\ w^-_c = \sigma(\gamma (g_c - \mu)),\ w^+_c = 1 + \alpha (1 - w^-_c)",
    examples=_eqlv2_example,
    use_when="long-tailed detection with sigmoid heads",
    peers={"mmdetection": "EQLv2 (tztztztztz/eqlv2): same weights; background is index C"},
)
def eqlv2_loss(
    input: Tensor,
    target: Tensor,
    pos_neg: Tensor | None,
    *,
    gamma: Positive = 12.0,
    mu: NonNegative = 0.8,
    alpha: NonNegative = 4.0,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Equalization loss v2 (Tan et al. 2021): sigmoid BCE re-weighted by gradient balance.

    Each class's accumulated ratio ``g_c`` of positive to negative gradient magnitude decides
    its weights: a class whose positives are drowned by negatives (small ``g_c``) gets its
    negative gradients down-weighted by ``w^-_c = sigmoid(gamma (g_c - mu))`` and its positive
    ones up-weighted by ``w^+_c = 1 + alpha (1 - w^-_c)``. ``pos_neg=None`` (the first step,
    no statistics yet) weighs everything by 1: plain sigmoid BCE summed over classes.
    :class:`lossatlas.nn.EQLv2Loss` accumulates ``g_c`` from each training step's gradients,
    as the official code does. A target equal to ``C`` is background (every class negative).

    .. math::
        \ell_n = \sum_c \big[w^+_c y_{n,c} + w^-_c (1 - y_{n,c})\big]\,
                 \mathrm{BCE}(x_{n,c}, y_{n,c})

    Args:
        input: Logits ``(N, C)`` (one sigmoid per class).
        target: Class indices ``(N,)`` in ``[0, C]`` (``C``: background).
        pos_neg: ``(C,)`` accumulated positive/negative gradient ratios (``>= 0``), or
            ``None`` before any statistic.
        gamma: Steepness of the weight map (12 in the paper).
        mu: Its centre (0.8).
        alpha: Strength of the positive up-weighting (4.0).
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by ``N`` (samples),
            as the official code does.

    Returns:
        ``(N,)`` (summed over classes) for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating input or ratios, non-integer target.
        ValueError: A class index outside ``[0, C]``, ratios of the wrong shape or negative.

    Example:
        >>> logits = torch.tensor([[2.0, -1.0], [0.0, 0.0]])
        >>> la.eqlv2_loss(logits, torch.tensor([0, 2]), None, reduction="none")
        tensor([0.4402, 1.3863])

    References:
        J. Tan, X. Lu, G. Zhang, C. Yin, Q. Li, `Equalization Loss v2: A New Gradient Balance
        Approach for Long-tailed Object Detection <https://arxiv.org/abs/2012.08548>`_, CVPR
        2021; official code https://github.com/tztztztztz/eqlv2.
    """
    _check_logits(input, target, background=True, statistic=("pos_neg", pos_neg))
    num_classes = input.shape[1]
    if pos_neg is not None:
        _check_statistic("pos_neg", pos_neg, num_classes)
    dtype = compute_dtype(input, pos_neg)
    x = upcast(input, dtype)
    onehot = F.one_hot(target, num_classes + 1)[:, :num_classes].to(dtype)
    pos_w, neg_w = _eqlv2_weights(pos_neg, x, gamma=gamma, mu=mu, alpha=alpha)
    weight = pos_w * onehot + neg_w * (1 - onehot)
    bce = F.binary_cross_entropy_with_logits(x, onehot, reduction="none")
    return reduce_loss((bce * weight).sum(1), reduction)


# --------------------------------------------------------------------------- modules


# The modules own their statistics, so their call (input, target) differs from the
# functionals' (input, target, statistic): the catalog's module == functional check cannot build
# them from an example, and the declarations name no module; tests/test_seesaw.py checks them.
class SeesawLoss(LossModule, functional=seesaw_loss, catalog=False):
    """Seesaw loss whose cumulative class counts are a buffer updated while training.

    ``forward(input, target)`` adds the batch's labels to ``cum_samples`` (in ``train()``
    mode; under a lock), then computes :func:`lossatlas.seesaw_loss`.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> loss_fn = la.nn.SeesawLoss(3)
        >>> loss = loss_fn(torch.randn(4, 3), torch.tensor([0, 0, 1, 2]))
        >>> loss_fn.cum_samples
        tensor([2., 1., 1.])
    """

    cum_samples: Tensor

    def init_state(self, num_classes: PositiveInt) -> None:
        """The cumulative class counts ``cum_samples`` (zeros)."""
        self.register_buffer("cum_samples", torch.zeros(num_classes))
        self._lock = threading.Lock()

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        if self.training:
            _check_logits(input, target, background=False, statistic=("cum_samples", None))
            counts = torch.bincount(target.reshape(-1), minlength=self.cum_samples.numel())
            with self._lock, torch.no_grad():
                self.cum_samples.add_(counts.to(self.cum_samples))
        return seesaw_loss(input, target, self.cum_samples, **self.options())


class EQLv2Loss(LossModule, functional=eqlv2_loss, catalog=False):
    """EQLv2 whose gradient statistics are buffers accumulated while training.

    ``forward(input, target)`` computes :func:`lossatlas.eqlv2_loss` with the current ratio
    (weights 1 before the first step) and, in ``train()`` mode, adds this batch's weighted
    positive and negative gradient magnitudes per class (under a lock).

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> loss_fn = la.nn.EQLv2Loss(2)
        >>> _ = loss_fn(torch.tensor([[2.0, -1.0]]), torch.tensor([0]))
        >>> loss_fn.pos_neg
        tensor([1.1920e+09, 0.0000e+00])
    """

    pos_grad: Tensor
    neg_grad: Tensor
    steps: Tensor

    def init_state(self, num_classes: PositiveInt) -> None:
        """The per-class gradient sums ``pos_grad``, ``neg_grad`` and the step count (zeros)."""
        self.register_buffer("pos_grad", torch.zeros(num_classes))
        self.register_buffer("neg_grad", torch.zeros(num_classes))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self._lock = threading.Lock()

    @property
    def pos_neg(self) -> Tensor:
        """The accumulated positive-to-negative gradient ratio per class."""
        return self.pos_grad / (self.neg_grad + 1e-10)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        options = self.options()
        with self._lock:
            ratio = self.pos_neg.clone() if int(self.steps) > 0 else None
        loss = eqlv2_loss(input, target, ratio, **options)
        if self.training:
            x = input.detach().to(self.pos_grad.dtype)
            num_classes = x.shape[1]
            onehot = F.one_hot(target, num_classes + 1)[:, :num_classes].to(x.dtype)
            pos_w, neg_w = _eqlv2_weights(
                ratio, x, gamma=options["gamma"], mu=options["mu"], alpha=options["alpha"]
            )
            weight = pos_w * onehot + neg_w * (1 - onehot)
            prob = torch.sigmoid(x)
            grad = (onehot * (prob - 1) + (1 - onehot) * prob).abs()
            with self._lock, torch.no_grad():
                self.pos_grad.add_((grad * onehot * weight).sum(0))
                self.neg_grad.add_((grad * (1 - onehot) * weight).sum(0))
                self.steps.add_(1)
        return loss
