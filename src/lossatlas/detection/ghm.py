"""Gradient Harmonizing Mechanism: GHM-C (classification) and GHM-R (box regression).

GHM (Li, Liu, Wang, AAAI 2019) reweights each element by the inverse density of its gradient
norm ``g``: the range of ``g`` is cut into ``bins`` equal bins, and an element in a bin holding
``num_b`` of the ``tot`` valid elements gets weight ``tot / (num_b * n)``, where ``n`` is the
number of non-empty bins. Crowded bins (the many easy negatives of a detector, and the few
outliers) are damped, so neither dominates the gradient. The weights sum to ``tot``, so
``"mean"`` (the weighted sum over ``tot``) is a weighted mean.

The binning is vectorised (``bucketize`` and ``scatter_add``): no per-bin Python loop and no
host sync, so it runs under ``torch.compile``. The functionals use the current batch's counts
(momentum 0); the modules can keep an exponential moving average of the counts.
"""

# Args that both losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import threading
from contextlib import nullcontext
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import Interval, Positive, PositiveInt
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_floating,
    check_probabilities,
    check_same_shape,
    check_tensor,
)
from lossatlas.distributed import ProcessGroup, active_group, all_sum

__all__ = ["ghmc_loss", "ghmr_loss"]

#: The modules' moving-average momentum, in [0, 1).
Momentum = Annotated[float, Interval(0.0, 1.0, high_inclusive=False)]


# --------------------------------------------------------------------------- binning


def _edges(bins: int, last: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``bins + 1`` edges ``i / bins``, the last one replaced by ``last`` (as mmdetection)."""
    edges = torch.arange(bins + 1, dtype=dtype, device=device) / bins
    return torch.cat((edges[:-1], torch.full((1,), last, dtype=dtype, device=device)))


def ghm_weights(
    g: Tensor,
    valid: Tensor,
    tot: Tensor,
    edges: Tensor,
    *,
    acc_sum: Tensor | None = None,
    momentum: float = 0.0,
    process_group: ProcessGroup | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """GHM weights of the elements with gradient norms ``g`` (no gradient flows through them).

    Args:
        g: Gradient norms, any shape (detached).
        valid: Bool mask of the same shape; invalid elements get weight 0 and are not counted.
        tot: This batch's count (or weight sum) of valid elements, a 0-dim tensor; the
            normaliser is ``max(tot, 1)``, taken after the sum over ``process_group``.
        edges: ``bins + 1`` increasing bin edges; ``edges[b] <= g < edges[b + 1]`` is bin ``b``.
        acc_sum: Running bin counts ``(bins,)`` for the moving average, or ``None``.
        momentum: EMA momentum in ``[0, 1)``, used with ``acc_sum``.
        process_group: With a group, the histogram and ``tot`` are every rank's (one
            all-sum of ``bins + 1`` numbers), so the weights and the running counts are
            those of the concatenated batch, identical on every rank.

    Returns:
        ``(weights, new_acc_sum, tot)``: ``tot / (density_b * n)`` per valid element (0
        elsewhere), where ``density_b`` is the bin's count (or its updated running count) and
        ``n`` the number of non-empty bins in this batch; the updated running counts (the
        batch's counts when ``acc_sum`` is ``None``; only non-empty bins update theirs); and
        the normaliser ``max(tot, 1)``.
    """
    bins = edges.numel() - 1
    index = torch.bucketize(g, edges, right=True) - 1
    counted = valid & (index >= 0) & (index < bins)
    index = torch.where(counted, index, torch.full_like(index, bins)).reshape(-1)
    counts = torch.zeros(bins + 1, dtype=g.dtype, device=g.device)
    counts = counts.scatter_add(0, index, counted.reshape(-1).to(g.dtype))[:bins]
    group = active_group(process_group)
    if group is not None:
        counts, tot = all_sum(torch.cat([counts, tot.reshape(1).to(g.dtype)]), group).split(bins)
        tot = tot.reshape(())
    tot = tot.clamp(min=1.0)
    nonempty = counts > 0
    if acc_sum is None:
        density = counts
    else:
        acc = acc_sum.to(g.dtype)
        density = torch.where(nonempty, momentum * acc + (1 - momentum) * counts, acc)
    num_nonempty = nonempty.sum().to(g.dtype)
    # A padded slot for elements that are not counted (their weight is 0).
    padded = torch.cat((density, torch.ones(1, dtype=g.dtype, device=g.device)))
    per_element = padded[index].view(g.shape)
    weights = torch.where(
        counted, tot / per_element / num_nonempty.clamp(min=1.0), torch.zeros_like(g)
    )
    return weights, density, tot


def _checked(
    input: Tensor, target: Tensor, label_weight: Tensor | None, *, probabilities: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """``input`` and ``target`` checked and in the compute dtype, and the validity mask.

    The mask is ``label_weight > 0`` (all valid when ``None``); ``probabilities`` checks that
    the targets lie in ``[0, 1]``.
    """
    check_floating("input", input)
    check_floating("target", target)
    check_same_shape("input", input, "target", target)
    if label_weight is None:
        valid = torch.ones_like(input, dtype=torch.bool)
    else:
        check_tensor("label_weight", label_weight)
        if label_weight.is_complex():
            raise TypeError(f"label_weight must be a real tensor, got {label_weight.dtype}")
        check_same_shape("input", input, "label_weight", label_weight)
        # A NaN weight is not "ignore": it stays valid, and its NaN reaches the loss.
        valid = (label_weight > 0) | label_weight.isnan()
    if probabilities:
        check_probabilities("target", target)
    dtype = compute_dtype(input, target)
    return upcast(input, dtype), upcast(target, dtype), valid


# --------------------------------------------------------------------------- declarations


def _ghmc_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    logits = ex.normal(generator, batch, 5, dtype=dtype, scale=2.0 * scale)
    return Example((logits, ex.binary_labels(generator, batch, 5, dtype=dtype)))


def _ghmr_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    pred = ex.normal(generator, batch, 4, dtype=dtype, scale=0.3 * scale)
    return Example((pred, ex.normal(generator, batch, 4, dtype=dtype, scale=0.3)))


def _ghmr_perfect(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    target = ex.normal(generator, batch, 4, dtype=dtype, scale=scale)
    return Example((target.clone(), target))


_GHM = Family(
    tasks=("detection",),
    properties={"non_negative"},
    same_shape=(0, 1),
    args={
        "bins": "Number of bins, an int ``>= 1``.",
        "process_group": (
            "``None`` (this process only) or a ``torch.distributed`` group: the histogram, "
            '``tot`` and ``"mean"``/``"sum"`` are then over every rank\'s elements, so the '
            "value on every rank and, after DDP's gradient averaging, the gradients equal one "
            "process on the concatenated batch (see :mod:`lossatlas.distributed`). "
            '``"none"`` gives this rank\'s elements, weighted by the global histogram.'
        ),
    },
    references=(
        'B. Li, Y. Liu, X. Wang, "Gradient Harmonized Single-stage Detector", AAAI 2019,'
        " https://arxiv.org/abs/1811.05181",
        "mmdetection, mmdet/models/losses/ghm_loss.py:"
        " https://github.com/open-mmlab/mmdetection/blob/main/mmdet/models/losses/ghm_loss.py",
    ),
)


# --------------------------------------------------------------------------- GHM-C


def _ghmc(
    input: Tensor,
    target: Tensor,
    label_weight: Tensor | None,
    *,
    bins: int,
    reduction: str,
    acc_sum: Tensor | None = None,
    momentum: float = 0.0,
    process_group: ProcessGroup | None = None,
) -> tuple[Tensor, Tensor]:
    """GHM-C values and the bin counts; the options were checked by the caller."""
    input, target, valid = _checked(input, target, label_weight, probabilities=True)
    dtype = input.dtype
    with torch.no_grad():
        g = (torch.sigmoid(input) - target).abs()
        tot = valid.sum().to(dtype)
        edges = _edges(bins, 1.0 + 1e-6, dtype, input.device)
        weights, density, tot = ghm_weights(
            g, valid, tot, edges, acc_sum=acc_sum, momentum=momentum, process_group=process_group
        )
        if label_weight is not None:  # a NaN label weight makes its element's loss NaN
            weights = torch.where(label_weight.isnan(), label_weight.to(dtype), weights)
    loss = F.binary_cross_entropy_with_logits(input, target, reduction="none") * weights
    return _reduce(loss, reduction, tot, process_group), density


def _reduce(
    loss: Tensor, reduction: str, tot: Tensor, process_group: ProcessGroup | None
) -> Tensor:
    """``"mean"`` divides by ``tot``, which is already the global one with a group."""
    return reduce_loss(
        loss, reduction, denominator=tot, process_group=process_group, global_denominator=True
    )


@_GHM.loss(
    tasks=("binary", "detection", "imbalanced"),
    input_kind="logits",
    target_kind="binary labels (soft allowed)",
    target_type=TargetKind.PROBABILITIES,
    formula=(
        r"\frac{\mathrm{tot}}{\mathrm{num}_{b(g)}\, n}\, \mathrm{BCE}(x, t),"
        r"\ g = |\sigma(x) - t|"
    ),
    examples=_ghmc_example,
)
def ghmc_loss(
    input: Tensor,
    target: Tensor,
    *,
    label_weight: Tensor | None = None,
    bins: PositiveInt = 10,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""GHM-C: binary cross-entropy on logits reweighted by gradient-norm density.

    The gradient norm of sigmoid BCE with respect to the logit is ``g = |sigmoid(x) - t|``.
    With edges ``b / bins`` (the last raised by ``1e-6`` so ``g = 1`` falls in the last bin, as
    in mmdetection), an element in a bin holding ``num_b`` of the ``tot`` valid elements gets
    the weight ``tot / (num_b * n)``, ``n`` the number of non-empty bins; with one bin it is
    plain BCE. The weights are constants (no gradient flows through the binning). This
    functional uses the batch's own counts (momentum 0); :class:`lossatlas.nn.GHMCLoss` can
    keep a moving average.

    .. math::
        \ell_i = \frac{\mathrm{tot}}{\mathrm{num}_{b(i)}\, n}\,
            \operatorname{BCE}(x_i, t_i), \qquad g_i = |\sigma(x_i) - t_i|

    Args:
        input: Logits, any shape (e.g. ``(N, C)`` per-class sigmoid scores of a detector).
        target: Same shape, labels in ``[0, 1]`` (soft labels allowed).
        label_weight: Same shape; entries ``> 0`` are valid, the rest ignored (neither
            weighted nor counted). As in mmdetection only the sign matters: the GHM weights
            replace per-element weights.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides the weighted sum by
            ``tot``, the number of valid elements (the sum of the weights; 0 when none is valid,
            never NaN), as mmdetection does.

    Returns:
        The weighted BCE, same shape as ``input`` for ``"none"``, else a scalar. Float32 for
        half-precision input.

    Raises:
        TypeError: Non-floating input or target.
        ValueError: Shapes that differ, targets outside [0, 1], ``bins < 1``, a bad reduction.

    Example:
        Three easy elements share a bin, one hard element has its own: each bin gets half of
        the total weight.

        >>> import torch
        >>> import lossatlas as la
        >>> logits = torch.tensor([-4.0, -4.0, -4.0, 3.0])
        >>> target = torch.tensor([0.0, 0.0, 0.0, 0.0])
        >>> la.ghmc_loss(logits, target, reduction="none")
        tensor([0.0121, 0.0121, 0.0121, 6.0972])
    """
    loss, _ = _ghmc(
        input, target, label_weight, bins=bins, reduction=reduction, process_group=process_group
    )
    return loss


# --------------------------------------------------------------------------- GHM-R


def _ghmr(
    input: Tensor,
    target: Tensor,
    label_weight: Tensor | None,
    *,
    mu: float,
    bins: int,
    reduction: str,
    acc_sum: Tensor | None = None,
    momentum: float = 0.0,
    process_group: ProcessGroup | None = None,
) -> tuple[Tensor, Tensor]:
    """GHM-R values and the bin counts; the options were checked by the caller."""
    input, target, valid = _checked(input, target, label_weight, probabilities=False)
    dtype = input.dtype
    diff = input - target
    root = torch.hypot(diff, torch.full_like(diff, mu))
    with torch.no_grad():
        g = diff.abs() / root
        if label_weight is None:
            tot = torch.tensor(float(input.numel()), dtype=dtype, device=input.device)
        else:
            tot = label_weight.to(dtype).sum()
        edges = _edges(bins, 1e3, dtype, input.device)
        weights, density, tot = ghm_weights(
            g, valid, tot, edges, acc_sum=acc_sum, momentum=momentum, process_group=process_group
        )
    loss = (root - mu) * weights
    return _reduce(loss, reduction, tot, process_group), density


@_GHM.loss(
    input_kind="predictions (box offsets)",
    target_kind="real values",
    target_type=TargetKind.REAL,
    formula=(
        r"\frac{\mathrm{tot}}{\mathrm{num}_{b(g)}\, n}"
        r"\left(\sqrt{d^2 + \mu^2} - \mu\right),\ g = \frac{|d|}{\sqrt{d^2 + \mu^2}}"
    ),
    # symmetric: ASL1 and g depend on |input - target| only.
    properties={"non_negative", "zero_at_perfect", "symmetric"},
    examples=_ghmr_example,
    perfect=_ghmr_perfect,
)
def ghmr_loss(
    input: Tensor,
    target: Tensor,
    *,
    mu: Positive = 0.02,
    bins: PositiveInt = 10,
    label_weight: Tensor | None = None,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""GHM-R: Authentic Smooth-L1 reweighted by gradient-norm density, for box regression.

    ASL1 ``sqrt(d^2 + mu^2) - mu`` of the residual ``d`` is quadratic for ``|d| << mu`` and
    linear beyond; its gradient norm ``|d| / sqrt(d^2 + mu^2)`` lies in ``[0, 1)`` and is
    binned as in :func:`ghmc_loss` (edges ``b / bins``, the last raised to ``1e3`` as in
    mmdetection). With one bin it is plain ASL1. Computed with ``hypot``, so huge residuals
    stay finite.

    .. math::
        \ell_i = \frac{\mathrm{tot}}{\mathrm{num}_{b(i)}\, n}
            \left(\sqrt{d_i^2 + \mu^2} - \mu\right),
        \qquad g_i = \frac{|d_i|}{\sqrt{d_i^2 + \mu^2}}

    Args:
        input: Predicted regression targets (e.g. box offsets), any shape.
        target: Same shape.
        mu: ASL1's transition scale, ``> 0``.
        label_weight: Same shape; entries ``> 0`` are valid, the rest ignored.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides the weighted sum by
            ``tot = max(sum(label_weight), 1)`` (the number of elements without
            ``label_weight``), as mmdetection does.

    Returns:
        Same shape as ``input`` for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating input or target.
        ValueError: Shapes that differ, ``mu <= 0``, ``bins < 1``, a bad reduction.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> pred = torch.tensor([0.0, 0.0, 0.0, 1.0])
        >>> la.ghmr_loss(pred, torch.zeros(4), reduction="none")  # two bins, half the weight each
        tensor([0.0000, 0.0000, 0.0000, 1.9604])
    """
    loss, _ = _ghmr(
        input,
        target,
        label_weight,
        mu=mu,
        bins=bins,
        reduction=reduction,
        process_group=process_group,
    )
    return loss


# --------------------------------------------------------------------------- modules


_STATE_DOC = """
    With ``momentum > 0`` the module keeps ``acc_sum``, an exponential moving average of the
    bin counts (``acc = momentum * acc + (1 - momentum) * num_in_bin`` for this batch's
    non-empty bins, from zero, as mmdetection), and weighs elements by ``tot / (acc_b * n)``.
    This is state by design (the paper's moving average), unlike the other modules:
    ``forward`` updates the buffer in training mode only, without gradient; in eval mode the
    weights use the updated counts but the buffer is left as it is. ``acc_sum`` is a buffer, so
    it moves with ``.to()`` and is saved in ``state_dict()``. With ``momentum=0`` (the default)
    the module is the functional and holds no state. With ``process_group`` the counts are
    the whole group's, so ``acc_sum`` stays identical on every rank.

    Threads: a training-mode ``forward`` reads the counts, computes the loss and assigns the
    new counts (a fresh tensor, never an in-place write) under one lock, so calls from several
    threads on one module are serialised and every batch's update counts, in some order. A
    module built under ``torch.inference_mode()`` or ``no_grad`` trains normally.

    Called as ``loss(input, target, label_weight=None)``.
"""


#: Serialises the read-update-assign of the running counts of every GHM module (a module-level
#: lock, so modules stay picklable and deep-copyable; the update is a few small tensor ops).
_STATE_LOCK = threading.Lock()


class _GHMModule(LossModule):
    """Shared state handling of the GHM modules: the running bin counts ``acc_sum``."""

    acc_sum: Tensor
    momentum: float
    bins: int
    #: ``(input, target, label_weight, **options) -> (loss, bin counts)``.
    compute: Any

    call_options = ("label_weight",)  # forward(input, target, label_weight=None)

    def init_state(self, *, momentum: Momentum = 0.0) -> None:
        """The running bin counts ``acc_sum`` (zeros), kept when ``momentum > 0``."""
        self.momentum = float(momentum)
        self.register_buffer("acc_sum", torch.zeros(self.bins))

    def _stateful(self) -> bool:
        return self.training and self.momentum > 0

    def _store(self, density: Tensor) -> None:
        """Assign the new running counts (under :data:`_STATE_LOCK`, held by the caller)."""
        if self._stateful():
            # A new tensor rather than ``copy_``: an ``acc_sum`` made under inference_mode
            # cannot be written in place outside it.
            with torch.inference_mode(False):
                self.acc_sum = density.detach().to(self.acc_sum.dtype).clone()

    def forward(self, input: Tensor, target: Tensor, label_weight: Tensor | None = None) -> Tensor:
        with _STATE_LOCK if self._stateful() else nullcontext():
            acc = self.acc_sum if self.momentum > 0 else None
            loss, density = type(self).compute(
                input, target, label_weight, **self.options(), acc_sum=acc, momentum=self.momentum
            )
            self._store(density)
        return loss

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, momentum={self.momentum!r}"


class GHMCLoss(_GHMModule, functional=ghmc_loss):
    """Module form of :func:`lossatlas.ghmc_loss` with optional running bin counts.

    ``momentum`` in ``[0, 1)``: 0 (default, mmdetection's default) uses each batch's counts;
    the paper uses 0.75.
    """

    __doc__ = (__doc__ or "") + _STATE_DOC
    compute = staticmethod(_ghmc)


class GHMRLoss(_GHMModule, functional=ghmr_loss):
    """Module form of :func:`lossatlas.ghmr_loss` with optional running bin counts.

    ``momentum`` in ``[0, 1)``: 0 by default; mmdetection's GHM RetinaNet uses 0.7.
    """

    __doc__ = (__doc__ or "") + _STATE_DOC
    compute = staticmethod(_ghmr)
