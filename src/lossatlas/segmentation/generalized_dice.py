"""Generalised Dice (Sudre et al.) and generalised Wasserstein Dice (Fidon et al.) losses.

Both pool the classes into one ratio per sample: the class-weighted intersections and sizes are
summed over the classes *before* the division, so the weights do not cancel (the bug of early
MONAI releases, MONAI issues #369 and #6765). The generalised Dice sums come from
:mod:`lossatlas.segmentation._overlap` (softmax or sigmoid, the fused gradient path); the
Wasserstein form scores each position by the distance, under a class distance matrix, between
the prediction and the true class.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, ExampleFactory, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import NonNegative, Positive
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_floating,
    check_same_device,
    check_shape,
    check_tensor,
    index_target,
    value_checks_enabled,
)
from lossatlas.segmentation._overlap import (
    SIGMOID_OVERLAP,
    SOFTMAX_OVERLAP,
    Activation,
    check_softmax_inputs,
    run_overlap_loss,
)

__all__ = [
    "binary_generalized_dice_loss",
    "generalized_dice_loss",
    "generalized_wasserstein_dice_loss",
]

WeightType = Literal["square", "simple", "uniform"]

_GDL = (
    r"1 - \frac{2 \sum_c w_c I_c + \epsilon_{nr}}{\sum_c w_c (P_c + G_c) + \epsilon_{dr}},"
    r"\quad w_c = G_c^{-2}"
)

#: What the generalised Dice losses (both forms, and the Wasserstein one) share: one value per
#: sample, the classes pooled.
_GDL_DOCS = {
    "args": {
        "w_type": '``"square"`` (``1 / G^2``, the paper\'s), ``"simple"`` (``1 / G``) or '
        '``"uniform"`` (1).',
        "batch": "Sum the intersections and sizes over the batch first: one ratio (and one set "
        "of weights, from the batch's volumes) for the whole batch.",
        "reduction": '``"none"`` | ``"mean"`` | ``"sum"`` over the ``N`` samples.',
    },
    "example": None,
    "returns": '``(N,)`` for ``"none"`` (a 0-dim tensor with ``batch=True``), else a scalar. '
    "Float32 for half-precision input.",
}
_SOFTMAX_GDL = SOFTMAX_OVERLAP.derive(**_GDL_DOCS)
_SIGMOID_GDL = SIGMOID_OVERLAP.derive(**_GDL_DOCS)


def class_volume_weights(truth: Tensor, w_type: str) -> Tensor:
    """Sudre et al.'s class weights from the ground-truth volumes ``G`` (classes on the last dim).

    ``"square"``: ``1 / G^2``; ``"simple"``: ``1 / G``; ``"uniform"``: 1. A class absent from
    the row (``G = 0``, an infinite weight) takes the largest finite weight of the row, as MONAI
    does (issue #4656); a row where no class is present takes weight 1 for every class (MONAI
    gives them all 0, which makes the row's loss ``1 - s_nr / s_dr`` whatever the prediction).
    Finite with a finite gradient everywhere (the reciprocal never sees a 0).
    """
    if w_type == "uniform":
        return torch.ones_like(truth)
    present = truth > 0
    safe = torch.where(present, truth, torch.ones_like(truth))
    weight = safe.reciprocal()
    if w_type == "square":
        weight = weight * weight
    finite = torch.where(present, weight, torch.zeros_like(weight))
    largest = finite.amax(dim=-1, keepdim=True)
    fill = torch.where(largest > 0, largest, torch.ones_like(largest))
    return torch.where(present, weight, fill)


def _generalized_dice(
    *,
    input: Tensor,
    target: Tensor,
    activation: Activation,
    w_type: str,
    smooth_nr: float,
    smooth_dr: float,
    **options: Any,
) -> Tensor:
    """Either form: the overlap sums scored with the classes pooled first (options checked)."""

    def score(inter: Tensor, pred: Tensor, truth: Tensor) -> Tensor:
        weight = class_volume_weights(truth, w_type)
        numerator = 2.0 * (weight * inter).sum(dim=-1) + smooth_nr
        denominator = (weight * (pred + truth)).sum(dim=-1) + smooth_dr
        return 1.0 - numerator / denominator

    return run_overlap_loss(input, target, score, activation=activation, weight=None, **options)


@_SOFTMAX_GDL.loss(
    formula=_GDL,
    use_when="multi-class segmentation, highly unbalanced classes",
    peers={
        "MONAI": "GeneralizedDiceLoss(softmax=True): same values; a row with no class present "
        "scores 1 - s/(sum P + s) here, 1 - s_nr/s_dr there; 'none' has no singleton dims"
    },
)
def generalized_dice_loss(
    input: Tensor,
    target: Tensor,
    *,
    w_type: WeightType = "square",
    include_background: bool = True,
    smooth_nr: NonNegative = 1e-5,
    smooth_dr: Positive = 1e-5,
    batch: bool = False,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Generalised Dice loss of softmax probabilities: one ratio per sample, classes weighted.

    Sudre et al.'s loss for highly unbalanced segmentation: each class ``c`` is weighted by the
    inverse of its squared ground-truth volume ``G_c`` (``w_type="square"``; ``"simple"``:
    ``1 / G_c``; ``"uniform"``: 1), and the weighted intersections and sizes are summed over the
    classes before the division, so a small class counts as much as a large one.

    A class absent from the ground truth (``G_c = 0``) would get an infinite weight: it takes
    the largest finite weight of the sample instead (as MONAI, issue #4656), so its false
    positives cost as much as those of the rarest present class, and the value and gradient
    stay finite. A sample with no class present (possible with ``include_background=False``)
    gives every class weight 1: its loss is ``1 - s_nr / (sum_c P_c + s_dr)``, close to 1 for
    a confident false positive (the empty-mask policy of :func:`dice_loss`; MONAI gives all
    weights 0 there, a loss of ``1 - s_nr / s_dr`` with no gradient).

    With ``w_type="uniform"`` it is :func:`dice_loss` with ``average="micro"``: the Dice of
    the flattened one-hot tensors, i.e. of the foreground class of the two-class problem
    ``(1 - p, p)`` over every (class, position) pair (both tested).

    .. math::
        \ell_n = 1 - \frac{2 \sum_c w_{n,c} I_{n,c} + \epsilon_{nr}}
            {\sum_c w_{n,c} (P_{n,c} + G_{n,c}) + \epsilon_{dr}},\qquad
        w_{n,c} = G_{n,c}^{-2},\quad I = \sum_s p\, g,\; P = \sum_s p,\; G = \sum_s g

    Args:
        include_background: ``False`` leaves class 0 out of the sums and the weights.

    Example:
        >>> logits = torch.tensor([[[[2.0, 1.0, 0.0, 3.0]], [[0.0, 2.0, 1.0, 0.0]],
        ...                         [[-1.0, 0.0, 2.5, 0.0]]]])  # (N=1, C=3, 1, 4)
        >>> target = torch.tensor([[[0, 1, 2, 0]]])  # classes 1 and 2 weigh 4x class 0
        >>> la.generalized_dice_loss(logits, target)
        tensor(0.2452)

    References:
        C. H. Sudre, W. Li, T. Vercauteren, S. Ourselin, M. J. Cardoso, "Generalised Dice
        overlap as a deep learning loss function for highly unbalanced segmentations", DLMIA
        2017, https://arxiv.org/abs/1707.03237

        MONAI GeneralizedDiceLoss,
        https://docs.monai.io/en/stable/losses.html#generalizeddiceloss
    """
    return _generalized_dice(activation="softmax", **locals())


@_SIGMOID_GDL.loss(
    formula=_GDL,
    use_when="multi-label masks of very different sizes",
    peers={"MONAI": "GeneralizedDiceLoss(sigmoid=True): as generalized_dice_loss"},
)
def binary_generalized_dice_loss(
    input: Tensor,
    target: Tensor,
    *,
    w_type: WeightType = "square",
    include_background: bool = True,
    smooth_nr: NonNegative = 1e-5,
    smooth_dr: Positive = 1e-5,
    batch: bool = False,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Generalised Dice loss of sigmoid probabilities, the channels pooled with volume weights.

    The sigmoid form of :func:`generalized_dice_loss` (= MONAI ``GeneralizedDiceLoss(
    sigmoid=True)``): each channel is a binary mask, weighted by its inverse (squared) volume,
    and the channels are summed before the ratio. With ``w_type="uniform"`` it is
    :func:`binary_dice_loss` of the channels laid end to end (tested). Absent channels and
    empty samples as :func:`generalized_dice_loss`.

    .. math::
        \ell_n = 1 - \frac{2 \sum_c w_{n,c} \sum_s \sigma(x_{n,c,s}) y_{n,c,s} + \epsilon_{nr}}
            {\sum_c w_{n,c} \sum_s (\sigma(x_{n,c,s}) + y_{n,c,s}) + \epsilon_{dr}}

    Example:
        >>> logits = torch.tensor([[[[3.0, -2.0, 1.0, -1.0]], [[-3.0, -2.0, 0.5, -4.0]]]])
        >>> masks = torch.tensor([[[[1.0, 0.0, 1.0, 0.0]], [[0.0, 0.0, 1.0, 0.0]]]])
        >>> la.binary_generalized_dice_loss(logits, masks)  # (N=1, C=2, 1, 4)
        tensor(0.2613)

    References:
        C. H. Sudre et al., "Generalised Dice overlap as a deep learning loss function for
        highly unbalanced segmentations", DLMIA 2017, https://arxiv.org/abs/1707.03237
    """
    return _generalized_dice(activation="sigmoid", **locals())


# --------------------------------------------------------------------------- Wasserstein

#: The class distance matrix of the examples: MONAI's docstring example (background at
#: distance 1 from both foreground classes, which are 0.5 apart).
_EXAMPLE_DISTANCES = ((0.0, 1.0, 1.0), (1.0, 0.0, 0.5), (1.0, 0.5, 0.0))


def _with_distances(factory: ExampleFactory) -> ExampleFactory:
    def example(
        generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
    ) -> Example:
        made = factory(generator, batch=batch, dtype=dtype, scale=scale)
        distances = torch.tensor(_EXAMPLE_DISTANCES, dtype=dtype)
        return Example(made.args, {**made.kwargs, "dist_matrix": distances})

    return example


_WASSERSTEIN = _SOFTMAX_GDL.derive(
    target_kind="class indices",
    target_type=TargetKind.CLASS_INDICES,
    examples=_with_distances(ex.segmentation_logits),
    perfect=_with_distances(ex.segmentation_perfect),
)


def check_dist_matrix(dist_matrix: Tensor, num_classes: int) -> None:
    """Raise unless ``dist_matrix`` is a ``(C, C)`` floating matrix of class distances.

    Non-negative and finite, zero on the diagonal, symmetric, with a positive entry; the values
    are value checks (skipped when value checks are off or while ``torch.compile`` traces).
    """
    check_shape(
        "dist_matrix",
        dist_matrix,
        (num_classes, num_classes),
        what=f"(one distance per pair of the input's C = {num_classes} classes)",
    )
    if not value_checks_enabled():
        return
    bad = ~((dist_matrix >= 0) & torch.isfinite(dist_matrix))
    if bool(bad.any()):
        i, j = (int(k) for k in bad.nonzero()[0])
        raise ValueError(
            f"dist_matrix must hold finite distances >= 0, got {float(dist_matrix[i, j])!r} at "
            f"({i}, {j})"
        )
    diagonal = dist_matrix.diagonal()
    if bool((diagonal != 0).any()):
        i = int((diagonal != 0).nonzero()[0, 0])
        raise ValueError(
            "dist_matrix must have a zero diagonal (each class is at distance 0 from itself), "
            f"got {float(diagonal[i])!r} at ({i}, {i})"
        )
    asymmetric = dist_matrix != dist_matrix.T
    if bool(asymmetric.any()):
        i, j = (int(k) for k in asymmetric.nonzero()[0])
        raise ValueError(
            f"dist_matrix must be symmetric, got {float(dist_matrix[i, j])!r} at ({i}, {j}) but "
            f"{float(dist_matrix[j, i])!r} at ({j}, {i})"
        )
    if not bool((dist_matrix > 0).any()):
        raise ValueError(
            "dist_matrix must have a positive distance (it is divided by its largest entry), "
            "got all zeros"
        )


@_WASSERSTEIN.loss(
    formula=r"1 - \frac{2\, TP + \epsilon_{nr}}{2\, TP + \sum_s W(p_s, g_s) + \epsilon_{dr}},"
    r"\quad W(p_s, g_s) = \sum_c M_{g_s, c}\, p_{s,c}",
    use_when="multi-class segmentation where some confusions are worse",
    peers={
        "MONAI": "GeneralizedWassersteinDiceLoss: same values (both weighting modes); "
        "class indices (N, d1, ...) only"
    },
)
def generalized_wasserstein_dice_loss(
    input: Tensor,
    target: Tensor,
    *,
    dist_matrix: Tensor,
    weighting_mode: Literal["default", "GDL"] = "default",
    smooth_nr: NonNegative = 1e-5,
    smooth_dr: Positive = 1e-5,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Generalised Wasserstein Dice loss: a Dice loss whose errors are class distances.

    Fidon et al.'s loss for multi-class segmentation where some confusions are worse than
    others (tumour sub-regions: confusing two of them is milder than calling tumour
    background). At each position ``s`` with true class ``g_s`` the error is the Wasserstein
    distance between the softmax prediction ``p_s`` and the label under the ground distance
    ``M``, ``W_s = sum_c M[g_s, c] p_{s,c}`` (closed form for a one-hot label). ``M`` is
    divided by its largest entry (as MONAI and the authors' code do), so ``W_s`` is in
    ``[0, 1]``. The generalised true positives weight ``1 - W_s`` by the true class's
    ``alpha``:

    * ``weighting_mode="default"`` (the paper): ``alpha = 0`` for the background (class 0),
      1 for the others; the denominator is ``2 TP + sum_s W_s``;
    * ``"GDL"`` (Tilborghs et al. 2020, appendix): ``alpha_c = 1 / (V_c + 1)`` with ``V_c``
      the sample's volume of class ``c``, also in the errors: the denominator is
      ``sum_s alpha_{g_s} (2 - W_s)``.

    With ``M = 1 - I`` (every confusion costs 1), ``W_s = 1 - p_{s, g_s}`` and ``TP`` is the
    soft intersection of the foreground classes; for two classes the default mode is then
    exactly :func:`dice_loss` of class 1, ``include_background=False`` (derived from the
    definitions; tested, as is the general-``C`` formula).

    .. math::
        \ell_n = 1 - \frac{2\, TP_n + \epsilon_{nr}}{D_n + \epsilon_{dr}},\quad
        TP_n = \sum_s \alpha_{g_s} (1 - W_s),\quad
        W_s = \sum_c \frac{M_{g_s, c}}{\max M}\, p_{s,c},\quad
        D_n = 2\, TP_n + \sum_s W_s \;\text{(default) or}\; \sum_s \alpha_{g_s} (2 - W_s)

    Args:
        target: Class indices ``(N, d1, ...)`` (``torch.long``) in ``[0, C)``. Soft labels are
            not accepted (their Wasserstein distance has no closed form).
        dist_matrix: ``(C, C)`` floating class distances: finite, ``>= 0``, zero diagonal,
            symmetric, not all zero. A buffer of the module twin.
        weighting_mode: ``"default"`` (the paper's) or ``"GDL"`` (volume weights).

    Returns:
        ``(N,)`` for ``"none"``, else a scalar; in the promoted dtype of ``input`` and
        ``dist_matrix`` (float32 for half precision).

    Raises:
        TypeError: Non-floating input or ``dist_matrix``; a float target.
        ValueError: ``dist_matrix`` not ``(C, C)``, negative, not finite, with a non-zero
            diagonal, asymmetric or all zero (the entry named); a class index out of range;
            tensors on two devices; a bad option.

    Example:
        >>> M = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.5], [1.0, 0.5, 0.0]])
        >>> logits = torch.tensor([[[[4.0, 0.0]], [[0.0, 1.0]], [[0.0, 2.0]]]])  # (1, 3, 1, 2)
        >>> target = torch.tensor([[[0, 1]]])
        >>> la.generalized_wasserstein_dice_loss(logits, target, dist_matrix=M)
        tensor(0.2840)

    References:
        L. Fidon, W. Li, L. C. Garcia-Peraza-Herrera, J. Ekanayake, N. Kitchen, S. Ourselin,
        T. Vercauteren, "Generalised Wasserstein Dice Score for Imbalanced Multi-class
        Segmentation using Holistic Convolutional Networks", BrainLes 2017,
        https://arxiv.org/abs/1707.00478

        S. Tilborghs et al., "Comparative study of deep learning methods for the automatic
        segmentation of lung, lesion and lesion type in CT scans of COVID-19 patients", 2020,
        https://arxiv.org/abs/2007.15546

        MONAI GeneralizedWassersteinDiceLoss,
        https://docs.monai.io/en/stable/losses.html#generalizedwassersteindiceloss
    """
    target = index_target(target)
    check_tensor("target", target)
    if target.is_floating_point():
        raise TypeError(
            f"target must hold class indices (torch.long) of shape (N, d1, ...), got a "
            f"{target.dtype} tensor; the Wasserstein distance to a soft label has no closed form"
        )
    check_softmax_inputs(input, target, weight=None, ignore_index=None)
    check_floating("dist_matrix", dist_matrix)
    check_same_device(("input", input), ("dist_matrix", dist_matrix))
    num_classes = input.shape[1]
    check_dist_matrix(dist_matrix, num_classes)
    dtype = compute_dtype(input, dist_matrix)
    logits = upcast(input, dtype).flatten(2)
    labels = target.flatten(1)
    distances = upcast(dist_matrix, dtype)
    with torch.autocast(input.device.type, enabled=False):
        distances = distances / distances.amax()
        probs = torch.softmax(logits, dim=1)
        wass = torch.einsum("nsc,ncs->ns", distances[labels], probs)
        if weighting_mode == "GDL":
            volumes = probs.new_zeros(probs.shape[:2]).scatter_add(1, labels, torch.ones_like(wass))
            alpha = (volumes + 1.0).reciprocal().gather(1, labels)
            true_pos = (alpha * (1.0 - wass)).sum(dim=-1)
            denominator = (alpha * (2.0 - wass)).sum(dim=-1)
        else:
            alpha = (labels != 0).to(dtype)
            true_pos = (alpha * (1.0 - wass)).sum(dim=-1)
            denominator = 2.0 * true_pos + wass.sum(dim=-1)
        loss = 1.0 - (2.0 * true_pos + smooth_nr) / (denominator + smooth_dr)
    return reduce_loss(loss, reduction)


# --------------------------------------------------------------------------- modules


class GeneralizedDiceLoss(LossModule, functional=generalized_dice_loss):
    """Module form of :func:`lossatlas.generalized_dice_loss`."""


class BinaryGeneralizedDiceLoss(LossModule, functional=binary_generalized_dice_loss):
    """Module form of :func:`lossatlas.binary_generalized_dice_loss`."""


class GeneralizedWassersteinDiceLoss(LossModule, functional=generalized_wasserstein_dice_loss):
    """Module of :func:`lossatlas.generalized_wasserstein_dice_loss`; ``dist_matrix`` a buffer."""
