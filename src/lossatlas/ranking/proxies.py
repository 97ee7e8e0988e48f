"""Proxy-based metric learning: one learned proxy per class instead of pairs of the batch.

The functionals take the proxies ``(C, D)`` as an argument; the module twins own them as an
``nn.Parameter`` (``num_classes x embedding_dim``, Kaiming-normal with fan-out, as the
Proxy-Anchor authors' code initialises them).
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossatlas import _examples as ex
from lossatlas._catalog import Example
from lossatlas._module import LossModule
from lossatlas._options import NonNegative, Positive, PositiveInt
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_class_indices,
    check_floating,
    check_same_device,
    check_shape,
)
from lossatlas.distributed import ProcessGroup
from lossatlas.ranking._pairs import (
    LABELLED,
    Distance,
    check_labels,
    gather_labelled,
    is_similarity,
    masked_logsumexp,
    pair_scores,
)

__all__ = ["proxy_anchor_loss", "proxy_nca_loss"]

_CLASSES = 3


def _with_proxies(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    embeddings = ex.normal(generator, batch, 4, dtype=dtype, scale=scale)
    labels = ex.class_indices(generator, batch, num_classes=_CLASSES)
    proxies = ex.normal(generator, _CLASSES, 4, dtype=dtype)
    return Example((embeddings, labels, proxies), grad_args=(0, 2))


_PROXY = LABELLED.derive(
    examples=_with_proxies,
    twice_differentiable=True,
    mean_of_none=True,
    args={"labels": "Class of each embedding, integer ``(N,)`` in ``[0, C)``."},
    raises={"TypeError": "Non-floating embeddings or proxies, non-integer labels."},
)


def _check(embeddings: Tensor, labels: Tensor, proxies: Tensor) -> None:
    check_same_device(("embeddings", embeddings), ("labels", labels), ("proxies", proxies))
    check_floating("embeddings", embeddings)
    check_floating("proxies", proxies)
    check_shape("embeddings", embeddings, (None, None), "(N, D)")
    check_shape("proxies", proxies, (None, embeddings.shape[1]), "(C, D) with the embeddings' D")
    check_labels("labels", labels, "embeddings", embeddings.shape[0])
    check_class_indices("labels", labels, proxies.shape[0])


# --------------------------------------------------------------------------- Proxy-Anchor


@_PROXY.loss(
    formula=r"\frac{1}{|P^+|} \sum_{p \in P^+} \log(1 + \sum_{x \in X_p^+} e^{-\alpha (s(x, p)"
    r" - \delta)}) + \frac{1}{|P|} \sum_{p} \log(1 + \sum_{x \in X_p^-} e^{\alpha (s(x, p)"
    r" + \delta)})",
    mean_of_none=False,
    use_when="fast-converging retrieval embeddings with class proxies",
    peers={"pytorch-metric-learning": "ProxyAnchorLoss(num_classes, embedding_size)"},
)
def proxy_anchor_loss(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    *,
    margin: NonNegative = 0.1,
    alpha: Positive = 32.0,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Proxy-Anchor loss (Kim et al. 2020): each class proxy is an anchor over the batch.

    With cosines ``s(x, p)`` between embeddings and proxies, each proxy ``p`` pulls the batch's
    embeddings of its class ``X_p^+`` above ``margin`` and pushes the others ``X_p^-`` below
    ``-margin``, through a soft-plus over the batch. The positive term averages over the
    proxies ``P^+`` that have an embedding of their class in the batch, the negative term
    over all ``C`` proxies (the paper's and PML's ``DivisorReducer``).

    .. math::
        \ell = \frac{1}{|P^+|} \sum_{p \in P^+} \log\Big(1 + \sum_{x \in X_p^+}
        e^{-\alpha (s(x, p) - \delta)}\Big) + \frac{1}{C} \sum_{p=1}^{C}
        \log\Big(1 + \sum_{x \in X_p^-} e^{\alpha (s(x, p) + \delta)}\Big)

    Args:
        proxies: One proxy per class, ``(C, D)`` (learned: :class:`lossatlas.nn.ProxyAnchorLoss`
            owns them).
        margin: ``delta >= 0`` (paper 0.1).
        alpha: Positive scale (paper 32).
        reduction: ``"mean"`` (the formula), ``"sum"`` (the two sums over proxies, undivided)
            or ``"none"``: the ``(C,)`` per-proxy terms, positive plus negative, undivided.
        process_group: ``None`` or a ``torch.distributed`` group. Each proxy's soft-plus runs
            over the whole batch, so every rank's embeddings and labels are gathered (with
            gradient) and every rank computes the global loss (``"none"`` too: the ``(C,)``
            terms are the global batch's); the proxies are the same on every rank. After
            DDP's averaging the gradients are one process's on the concatenated batch.

    Returns:
        ``(C,)`` for ``"none"``, else a scalar.

    Raises:
        ValueError: Bad shapes, a label outside ``[0, C)``.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> # log(1 + e^-0.9) (each proxy's positive) + log(1 + e^0.1) (each one's negative)
        >>> la.proxy_anchor_loss(x, torch.tensor([0, 1]), x.clone(), alpha=1.0)
        tensor(1.0856)

    References:
        S. Kim, D. Kim, M. Cho, S. Kwak, "Proxy Anchor Loss for Deep Metric Learning",
        CVPR 2020, https://arxiv.org/abs/2003.13911
    """
    _check(embeddings, labels, proxies)
    dtype = compute_dtype(embeddings, proxies)
    x, p = upcast(embeddings, dtype), upcast(proxies, dtype)
    with torch.autocast(x.device.type, enabled=False):
        batch = gather_labelled(x, labels, process_group)
        x, labels = batch.x, batch.labels  # the global batch, the same on every rank
        s = pair_scores(p, x, "cosine")  # (C, N): proxies are the anchors
        positive = labels[None, :] == torch.arange(p.shape[0], device=labels.device)[:, None]
        pos = masked_logsumexp(-alpha * (s - margin), positive, add_one=True)
        neg = masked_logsumexp(alpha * (s + margin), ~positive, add_one=True)
    if reduction == "none":
        return pos + neg
    if reduction == "sum":
        return pos.sum() + neg.sum()
    with_positive = positive.any(dim=1).sum()
    return reduce_loss(pos, "mean", denominator=with_positive) + reduce_loss(neg, "mean")


# --------------------------------------------------------------------------- Proxy-NCA


@_PROXY.loss(
    formula=r"-\log \frac{e^{-d(\hat x, \hat p_y)}}{\sum_z e^{-d(\hat x, \hat p_z)}}",
    use_when="metric learning with one learned proxy per class",
    peers={
        "pytorch-metric-learning": 'ProxyNCALoss: distance="euclidean", its softmax_scale is '
        "scale; the mean skips rows whose probability underflows to 0"
    },
)
def proxy_nca_loss(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    *,
    scale: Positive = 1.0,
    distance: Distance = "squared_euclidean",
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Proxy-NCA loss (Movshovitz-Attias et al. 2017): softmax over distances to class proxies.

    Embeddings and proxies are L2-normalised; each embedding's loss is the cross-entropy of
    the softmax over ``-scale * d(x, p_z)`` for its class ``y``. The paper's denominator
    leaves the true proxy out (so the loss is unbounded below); as in PML and ProxyNCA++ it is
    included here, which makes this ``cross_entropy(-scale * d, labels)``. With a similarity
    (``"cosine"``, ``"dot"``, equal on normalised vectors) the logits are ``scale * s``.

    .. math::
        \ell_i = -\log \frac{e^{-t\, d(\hat x_i, \hat p_{y_i})}}{\sum_{z=1}^{C}
                 e^{-t\, d(\hat x_i, \hat p_z)}}

    Args:
        proxies: ``(C, D)`` (learned: :class:`lossatlas.nn.ProxyNCALoss` owns them).
        scale: Positive softmax scale ``t`` (PML's ``softmax_scale``; ProxyNCA++ uses ~9).
        distance: ``"squared_euclidean"`` (paper, PML) | ``"euclidean"`` | ``"cosine"`` |
            ``"dot"``.
        process_group: ``None`` or a ``torch.distributed`` group over which ``"mean"`` and
            ``"sum"`` are exact (each embedding's term is its own; the sum and the count are
            summed over the group). ``"none"`` stays per local row.

    Raises:
        ValueError: Bad shapes, a label outside ``[0, C)``, an unknown ``distance``.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> la.proxy_nca_loss(x, torch.tensor([0, 1]), x.clone())  # -log(1 / (1 + e^-2))
        tensor(0.1269)

    References:
        Y. Movshovitz-Attias, A. Toshev, T. K. Leung, S. Ioffe, S. Singh, "No Fuss Distance
        Metric Learning using Proxies", ICCV 2017, https://arxiv.org/abs/1703.07464
    """
    _check(embeddings, labels, proxies)
    dtype = compute_dtype(embeddings, proxies)
    with torch.autocast(embeddings.device.type, enabled=False):
        x = F.normalize(upcast(embeddings, dtype), dim=1)
        p = F.normalize(upcast(proxies, dtype), dim=1)
        scores = pair_scores(x, p, distance)
        logits = scale * (scores if is_similarity(distance) else -scores)
        loss = F.cross_entropy(logits, labels, reduction="none")
    return reduce_loss(loss, reduction, process_group=process_group)


# --------------------------------------------------------------------------- modules


class _ProxyModule(LossModule):
    """Owns ``proxies``, a ``(num_classes, embedding_dim)`` parameter; ``forward(x, labels)``."""

    proxies: nn.Parameter

    def init_state(
        self,
        num_classes: PositiveInt,
        embedding_dim: PositiveInt,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        """The proxies, Kaiming-normal (see :meth:`reset_parameters`)."""
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.proxies = nn.Parameter(
            torch.empty(num_classes, embedding_dim, device=device, dtype=dtype)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal proxies (fan-out), as the Proxy-Anchor authors' code."""
        nn.init.kaiming_normal_(self.proxies, mode="fan_out")

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return type(self).functional(embeddings, labels, self.proxies, **self.options())


class ProxyAnchorLoss(_ProxyModule, functional=proxy_anchor_loss, catalog=False):
    """Module form of :func:`lossatlas.proxy_anchor_loss`, owning the class proxies.

    Not a catalog twin (its inputs differ: the proxies are its own); tested in the family
    tests, as the sampled-softmax heads.
    """


class ProxyNCALoss(_ProxyModule, functional=proxy_nca_loss, catalog=False):
    """Module form of :func:`lossatlas.proxy_nca_loss`, owning the class proxies.

    Not a catalog twin, as :class:`ProxyAnchorLoss`.
    """
