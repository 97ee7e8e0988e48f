"""Torch's ranking and embedding losses, with exact shapes.

``margin_ranking_loss``, ``hinge_embedding_loss``, ``cosine_embedding_loss``,
``triplet_margin_loss`` and ``triplet_margin_with_distance_loss`` equal
``torch.nn.functional`` for every option. What lossatlas adds: inputs must have exactly the
shapes the loss documents -- ``margin_ranking_loss`` with ``(N, 1)`` scores and an ``(N,)``
target raises a ``ValueError`` naming the shapes instead of broadcasting to an ``(N, N)`` loss
matrix (a trap that tutorials print; torch 2.13 refuses that case with a terse
``RuntimeError`` but still broadcasts ``(N, 1)`` against ``(1, N)`` or a ``(1,)`` target) --
labels are checked to be -1 or +1, half-precision inputs are accumulated in float32, and
``"mean"`` of an empty batch is 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import Interval, NonNegative, Positive
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_floating,
    check_same_device,
    check_same_shape,
    check_signs,
    check_tensor,
    describe,
)

__all__ = [
    "cosine_embedding_loss",
    "hinge_embedding_loss",
    "margin_ranking_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
]

DistanceFunction = Callable[[Tensor, Tensor], Tensor]
#: A cosine margin, in [-1, 1].
CosineMargin = Annotated[float, Interval(-1.0, 1.0)]

_DIM = 4


# --------------------------------------------------------------------------- examples


def _score_pairs(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    x1 = ex.normal(generator, batch, dtype=dtype, scale=scale)
    x2 = ex.normal(generator, batch, dtype=dtype, scale=scale)
    return Example((x1, x2, ex.sign_labels(generator, batch, dtype=dtype)), grad_args=(0, 1))


def _ranked_pairs(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    """``input1`` above ``input2`` by 1 exactly where y = +1: zero loss with ``margin=0``."""
    x2 = ex.normal(generator, batch, dtype=dtype, scale=scale)
    target = ex.sign_labels(generator, batch, dtype=dtype)
    return Example((x2 + target, x2, target), grad_args=(0, 1))


def _distances(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    distance = ex.normal(generator, batch, 3, dtype=dtype, scale=scale).abs()
    return Example((distance, ex.sign_labels(generator, batch, 3, dtype=dtype)))


def _embedding_pairs(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    x1 = ex.normal(generator, batch, _DIM, dtype=dtype, scale=scale)
    x2 = ex.normal(generator, batch, _DIM, dtype=dtype, scale=scale)
    return Example((x1, x2, ex.sign_labels(generator, batch, dtype=dtype)), grad_args=(0, 1))


def _aligned_pairs(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    """Similar pairs equal, dissimilar pairs opposite: zero cosine embedding loss."""
    x1 = ex.normal(generator, batch, _DIM, dtype=dtype, scale=scale)
    target = ex.sign_labels(generator, batch, dtype=dtype)
    return Example((x1, x1 * target[:, None], target), grad_args=(0, 1))


def _triplets(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    a, p, n = (ex.normal(generator, batch, _DIM, dtype=dtype, scale=scale) for _ in range(3))
    return Example((a, p, n), grad_args=(0, 1, 2))


def _separated_triplets(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    """Positive on the anchor, negative 6 away (> margin 1): zero triplet loss."""
    a = ex.normal(generator, batch, _DIM, dtype=dtype, scale=scale)
    return Example((a, a.clone(), a + 3.0), grad_args=(0, 1, 2))


#: torch's pair losses: labels in {-1, +1}, every tensor of the same shape.
_PAIRS = Family(
    tasks=("ranking", "metric-learning"),
    input_kind="embeddings",
    target_kind="labels in {-1, +1}",
    target_type=TargetKind.SIGNS,
    properties={"non_negative", "zero_at_perfect"},
    same_shape=(0, 1),
)
_TRIPLETS = _PAIRS.derive(
    target_kind="positive and negative embeddings",
    target_type=TargetKind.EMBEDDINGS,
    examples=_triplets,
    perfect=_separated_triplets,
)


# --------------------------------------------------------------------------- shared checks


def _torch_loss(
    torch_loss: Callable[..., Tensor], tensors: tuple[Tensor, ...], reduction: str, **options: Any
) -> Tensor:
    """``torch_loss(*tensors, **options)`` unreduced in the tensors' compute dtype, then reduced."""
    dtype = compute_dtype(*tensors)
    loss = torch_loss(*(t.to(dtype) for t in tensors), reduction="none", **options)
    return reduce_loss(loss, reduction)


def _check_labels(name: str, target: Tensor) -> None:
    """A real (floating or integer) tensor of -1 / +1 labels."""
    check_tensor(name, target)
    if target.dtype == torch.bool or target.is_complex():
        raise TypeError(
            f"{name} must be a real tensor of labels in {{-1, +1}}, got {describe(target)}"
        )
    check_signs(name, target)


def _check_embeddings(names: tuple[str, ...], tensors: tuple[Tensor, ...]) -> None:
    """Floating ``(N, D)`` or ``(D,)`` embeddings, all of exactly the same shape."""
    for name, tensor in zip(names, tensors, strict=True):
        check_floating(name, tensor)
    first = tensors[0]
    if first.dim() not in (1, 2):
        raise ValueError(f"{names[0]} must have shape (N, D) or (D,), got {tuple(first.shape)}")
    for name, tensor in zip(names[1:], tensors[1:], strict=True):
        check_same_shape(names[0], first, name, tensor)


# --------------------------------------------------------------------------- functionals


@_PAIRS.loss(
    tasks=("ranking",),
    input_kind="scores",
    formula=r"\max(0, -y (x_1 - x_2) + \mathrm{margin})",
    examples=_score_pairs,
    perfect=_ranked_pairs,
    oracle=F.margin_ranking_loss,
    use_when="learning to rank from pairwise preferences",
    peers={"torch": "F.margin_ranking_loss: same values; torch broadcasts shapes that differ"},
)
def margin_ranking_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    *,
    margin: float = 0.0,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Pairwise ranking hinge: ``input1`` should outscore ``input2`` by ``margin`` when y = +1.

    With ``y = -1`` the order is reversed. All three tensors must have exactly the same shape:
    broadcasting ``(N, 1)`` scores against an ``(N,)`` target gives an ``(N, N)`` matrix, which
    is almost never meant; here it raises, as does
    every other shape mismatch torch would broadcast (``(N, 1)`` against ``(1, N)``, a ``(1,)``
    target).

    .. math::
        \ell_n = \max(0,\ -y_n (x^{(1)}_n - x^{(2)}_n) + \mathrm{margin})

    Args:
        input1: Scores, any shape.
        input2: Scores, same shape.
        target: Labels in {-1, +1} (floating or integer), same shape.
        margin: Required score gap (any finite real; torch's default 0).
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            pairs.

    Returns:
        Same shape as ``input1`` for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating scores, a boolean or complex ``target``.
        ValueError: Any shape that differs (e.g. ``(N, 1)`` scores with an ``(N,)`` target), a
            label other than -1 or +1.

    Example:
        >>> x1 = torch.tensor([1.0, 2.0, 3.0])
        >>> x2 = torch.tensor([2.0, 2.0, 2.0])
        >>> la.margin_ranking_loss(x1, x2, torch.tensor([1.0, 1.0, -1.0]), reduction="none")
        tensor([1., 0., 1.])

        Scores given as ``(N,)`` vectors, so each pair meets its own label (as ``(3, 1)``
        tensors they would broadcast to a 3 x 3 matrix whose diagonal this is).

    References:
        torch.nn.MarginRankingLoss,
        https://pytorch.org/docs/stable/generated/torch.nn.MarginRankingLoss.html
    """
    check_same_device(("input1", input1), ("input2", input2), ("target", target))
    check_floating("input1", input1)
    check_floating("input2", input2)
    _check_labels("target", target)
    check_same_shape("input1", input1, "input2", input2)
    check_same_shape("input1", input1, "target", target)
    return _torch_loss(F.margin_ranking_loss, (input1, input2, target), reduction, margin=margin)


@_PAIRS.loss(
    input_kind="distances",
    formula=r"x \text{ if } y = 1,\ \max(0, \mathrm{margin} - x) \text{ if } y = -1",
    properties=(),
    examples=_distances,
    oracle=F.hinge_embedding_loss,
    use_when="similar/dissimilar pairs given as distances",
    peers={"torch": "F.hinge_embedding_loss: same values; shapes must match here"},
)
def hinge_embedding_loss(
    input: Tensor, target: Tensor, *, margin: float = 1.0, reduction: Reduction = "mean"
) -> Tensor:
    r"""Hinge embedding loss: a distance that is small for similar pairs, at least ``margin`` else.

    ``input`` is usually a distance between two embeddings (e.g. an L1 distance): similar
    pairs (y = +1) pay the distance itself, dissimilar ones (y = -1) pay how far it falls short
    of ``margin``.

    .. math::
        \ell_n = \begin{cases} x_n & y_n = 1 \\ \max(0,\ \mathrm{margin} - x_n) & y_n = -1
                 \end{cases}

    Args:
        input: Distances (any real values are accepted, as in torch), any shape.
        target: Labels in {-1, +1}, same shape.
        margin: Distance that dissimilar pairs should exceed (any finite real; default 1).
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            elements.

    Returns:
        Same shape as ``input`` for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating ``input``, a boolean or complex ``target``.
        ValueError: Shapes that differ, a label other than -1 or +1.

    Example:
        >>> distances = torch.tensor([0.3, 0.3, 1.5])
        >>> la.hinge_embedding_loss(distances, torch.tensor([1, -1, -1]), reduction="none")
        tensor([0.3000, 0.7000, 0.0000])

    References:
        torch.nn.HingeEmbeddingLoss,
        https://pytorch.org/docs/stable/generated/torch.nn.HingeEmbeddingLoss.html
    """
    check_same_device(("input", input), ("target", target))
    check_floating("input", input)
    _check_labels("target", target)
    check_same_shape("input", input, "target", target)
    return _torch_loss(F.hinge_embedding_loss, (input, target), reduction, margin=margin)


@_PAIRS.loss(
    formula=r"1 - \cos(x_1, x_2) \text{ if } y = 1,\ \max(0, \cos(x_1, x_2) - \mathrm{margin})"
    r" \text{ if } y = -1",
    properties={"non_negative", "zero_at_perfect", "symmetric", "bounded"},
    examples=_embedding_pairs,
    perfect=_aligned_pairs,
    oracle=F.cosine_embedding_loss,
    use_when="pairs compared by angle, not distance",
    peers={"torch": "F.cosine_embedding_loss: same values and eps"},
)
def cosine_embedding_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    *,
    margin: CosineMargin = 0.0,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Cosine embedding loss: similar pairs to cosine 1, dissimilar ones below ``margin``.

    Torch semantics: the cosine is ``<x1, x2> / sqrt((|x1|^2 + 1e-12)(|x2|^2 + 1e-12))``, so a
    zero vector gives cosine 0 and a finite gradient.

    .. math::
        \ell_n = \begin{cases} 1 - \cos(x^{(1)}_n, x^{(2)}_n) & y_n = 1 \\
                 \max(0,\ \cos(x^{(1)}_n, x^{(2)}_n) - \mathrm{margin}) & y_n = -1 \end{cases}

    Args:
        input1: Embeddings ``(N, D)`` or ``(D,)``.
        input2: Embeddings, same shape.
        target: Labels in {-1, +1}, shape ``(N,)`` (or ``()`` for ``(D,)`` inputs).
        margin: In ``[-1, 1]`` (torch documents this range; 0 to 0.5 is usual).
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by ``N``.

    Returns:
        Shape ``(N,)`` (or ``()``) for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating embeddings, a boolean or complex ``target``.
        ValueError: Embeddings not 1-D or 2-D or of different shapes, a target that is not
            ``(N,)``, a label other than -1 or +1, ``margin`` outside [-1, 1].

    Example:
        >>> x1 = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
        >>> x2 = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
        >>> la.cosine_embedding_loss(x1, x2, torch.tensor([1.0, -1.0]), reduction="none")
        tensor([0.2929, 0.7071])

    References:
        torch.nn.CosineEmbeddingLoss,
        https://pytorch.org/docs/stable/generated/torch.nn.CosineEmbeddingLoss.html
    """
    _check_embeddings(("input1", "input2"), (input1, input2))
    check_same_device(("input1", input1), ("target", target))
    _check_labels("target", target)
    if target.shape != input1.shape[:-1]:
        raise ValueError(
            f"target must have shape {tuple(input1.shape[:-1])} (one label per pair) for inputs "
            f"of shape {tuple(input1.shape)}, got {tuple(target.shape)}"
        )
    return _torch_loss(F.cosine_embedding_loss, (input1, input2, target), reduction, margin=margin)


@_TRIPLETS.loss(
    formula=r"\max(0, \|a - p\|_p - \|a - n\|_p + \mathrm{margin})",
    oracle=F.triplet_margin_loss,
    use_when="metric learning from anchor/positive/negative",
    peers={"torch": "F.triplet_margin_loss: same values (pairwise_distance, eps)"},
)
def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    margin: Positive = 1.0,
    p: Positive = 2.0,
    eps: NonNegative = 1e-6,
    swap: bool = False,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Triplet loss: the anchor should be nearer its positive than its negative by ``margin``.

    Distances are torch's ``pairwise_distance``, ``d(a, b) = ||a - b + eps||_p``. With
    ``swap=True`` the negative distance is ``min(d(a, n), d(p, n))`` (the distance swap of
    Balntas et al. 2016).

    .. math::
        \ell_n = \max\left(0,\ d(a_n, p_n) - d(a_n, n_n) + \mathrm{margin}\right)

    Args:
        anchor: Embeddings ``(N, D)`` or ``(D,)``.
        positive: Same shape.
        negative: Same shape.
        margin: Positive real.
        p: Norm degree, a positive real.
        eps: Added to the difference before the norm (keeps the gradient finite at 0), ``>= 0``.
        swap: Use the distance swap.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by ``N``.

    Returns:
        Shape ``(N,)`` (or ``()``) for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating embeddings, a non-bool ``swap``.
        ValueError: Shapes that differ or are not 1-D/2-D, ``margin <= 0``, ``p <= 0``,
            ``eps < 0``.

    Example:
        >>> anchor = torch.tensor([[0.0, 0.0]])
        >>> positive = torch.tensor([[3.0, 4.0]])
        >>> negative = torch.tensor([[1.0, 0.0]])
        >>> la.triplet_margin_loss(anchor, positive, negative, eps=0.0)
        tensor(5.)

    References:
        F. Schroff, D. Kalenichenko, J. Philbin, "FaceNet: A Unified Embedding for Face
        Recognition and Clustering", CVPR 2015, https://arxiv.org/abs/1503.03832

        V. Balntas et al., "Learning local feature descriptors with triplets and shallow
        convolutional neural networks", BMVC 2016.

        torch.nn.TripletMarginLoss,
        https://pytorch.org/docs/stable/generated/torch.nn.TripletMarginLoss.html
    """
    names = ("anchor", "positive", "negative")
    _check_embeddings(names, (anchor, positive, negative))
    return _torch_loss(
        F.triplet_margin_loss,
        (anchor, positive, negative),
        reduction,
        margin=margin,
        p=p,
        eps=eps,
        swap=swap,
    )


@_TRIPLETS.loss(
    formula=r"\max(0, d(a, p) - d(a, n) + \mathrm{margin})",
    oracle=F.triplet_margin_with_distance_loss,
    use_when="triplets under a distance of your own (cosine...)",
    peers={"torch": "F.triplet_margin_with_distance_loss: same values; no shape broadcast"},
)
def triplet_margin_with_distance_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    distance_function: DistanceFunction | None = None,
    margin: Positive = 1.0,
    swap: bool = False,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Triplet loss with any distance function (torch's ``triplet_margin_with_distance_loss``).

    ``distance_function(a, b)`` returns one non-negative distance per triplet; the default is
    ``torch.pairwise_distance`` (Euclidean, ``eps=1e-6``), which makes this
    :func:`triplet_margin_loss`. A cosine distance ``1 - cosine_similarity(a, b)`` is a common
    alternative. ``swap`` as in :func:`triplet_margin_loss`.

    .. math::
        \ell_n = \max\left(0,\ d(a_n, p_n) - d(a_n, n_n) + \mathrm{margin}\right)

    Args:
        anchor: Embeddings; any shape the distance function accepts (``(N, D)`` usually).
        positive: Same shape as ``anchor``.
        negative: Same shape as ``anchor``.
        distance_function: ``(Tensor, Tensor) -> Tensor`` of distances, or ``None``.
        margin: Positive real.
        swap: Use the distance swap ``min(d(a, n), d(p, n))``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            distances (``N``).

    Returns:
        The distances' shape (``(N,)``) for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating embeddings, a ``distance_function`` that is not callable or
            does not return a floating tensor, a non-bool ``swap``.
        ValueError: Shapes that differ, ``margin <= 0``, a distance function whose outputs for
            the positive and negative pairs differ in shape.

    Example:
        >>> cosine_distance = lambda a, b: 1.0 - torch.cosine_similarity(a, b)
        >>> anchor = torch.tensor([[1.0, 0.0]])
        >>> positive = torch.tensor([[0.0, 1.0]])
        >>> negative = torch.tensor([[1.0, 1.0]])
        >>> la.triplet_margin_with_distance_loss(
        ...     anchor, positive, negative, distance_function=cosine_distance, margin=0.5)
        tensor(1.2071)

    References:
        F. Schroff, D. Kalenichenko, J. Philbin, "FaceNet: A Unified Embedding for Face
        Recognition and Clustering", CVPR 2015, https://arxiv.org/abs/1503.03832

        torch.nn.TripletMarginWithDistanceLoss,
        https://pytorch.org/docs/stable/generated/torch.nn.TripletMarginWithDistanceLoss.html
    """
    names = ("anchor", "positive", "negative")
    for name, tensor in zip(names, (anchor, positive, negative), strict=True):
        check_floating(name, tensor)
    check_same_shape("anchor", anchor, "positive", positive)
    check_same_shape("anchor", anchor, "negative", negative)
    dtype = compute_dtype(anchor, positive, negative)
    anchor, positive, negative = (upcast(t, dtype) for t in (anchor, positive, negative))
    distance = torch.pairwise_distance if distance_function is None else distance_function
    dist_pos = _distance(distance, anchor, positive, "d(anchor, positive)")
    dist_neg = _distance(distance, anchor, negative, "d(anchor, negative)")
    check_same_shape("d(anchor, positive)", dist_pos, "d(anchor, negative)", dist_neg)
    if swap:
        dist_swap = _distance(distance, positive, negative, "d(positive, negative)")
        check_same_shape("d(anchor, negative)", dist_neg, "d(positive, negative)", dist_swap)
        dist_neg = torch.minimum(dist_neg, dist_swap)
    return reduce_loss(F.relu(margin + dist_pos - dist_neg), reduction)


def _distance(distance: DistanceFunction, a: Tensor, b: Tensor, what: str) -> Tensor:
    value = distance(a, b)
    if not isinstance(value, Tensor) or not value.is_floating_point():
        raise TypeError(
            f"distance_function must return a floating tensor of distances, got "
            f"{describe(value)} for {what}"
        )
    return value


# --------------------------------------------------------------------------- modules


class MarginRankingLoss(LossModule, functional=margin_ranking_loss):
    """Module form of :func:`lossatlas.margin_ranking_loss`."""


class HingeEmbeddingLoss(LossModule, functional=hinge_embedding_loss):
    """Module form of :func:`lossatlas.hinge_embedding_loss`."""


class CosineEmbeddingLoss(LossModule, functional=cosine_embedding_loss):
    """Module form of :func:`lossatlas.cosine_embedding_loss`."""


class TripletMarginLoss(LossModule, functional=triplet_margin_loss):
    """Module form of :func:`lossatlas.triplet_margin_loss`."""


class TripletMarginWithDistanceLoss(LossModule, functional=triplet_margin_with_distance_loss):
    """Module form of :func:`lossatlas.triplet_margin_with_distance_loss`.

    A ``distance_function`` that is an ``nn.Module`` becomes a submodule (moved by ``.to``).
    """
