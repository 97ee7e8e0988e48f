"""Generalized focal family: quality focal (QFL), distribution focal (DFL) and varifocal (VFL).

Dense detectors (GFL, VFNet, and their descendants) train a classification score that is also
a localisation quality: QFL and VFL use the IoU of the predicted box with its ground truth as
a soft target for the true class, and DFL learns each side's distance as a distribution over
discrete bins. The formulas are mmdetection's (``mmdet/models/losses/gfocal_loss.py`` and
``varifocal_loss.py``), with mmdetection's ``weight`` and ``avg_factor`` (see
:func:`lossatlas.varifocal_loss` for what ``"mean"`` divides by).

Pitfall: DFL is not QFL. QFL scores classes (``(N, C)`` logits); DFL regresses box sides, each
side one row of ``reg_max + 1`` bin logits, so a head's ``(N, 4 * (reg_max + 1))`` output is
reshaped to ``(4 N, reg_max + 1)`` with a target of ``4 N`` distances.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._options import NonNegative, PositiveInt
from lossatlas._reduction import Reduction, compute_dtype, upcast
from lossatlas._validation import (
    check_class_indices,
    check_floating,
    check_in_range,
    check_integer,
    check_probabilities,
    check_same_device,
    check_same_shape,
    check_shape,
)
from lossatlas.detection._weighted import (
    WEIGHTED_ARGS,
    AvgFactor,
    WeightedModule,
    check_rows,
    check_weight,
    weighted_reduce,
)

__all__ = ["distribution_focal_loss", "quality_focal_loss", "varifocal_loss"]


def _power(base: Tensor, exponent: float) -> Tensor:
    """``base ** exponent`` for ``base >= 0`` with a finite gradient at 0 (``0 ** 0 = 1``).

    ``0 ** exponent`` for ``0 < exponent < 1`` has an infinite slope; here its gradient is 0. A
    NaN stays NaN.
    """
    positive = base > 0
    powered = torch.where(positive, base, torch.ones_like(base)) ** exponent
    at_zero = 1.0 if exponent == 0 else 0.0
    return torch.where(positive, powered, base * 0 + at_zero)


def _sigmoid_power(logits: Tensor, exponent: float) -> Tensor:
    """``sigmoid(x) ** exponent`` in log space: finite with a finite gradient for any logit."""
    return torch.exp(exponent * F.logsigmoid(logits))


# --------------------------------------------------------------------------- declarations

_CLASSES = 3
_REG_MAX = 4


def _qfl_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    logits = ex.normal(generator, batch, _CLASSES, dtype=dtype, scale=scale)
    labels = ex.class_indices(generator, batch, num_classes=_CLASSES + 1)  # C is background
    score = ex.uniform(generator, batch, dtype=dtype)
    weight = ex.uniform(generator, batch, dtype=dtype, low=0.5, high=1.5)
    return Example((logits, labels, score), {"weight": weight})


def _dfl_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    logits = ex.normal(generator, batch, _REG_MAX + 1, dtype=dtype, scale=scale)
    distance = ex.uniform(generator, batch, dtype=dtype, high=float(_REG_MAX))
    weight = ex.uniform(generator, batch, dtype=dtype, low=0.5, high=1.5)
    return Example((logits, distance), {"weight": weight})


def _vfl_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    logits = ex.normal(generator, batch, _CLASSES, dtype=dtype, scale=scale)
    # IoU-aware targets: the IoU at a positive's class, 0 elsewhere (about a third positive).
    iou = ex.uniform(generator, batch, _CLASSES, dtype=torch.float64, low=0.05, high=1.0)
    positive = ex.uniform(generator, batch, _CLASSES, dtype=torch.float64) < 0.35
    target = torch.where(positive, iou, torch.zeros_like(iou)).to(dtype)
    return Example((logits, target))


_GFL = Family(
    tasks=("detection", "imbalanced"),
    input_kind="logits",
    target_kind="class labels (C = background) and IoU scores",
    target_type=TargetKind.OTHER,
    properties={"non_negative"},
    peers={"mmdetection": "same formula; weight and avg_factor as weight_reduce_loss"},
    args=WEIGHTED_ARGS,
)

# --------------------------------------------------------------------------- functionals


@_GFL.loss(
    formula=r"-|s - \sigma|^{\beta}\,[s \log \sigma + (1 - s)\log(1 - \sigma)]",
    examples=_qfl_example,
    same_shape=(1, 2),
    use_when="class score that is also the box's IoU (GFL)",
)
def quality_focal_loss(
    input: Tensor,
    target: Tensor,
    score: Tensor,
    *,
    beta: NonNegative = 2.0,
    weight: Tensor | None = None,
    avg_factor: AvgFactor = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Quality focal loss (GFL): sigmoid focal loss toward the box's IoU as the class target.

    Every class is a binary problem on its logit with target 0, scaled by
    :math:`\sigma^\beta`; the labelled class of a positive has the IoU ``score`` as its target,
    scaled by :math:`|s - \sigma|^\beta`. The ``C`` class terms of a sample are summed. With
    ``score = 1`` for every positive it is :func:`lossatlas.binary_focal_loss` with
    ``alpha=None, gamma=beta`` on one-hot targets, summed over classes.

    .. math::
        \ell_{n} = \sum_{c} \begin{cases}
            -|s_n - \sigma_{nc}|^{\beta}\,[s_n \log \sigma_{nc} + (1 - s_n)\log(1 - \sigma_{nc})]
            & c = y_n \\
            -\sigma_{nc}^{\beta} \log(1 - \sigma_{nc}) & \text{otherwise}
        \end{cases}

    Args:
        input: Logits ``(N, C)``.
        target: Class labels ``(N,)`` (integer) in ``[0, C]``; ``C`` is background (every
            class gets target 0), mmdetection's ``bg_class_ind = num_classes``.
        score: IoU of each sample's predicted box with its ground truth, ``(N,)`` in
            ``[0, 1]`` (read only where ``target < C``).
        beta: Focusing exponent ``>= 0`` (the paper's 2); 0 gives plain BCE.
        weight: Per-sample weights broadcasting to ``(N,)``, multiplying ``\ell_n``
            (mmdetection's ``label_weights``).

    Returns:
        ``(N,)`` for ``"none"``, else a scalar; float32 for half precision.

    Raises:
        TypeError: Non-floating logits, scores or weights; non-integer labels.
        ValueError: ``input`` not ``(N, C)``, labels or scores of another shape, a label outside
            ``[0, C]``, a score outside ``[0, 1]``, a bad ``weight``, ``avg_factor`` with
            ``reduction="sum"``, a bad option.

    Example:
        >>> logits = torch.tensor([[2.0, -1.0], [0.0, 0.5]])
        >>> labels = torch.tensor([0, 2])  # a positive of class 0, a background sample
        >>> iou = torch.tensor([0.8, 0.0])
        >>> la.quality_focal_loss(logits, labels, iou, reduction="none")
        tensor([0.0261, 0.5507])

    References:
        X. Li, W. Wang, L. Wu, S. Chen, X. Hu, J. Li, J. Tang, J. Yang, `Generalized Focal
        Loss: Learning Qualified and Distributed Bounding Boxes for Dense Object Detection
        <https://arxiv.org/abs/2006.04388>`_, NeurIPS 2020.

        mmdetection, ``mmdet/models/losses/gfocal_loss.py``,
        https://github.com/open-mmlab/mmdetection
    """
    check_floating("input", input)
    check_shape("input", input, (None, None), "(N, C) logits")
    num_classes = input.shape[1]
    check_integer("target", target)
    check_floating("score", score)
    check_rows("target", target, input.shape[0], "a label in [0, C], C = background,")
    check_same_device(("input", input), ("target", target))
    check_same_shape("target", target, "score", score)
    check_class_indices("target", target, num_classes + 1)
    check_probabilities("score", score)
    check_weight(weight, input, (input.shape[0],), "one weight per sample")
    dtype = compute_dtype(input, score, weight)
    x, s = upcast(input, dtype), upcast(score, dtype)[:, None]
    negative = F.binary_cross_entropy_with_logits(
        x, torch.zeros_like(x), reduction="none"
    ) * _sigmoid_power(x, beta)
    positive = F.binary_cross_entropy_with_logits(x, s.expand_as(x), reduction="none") * _power(
        (s - torch.sigmoid(x)).abs(), beta
    )
    labelled = torch.arange(num_classes, device=input.device) == target[:, None]
    loss = torch.where(labelled, positive, negative).sum(dim=1)
    return weighted_reduce(loss, reduction, weight=weight, avg_factor=avg_factor)


@_GFL.loss(
    formula=r"-[(y_{i+1} - y)\log S_i + (y - y_i)\log S_{i+1}]",
    target_kind="real values: each side's distance in [0, reg_max]",
    target_type=TargetKind.REAL,
    tasks=("detection",),
    examples=_dfl_example,
    use_when="box sides as distributions over bins (GFL)",
)
def distribution_focal_loss(
    input: Tensor,
    target: Tensor,
    *,
    reg_max: PositiveInt | None = None,
    weight: Tensor | None = None,
    avg_factor: AvgFactor = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Distribution focal loss (GFL): cross-entropy to the two bins around each distance.

    A box side's distance ``y`` in ``[0, reg_max]`` is learned as a distribution over the
    ``reg_max + 1`` integer bins: the loss is the cross-entropy to the bins ``y_i = floor(y)``
    and ``y_{i+1} = y_i + 1``, weighted by the distance to the other one, so its minimum puts
    all the mass on the two and their expectation at ``y``.

    Not QFL: each row is one box side, not one sample. A head predicting ``(N, 4 * (reg_max +
    1))`` logits for the four sides is reshaped to ``(4 N, reg_max + 1)``, its targets (the
    distances to the sides, in bin units: divided by the stride) to ``(4 N,)``, and a per-box
    weight expanded to the sides (``weight[:, None].expand(-1, 4).reshape(-1)``, as GFL does).

    .. math::
        \ell = -\left[(y_{i+1} - y)\log S_{y_i} + (y - y_i)\log S_{y_{i+1}}\right],\quad
        S = \operatorname{softmax}(x)

    Args:
        input: Bin logits ``(M, reg_max + 1)``, one row per box side.
        target: Distances ``(M,)`` in ``[0, reg_max]`` (in bins).
        reg_max: The last bin's index; ``input`` must then have ``reg_max + 1`` columns.
            ``None`` reads it from ``input`` (``input.shape[1] - 1``).
        weight: Per-row weights broadcasting to ``(M,)``.

    Returns:
        ``(M,)`` for ``"none"``, else a scalar; float32 for half precision.

    Raises:
        TypeError: Non-floating logits, distances or weights.
        ValueError: ``input`` not 2-D with at least 2 bins, a ``reg_max`` that does not match
            its bins, distances not ``(M,)`` or outside ``[0, reg_max]``, a bad ``weight``,
            ``avg_factor`` with ``reduction="sum"``, a bad option.

    Example:
        >>> logits = torch.tensor([[0.0, 2.0, 1.0, -1.0]])  # reg_max = 3
        >>> la.distribution_focal_loss(logits, torch.tensor([1.25]), reg_max=3)
        tensor(0.6902)

        A distance of 1.25 bins: cross-entropy 0.75 to bin 1 and 0.25 to bin 2.

    References:
        X. Li et al., `Generalized Focal Loss <https://arxiv.org/abs/2006.04388>`_, NeurIPS
        2020 (section 3.3, DFL), and mmdetection's ``distribution_focal_loss``
        (``mmdet/models/losses/gfocal_loss.py``, https://github.com/open-mmlab/mmdetection).
    """
    check_floating("input", input)
    if input.dim() != 2 or input.shape[1] < 2:
        raise ValueError(
            "input must have shape (M, reg_max + 1) with at least 2 bins, one row per box side "
            f"(reshape a (N, 4 * (reg_max + 1)) head output to (4 N, reg_max + 1)), got "
            f"{tuple(input.shape)}"
        )
    bins = input.shape[1]
    if reg_max is not None and reg_max + 1 != bins:
        raise ValueError(
            f"reg_max={reg_max} needs input with reg_max + 1 = {reg_max + 1} bins per row, "
            f"got {bins} (input shape {tuple(input.shape)})"
        )
    last = bins - 1
    check_floating("target", target)
    check_rows("target", target, input.shape[0], "a distance")
    check_same_device(("input", input), ("target", target))
    check_in_range("target", target, 0.0, float(last), what=f"distances (reg_max = {last})")
    check_weight(weight, input, (input.shape[0],), "one weight per box side")
    dtype = compute_dtype(input, target, weight)
    log_p = F.log_softmax(upcast(input, dtype), dim=1)
    y = upcast(target, dtype)
    # y = reg_max uses bins reg_max - 1 and reg_max (weight 0 and 1): mmdetection would index
    # bin reg_max + 1 there, so its heads clamp the targets to reg_max - 0.01.
    left = y.detach().floor().long().clamp(0, last - 1)
    right = left + 1
    loss = -(
        (right - y) * log_p.gather(1, left[:, None]).squeeze(1)
        + (y - left) * log_p.gather(1, right[:, None]).squeeze(1)
    )
    return weighted_reduce(loss, reduction, weight=weight, avg_factor=avg_factor)


@_GFL.loss(
    formula=r"-q\,[q \log p + (1 - q)\log(1 - p)]\ (q > 0);\ -\alpha p^{\gamma}\log(1 - p)",
    target_kind="probabilities in [0, 1]: IoU-aware class scores",
    target_type=TargetKind.PROBABILITIES,
    examples=_vfl_example,
    same_shape=(0, 1),
    curve="binary-logit",
    use_when="IoU-aware class scores, only negatives down-weighted",
)
def varifocal_loss(
    input: Tensor,
    target: Tensor,
    *,
    alpha: NonNegative = 0.75,
    gamma: NonNegative = 2.0,
    iou_weighted: bool = True,
    weight: Tensor | None = None,
    avg_factor: AvgFactor = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Varifocal loss (VFNet): BCE to IoU-aware scores; only the negatives are focal-weighted.

    A positive element (``q > 0``: the IoU of the box at its ground-truth class) is weighted by
    ``q`` itself (``iou_weighted``, else 1); a negative one (``q = 0``) by ``alpha * p^gamma``,
    which fades out the easy negatives without down-weighting the rare positives.

    .. math::
        \ell = \begin{cases}
            -q\,[q \log p + (1 - q)\log(1 - p)] & q > 0 \\
            -\alpha\, p^{\gamma} \log(1 - p) & q = 0
        \end{cases},\quad p = \sigma(x)

    Reduction pitfall: the loss is summed over all ``N * C`` elements, nearly all of them
    easy negatives, so ``reduction="mean"`` without ``avg_factor`` divides by ``N * C`` and
    looks "extremely small"; dividing that mean by the number of positives again (as a head
    would do for ``"sum"``) shrinks it once more. With ``avg_factor`` (VFNet passes the number
    of positives), ``"mean"`` is ``sum / avg_factor`` and nothing else.

    Args:
        input: Logits ``(N, C)`` (any shape: the loss is elementwise).
        target: IoU-aware scores of the same shape, in ``[0, 1]``: the IoU at the true class
            of a positive, 0 elsewhere.
        alpha: Weight of the negatives ``>= 0`` (not focal loss's alpha: positives get none).
        gamma: Focusing exponent of the negatives ``>= 0``.
        iou_weighted: Weight positives by ``q`` (the paper); ``False`` weights them by 1.
        weight: Element weights broadcasting to ``input`` without changing its shape (``(N,
            C)``, a class weight ``(C,)``, a sample weight ``(N, 1)``; mmdetection would
            broadcast a ``(N,)`` weight along the classes), multiplying each element's loss.

    Returns:
        The shape of ``input`` for ``"none"``, else a scalar; float32 for half precision.

    Raises:
        TypeError: Non-floating tensors.
        ValueError: Shapes that differ, a target outside ``[0, 1]``, a bad ``weight``,
            ``avg_factor`` with ``reduction="sum"``, a bad option.

    Example:
        >>> logits = torch.tensor([[1.0, -2.0, 0.0]])
        >>> target = torch.tensor([[0.9, 0.0, 0.0]])  # IoU 0.9 at the true class
        >>> la.varifocal_loss(logits, target, reduction="none")
        tensor([[0.3719, 0.0014, 0.1300]])
        >>> la.varifocal_loss(logits, target, avg_factor=1.0)  # the sum over one positive
        tensor(0.5033)

    References:
        H. Zhang, Y. Wang, F. Dayoub, N. Sunderhauf, `VarifocalNet: An IoU-aware Dense Object
        Detector <https://arxiv.org/abs/2008.13367>`_, CVPR 2021.

        mmdetection, ``mmdet/models/losses/varifocal_loss.py``,
        https://github.com/open-mmlab/mmdetection
    """
    check_floating("input", input)
    check_floating("target", target)
    check_same_shape("input", input, "target", target)
    check_probabilities("target", target)
    check_weight(weight, input, tuple(input.shape), "an element weight")
    dtype = compute_dtype(input, target, weight)
    x, q = upcast(input, dtype), upcast(target, dtype)
    positive = q > 0
    scale = q if iou_weighted else torch.ones_like(q)
    focal_weight = torch.where(positive, scale, alpha * _sigmoid_power(x, gamma))
    loss = F.binary_cross_entropy_with_logits(x, q, reduction="none") * focal_weight
    return weighted_reduce(loss, reduction, weight=weight, avg_factor=avg_factor)


# --------------------------------------------------------------------------- modules


class QualityFocalLoss(WeightedModule, functional=quality_focal_loss):
    """Module form of :func:`lossatlas.quality_focal_loss`; forward takes a weight too."""

    def forward(  # type: ignore[override]
        self,
        input: Tensor,
        target: Tensor,
        score: Tensor,
        weight: Tensor | None = None,
        avg_factor: float | None = None,
    ) -> Tensor:
        return self.call(input, target, score, weight=weight, avg_factor=avg_factor)


class DistributionFocalLoss(WeightedModule, functional=distribution_focal_loss):
    """Module form of :func:`lossatlas.distribution_focal_loss`; forward takes a weight too."""


class VarifocalLoss(WeightedModule, functional=varifocal_loss):
    """Module form of :func:`lossatlas.varifocal_loss`; forward takes a weight too."""
