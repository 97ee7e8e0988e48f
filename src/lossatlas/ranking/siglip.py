"""SigLIP's sigmoid loss for paired embeddings, chunked over the keys.

Every (query, key) pair of the batch is an independent binary problem: the matching pair
``(i, i)`` is a positive, every other pair a negative. There is no softmax over the batch, so
the keys can be taken a chunk at a time; each chunk runs under activation checkpointing
(:mod:`lossatlas.ranking._chunks`), so memory grows with ``N x chunk``, not ``N^2``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossatlas._catalog import Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import Positive, PositiveInt
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import check_floating, check_same_device, check_same_shape, check_shape
from lossatlas.ranking._chunks import chunk_plan, query_keys

__all__ = ["siglip_loss"]

_SIGLIP = Family(
    tasks=("metric-learning", "ranking"),
    input_kind="embeddings (queries, e.g. images)",
    target_kind="embeddings (keys, e.g. texts; row i is query i's positive)",
    target_type=TargetKind.EMBEDDINGS,
    same_shape=(0, 1),
    twice_differentiable=True,
)


def _check_scalar(name: str, value: float | Tensor) -> None:
    """A float (checked by the signature) or a floating 0-dim tensor (a learned value)."""
    if isinstance(value, Tensor):
        check_floating(name, value)
        if value.dim() != 0:
            raise ValueError(f"{name} must be a float or a 0-dim tensor, got {tuple(value.shape)}")


@_SIGLIP.loss(
    formula=r"-\sum_j \log \sigma\big(z_{ij} (t\, \hat x_i \cdot \hat y_j + b)\big),\ "
    r"z_{ij} = \pm 1",
    properties={"non_negative"},
    examples=query_keys,
    use_when="image-text pairs at large batch, no softmax over it",
)
def siglip_loss(
    query: Tensor,
    key: Tensor,
    *,
    scale: Positive | Tensor = 10.0,
    bias: float | Tensor = -10.0,
    chunk: PositiveInt | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Sigmoid loss for language-image pre-training (SigLIP): one logistic loss per pair.

    Queries and keys are L2-normalised; the logit of pair ``(i, j)`` is
    ``scale * q_i . k_j + bias``, its label ``+1`` on the diagonal and ``-1`` elsewhere. Row
    ``i``'s loss sums its ``N`` pairs; ``"mean"`` divides the total by ``N`` (the paper's
    ``-sum(log_sigmoid(labels * logits)) / n``). The paper learns ``scale = exp(t')`` and
    ``bias``, initialised at ``10`` and ``-10`` (the negatives dominate a batch, so the bias
    starts strongly negative): :class:`lossatlas.nn.SigLIPLoss` owns both as parameters.

    The keys are processed ``chunk`` at a time (default: about 32 MiB of float32 logits) under
    activation checkpointing, so neither forward nor backward holds the ``N x N`` logits; value
    and gradient are those of the plain formula. Uses ``log_sigmoid``, finite for any logit.

    .. math::
        \ell_i = -\sum_{j=1}^{N} \log \sigma\big(z_{ij} (t\, \hat q_i \cdot \hat k_j + b)\big),
        \qquad z_{ij} = 1 \text{ if } i = j \text{ else } -1

    Args:
        query: Embeddings ``(N, D)`` (images).
        key: Embeddings ``(N, D)`` (texts); row ``i`` is query ``i``'s positive.
        scale: The temperature ``t > 0`` multiplying the cosines: a float or a 0-dim tensor
            (a learned ``exp(t')``, which carries a gradient).
        bias: The bias ``b``: a float or a 0-dim tensor.
        chunk: Keys per chunk, or ``None`` for the default size.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
        ``(N,)`` for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating embeddings, a non-floating tensor ``scale`` or ``bias``.
        ValueError: ``query`` not ``(N, D)``, ``key`` of another shape, ``scale <= 0``, a
            ``scale`` or ``bias`` tensor that is not 0-dim.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> la.siglip_loss(q, q, scale=1.0, bias=0.0)  # 2 log(1 + e^-1) + 2 log 2, over N = 2
        tensor(1.0064)

    References:
        X. Zhai, B. Mustafa, A. Kolesnikov, L. Beyer, "Sigmoid Loss for Language Image
        Pre-Training", ICCV 2023, https://arxiv.org/abs/2303.15343
    """
    check_same_device(("query", query), ("key", key))
    check_floating("query", query)
    check_floating("key", key)
    check_shape("query", query, (None, None), "(N, D)")
    check_same_shape("query", query, "key", key)
    _check_scalar("scale", scale)
    _check_scalar("bias", bias)
    tensors = [t for t in (scale, bias) if isinstance(t, Tensor)]
    dtype = compute_dtype(query, key, *tensors)
    with torch.autocast(query.device.type, enabled=False):
        q = F.normalize(upcast(query, dtype), dim=1)
        k = F.normalize(upcast(key, dtype), dim=1)
        t = scale.to(dtype) if isinstance(scale, Tensor) else scale
        b = bias.to(dtype) if isinstance(bias, Tensor) else bias
        n = q.shape[0]
        width, run, compiling = chunk_plan(n, n, chunk)
        starts = [0] if compiling else range(0, n, width)
        loss = q.new_zeros(n)
        for start in starts:
            keys = k if compiling else k[start : start + width]
            loss = loss + run(_key_chunk, q, keys, t, b, start)
    return reduce_loss(loss, reduction, denominator=n)


def _key_chunk(
    q: Tensor, keys: Tensor, scale: float | Tensor, bias: float | Tensor, start: int
) -> Tensor:
    """Each query's loss summed over this chunk of keys (the first at column ``start``)."""
    logits = scale * (q @ keys.T) + bias
    rows = torch.arange(q.shape[0], device=q.device)[:, None]
    columns = start + torch.arange(keys.shape[0], device=q.device)[None, :]
    return -F.logsigmoid(torch.where(rows == columns, logits, -logits)).sum(dim=1)


class SigLIPLoss(LossModule, functional=siglip_loss):
    """Module form of :func:`lossatlas.siglip_loss` owning the learnable scale and bias.

    ``log_scale`` (``t'``, the scale is ``exp(t')``) and ``bias`` are ``nn.Parameter`` scalars
    initialised from ``scale`` and ``bias`` (the paper's ``10`` and ``-10``); ``forward(query,
    key)``.
    """

    log_scale: nn.Parameter
    bias: nn.Parameter

    def init_state(
        self,
        *,
        scale: Positive = 10.0,
        bias: float = -10.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        """The learnable ``log_scale = log(scale)`` and ``bias`` (they are not stored options)."""
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale), **factory))
        self.bias = nn.Parameter(torch.tensor(float(bias), **factory))

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        return siglip_loss(query, key, scale=self.log_scale.exp(), bias=self.bias, **self.options())
