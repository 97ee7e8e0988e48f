r"""Projection and softmax cross-entropy in one call, without ever holding the ``N x V`` logits.

A language-model head maps ``N`` hidden states of width ``H`` to ``V`` vocabulary logits and
takes their cross-entropy. Written as ``F.cross_entropy(input @ linear_weight.T, target)`` it holds
the ``N x V`` logits, their softmax and its gradient at once (``3 x 4 N V`` bytes in float32:
800 MB for ``N = 2048``, ``V = 32768``). :func:`linear_cross_entropy` walks over the tokens in
chunks instead and, for ``"mean"`` and ``"sum"``, computes each chunk's loss *and* its
gradients with respect to ``input``, ``linear_weight`` and ``linear_bias`` in the forward pass,
so the only
tensors kept for backward are those gradients (the sizes of the inputs) and the only logits
alive are one chunk's. Backward then just scales them by the upstream gradient. For
``reduction="none"`` the upstream gradient differs per token, so the forward keeps the inputs
and each token's log-sum-exp, and the backward recomputes the logits chunk by chunk.

The arguments are torch 2.13's ``F.linear_cross_entropy``'s: ``linear_weight`` / ``linear_bias``
for the projection, ``weight`` for per-class weights as in ``F.cross_entropy``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, options_of
from lossatlas._fused import use_custom_autograd
from lossatlas._module import LossModule
from lossatlas._options import NonNegative, Positive, PositiveInt, UnitInterval
from lossatlas._reduction import (
    Reduction,
    compute_dtype,
    kept_weight,
    reduce_loss,
    safe_divide,
    upcast,
)
from lossatlas._validation import (
    check_class_indices,
    check_class_weight,
    check_dim,
    check_floating,
    check_integer,
    check_same_device,
    check_shape,
    describe,
)
from lossatlas.distributed import ProcessGroup, active_group, check_shards

__all__ = ["linear_cross_entropy"]

#: The automatic chunk holds about this many bytes of float32 logits (``rows x V x 4``). Big
#: enough that each chunk's matrix products run near full speed (measured on 2 CPU cores,
#: N=2048, H=1024, V=32768: 256 rows cost 1.22x the bare products, 512 rows 1.11x, 1024 rows
#: 1.07x), small enough that it stays below the weight gradient the forward keeps anyway.
_TARGET_CHUNK_BYTES = 64 * 2**20


# --------------------------------------------------------------------------- examples

_HIDDEN = 6
_VOCAB = 7


def _reference(
    input: Tensor, linear_weight: Tensor, target: Tensor, *, reduction: str = "mean"
) -> Tensor:
    """The unfused formula: ``F.cross_entropy(F.linear(input, linear_weight), target)``."""
    return F.cross_entropy(F.linear(input, linear_weight), target, reduction=reduction)


def _examples(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    hidden = ex.normal(generator, batch, _HIDDEN, dtype=dtype, scale=scale)
    weight = ex.normal(generator, _VOCAB, _HIDDEN, dtype=dtype, scale=1.0 / math.sqrt(_HIDDEN))
    target = ex.class_indices(generator, batch, num_classes=_VOCAB)
    return Example((hidden, weight, target), grad_args=(0, 1))


# --------------------------------------------------------------------------- the loss


@Family(
    tasks=("language", "multiclass"),
    input_kind="hidden states",
    target_kind="class indices",
).loss(
    formula=(
        r"\operatorname{lse}(z) - (1-\epsilon) z_y - \tfrac{\epsilon}{V}\sum_v z_v"
        r" + \lambda_z \operatorname{lse}(z)^2,\; z = c\tanh((hW^\top + b)/c)"
    ),
    properties={"non_negative"},
    examples=_examples,
    oracle=_reference,
    # The fused kernel computes first derivatives only; double backward raises.
    twice_differentiable=False,
    dynamic_shapes=False,
    dynamic_shapes_reason="the loop over token chunks unrolls into the graph per token count",
)
def linear_cross_entropy(
    input: Tensor,
    linear_weight: Tensor,
    target: Tensor,
    *,
    linear_bias: Tensor | None = None,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: UnitInterval = 0.0,
    z_loss: NonNegative = 0.0,
    logit_softcap: Positive | None = None,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
    chunk_size: PositiveInt | None = None,
) -> Tensor:
    r"""Softmax cross-entropy of the logits ``input @ linear_weight.T + linear_bias``, in chunks.

    Equal, in value and in the gradients of ``input``, ``linear_weight`` and ``linear_bias``,
    to torch's ``F.linear_cross_entropy`` and to ``F.cross_entropy(F.linear(input,
    linear_weight, linear_bias), target, weight=..., ignore_index=..., label_smoothing=...)``
    plus the z-loss, but it never holds the ``N x V`` logits: only one chunk of ``chunk_size``
    rows at a time. With ``z_loss > 0`` each kept token adds ``z_loss * lse^2`` (the PaLM
    auxiliary loss that keeps the softmax normaliser near 1), weighted like the token's target
    term (by ``weight[y]``); with ``logit_softcap=c`` the logits are first squashed to
    ``c * tanh(logits / c)`` (Gemma 2), and everything else, z-loss included, sees the capped
    logits. With the defaults it is plain cross-entropy.

    How gradients are computed: for ``"mean"`` and ``"sum"`` the forward pass computes each
    chunk's gradients with respect to the logits, multiplies them straight into the gradients
    of ``hidden``, ``weight`` and ``bias`` (accumulated in the compute dtype) and keeps only
    those for backward, which scales them by the upstream gradient. The total work is the three
    matrix products of forward and backward plus a few passes over each chunk's logits. For
    ``"none"`` the upstream gradient can differ per token, so backward recomputes each chunk's
    logits from the saved inputs and each token's log-sum-exp (four matrix products in all).
    A second backward through a retained graph returns the same gradients; a double backward
    (``create_graph=True``) raises a ``RuntimeError`` (``torch.func`` transforms work: they take
    the plain path below). The caller's tensors are never written.

    Inside ``torch.compile`` or a ``torch.func`` transform the function takes a plain
    differentiable path instead (each chunk under activation checkpointing, so memory stays
    one chunk of logits), which gives the same values.

    .. math::
        z = c \tanh\!\left(\frac{h W^\top + b}{c}\right), \quad
        \operatorname{lse} = \log \sum_{v=1}^{V} e^{z_v}, \quad
        \ell = (1 - \epsilon)\, w_y (\operatorname{lse} - z_y)
               + \frac{\epsilon}{V} \sum_{v=1}^{V} w_v (\operatorname{lse} - z_v)
               + \lambda_z w_y \operatorname{lse}^2

    (``w = 1`` without class weights: ``lse - (1 - eps) z_y - eps mean(z) + lambda_z lse^2``.)

    Args:
        input: Hidden states ``(N, H)``, floating point.
        linear_weight: Output projection ``(V, H)`` (the ``nn.Linear(H, V).weight`` layout).
        target: Class indices ``(N,)`` (any integer dtype) in ``[0, V)`` or ``ignore_index``.
        linear_bias: Optional ``(V,)`` bias added to the logits.
        weight: Optional per-class weights ``(V,)``, ``w`` above (torch's ``weight``).
        ignore_index: Tokens whose target equals it contribute 0 (with zero gradient) and do
            not count in the mean's denominator. (torch's default ``None`` means the same
            ``-100``.)
        label_smoothing: ``epsilon`` in ``[0, 1]``, spread as ``epsilon / V`` over all ``V``
            classes (torch's definition).
        z_loss: ``lambda_z >= 0``, the weight of ``lse^2`` per kept token.
        logit_softcap: ``c > 0`` caps the logits at ``c * tanh(logits / c)``; ``None`` (the
            default) leaves them as they are.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. ``"mean"`` divides by the number of
            tokens whose target is not ``ignore_index`` (the cross-entropy and the z-loss
            alike), or with ``weight`` by the sum of ``weight[y]`` over them, as torch does;
            with none kept it is 0 with zero gradients.
        chunk_size: Tokens per chunk. ``None`` picks about 64 MiB of float32 logits per chunk
            (``max(1, 2**24 // V)`` rows). The result does not depend on it beyond rounding.
        process_group: ``None`` (this process only) or a ``torch.distributed`` group over
            which ``"mean"`` and ``"sum"`` are exact: the value on every rank and, after DDP's
            gradient averaging, the gradients equal one process on the concatenated batch
            (see :mod:`lossatlas.distributed`). ``"none"`` stays per element.

    Returns:
        The loss: shape ``(N,)`` for ``"none"`` (0 for ignored tokens), else a scalar. Float64
        for float64 inputs, float32 otherwise: float16/bfloat16 inputs are upcast to float32
        for the products (the projection once per call, the hidden states chunk by chunk), so
        the logits, the log-sum-exp and the gradient accumulators are float32; the gradients
        come back in the inputs' dtypes.

    Raises:
        TypeError: Non-floating ``input``/``linear_weight``/``linear_bias``/``weight``, a
            non-integer ``target``, an option of the wrong type.
        ValueError: Shapes that do not fit (``(N, H)``, ``(V, H)``, ``(N,)``, ``(V,)``), a
            class index out of range (value and position named), an option out of range.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> hidden = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
        >>> weight = torch.tensor([[1.0, -1.0], [0.5, 0.5], [-1.0, 1.0]])
        >>> target = torch.tensor([0, 2, 1])
        >>> la.linear_cross_entropy(hidden, weight, target, reduction="none")
        tensor([0.5550, 0.3266, 0.5514])
        >>> la.linear_cross_entropy(hidden, weight, target, chunk_size=2)
        tensor(0.4777)
        >>> la.linear_cross_entropy(hidden, weight, torch.tensor([0, -100, 1]))
        tensor(0.5532)
        >>> # class weights: (1 * 0.5550 + 0 * 0.3266 + 2 * 0.5514) / (1 + 0 + 2)
        >>> la.linear_cross_entropy(hidden, weight, target, weight=torch.tensor([1.0, 2.0, 0.0]))
        tensor(0.5526)

    References:
        M. Wijmans et al., Cut Your Losses in Large-Vocabulary Language Models, ICLR 2025,
        https://arxiv.org/abs/2411.09009 (chunked projection + cross-entropy)

        A. Chowdhery et al., PaLM: Scaling Language Modeling with Pathways, JMLR 2023,
        https://arxiv.org/abs/2204.02311 (z-loss)

        Gemma Team, Gemma 2: Improving Open Language Models at a Practical Size, 2024,
        https://arxiv.org/abs/2408.00118 (logit soft-capping)
    """
    hidden, weight, bias, class_weight = input, linear_weight, linear_bias, weight
    _check_inputs(hidden, weight, target, bias)
    num_classes = weight.shape[0]
    if class_weight is not None:
        check_floating("weight", class_weight)
        check_class_weight("weight", class_weight, num_classes)
        check_same_device(("input", hidden), ("weight", class_weight))
    check_class_indices("target", target, num_classes, ignore_index=ignore_index)
    target = target.long()

    options = _Options(
        ignore_index=ignore_index,
        label_smoothing=float(label_smoothing),
        z_loss=float(z_loss),
        logit_softcap=None if logit_softcap is None else float(logit_softcap),
        chunk=_chunk_rows(hidden.shape[0], num_classes, chunk_size),
    )
    # Over a group each rank's kernel computes its tokens' sum (and its gradients); the global
    # mean divides it by the all-summed count of kept tokens (or of their class weights).
    group = active_group(process_group)
    distributed = group is not None and reduction != "none"
    if distributed:
        check_shards(group, "linear_weight", weight, dims=(0, 1))
    local_reduction = "sum" if distributed else reduction
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (hidden, weight, bias)
    )
    loss: Tensor
    if not needs_grad:
        prep = _Prepared(hidden, weight, bias, class_weight, target, options)
        rows, *_ = _chunk_pass(prep)
        loss = reduce_loss(rows, local_reduction, denominator=prep.denominator())
    # ``use_custom_autograd(hidden)`` is False while torch.compile traces or a torch.func
    # transform is active: there the plain (checkpointed) path lets the outer system see ops.
    elif not use_custom_autograd(hidden):
        loss = _plain_path(hidden, weight, bias, class_weight, target, options, local_reduction)
    else:
        loss = _LinearCrossEntropy.apply(
            hidden, weight, bias, class_weight, target, options, local_reduction
        )
    if not distributed:
        return loss
    # the count alone: no second cast of the projection weight
    count = _denominator(target, class_weight, options, compute_dtype(hidden, weight, bias))
    return reduce_loss(loss, reduction, denominator=count, process_group=group)


def _denominator(
    target: Tensor, class_weight: Tensor | None, options: _Options, dtype: torch.dtype
) -> Tensor:
    """The mean's denominator: kept tokens, or the sum of their class weights."""
    ignore_index = options.ignore_index
    return kept_weight(target, weight=class_weight, ignore_index=ignore_index, dtype=dtype).sum()


# --------------------------------------------------------------------------- the kernel


class _Options:
    """The non-tensor settings of one call (a plain object, so autograd passes it through)."""

    __slots__ = ("chunk", "ignore_index", "label_smoothing", "logit_softcap", "z_loss")

    def __init__(
        self,
        *,
        ignore_index: int,
        label_smoothing: float,
        z_loss: float,
        logit_softcap: float | None,
        chunk: int,
    ) -> None:
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.z_loss = z_loss
        self.logit_softcap = logit_softcap
        self.chunk = chunk


def _chunk_rows(num_tokens: int, num_classes: int, chunk_size: int | None) -> int:
    """Rows per chunk: the caller's, or about ``_TARGET_CHUNK_BYTES`` of float32 logits."""
    if chunk_size is None:
        chunk_size = max(1, _TARGET_CHUNK_BYTES // (4 * max(num_classes, 1)))
    return max(1, min(chunk_size, max(num_tokens, 1)))


def _kept(target: Tensor, ignore_index: int) -> Tensor:
    return target != ignore_index


def _logits(h: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """One chunk of logits, a fresh tensor the kernel may overwrite."""
    if bias is None:
        return torch.mm(h, weight.t())
    return torch.addmm(bias, h, weight.t())


class _Chunk:
    """One chunk's softmax statistics; ``probs`` holds ``exp(z - m)`` (or ``p`` with ``lse``)."""

    __slots__ = ("loss", "lse", "probs", "scale", "tanh", "true_weight")

    def __init__(
        self,
        probs: Tensor,
        scale: Tensor,
        lse: Tensor,
        loss: Tensor,
        tanh: Tensor | None,
        true_weight: Tensor | None,
    ) -> None:
        self.probs = probs
        self.scale = scale
        self.lse = lse
        self.loss = loss
        self.tanh = tanh
        self.true_weight = true_weight


def _chunk_forward(
    h: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    class_weight: Tensor | None,
    safe_target: Tensor,
    kept: Tensor,
    options: _Options,
    lse: Tensor | None = None,
) -> _Chunk:
    """Logits of one chunk, their per-token loss, and ``exp`` of the centred logits.

    With ``lse`` given (backward of ``"none"``), the logits are centred on it, so ``probs`` is
    the softmax itself and ``scale`` is 1; otherwise on the row maximum, and ``probs * scale``
    is the softmax. All of it in place on one chunk-sized buffer (two with a softcap).
    """
    z = _logits(h, weight, bias)
    tanh = None
    if options.logit_softcap is not None:
        tanh = z.div_(options.logit_softcap).tanh_()
        z = tanh * options.logit_softcap
    z_true, z_mean, true_weight = _logit_terms(z, class_weight, safe_target, options)
    if lse is None:
        centre = z.amax(dim=1)
        probs = z.sub_(centre.unsqueeze(1)).exp_()
        total = probs.sum(dim=1)
        lse = centre + total.log()
        scale = total.reciprocal()
    else:
        probs = z.sub_(lse.unsqueeze(1)).exp_()
        scale = torch.ones_like(lse)
    loss = _token_loss(lse, z_true, z_mean, true_weight, class_weight, kept, options)
    return _Chunk(probs, scale, lse, loss, tanh, true_weight)


def _logit_terms(
    z: Tensor, class_weight: Tensor | None, safe_target: Tensor, options: _Options
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """The logits' terms of the loss: ``z_y``, ``sum_v w_v z_v / V`` (with smoothing), ``w_y``."""
    z_true = z.gather(1, safe_target.unsqueeze(1)).squeeze(1)
    # The smoothing term's sum over classes, sum_v w_v z_v / V (the mean without weights).
    z_mean = None
    if options.label_smoothing > 0:
        z_mean = z.mean(dim=1) if class_weight is None else torch.mv(z, class_weight) / z.shape[1]
    true_weight = None if class_weight is None else class_weight[safe_target]
    return z_true, z_mean, true_weight


def _token_loss(
    lse: Tensor,
    z_true: Tensor,
    z_mean: Tensor | None,
    true_weight: Tensor | None,
    class_weight: Tensor | None,
    kept: Tensor,
    options: _Options,
) -> Tensor:
    """``(1 - eps) w_y (lse - z_y) + eps (mean_v(w) lse - z_mean) + lambda_z w_y lse^2``.

    0 for the tokens not ``kept``.
    """
    eps = options.label_smoothing
    if true_weight is None or class_weight is None:
        loss = lse - (1.0 - eps) * z_true
        if z_mean is not None:
            loss = loss - eps * z_mean
        if options.z_loss > 0:
            loss = loss + options.z_loss * lse.square()
    else:
        loss = (1.0 - eps) * true_weight * (lse - z_true)
        if z_mean is not None:
            loss = loss + eps * (class_weight.mean() * lse - z_mean)
        if options.z_loss > 0:
            loss = loss + options.z_loss * true_weight * lse.square()
    return torch.where(kept, loss, torch.zeros_like(loss))


def _chunk_logit_grad(
    chunk: _Chunk,
    safe_target: Tensor,
    row_weight: Tensor,
    class_weight: Tensor | None,
    options: _Options,
) -> Tensor:
    """Overwrite ``chunk.probs`` with ``d(sum_i r_i loss_i) / d(logits)`` and return it.

    ``d loss / d z = p (a + 2 lambda_z w_y lse) - (1 - eps) w_y onehot(y) - eps w / V`` with
    ``a = (1 - eps) w_y + eps mean(w)`` (``w = 1`` without class weights: ``a = 1``), times
    ``1 - tanh^2`` with a softcap. ``row_weight`` (``r``) is 0 for ignored tokens.
    """
    eps = options.label_smoothing
    coefficient = row_weight * chunk.scale
    true_weight = chunk.true_weight
    if true_weight is None or class_weight is None:
        if options.z_loss > 0:
            coefficient = coefficient * (1.0 + 2.0 * options.z_loss * chunk.lse)
        target_weight = row_weight
    else:
        a = (1.0 - eps) * true_weight + eps * class_weight.mean()
        if options.z_loss > 0:
            a = a + 2.0 * options.z_loss * true_weight * chunk.lse
        coefficient = coefficient * a
        target_weight = row_weight * true_weight
    grad = chunk.probs.mul_(coefficient.unsqueeze(1))
    if eps > 0:
        if class_weight is None:
            grad.sub_((row_weight * (eps / grad.shape[1])).unsqueeze(1))
        else:
            grad.addr_(row_weight, class_weight, alpha=-eps / grad.shape[1])
    grad.scatter_add_(1, safe_target.unsqueeze(1), (-(1.0 - eps) * target_weight).unsqueeze(1))
    if chunk.tanh is not None:
        grad.mul_(chunk.tanh.square_().neg_().add_(1.0))
    return grad


#: One chunk's ``(h, weight, bias, class_weight, safe_target, kept, options)``.
_ChunkArgs = tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor, Tensor, _Options]


class _Prepared:
    """The compute dtype, the inputs cast to it and the call's chunks, once per call."""

    __slots__ = (
        "bias",
        "class_weight",
        "dtype",
        "dtypes",
        "hidden",
        "kept",
        "options",
        "safe_target",
        "target",
        "weight",
    )

    def __init__(
        self,
        hidden: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        class_weight: Tensor | None,
        target: Tensor,
        options: _Options,
    ) -> None:
        self.dtype = compute_dtype(hidden, weight, bias)
        #: The dtypes the gradients of ``hidden``, ``weight`` and ``bias`` come back in.
        self.dtypes = (hidden.dtype, weight.dtype, None if bias is None else bias.dtype)
        self.hidden = hidden
        self.options = options
        self.target = target
        self.kept = _kept(target, options.ignore_index)
        self.safe_target = torch.where(self.kept, target, torch.zeros_like(target))
        self.weight = upcast(weight, self.dtype)
        self.bias = None if bias is None else upcast(bias, self.dtype)
        self.class_weight = None if class_weight is None else upcast(class_weight, self.dtype)

    def denominator(self) -> Tensor:
        """The mean's denominator: kept tokens, or the sum of their class weights."""
        return _denominator(self.target, self.class_weight, self.options, self.dtype)

    def chunks(self) -> Iterator[tuple[slice, _ChunkArgs]]:
        """Each chunk's rows and the arguments of :func:`_chunk_forward` for them."""
        n, step = self.hidden.shape[0], self.options.chunk
        for start in range(0, n, step):
            rows = slice(start, min(start + step, n))
            yield (
                rows,
                (
                    upcast(self.hidden[rows], self.dtype),
                    self.weight,
                    self.bias,
                    self.class_weight,
                    self.safe_target[rows],
                    self.kept[rows],
                    self.options,
                ),
            )


def _chunk_pass(
    prep: _Prepared,
    row_weight: Tensor | None = None,
    needs: tuple[bool, bool, bool] = (False, False, False),
    lse: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor | None]:
    """Per-token losses and log-sum-exps, chunk by chunk, outside autograd.

    With ``row_weight`` also the gradients of ``sum_i row_weight_i * loss_i`` with respect to
    ``hidden``, ``weight`` and ``bias`` (``None`` where ``needs`` says so), in the inputs'
    dtypes. ``lse`` (backward of ``"none"``) is the forward's, which the logits are centred on.
    Only one chunk of logits is alive at a time.
    """
    dtype, device, n = prep.dtype, prep.hidden.device, prep.hidden.shape[0]
    losses = torch.empty(n, dtype=dtype, device=device)
    given = lse is not None  # then it is kept as it is (a saved tensor: never written)
    lses = lse if lse is not None else torch.empty(n, dtype=dtype, device=device)
    grads: list[Tensor | None] = [None, None, None]
    if row_weight is not None:
        if needs[0]:
            grads[0] = torch.empty(prep.hidden.shape, dtype=dtype, device=device)
        if needs[1]:
            grads[1] = torch.zeros(prep.weight.shape, dtype=dtype, device=device)
        if needs[2] and prep.bias is not None:
            grads[2] = torch.zeros(prep.weight.shape[0], dtype=dtype, device=device)
    grad_hidden, grad_weight, grad_bias = grads
    with torch.no_grad():
        for rows, args in prep.chunks():
            chunk = _chunk_forward(*args, lses[rows] if given else None)
            losses[rows] = chunk.loss
            if not given:
                lses[rows] = chunk.lse
            if row_weight is not None:
                grad = _chunk_logit_grad(
                    chunk, prep.safe_target[rows], row_weight[rows], prep.class_weight, prep.options
                )
                if grad_hidden is not None:
                    torch.mm(grad, prep.weight, out=grad_hidden[rows])
                if grad_weight is not None:
                    grad_weight.addmm_(grad.t(), args[0])
                if grad_bias is not None:
                    grad_bias.add_(grad.sum(dim=0))
                del grad
            del chunk, args  # free this chunk's logits before the next one is made
    back = [
        None if g is None or d is None else g.to(d) for g, d in zip(grads, prep.dtypes, strict=True)
    ]
    return losses, lses, back[0], back[1], back[2]


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        hidden: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        class_weight: Tensor | None,
        target: Tensor,
        options: _Options,
        reduction: str,
    ) -> Tensor:
        ctx.options = options
        ctx.reduction = reduction
        prep = _Prepared(hidden, weight, bias, class_weight, target, options)
        if reduction == "none":
            losses, lse, *_ = _chunk_pass(prep)
            ctx.save_for_backward(hidden, weight, bias, class_weight, target, lse)
            return losses
        count = prep.denominator()
        row_weight = prep.kept.to(prep.dtype)
        if reduction == "mean":
            one = torch.ones((), dtype=prep.dtype)
            row_weight = row_weight * safe_divide(one, count.to(prep.dtype))
        needs = (ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2])
        losses, _, *grads = _chunk_pass(prep, row_weight, needs)
        ctx.save_for_backward(*grads)
        return reduce_loss(losses, reduction, denominator=count)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        if torch.is_grad_enabled():
            # create_graph=True: the gradients were formed outside autograd, so a graph of
            # them would silently have zero second derivatives. Refuse instead.
            raise RuntimeError(
                "linear_cross_entropy computes its gradients in a fused kernel and does not "
                "support double backward (create_graph=True); differentiate it with torch.func "
                "(which takes the plain path) or use F.cross_entropy(F.linear(...)) for that"
            )
        if ctx.reduction == "none":
            hidden, weight, bias, class_weight, target, lse = ctx.saved_tensors
            needs = (ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2])
            prep = _Prepared(hidden, weight, bias, class_weight, target, ctx.options)
            row_weight = grad_output * prep.kept
            _, _, grad_hidden, grad_weight, grad_bias = _chunk_pass(prep, row_weight, needs, lse)
            return grad_hidden, grad_weight, grad_bias, None, None, None, None
        grads = ctx.saved_tensors
        # The usual ``loss.backward()`` passes 1: hand the stored gradients over as they are
        # (autograd takes them without a copy once the graph is freed; a retained graph keeps
        # them, so a second backward returns the same values). Reading the upstream value is
        # only free on the CPU; elsewhere always scale, rather than synchronise the device.
        unit = grad_output.device.type == "cpu" and bool(grad_output == 1)
        scaled = tuple(
            None if g is None else g if unit else g * grad_output.to(g.dtype) for g in grads
        )
        return scaled[0], scaled[1], scaled[2], None, None, None, None


# --------------------------------------------------------------------------- plain path


def over_chunks(
    rows: Callable[..., Tensor],
    chunk: int,
    row_args: tuple[Tensor, ...],
    shared: tuple[object, ...],
) -> Tensor:
    """``rows`` on each chunk of the row arguments (checkpointed), concatenated ``(N,)``.

    The differentiable chunk loop of this path and of :mod:`lossatlas.language.fused_heads`:
    each chunk's logits exist only inside ``rows``, and backward recomputes them.

    ``torch.func`` transforms do not support the saved-tensor hooks checkpointing relies on:
    there the chunks run plainly (same values, the chunks' logits are kept).
    """
    n = row_args[0].shape[0]
    if n == 0:
        return rows(*row_args, *shared)
    recompute = torch.is_grad_enabled() and not torch._C._are_functorch_transforms_active()
    out = []
    for start in range(0, n, chunk):
        args = (*(a[start : start + chunk] for a in row_args), *shared)
        out.append(checkpoint(rows, *args, use_reentrant=False) if recompute else rows(*args))
    return torch.cat(out)


def _plain_rows(
    hidden: Tensor,
    safe_target: Tensor,
    kept: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    class_weight: Tensor | None,
    options: _Options,
) -> Tensor:
    """Per-token losses of one chunk with ordinary differentiable ops."""
    z = F.linear(upcast(hidden, weight.dtype), weight, bias)
    if options.logit_softcap is not None:
        z = options.logit_softcap * torch.tanh(z / options.logit_softcap)
    lse = torch.logsumexp(z, dim=1)
    z_true, z_mean, true_weight = _logit_terms(z, class_weight, safe_target, options)
    return _token_loss(lse, z_true, z_mean, true_weight, class_weight, kept, options)


def _plain_path(
    hidden: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    class_weight: Tensor | None,
    target: Tensor,
    options: _Options,
    reduction: str,
) -> Tensor:
    """The differentiable path for ``torch.compile`` and ``torch.func``: same values.

    Each chunk runs under activation checkpointing, so backward recomputes its logits instead
    of keeping them (except under ``torch.func`` transforms, which do not support it: there the
    chunks' logits are kept).
    """
    prep = _Prepared(hidden, weight, bias, class_weight, target, options)
    losses = over_chunks(
        _plain_rows,
        options.chunk,
        (hidden, prep.safe_target, prep.kept),
        (prep.weight, prep.bias, prep.class_weight, options),
    )
    return reduce_loss(losses, reduction, denominator=prep.denominator())


# --------------------------------------------------------------------------- validation


def _check_inputs(hidden: Any, weight: Any, target: Any, bias: Any) -> None:
    check_floating("input", hidden)
    check_floating("linear_weight", weight)
    check_integer("target", target)
    check_same_device(
        ("input", hidden), ("linear_weight", weight), ("target", target), ("linear_bias", bias)
    )
    check_shape("input", hidden, (None, None), "(tokens, hidden size)")
    check_shape(
        "linear_weight",
        weight,
        (None, hidden.shape[1]),
        f"(vocabulary, hidden size) for input of shape {tuple(hidden.shape)}",
    )
    check_shape(
        "target",
        target,
        (hidden.shape[0],),
        f"(one class index per row of input {tuple(hidden.shape)})",
    )
    if weight.shape[0] == 0:
        raise ValueError(
            f"linear_weight must have at least one class (row), got {describe(weight)}"
        )
    if bias is not None:
        check_floating("linear_bias", bias)
        check_shape(
            "linear_bias", bias, (weight.shape[0],), "(one per class, rows of linear_weight)"
        )


# --------------------------------------------------------------------------- module


class LinearCrossEntropyLoss(LossModule, functional=linear_cross_entropy):
    """Module form of :func:`lossatlas.linear_cross_entropy` (inputs: input, linear_weight, target).

    The projection is an input, not a parameter of the loss: pass the output layer's
    ``weight`` (and its bias as ``linear_bias=`` to :func:`lossatlas.linear_cross_entropy`).
    The class ``weight`` is a buffer. Written by hand, not derived: a derived constructor
    would take ``linear_bias`` as an option and keep a detached copy of it as a buffer (a
    trainable bias would silently get no gradient).
    """

    def __init__(
        self,
        *,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        label_smoothing: UnitInterval = 0.0,
        z_loss: NonNegative = 0.0,
        logit_softcap: Positive | None = None,
        reduction: Reduction = "mean",
        chunk_size: PositiveInt | None = None,
    ) -> None:
        options = {
            "weight": weight,
            "ignore_index": ignore_index,
            "label_smoothing": label_smoothing,
            "z_loss": z_loss,
            "logit_softcap": logit_softcap,
            "reduction": reduction,
            "chunk_size": chunk_size,
        }
        options_of(linear_cross_entropy)(options)
        if weight is not None:
            check_floating("weight", weight)
            check_dim("weight", weight, min_dim=1)
        super().__init__(**options)
