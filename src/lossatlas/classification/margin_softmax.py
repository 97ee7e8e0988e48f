"""Margin-softmax heads for metric learning: ArcFace, CosFace, SphereFace.

Each is softmax cross-entropy over *cosine* logits ``cos(theta_j)`` between the L2-normalised
embedding and the L2-normalised centre of class ``j``, times a ``scale``, with a margin that
makes the true class harder to win: additive angular ``cos(theta + m)`` (ArcFace), additive
cosine ``cos(theta) - m`` (CosFace), multiplicative angular ``cos(m theta)`` (SphereFace). The
margin enlarges the angular gap between classes, which is what face recognition and retrieval
need from an embedding.

The functionals take the class centres explicitly (``arcface_loss(embeddings, weight,
target)``); the modules (``ArcFaceLoss(num_classes, embedding_dim)``) own them as a trainable
``weight`` parameter of shape ``(num_classes, embedding_dim)``. ``*_logits`` return the scaled
margin logits, e.g. to log them or to feed another loss.

Numerics: angles are taken from cosines clamped to ``[-1 + eps, 1 - eps]`` (``eps`` the
machine epsilon of the compute dtype) wherever a square root or ``acos`` of ``1 - cos^2`` is
needed, so an embedding exactly aligned with or opposite to a centre has finite gradients.
The non-target logits are the plain cosines and are never clamped.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Annotated, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family
from lossatlas._docs import DOCTEST_IMPORTS, SharedDocs, fill_docstring
from lossatlas._module import LossModule
from lossatlas._options import (
    Interval,
    NonNegative,
    Positive,
    PositiveInt,
    UnitInterval,
    check_value,
)
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_class_indices,
    check_floating,
    check_integer,
    check_same_device,
    check_shape,
)

__all__ = [
    "arcface_logits",
    "arcface_loss",
    "cosface_logits",
    "cosface_loss",
    "sphereface_logits",
    "sphereface_loss",
]


_F = TypeVar("_F", bound=Callable[..., Tensor])

#: ArcFace's additive angular margin, in radians: ``[0, pi)``.
AngularMargin = Annotated[float, Interval(0.0, math.pi, high_inclusive=False)]

# --------------------------------------------------------------------------- examples

_NUM_CLASSES = 3
_DIM = 4


def _head_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    embeddings = ex.normal(generator, batch, _DIM, dtype=dtype, scale=scale)
    centres = ex.normal(generator, _NUM_CLASSES, _DIM, dtype=dtype)
    target = ex.class_indices(generator, batch, num_classes=_NUM_CLASSES)
    # A moderate scale keeps the float64 gradcheck well conditioned; defaults are tested too.
    return Example((embeddings, centres, target), {"scale": 4.0}, grad_args=(0, 1))


#: The doctest lines every example here starts with: one embedding at 45 degrees, two centres.
_EXAMPLE = """>>> embeddings = torch.tensor([[1.0, 1.0]])
>>> centres = torch.tensor([[1.0, 0.0], [0.0, 1.0]])"""

_RAISES = {
    "TypeError": "Non-floating embeddings or weight, a non-integer target.",
    "ValueError": "Shapes that do not fit, a class index out of range, a bad option.",
}

#: What the three logits functions' docstrings share (they are not declared losses).
_LOGITS_DOCS = SharedDocs(
    args={
        "embeddings": "``(N, D)``, any norm (normalised inside).",
        "weight": "Class centres ``(C, D)``, any norm.",
        "target": "Class indices ``(N,)`` in ``[0, C)``.",
        "scale": "``s > 0``.",
    },
    returns="Logits ``(N, C)`` in the compute dtype (float32 for half precision).",
    raises=_RAISES,
    example=_EXAMPLE,
    imports=DOCTEST_IMPORTS,
)


def _logits_docs(function: _F) -> _F:
    """Fill :data:`_LOGITS_DOCS` into a logits function's ``__doc__`` (as a family would)."""
    params = list(inspect.signature(function).parameters)
    function.__doc__ = fill_docstring(
        function.__doc__, params, _LOGITS_DOCS, owner=function.__name__
    )
    return function


# ``module=None`` in the catalog: the modules (ArcFaceLoss...) own ``weight`` and are called as
# ``module(embeddings, target)``, so the harness's ``module(*args) == function(*args)`` cannot
# apply; tests/test_margin_softmax.py checks module against functional.
_HEADS = Family(
    tasks=("metric-learning", "multiclass"),
    input_kind="embeddings",
    target_kind="class indices",
    properties={"non_negative"},
    examples=_head_example,
    args={
        "embeddings": "``(N, D)``.",
        "weight": "Class centres ``(C, D)``.",
        "target": "Class indices ``(N,)``.",
        "scale": "``s > 0``.",
        "label_smoothing": "As in ``cross_entropy`` (``epsilon / C`` on every class).",
        "reduction": '``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by ``N``.',
    },
    returns='Shape ``(N,)`` for ``"none"``, else a scalar.',
    raises=_RAISES,
    example=_EXAMPLE,
    imports=DOCTEST_IMPORTS,
)

# --------------------------------------------------------------------------- shared parts


def _check_head_inputs(embeddings: Tensor, weight: Tensor, target: Tensor) -> None:
    check_floating("embeddings", embeddings)
    check_floating("weight", weight)
    check_shape("embeddings", embeddings, (None, None), "(N, D)")
    check_shape(
        "weight", weight, (None, embeddings.shape[1]), "(num_classes, D) with the D of embeddings"
    )
    check_integer("target", target)
    check_shape("target", target, (embeddings.shape[0],), "(N,) of class indices")
    check_class_indices("target", target, weight.shape[0])


def _cosines(embeddings: Tensor, weight: Tensor) -> Tensor:
    """``cos(theta)`` between every embedding and every class centre, ``(N, C)``."""
    dtype = compute_dtype(embeddings, weight)
    e = F.normalize(upcast(embeddings, dtype), dim=1)
    w = F.normalize(upcast(weight, dtype), dim=1)
    return e @ w.T


def _is_target(target: Tensor, cos: Tensor) -> Tensor:
    """Boolean ``(N, C)`` mask of each row's target class."""
    classes = torch.arange(cos.shape[1], device=cos.device)
    return classes == target.unsqueeze(1)


def _clamped(cos: Tensor) -> Tensor:
    eps = torch.finfo(cos.dtype).eps
    return cos.clamp(-1.0 + eps, 1.0 - eps)


def _head_loss(logits: Tensor, target: Tensor, label_smoothing: float, reduction: str) -> Tensor:
    loss = F.cross_entropy(logits, target, label_smoothing=label_smoothing, reduction="none")
    return reduce_loss(loss, reduction)


# --------------------------------------------------------------------------- ArcFace


@_logits_docs
def arcface_logits(
    embeddings: Tensor,
    weight: Tensor,
    target: Tensor,
    *,
    scale: Positive = 64.0,
    margin: AngularMargin = 0.5,
    easy_margin: bool = False,
) -> Tensor:
    r"""ArcFace logits: ``scale * cos(theta + margin)`` for the target class, ``scale * cos`` else.

    ``cos(theta + m)`` is not decreasing in ``theta`` once ``theta + m > pi``; as in the
    official insightface code, a target angle beyond ``pi - m`` (``cos(theta) <= cos(pi - m)``)
    uses ``cos(theta) - m sin(m)`` instead (a CosFace-like penalty that keeps the logit
    decreasing). ``easy_margin=True`` applies the margin only where ``cos(theta) > 0`` and
    leaves the target logit at ``cos(theta)`` otherwise.

    .. math::
        z_{n, j} = s \cdot \begin{cases}
            \cos(\theta_{n, j} + m) & j = y_n,\ \theta_{n, j} < \pi - m \\
            \cos\theta_{n, j} - m \sin m & j = y_n,\ \theta_{n, j} \ge \pi - m \\
            \cos\theta_{n, j} & j \ne y_n \end{cases}

    Args:
        margin: Additive angular margin ``m`` in radians, in ``[0, pi)``.
        easy_margin: Margin only for ``cos(theta) > 0``.

    Example:
        >>> la.arcface_logits(embeddings, centres, torch.tensor([0]), scale=1.0, margin=0.5)
        tensor([[0.2815, 0.7071]])

    References:
        J. Deng, J. Guo, N. Xue, S. Zafeiriou, ArcFace: Additive Angular Margin Loss for Deep
        Face Recognition, CVPR 2019, https://arxiv.org/abs/1801.07698
    """
    check_value("scale", scale, Positive)
    check_value("margin", margin, AngularMargin)
    check_value("easy_margin", easy_margin, bool)
    _check_head_inputs(embeddings, weight, target)
    cos = _cosines(embeddings, weight)
    c = _clamped(cos)
    sin = (1.0 - c * c).sqrt()
    phi = c * math.cos(margin) - sin * math.sin(margin)
    if easy_margin:
        phi = torch.where(cos > 0, phi, cos)
    else:
        phi = torch.where(cos > math.cos(math.pi - margin), phi, cos - margin * math.sin(margin))
    return scale * torch.where(_is_target(target, cos), phi, cos)


@_HEADS.loss(
    formula=r"-\log \frac{e^{s \cos(\theta_y + m)}}{e^{s \cos(\theta_y + m)} + \sum_{j \ne y} "
    r"e^{s \cos\theta_j}}",
)
def arcface_loss(
    embeddings: Tensor,
    weight: Tensor,
    target: Tensor,
    *,
    scale: Positive = 64.0,
    margin: AngularMargin = 0.5,
    easy_margin: bool = False,
    label_smoothing: UnitInterval = 0.0,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""ArcFace loss: cross-entropy over additive-angular-margin cosine logits.

    Softmax cross-entropy of :func:`arcface_logits`. With ``margin=0`` it is the normalised
    softmax (cosine logits times ``scale``). Defaults ``scale=64, margin=0.5`` are the
    paper's. The module :class:`lossatlas.nn.ArcFaceLoss` owns the class centres.

    .. math::
        \ell_n = -\log \frac{e^{s \cos(\theta_{n, y_n} + m)}}
                 {e^{s \cos(\theta_{n, y_n} + m)} + \sum_{j \ne y_n} e^{s \cos \theta_{n, j}}}

    Args:
        margin: ``m`` in radians, ``[0, pi)``.
        easy_margin: See :func:`arcface_logits`.

    Example:
        >>> la.arcface_loss(embeddings, centres, torch.tensor([0]), scale=1.0, margin=0.5)
        tensor(0.9284)

    References:
        J. Deng, J. Guo, N. Xue, S. Zafeiriou, ArcFace: Additive Angular Margin Loss for Deep
        Face Recognition, CVPR 2019, https://arxiv.org/abs/1801.07698
    """
    check_same_device(("embeddings", embeddings), ("weight", weight), ("target", target))
    logits = arcface_logits(
        embeddings, weight, target, scale=scale, margin=margin, easy_margin=easy_margin
    )
    return _head_loss(logits, target, label_smoothing, reduction)


# --------------------------------------------------------------------------- CosFace


@_logits_docs
def cosface_logits(
    embeddings: Tensor,
    weight: Tensor,
    target: Tensor,
    *,
    scale: Positive = 64.0,
    margin: NonNegative = 0.35,
) -> Tensor:
    r"""CosFace logits: ``scale * (cos(theta) - margin)`` for the target, ``scale * cos`` else.

    .. math::
        z_{n, j} = s \left(\cos\theta_{n, j} - m\, [j = y_n]\right)

    Args:
        margin: Additive cosine margin ``m >= 0``.

    Example:
        >>> la.cosface_logits(embeddings, centres, torch.tensor([0]), scale=1.0, margin=0.35)
        tensor([[0.3571, 0.7071]])

    References:
        H. Wang et al., CosFace: Large Margin Cosine Loss for Deep Face Recognition,
        CVPR 2018, https://arxiv.org/abs/1801.09414
    """
    check_value("scale", scale, Positive)
    check_value("margin", margin, NonNegative)
    _check_head_inputs(embeddings, weight, target)
    cos = _cosines(embeddings, weight)
    return scale * (cos - margin * _is_target(target, cos).to(cos.dtype))


@_HEADS.loss(
    formula=r"-\log \frac{e^{s (\cos\theta_y - m)}}{e^{s (\cos\theta_y - m)} + \sum_{j \ne y} "
    r"e^{s \cos\theta_j}}",
)
def cosface_loss(
    embeddings: Tensor,
    weight: Tensor,
    target: Tensor,
    *,
    scale: Positive = 64.0,
    margin: NonNegative = 0.35,
    label_smoothing: UnitInterval = 0.0,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""CosFace (large margin cosine) loss: cross-entropy over :func:`cosface_logits`.

    ``margin=0`` is the normalised softmax. Defaults ``scale=64, margin=0.35`` are the
    paper's. The module :class:`lossatlas.nn.CosFaceLoss` owns the class centres.

    .. math::
        \ell_n = -\log \frac{e^{s (\cos\theta_{n, y_n} - m)}}
                 {e^{s (\cos\theta_{n, y_n} - m)} + \sum_{j \ne y_n} e^{s \cos\theta_{n, j}}}

    Args:
        margin: ``m >= 0``.

    Example:
        >>> la.cosface_loss(embeddings, centres, torch.tensor([0]), scale=1.0, margin=0.35)
        tensor(0.8834)

    References:
        H. Wang et al., CosFace: Large Margin Cosine Loss for Deep Face Recognition,
        CVPR 2018, https://arxiv.org/abs/1801.09414
    """
    check_same_device(("embeddings", embeddings), ("weight", weight), ("target", target))
    logits = cosface_logits(embeddings, weight, target, scale=scale, margin=margin)
    return _head_loss(logits, target, label_smoothing, reduction)


# --------------------------------------------------------------------------- SphereFace


@_logits_docs
def sphereface_logits(
    embeddings: Tensor,
    weight: Tensor,
    target: Tensor,
    *,
    scale: Positive = 64.0,
    margin: PositiveInt = 4,
) -> Tensor:
    r"""SphereFace logits: ``scale * psi(theta)`` for the target class, ``scale * cos`` else.

    ``psi(theta) = (-1)^k cos(m theta) - 2k`` for ``theta`` in ``[k pi / m, (k + 1) pi / m]``
    is the paper's monotonically decreasing extension of ``cos(m theta)`` to ``[0, pi]``
    (continuous at every ``k pi / m``). ``margin=1`` gives the plain cosine.

    Departure from the paper, stated: the paper multiplies by the feature norm ``||x||`` and
    anneals ``psi`` with ``cos`` through a weight ``lambda``; here the embedding is normalised
    and multiplied by ``scale``, like ArcFace and CosFace (as SphereFace's follow-ups do), and
    there is no annealing (lower the ``margin`` or ``scale`` if training does not start).

    .. math::
        z_{n, j} = s \cdot \begin{cases} (-1)^k \cos(m \theta_{n, j}) - 2k & j = y_n \\
                   \cos\theta_{n, j} & j \ne y_n \end{cases},\quad
                   k = \lfloor m \theta_{n, j} / \pi \rfloor

    Args:
        margin: Integer angular multiplier ``m >= 1`` (4 in the paper).

    Raises:
        TypeError: Non-floating embeddings or weight, a non-integer target or margin.

    Example:
        >>> # at 45 degrees, m = 3 makes the target angle 135 degrees
        >>> la.sphereface_logits(embeddings, centres, torch.tensor([0]), scale=1.0, margin=3)
        tensor([[-0.7071,  0.7071]])

    References:
        W. Liu et al., SphereFace: Deep Hypersphere Embedding for Face Recognition,
        CVPR 2017, https://arxiv.org/abs/1704.08063
    """
    check_value("scale", scale, Positive)
    check_value("margin", margin, PositiveInt)
    _check_head_inputs(embeddings, weight, target)
    cos = _cosines(embeddings, weight)
    theta = torch.acos(_clamped(cos))
    k = torch.floor(margin * theta.detach() / math.pi)
    sign = 1.0 - 2.0 * torch.remainder(k, 2.0)
    psi = sign * torch.cos(margin * theta) - 2.0 * k
    return scale * torch.where(_is_target(target, cos), psi, cos)


@_HEADS.loss(
    formula=r"-\log \frac{e^{s \psi(\theta_y)}}{e^{s \psi(\theta_y)} + \sum_{j \ne y} "
    r"e^{s \cos\theta_j}},\ \psi(\theta) = (-1)^k \cos(m\theta) - 2k",
)
def sphereface_loss(
    embeddings: Tensor,
    weight: Tensor,
    target: Tensor,
    *,
    scale: Positive = 64.0,
    margin: PositiveInt = 4,
    label_smoothing: UnitInterval = 0.0,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""SphereFace (A-Softmax) loss: cross-entropy over :func:`sphereface_logits`.

    Multiplicative angular margin: the true class must win with ``m`` times its angle. With
    normalised embeddings and ``scale`` (see :func:`sphereface_logits` for the departure from
    the paper's feature norm and annealing). The module :class:`lossatlas.nn.SphereFaceLoss`
    owns the class centres.

    .. math::
        \ell_n = -\log \frac{e^{s \psi(\theta_{n, y_n})}}
                 {e^{s \psi(\theta_{n, y_n})} + \sum_{j \ne y_n} e^{s \cos\theta_{n, j}}}

    Args:
        margin: Integer ``m >= 1``.

    Raises:
        TypeError: Non-floating embeddings or weight, a non-integer target or margin.

    Example:
        >>> la.sphereface_loss(embeddings, centres, torch.tensor([0]), scale=1.0, margin=3)
        tensor(1.6318)

    References:
        W. Liu et al., SphereFace: Deep Hypersphere Embedding for Face Recognition,
        CVPR 2017, https://arxiv.org/abs/1704.08063
    """
    check_same_device(("embeddings", embeddings), ("weight", weight), ("target", target))
    logits = sphereface_logits(embeddings, weight, target, scale=scale, margin=margin)
    return _head_loss(logits, target, label_smoothing, reduction)


# --------------------------------------------------------------------------- modules


class _MarginHead(LossModule):
    """A margin-softmax loss that owns its class centres ``weight`` ``(num_classes, dim)``."""

    logits_function: Callable[..., Tensor]
    #: Options of the loss that the logits function does not take.
    loss_only: tuple[str, ...] = ("label_smoothing", "reduction")

    def init_state(self, num_classes: PositiveInt, embedding_dim: PositiveInt) -> None:
        """The class centres ``weight``, Xavier-uniform (see :meth:`reset_parameters`)."""
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform class centres (their norm does not matter: they are normalised)."""
        nn.init.xavier_uniform_(self.weight)

    def logits(self, embeddings: Tensor, target: Tensor) -> Tensor:
        """The scaled margin logits ``(N, num_classes)`` (before the cross-entropy)."""
        options = {k: v for k, v in self.options().items() if k not in self.loss_only}
        return type(self).logits_function(embeddings, self.weight, target, **options)

    def forward(self, embeddings: Tensor, target: Tensor) -> Tensor:
        return type(self).functional(embeddings, self.weight, target, **self.options())

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, embedding_dim={self.embedding_dim}, " + (
            super().extra_repr()
        )


class ArcFaceLoss(_MarginHead, functional=arcface_loss, catalog=False):
    """Module form of :func:`lossatlas.arcface_loss`; owns the class centres ``weight``.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> head = la.nn.ArcFaceLoss(10, 128)
        >>> loss = head(torch.randn(4, 128), torch.tensor([0, 3, 9, 3]))
        >>> loss.backward()
        >>> head.weight.grad.shape
        torch.Size([10, 128])
    """

    logits_function = staticmethod(arcface_logits)


class CosFaceLoss(_MarginHead, functional=cosface_loss, catalog=False):
    """Module form of :func:`lossatlas.cosface_loss`; owns the class centres ``weight``."""

    logits_function = staticmethod(cosface_logits)


class SphereFaceLoss(_MarginHead, functional=sphereface_loss, catalog=False):
    """Module form of :func:`lossatlas.sphereface_loss`; owns the class centres ``weight``."""

    logits_function = staticmethod(sphereface_logits)
