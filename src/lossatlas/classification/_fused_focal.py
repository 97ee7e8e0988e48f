"""Single-pass kernels of the focal family (sigmoid and softmax), with custom autograd.

Each loss here is evaluated by a kernel that returns the loss *and* its gradient with respect to
the logits in one pass over the inputs; a :class:`torch.autograd.Function` saves only that
gradient (one input-sized tensor) and its backward multiplies it by the incoming gradient. The
kernels are plain tensor functions, compiled lazily by :mod:`lossatlas._fused` (with
``LOSSATLAS_FUSED=0`` they run op by op, with the same values and the same saved tensor).

The same maths written with differentiable ops (``*_plain``) is used where a custom Function
does not fit: inside a caller's ``torch.compile`` region, under functorch transforms, and when
the target or a weight requires a gradient.

Sigmoid family, per element, with ``s = sigmoid(x)``, ``s' = sigmoid(-x)`` and a soft target
``t``::

    loss = (a1 t + a0 (1 - t)) * q**gamma * (b1 pw t softplus(-x) + b0 (1 - t) softplus(x))
    q    = 1 - p_t = (1 - t) s + t s'

``binary_focal_loss`` is ``a1 = alpha, a0 = 1 - alpha, b1 = b0 = 1``;
``balanced_binary_cross_entropy`` is ``a1 = a0 = 1, gamma = 0, b1 = alpha, b0 = 1 - alpha``.
``log q`` is computed in log space: with ``e = exp(-|x|)``, ``q = (w1 + w2 e) / (1 + e)`` where
``w1`` is the target weight of the larger of ``s, s'``; when ``w1 = 0`` (a hard target on the
right side) ``log q = -|x| - log1p(e)`` exactly, so nothing underflows before the final ``exp``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas._fused import fused_kernel, use_custom_autograd
from lossatlas._validation import check_number

_FIRST_ORDER_ONLY = (
    "lossatlas: the fused focal kernels give first derivatives only (they save the finished "
    "gradient), so backward with create_graph=True cannot differentiate them again. For "
    "higher-order derivatives use torch.func (torch.func.grad, torch.func.hessian), under which "
    "these losses run on plain differentiable ops."
)


def check_first_order() -> None:
    """Raise a clear error when a backward is asked to build a graph (``create_graph=True``)."""
    if torch.is_grad_enabled():
        raise RuntimeError(_FIRST_ORDER_ONLY)


# --------------------------------------------------------------------------- sigmoid family


def _sigmoid_terms(
    x: Tensor, t: Tensor, pw: Tensor | None, coef: Tensor, need_grad: bool
) -> tuple[Tensor, Tensor | None]:
    """Loss and (optionally) its derivative in ``x``; ``coef = [a1, a0, b1, b0, gamma]``."""
    a1, a0, b1, b0, gamma = coef.unbind()
    ax = x.abs()
    e = torch.exp(-ax)
    l1p = torch.log1p(e)
    sp_pos = torch.clamp_min(x, 0) + l1p  # softplus(x)  = -log(1 - s)
    sp_neg = torch.clamp_min(-x, 0) + l1p  # softplus(-x) = -log(s)
    pos = b1 * t if pw is None else b1 * pw * t
    neg = b0 * (1 - t)
    ce = pos * sp_neg + neg * sp_pos
    nonneg = x >= 0
    w1 = torch.where(nonneg, 1 - t, t)  # weight of the larger of s, s' in q
    w2 = 1 - w1
    big = w1 > 0
    a = torch.where(big, w1 + w2 * e, 1.0)
    log_q = torch.where(big, torch.log(a), -ax) - l1p
    modulator = torch.exp(gamma * log_q)
    alpha_t = a1 * t + a0 * (1 - t)
    weight = alpha_t * modulator
    loss = weight * ce
    if not need_grad:
        return loss, None
    inv = 1 / (1 + e)
    s = torch.where(nonneg, inv, e * inv)
    s_neg = torch.where(nonneg, e * inv, inv)
    d_ce = neg * s - pos * s_neg
    # d log q / dx = (1 - 2t) s s' / q, written so a hard target never divides 0 by 0.
    d_log_q = (1 - 2 * t) * inv * torch.where(big, e / a, 1.0)
    grad = weight * (gamma * d_log_q * ce + d_ce)
    return loss, grad


def _sigmoid_none(x: Tensor, t: Tensor, pw: Tensor | None, coef: Tensor) -> tuple[Tensor, Tensor]:
    loss, grad = _sigmoid_terms(x, t, pw, coef, True)
    assert grad is not None
    return loss, grad


def _sigmoid_sum(x: Tensor, t: Tensor, pw: Tensor | None, coef: Tensor) -> tuple[Tensor, Tensor]:
    loss, grad = _sigmoid_terms(x, t, pw, coef, True)
    assert grad is not None
    return loss.sum(), grad


def _sigmoid_value(x: Tensor, t: Tensor, pw: Tensor | None, coef: Tensor) -> Tensor:
    return _sigmoid_terms(x, t, pw, coef, False)[0]


_SIGMOID_NONE = fused_kernel(_sigmoid_none)
_SIGMOID_SUM = fused_kernel(_sigmoid_sum)
_SIGMOID_VALUE = fused_kernel(_sigmoid_value)


def _flatten_binary(
    x: Tensor, t: Tensor, pw: Tensor | None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """1-D views (or ``(rows, K)`` when ``pw`` spans the last dims), so ranks never recompile."""
    if pw is None:
        return x.reshape(-1), t.reshape(-1), None
    while pw.dim() > 0 and pw.shape[0] == 1:
        pw = pw.squeeze(0)
    span = x.shape[x.dim() - pw.dim() :]
    k = 1
    for size in span:
        k *= size
    pw_k = pw.expand(span).reshape(k)
    return x.reshape(-1, k), t.reshape(-1, k), pw_k


class _SigmoidFocal(torch.autograd.Function):
    """Sigmoid focal family; saves only the gradient. ``reduce``: return the sum."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, t: Tensor, pw: Tensor | None, coef: Tensor, reduce: bool
    ) -> Tensor:
        shape = x.shape
        xf, tf, pwf = _flatten_binary(x, t, pw)
        with torch.autocast(x.device.type, enabled=False):
            kernel = _SIGMOID_SUM if reduce else _SIGMOID_NONE
            loss, grad = kernel(xf, tf, pwf, coef)
        ctx.save_for_backward(grad.reshape(shape))
        ctx.reduce = reduce
        return loss if reduce else loss.reshape(shape)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        check_first_order()
        (grad,) = ctx.saved_tensors
        return grad * grad_output, None, None, None, None


def sigmoid_focal_values(
    x: Tensor,
    t: Tensor,
    pw: Tensor | None,
    *,
    a1: float,
    a0: float,
    b1: float,
    b0: float,
    gamma: float,
    reduce: bool,
) -> Tensor:
    """The sigmoid focal family on logits ``x`` (compute dtype) and targets ``t`` (same dtype).

    Returns the element-wise loss (``reduce=False``) or its sum. Takes the fused path when it
    may (see :func:`lossatlas._fused.use_custom_autograd`), the plain differentiable ops
    otherwise.
    """
    coef = torch.tensor([a1, a0, b1, b0, gamma], dtype=x.dtype, device=x.device)
    if x.numel() == 0 or not use_custom_autograd(x, t, pw):
        loss = sigmoid_focal_plain(x, t, pw, coef)
        return loss.sum() if reduce else loss
    if not x.requires_grad or not torch.is_grad_enabled():
        xf, tf, pwf = _flatten_binary(x, t, pw)
        loss = _SIGMOID_VALUE(xf, tf, pwf, coef)
        return loss.sum() if reduce else loss.reshape(x.shape)
    return _SigmoidFocal.apply(x, t, pw, coef, reduce)


def log_one_minus_pt(x: Tensor, t: Tensor) -> Tensor:
    """``log(1 - p_t) = log((1 - t) sigmoid(x) + t sigmoid(-x))`` with differentiable ops.

    Exact for hard targets at any ``|x|`` (it is ``logsigmoid(-x)`` for ``t = 1``); gradients in
    ``x`` are finite everywhere, gradients in a soft ``t`` are exact inside ``(0, 1)``.
    """
    ls = F.logsigmoid(x)
    ls_neg = F.logsigmoid(-x)
    has_neg = t < 1
    has_pos = t > 0
    minus_inf = torch.full_like(ls, -math.inf)
    a = torch.where(has_neg, torch.log1p(-torch.where(has_neg, t, 0.0)) + ls, minus_inf)
    b = torch.where(has_pos, torch.log(torch.where(has_pos, t, 1.0)) + ls_neg, minus_inf)
    return torch.logaddexp(a, b)


def sigmoid_focal_plain(x: Tensor, t: Tensor, pw: Tensor | None, coef: Tensor) -> Tensor:
    """The same loss with differentiable ops (gradients through autograd, for any input)."""
    a1, a0, b1, b0, gamma = coef.unbind()
    pos = b1 * t if pw is None else b1 * pw * t
    ce = -(pos * F.logsigmoid(x) + b0 * (1 - t) * F.logsigmoid(-x))
    modulator = torch.exp(gamma * log_one_minus_pt(x, t))
    return (a1 * t + a0 * (1 - t)) * modulator * ce


# --------------------------------------------------------------------------- softmax focal


def _modulated(
    log_p: Tensor, kept: Tensor, safe_y: Tensor, alpha: Tensor | None, gamma: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The factors of ``log p_t`` ``(N, 1, S)``: ``(1 - p_t)^gamma`` and ``kept * alpha_y``.

    Also ``u = 1 - p_t > 0`` and ``u`` made safe (1 where it is not), for the gradient.
    """
    u = -torch.expm1(log_p)  # 1 - p_t, without cancellation
    positive = u > 0
    safe_u = torch.where(positive, u, 1.0)
    modulator = torch.where(
        positive, torch.exp(gamma * torch.log(safe_u)), (gamma == 0).to(log_p.dtype)
    )
    weight = kept.unsqueeze(1).to(log_p.dtype)
    if alpha is not None:
        weight = weight * alpha[safe_y]
    return modulator, weight, positive, safe_u


def _softmax_terms(
    x: Tensor, y: Tensor, alpha: Tensor | None, gamma: Tensor, ignore_index: int, need_grad: bool
) -> tuple[Tensor, Tensor | None]:
    """Softmax focal loss of ``x`` ``(N, C, S)`` and ``y`` ``(N, S)``; gradient if asked."""
    m = x.amax(1, keepdim=True)
    z = x - m
    ez = torch.exp(z)
    total = ez.sum(1, keepdim=True)
    kept = y != ignore_index
    safe_y = torch.where(kept, y, 0).unsqueeze(1)
    log_p = z.gather(1, safe_y) - torch.log(total)  # (N, 1, S)
    modulator, weight, positive, safe_u = _modulated(log_p, kept, safe_y, alpha, gamma)
    loss = (-weight * modulator * log_p).squeeze(1)
    if not need_grad:
        return loss, None
    # d loss / d log p_t = -w u^g (1 - g p log p / u); log p / u -> -1 as u -> 0.
    ratio = torch.where(positive, log_p / safe_u, -1.0)
    d_log_p = -weight * modulator * (1 - gamma * torch.exp(log_p) * ratio)
    classes = torch.arange(x.shape[1], device=x.device).view(1, -1, *([1] * (x.dim() - 2)))
    onehot = (classes == safe_y).to(x.dtype)
    grad = d_log_p * (onehot - ez / total)
    return loss, grad


def _softmax_none(
    x: Tensor, y: Tensor, alpha: Tensor | None, gamma: Tensor, ignore_index: int
) -> tuple[Tensor, Tensor]:
    loss, grad = _softmax_terms(x, y, alpha, gamma, ignore_index, True)
    assert grad is not None
    return loss, grad


def _softmax_sum(
    x: Tensor, y: Tensor, alpha: Tensor | None, gamma: Tensor, ignore_index: int
) -> tuple[Tensor, Tensor, Tensor]:
    loss, grad = _softmax_terms(x, y, alpha, gamma, ignore_index, True)
    assert grad is not None
    return loss.sum(), grad, (y != ignore_index).sum()  # the count for "mean", in the same pass


def _softmax_value(
    x: Tensor, y: Tensor, alpha: Tensor | None, gamma: Tensor, ignore_index: int
) -> Tensor:
    return _softmax_terms(x, y, alpha, gamma, ignore_index, False)[0]


_SOFTMAX_NONE = fused_kernel(_softmax_none)
_SOFTMAX_SUM = fused_kernel(_softmax_sum)
_SOFTMAX_VALUE = fused_kernel(_softmax_value)


class _SoftmaxFocal(torch.autograd.Function):
    """Softmax focal loss on ``(N, C, S)`` logits; saves only the gradient.

    Returns the loss (its sum when ``reduce``) and the number of kept elements (or ``None``).
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        y: Tensor,
        alpha: Tensor | None,
        gamma: Tensor,
        ignore_index: int,
        reduce: bool,
    ) -> tuple[Tensor, Tensor | None]:
        count = None
        with torch.autocast(x.device.type, enabled=False):
            if reduce:
                loss, grad, count = _SOFTMAX_SUM(x, y, alpha, gamma, ignore_index)
                ctx.mark_non_differentiable(count)
            else:
                loss, grad = _SOFTMAX_NONE(x, y, alpha, gamma, ignore_index)
        ctx.save_for_backward(grad)
        ctx.reduce = reduce
        return loss, count

    @staticmethod
    def backward(
        ctx: Any, grad_output: Tensor, grad_count: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        check_first_order()
        (grad,) = ctx.saved_tensors
        if not ctx.reduce:
            grad_output = grad_output.unsqueeze(1)
        return grad * grad_output, None, None, None, None, None


def softmax_focal_values(
    x: Tensor,
    y: Tensor,
    alpha: Tensor | None,
    *,
    gamma: float,
    ignore_index: int,
    reduce: bool,
) -> tuple[Tensor, Tensor | None]:
    """Softmax focal loss of logits ``(N, C, ...)`` and indices ``(N, ...)``.

    Returns the per-element loss ``(N, ...)`` (0 where ignored) or its sum, and -- when the
    fused kernel counted them in the same pass -- the number of non-ignored elements.
    """
    # Validated here, before any kernel: a bad value must raise a typed error, not reach the
    # compiler (where it would look like a compile failure).
    if not torch.compiler.is_compiling():  # traced, it is a symbolic int (and no kernel runs)
        check_number("ignore_index", ignore_index, integer=True)
    n, c = x.shape[0], x.shape[1]
    out_shape = (n, *x.shape[2:])
    spatial = 1
    for size in x.shape[2:]:
        spatial *= size
    x3 = x.reshape(n, c, spatial)
    y2 = y.reshape(n, spatial)
    gamma_t = torch.tensor(gamma, dtype=x.dtype, device=x.device)
    if x.numel() == 0 or not use_custom_autograd(x, alpha):
        loss = softmax_focal_plain(x3, y2, alpha, gamma_t, ignore_index)
        return (loss.sum() if reduce else loss.reshape(out_shape)), None
    if not x.requires_grad or not torch.is_grad_enabled():
        loss = _SOFTMAX_VALUE(x3, y2, alpha, gamma_t, ignore_index)
        return (loss.sum() if reduce else loss.reshape(out_shape)), None
    loss, count = _SoftmaxFocal.apply(x3, y2, alpha, gamma_t, ignore_index, reduce)
    return (loss if reduce else loss.reshape(out_shape)), count


def softmax_focal_plain(
    x: Tensor, y: Tensor, alpha: Tensor | None, gamma: Tensor, ignore_index: int
) -> Tensor:
    """The same loss with differentiable ops: ``-alpha_y (1 - p)^gamma log p`` per element."""
    log_p_all = torch.log_softmax(x, dim=1)
    kept = y != ignore_index
    safe_y = torch.where(kept, y, 0).unsqueeze(1)
    log_p = log_p_all.gather(1, safe_y)
    modulator, weight, _, _ = _modulated(log_p, kept, safe_y, alpha, gamma)
    return (-weight * modulator * log_p).squeeze(1)
