r"""clDice: the topology-preserving loss of tubular structures, from soft skeletons (Shit et al.).

The soft skeleton of a probability map is built from min / max pooling alone: soft erosion is
``-maxpool(-x)`` over the 3-neighbourhood along each axis, soft opening an erosion followed by a
3x3 (3x3x3) dilation, and each of ``iterations + 1`` erosions adds what its opening removes.
clDice scores how much of the predicted skeleton lies in the true mask (topology precision) and
how much of the true skeleton the prediction covers (topology sensitivity). The definitions are
the reference code's as MONAI's ``SoftclDiceLoss`` / ``SoftDiceclDiceLoss`` adapt it.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas._module import LossModule
from lossatlas._options import NonNegative, NonNegativeInt, Positive, UnitInterval
from lossatlas._reduction import Reduction, reduce_loss
from lossatlas._validation import check_number, check_tensor
from lossatlas.compose import LossParts, weighted_sum
from lossatlas.segmentation._overlap import BAD_OPTION, SOFTMAX_OVERLAP
from lossatlas.segmentation.boundary import DENSE_ARGS, DENSE_VALUE_ERRORS, Activation, dense_inputs
from lossatlas.segmentation.compound import CompoundReduction, dice_term
from lossatlas.segmentation.dice import binary_dice_loss, dice_loss

__all__ = ["dice_cldice_loss", "soft_cldice_loss", "soft_skeleton"]


def _soft_erode(x: Tensor) -> Tensor:
    """Minimum over the 3-neighbourhood along each spatial axis separately (a cross)."""
    spatial = x.dim() - 2
    pool = F.max_pool2d if spatial == 2 else F.max_pool3d
    eroded = None
    for axis in range(spatial):
        kernel = tuple(3 if a == axis else 1 for a in range(spatial))
        padding = tuple(1 if a == axis else 0 for a in range(spatial))
        along = -pool(-x, kernel, 1, padding)
        eroded = along if eroded is None else torch.minimum(eroded, along)
    assert eroded is not None
    return eroded


def _soft_dilate(x: Tensor) -> Tensor:
    pool = F.max_pool2d if x.dim() == 4 else F.max_pool3d
    return pool(x, 3, 1, 1)


def soft_skeleton(x: Tensor, iterations: int = 3) -> Tensor:
    r"""Soft skeleton of probability maps by iterated min / max pooling (clDice).

    With soft erosion :math:`E` (``-maxpool(-x)``), dilation :math:`D` (3x3 or 3x3x3 max pooling)
    and opening :math:`O = D \circ E`: start from ``S = relu(x - O(x))`` and, for each of
    ``iterations`` erosions ``x <- E(x)``, add ``relu(d - S d)`` with ``d = relu(x - O(x))``.

    .. math::
        S_{k+1} = S_k + \mathrm{relu}(\delta_k - S_k \delta_k),\quad
        \delta_k = \mathrm{relu}(E^k(x) - O(E^k(x)))

    Args:
        x: Probabilities ``(N, C, H, W)`` or ``(N, C, D, H, W)`` in [0, 1].
        iterations: Erosions after the first opening, ``>= 0``.

    Returns:
        The skeleton, ``x``'s shape, differentiable in ``x``.

    Raises:
        ValueError: ``x`` neither 4-D nor 5-D; ``iterations < 0``.
        TypeError: ``iterations`` not an int.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> bar = torch.zeros(1, 1, 5, 5)
        >>> bar[..., 1:4, :] = 1.0  # a horizontal bar 3 pixels thick
        >>> la.soft_skeleton(bar, iterations=1)[0, 0, 2]
        tensor([1., 1., 1., 1., 1.])

    References:
        S. Shit, J. C. Paetzold, A. Sekuboyina, I. Ezhov, A. Unger, A. Zhylka, J. P. W. Pluim,
        U. Bauer, B. H. Menze, "clDice -- a Novel Topology-Preserving Loss Function for
        Tubular Structure Segmentation", CVPR 2021, https://arxiv.org/abs/2003.07311
    """
    check_tensor("x", x)
    check_number("iterations", iterations, low=0, integer=True)
    if x.dim() not in (4, 5):
        raise ValueError(
            "soft skeletons are 2-D (N, C, H, W) or 3-D (N, C, D, H, W), got shape "
            f"{tuple(x.shape)}"
        )
    skeleton = F.relu(x - _soft_dilate(_soft_erode(x)))
    for _ in range(iterations):
        x = _soft_erode(x)
        delta = F.relu(x - _soft_dilate(_soft_erode(x)))
        skeleton = skeleton + F.relu(delta - skeleton * delta)
    return skeleton


_CLDICE = SOFTMAX_OVERLAP.derive(
    tasks=("segmentation",),
    properties={"non_negative", "bounded"},
    perfect=None,
    example=None,
    args={
        **DENSE_ARGS,
        "input": "Logits ``(N, C, H, W)`` or ``(N, C, D, H, W)`` (``C >= 2`` for the softmax).",
        "iterations": "Erosions of the soft skeleton, ``>= 0`` (MONAI's ``iter_``).",
        "include_background": "``False`` leaves channel 0 out of both skeletons (and of the Dice "
        "term of :func:`dice_cldice_loss`).",
        "smooth": "Added to the harmonic mean's denominator, ``> 0``.",
    },
    raises={"ValueError": f"{DENSE_VALUE_ERRORS}; input neither 2-D nor 3-D; {BAD_OPTION}."},
)


def _cldice(
    probs: Tensor,
    dense: Tensor,
    *,
    iterations: int,
    smooth_nr: float,
    smooth_dr: float,
    smooth: float,
    batch: bool,
) -> Tensor:
    """``(N,)`` (or ``()`` with ``batch``) clDice over the channels and positions of each image."""
    if probs.dim() not in (4, 5):
        raise ValueError(
            "clDice needs 2-D (N, C, H, W) or 3-D (N, C, D, H, W) input, got shape "
            f"{tuple(probs.shape)}"
        )
    skel_pred = soft_skeleton(probs, iterations)
    skel_true = soft_skeleton(dense, iterations)
    dims = tuple(range(0 if batch else 1, probs.dim()))
    precision = ((skel_pred * dense).sum(dims) + smooth_nr) / (skel_pred.sum(dims) + smooth_dr)
    sensitivity = ((skel_true * probs).sum(dims) + smooth_nr) / (skel_true.sum(dims) + smooth_dr)
    return 1.0 - 2.0 * precision * sensitivity / (precision + sensitivity + smooth)


@_CLDICE.loss(
    formula=r"1 - \frac{2\, T_{prec} T_{sens}}{T_{prec} + T_{sens} + \epsilon}",
    use_when="thin tubular structures (vessels, roads): keep connectivity",
    peers={"MONAI": "SoftclDiceLoss(softmax=True / sigmoid=True, iter_=iterations): same values"},
)
def soft_cldice_loss(
    input: Tensor,
    target: Tensor,
    *,
    iterations: NonNegativeInt = 3,
    activation: Activation = "softmax",
    include_background: bool = True,
    smooth_nr: NonNegative = 1.0,
    smooth_dr: Positive = 1.0,
    smooth: Positive = 1e-4,
    batch: bool = False,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Soft clDice loss: harmonic mean of topology precision and sensitivity from soft skeletons.

    ``p = softmax(input)`` (or ``sigmoid``; the loss takes logits and applies the activation
    first, where MONAI's ``SoftclDiceLoss`` without ``softmax=``/``sigmoid=`` takes
    probabilities) and the one-hot target ``g`` are skeletonised (:func:`soft_skeleton`); the
    topology precision is the part of the predicted skeleton inside ``g``, the sensitivity the
    part of the true skeleton covered by ``p``, each summed over the channels and positions of
    one image as in MONAI (over the whole batch with ``batch=True``, as in the reference code).

    .. math::
        T_{prec} = \frac{\sum S(p)\, g + \epsilon_{nr}}{\sum S(p) + \epsilon_{dr}},\quad
        T_{sens} = \frac{\sum S(g)\, p + \epsilon_{nr}}{\sum S(g) + \epsilon_{dr}},\quad
        \ell_n = 1 - \frac{2\, T_{prec} T_{sens}}{T_{prec} + T_{sens} + \epsilon}

    Args:
        smooth_nr: Added to both ratios' numerators, ``>= 0``.
        smooth_dr: Added to both ratios' denominators, ``> 0``.
        batch: One value over the whole batch (the reference code) instead of one per image.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"`` over the ``(N,)`` values.

    Returns:
        ``(N,)`` for ``"none"`` (``()`` with ``batch``), else a scalar.

    Example:
        >>> labels = torch.zeros(1, 5, 5, dtype=torch.long)
        >>> labels[0, 2, :] = 1  # a thin line
        >>> logits = torch.nn.functional.one_hot(labels, 2).movedim(-1, 1).float() * 8 - 4
        >>> la.soft_cldice_loss(logits, labels, include_background=False)
        tensor(0.0002)

    References:
        S. Shit, J. C. Paetzold, A. Sekuboyina, I. Ezhov, A. Unger, A. Zhylka, J. P. W. Pluim,
        U. Bauer, B. H. Menze, "clDice -- a Novel Topology-Preserving Loss Function for
        Tubular Structure Segmentation", CVPR 2021, https://arxiv.org/abs/2003.07311

        MONAI SoftclDiceLoss, https://docs.monai.io/en/stable/losses.html
    """
    probs, dense, _ = dense_inputs(input, target, activation, include_background)
    loss = _cldice(
        probs,
        dense,
        iterations=iterations,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        smooth=smooth,
        batch=batch,
    )
    return reduce_loss(loss, reduction)


@_CLDICE.loss(
    properties={"non_negative"},
    formula=r"(1 - \alpha)\, \mathcal{L}_{Dice} + \alpha\, \mathcal{L}_{clDice}",
    use_when="tubular structures: Dice's overlap plus clDice's topology",
    peers={"MONAI": "SoftDiceclDiceLoss(softmax=True / sigmoid=True): same values"},
)
def dice_cldice_loss(
    input: Tensor,
    target: Tensor,
    *,
    alpha: UnitInterval = 0.5,
    iterations: NonNegativeInt = 3,
    activation: Activation = "softmax",
    include_background: bool = True,
    smooth_nr: NonNegative = 1.0,
    smooth_dr: Positive = 1.0,
    smooth: Positive = 1e-4,
    reduction: CompoundReduction = "mean",
    return_parts: bool = False,
) -> Tensor | LossParts:
    r"""Soft Dice plus soft clDice, ``(1 - alpha) * dice + alpha * cldice``, with both parts.

    The Dice term is :func:`lossatlas.dice_loss` (softmax) or :func:`lossatlas.binary_dice_loss`
    (sigmoid) with the same ``smooth_nr`` / ``smooth_dr`` and ``include_background``; the clDice
    term :func:`soft_cldice_loss`. Equals MONAI's ``SoftDiceclDiceLoss`` (whose Dice smoothing
    defaults to clDice's 1, not ``DiceLoss``'s 1e-5).

    .. math::
        \mathcal{L} = (1 - \alpha)\, \mathcal{L}_{Dice} + \alpha\, \mathcal{L}_{clDice}

    Args:
        alpha: Weight of the clDice term in [0, 1] (the paper's and MONAI's 0.5).
        smooth_nr: Numerator smoothing of both terms, ``>= 0``.
        smooth_dr: Denominator smoothing of both terms, ``> 0``.
        reduction: ``"mean"`` or ``"sum"`` of each term (no ``"none"``: the Dice term is per
            image and class, clDice per image).
        return_parts: Return :class:`lossatlas.LossParts` ``(total, {"dice", "cldice"})``, the
            parts unweighted.

    Returns:
        The total, a scalar; or :class:`lossatlas.LossParts` with ``return_parts=True``.

    Example:
        >>> labels = torch.zeros(1, 5, 5, dtype=torch.long)
        >>> labels[0, 2, :] = 1
        >>> logits = torch.nn.functional.one_hot(labels, 2).movedim(-1, 1).float() * 8 - 4
        >>> out = la.dice_cldice_loss(logits, labels, return_parts=True)
        >>> {name: round(float(v), 4) for name, v in out.parts.items()}
        {'dice': 0.0005, 'cldice': 0.0002}

    References:
        S. Shit, J. C. Paetzold, A. Sekuboyina, I. Ezhov, A. Unger, A. Zhylka, J. P. W. Pluim,
        U. Bauer, B. H. Menze, "clDice -- a Novel Topology-Preserving Loss Function for
        Tubular Structure Segmentation", CVPR 2021, https://arxiv.org/abs/2003.07311

        MONAI SoftDiceclDiceLoss, https://docs.monai.io/en/stable/losses.html
    """
    region = dice_loss if activation == "softmax" else binary_dice_loss
    dice = dice_term(region, input, target, locals())
    cldice = soft_cldice_loss(
        input,
        target,
        iterations=iterations,
        activation=activation,
        include_background=include_background,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        smooth=smooth,
        reduction=reduction,
    )
    return weighted_sum(
        {"dice": dice, "cldice": cldice},
        {"dice": 1.0 - alpha, "cldice": alpha},
        return_parts=return_parts,
    )


class SoftClDiceLoss(LossModule, functional=soft_cldice_loss):
    """Module form of :func:`lossatlas.soft_cldice_loss`."""


class DiceClDiceLoss(LossModule, functional=dice_cldice_loss):
    """Module form of :func:`lossatlas.dice_cldice_loss`."""
