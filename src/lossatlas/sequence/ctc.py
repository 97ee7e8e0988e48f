r"""Connectionist temporal classification (CTC): torch's kernel, validated.

``ctc_loss`` computes what ``torch.nn.functional.ctc_loss`` computes, after checks that turn
torch's silent failure modes into errors that say what is wrong: a label equal to ``blank``
inside a target, a target that cannot fit in its input (which torch reports as an infinite
loss), lengths out of range, and raw scores passed where log-probabilities are expected.

It also fixes the gradient with respect to ``log_probs``. torch's backward returns the
gradient as if ``log_softmax`` were part of the loss (pytorch/pytorch#52241), which is right
after a ``log_softmax`` but not the derivative of the loss with respect to its input. Here the
difference, ``exp(log_probs)`` on every frame inside the input length, is removed, so
``torch.autograd.gradcheck`` passes on ``log_probs`` and gradients through ``log_softmax`` are
unchanged (the difference lies in ``log_softmax``'s null space).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import NonNegativeInt
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_floating,
    check_integer,
    check_same_device,
    check_shape,
    describe,
    value_checks_enabled,
)

__all__ = ["ctc_loss"]

#: Largest ``|logsumexp|`` over the classes of a frame still accepted as a log-probability row.
_NORMALISATION_TOL = {torch.float16: 5e-2, torch.bfloat16: 5e-2}
_DEFAULT_TOL = 1e-3


_FRAMES, _CLASSES, _MAX_LABELS = 12, 5, 4


def _ctc_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    logits = ex.normal(generator, _FRAMES, batch, _CLASSES, dtype=torch.float64, scale=scale)
    log_probs = torch.log_softmax(logits, dim=2).to(dtype)
    target_lengths = torch.randint(1, _MAX_LABELS + 1, (batch,), generator=generator)
    targets = torch.randint(1, _CLASSES, (batch, _MAX_LABELS), generator=generator)
    # Padding past each length is blank (0), as is common; 2 * 4 labels always fit 9 frames.
    padding = torch.arange(_MAX_LABELS).unsqueeze(0) >= target_lengths.unsqueeze(1)
    targets = targets.masked_fill(padding, 0)
    input_lengths = torch.randint(2 * _MAX_LABELS + 1, _FRAMES + 1, (batch,), generator=generator)
    return Example((log_probs, targets, input_lengths, target_lengths))


def _as_lengths(name: str, value: Tensor | Sequence[int], batch: int) -> Tensor:
    """``value`` as a ``(batch,)`` long tensor (torch also accepts a list of ints)."""
    if not isinstance(value, Tensor):
        if not isinstance(value, Sequence) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise TypeError(
                f"{name} must be an integer tensor or a sequence of ints, got {describe(value)}"
            )
        value = torch.tensor(list(value), dtype=torch.long)
    check_integer(name, value)
    check_shape(name, value, (batch,), what="(one length per sample)")
    return value.long()


def _check_values(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
    *,
    blank: int,
    check_fit: bool,
) -> None:
    """The value checks (a device sync; skipped when value checks are off or under compile)."""
    frames, batch, num_classes = log_probs.shape
    max_labels = targets.shape[1] if targets.dim() == 2 else None
    for name, lengths, high in (
        ("input_lengths", input_lengths, frames),
        ("target_lengths", target_lengths, max_labels),
    ):
        bad = (lengths < 0) if high is None else (lengths < 0) | (lengths > high)
        if bool(bad.any()):
            n = int(bad.nonzero()[0, 0])
            allowed = "[0, inf)" if high is None else f"[0, {high}]"
            raise ValueError(f"{name} must be in {allowed}, got {int(lengths[n])} for sample {n}")
    if targets.dim() == 1:
        total = int(target_lengths.sum())
        if total != targets.numel():
            raise ValueError(
                f"concatenated targets must hold sum(target_lengths) = {total} labels, "
                f"got {targets.numel()}"
            )
        valid = torch.ones_like(targets, dtype=torch.bool)
        sample = torch.repeat_interleave(torch.arange(batch), target_lengths.cpu()).to(
            targets.device
        )
    else:
        positions = torch.arange(targets.shape[1], device=targets.device)
        valid = positions.unsqueeze(0) < target_lengths.unsqueeze(1)
    # Labels: in range and never the blank.
    out_of_range = valid & ((targets < 0) | (targets >= num_classes))
    if bool(out_of_range.any()):
        position = tuple(int(i) for i in out_of_range.nonzero()[0])
        raise ValueError(
            f"targets has label {int(targets[position])} at position {position}; expected "
            f"values in [0, {num_classes}) other than blank={blank}"
        )
    is_blank = valid & (targets == blank)
    if bool(is_blank.any()):
        position = tuple(int(i) for i in is_blank.nonzero()[0])
        raise ValueError(
            f"targets has the blank label {blank} at position {position}; a target must not "
            f"contain blank (padding after target_lengths may)"
        )
    # Fit: L labels need L frames plus one blank between each pair of equal neighbours.
    if check_fit:
        if targets.dim() == 1:
            same = (targets[1:] == targets[:-1]) & (sample[1:] == sample[:-1])
            repeats = torch.bincount(sample[1:][same], minlength=batch)
        else:
            same = (targets[:, 1:] == targets[:, :-1]) & valid[:, 1:]
            repeats = same.sum(dim=1)
        required = target_lengths + repeats.to(target_lengths.device)
        too_long = required > input_lengths
        if bool(too_long.any()):
            n = int(too_long.nonzero()[0, 0])
            raise ValueError(
                f"the target of sample {n} cannot fit its input: {int(target_lengths[n])} "
                f"labels with {int(repeats[n])} repeated neighbours need at least "
                f"{int(required[n])} frames, but input_lengths[{n}] is {int(input_lengths[n])} "
                f"(pass zero_infinity=True to give such samples a zero loss instead)"
            )
    # Log-probabilities: every frame inside its input length must log-sum-exp to 0.
    if log_probs.numel():
        frame = torch.arange(frames, device=log_probs.device).unsqueeze(1)
        inside = frame < input_lengths.to(log_probs.device).unsqueeze(0)
        lse = torch.logsumexp(log_probs.detach().float(), dim=2)
        tol = _NORMALISATION_TOL.get(log_probs.dtype, _DEFAULT_TOL)
        bad = inside & ~(lse.abs() <= tol)
        if bool(bad.any()):
            t, n = (int(i) for i in bad.nonzero()[0])
            raise ValueError(
                f"log_probs must hold log-probabilities over the classes (dim 2), e.g. "
                f"log_softmax(logits, dim=2); frame (t={t}, n={n}) has logsumexp "
                f"{float(lse[t, n]):.4g}, expected 0"
            )


_CTC = Family(
    tasks=("sequence",),
    input_kind="log-probabilities (T, N, C)",
    target_kind="label sequences with lengths",
    target_type=TargetKind.SEQUENCE,
)


@_CTC.loss(
    formula=r"-\log \sum_{\pi \in \mathcal{B}^{-1}(y)} \prod_t p_{t, \pi_t}",
    properties={"non_negative"},
    examples=_ctc_example,
    # "mean" divides each sample by its target length before averaging (torch's).
    mean_of_none=False,
    oracle=F.ctc_loss,
    # torch's CTC kernel (aten._ctc_loss) has an output whose shape depends on the target
    # lengths' values, so Dynamo cannot capture it in one graph: F.ctc_loss itself fails
    # under fullgraph=True. Compiling with graph breaks works (tests/test_ctc.py).
    compile=False,
    use_when="speech / handwriting: unaligned label sequences",
    peers={"torch": "F.ctc_loss: same values; here the gradient is the true derivative"},
)
def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor | Sequence[int],
    target_lengths: Tensor | Sequence[int],
    *,
    blank: NonNegativeInt = 0,
    reduction: Reduction = "mean",
    zero_infinity: bool = False,
) -> Tensor:
    r"""CTC loss: the negative log-probability of a label sequence summed over its alignments.

    Values equal ``torch.nn.functional.ctc_loss`` (torch's kernel). Before any arithmetic the
    inputs are checked: labels in ``[0, C)`` and never ``blank`` (value and position named),
    lengths in range, every target able to fit its input, and ``log_probs`` normalised over
    the classes. A target of ``L`` labels with ``R`` pairs of equal neighbours needs at least
    ``L + R`` frames, since a blank must separate repeats; torch would return ``inf``. With
    ``zero_infinity=True`` that check is skipped and such samples get a zero loss and gradient,
    as in torch. The gradient with respect to ``log_probs`` is the true derivative (see the
    module's notes); through ``log_softmax`` it equals torch's.

    The checks on values (labels, lengths, fit, normalisation: about one extra pass over
    ``log_probs`` and a device sync) can be switched off with ``la.set_value_checks(False)``;
    the checks on shapes, dtypes and options always run.

    .. math::
        \ell_n = -\log \sum_{\pi \in \mathcal{B}^{-1}(y_n)} \prod_{t=1}^{T_n} p_{t, \pi_t}

    Args:
        log_probs: ``(T, N, C)`` log-probabilities over ``C`` classes (blank included), e.g.
            ``log_softmax(logits, dim=2)``; half precision is computed in float32.
        targets: Integer labels, either padded ``(N, S)`` (entries past a sample's target
            length are ignored) or the concatenation of all targets ``(sum(target_lengths),)``.
        input_lengths: ``(N,)`` frames used per sample, in ``[0, T]``.
        target_lengths: ``(N,)`` labels per sample (``<= S`` for padded targets).
        blank: The blank label, in ``[0, C)``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. ``"mean"`` is torch's: each sample's
            loss is divided by its target length (at least 1), then averaged over the batch,
            so it is not ``"none"`` followed by ``.mean()``. An empty batch gives 0.
        zero_infinity: Give samples whose loss is infinite (a target that cannot be aligned)
            a zero loss and gradient instead of raising for targets that cannot fit.

    Returns:
        ``(N,)`` for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating ``log_probs``, non-integer targets or lengths, a non-bool flag.
        ValueError: Wrong shapes; ``blank`` outside ``[0, C)``; a label out of range or equal
            to blank; lengths out of range; a target that cannot fit its input; rows of
            ``log_probs`` that are not log-probabilities; an unknown reduction.

    Example:
        Two frames, one label ``1`` over classes ``{blank, 1}``: the alignments ``(1, 1)``,
        ``(blank, 1)`` and ``(1, blank)`` have probability ``0.75`` in total.

        >>> import torch
        >>> import lossatlas as la
        >>> log_probs = torch.full((2, 1, 2), 0.5).log()
        >>> la.ctc_loss(log_probs, torch.tensor([[1]]), [2], [1], reduction="sum")
        tensor(0.2877)

    References:
        A. Graves et al., `Connectionist Temporal Classification: Labelling Unsegmented
        Sequence Data with Recurrent Neural Networks
        <https://www.cs.toronto.edu/~graves/icml_2006.pdf>`_, ICML 2006.

        torch.nn.functional.ctc_loss,
        https://pytorch.org/docs/stable/generated/torch.nn.functional.ctc_loss.html
    """
    check_floating("log_probs", log_probs)
    check_shape("log_probs", log_probs, (None, None, None), what="(T, N, C)")
    frames, batch, num_classes = log_probs.shape
    if frames == 0 or num_classes == 0:
        raise ValueError(
            f"log_probs must have at least one frame and one class, got {tuple(log_probs.shape)}"
        )
    if not 0 <= blank < num_classes:
        raise ValueError(f"blank must be in [0, {num_classes}) (C = {num_classes}), got {blank}")
    check_integer("targets", targets)
    # As torch (and cuDNN, which wants them there) allows, targets and lengths may stay on the CPU.
    for name, value in (
        ("targets", targets),
        ("input_lengths", input_lengths),
        ("target_lengths", target_lengths),
    ):
        if isinstance(value, Tensor) and value.device.type != "cpu":
            check_same_device(("log_probs", log_probs), (name, value))
    if targets.dim() == 2:
        if targets.shape[0] != batch:
            raise ValueError(
                f"padded targets must have shape (N, S) with N = {batch}, got "
                f"{tuple(targets.shape)}"
            )
    elif targets.dim() != 1:
        raise ValueError(
            f"targets must be padded (N, S) or concatenated (sum(target_lengths),), got shape "
            f"{tuple(targets.shape)}"
        )
    input_lengths = _as_lengths("input_lengths", input_lengths, batch)
    target_lengths = _as_lengths("target_lengths", target_lengths, batch)
    if value_checks_enabled():
        _check_values(
            log_probs,
            targets,
            input_lengths,
            target_lengths,
            blank=blank,
            check_fit=not zero_infinity,
        )
    dtype = compute_dtype(log_probs)
    log_probs = upcast(log_probs, dtype)
    if batch == 0:
        loss = log_probs.sum(dim=(0, 2))
    else:
        loss = F.ctc_loss(
            log_probs,
            targets.long(),
            input_lengths,
            target_lengths,
            blank=blank,
            reduction="none",
            zero_infinity=zero_infinity,
        )
        if log_probs.requires_grad and torch.is_grad_enabled():
            loss = _true_gradient(loss, log_probs, input_lengths)
    if reduction == "mean":
        per_label = loss / target_lengths.clamp(min=1).to(loss.device, loss.dtype)
        return reduce_loss(per_label, "mean")
    return reduce_loss(loss, reduction)


class _TrueLogProbGradient(torch.autograd.Function):
    """Identity on the per-sample loss whose backward removes torch's extra ``exp(log_probs)``.

    torch's backward adds ``g_n exp(log_probs)`` on each frame inside sample ``n``'s input
    length, except for samples whose loss it zeroed (``zero_infinity``) or that are infinite.
    This function's backward sends ``-g_n exp(log_probs)`` on the same frames to
    ``log_probs``, so the two add up to the true derivative. A loss of exactly 0 (a zeroed
    sample, or a target of probability 1) keeps torch's gradient; for probability 1 that is 0,
    which differs from the true derivative only in ``log_softmax``'s null space. It costs one
    ``exp`` and one multiply in the backward pass, nothing in the forward.
    """

    @staticmethod
    def forward(ctx: Any, loss: Tensor, log_probs: Tensor, inside: Tensor) -> Tensor:
        keep = torch.isfinite(loss) & (loss != 0)
        ctx.save_for_backward(log_probs, inside, keep)
        return loss.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor | None, None]:
        if not ctx.needs_input_grad[1]:
            return grad, None, None
        log_probs, inside, keep = ctx.saved_tensors
        weight = torch.where(keep, -grad, torch.zeros_like(grad))
        frame_weight = (inside * weight.unsqueeze(0)).unsqueeze(2)
        return grad, log_probs.exp().mul_(frame_weight), None


def _true_gradient(loss: Tensor, log_probs: Tensor, input_lengths: Tensor) -> Tensor:
    """``loss`` unchanged, with the gradient it sends to ``log_probs`` made the true one."""
    frame = torch.arange(log_probs.shape[0], device=log_probs.device).unsqueeze(1)
    inside = (frame < input_lengths.to(log_probs.device).unsqueeze(0)).to(log_probs.dtype)
    result: Tensor = _TrueLogProbGradient.apply(loss, log_probs, inside)
    return result


# --------------------------------------------------------------------------- module


class CTCLoss(LossModule, functional=ctc_loss):
    """Module form of :func:`lossatlas.ctc_loss`.

    Called as ``loss(log_probs, targets, input_lengths, target_lengths)``.
    """
