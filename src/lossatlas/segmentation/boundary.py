r"""Distance-map segmentation losses: the boundary loss and the Hausdorff distance-transform loss.

Both weight each pixel's probability by a distance map computed from a mask without gradient:
the boundary loss (Kervadec et al.) by the target's signed distance, the Hausdorff
distance-transform loss (Karimi and Salcudean) by the distances of both the thresholded
prediction and the target to their boundaries.

The distances are exact Euclidean distance transforms computed in torch
(:func:`signed_distance_map`): the squared distance is separable, so one pass per spatial axis
takes, for each position ``p`` of a line, ``min_q f(q) + (p - q)^2`` over the whole line (the
lower envelope of parabolas of Felzenszwalb and Huttenlocher, here by brute force over each
line, one shift at a time, vectorised over all lines). The first axis, on the binary mask, is a
running maximum / minimum of the nearest zero's index, ``O(S)`` for ``S`` positions; each
further axis costs ``O(S * D)`` for the largest distance ``D`` in eager mode (``O(S * n_i)``
under ``torch.compile``, which captures it). The values equal
``scipy.ndimage.distance_transform_edt`` (tested), on any device.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._module import LossModule
from lossatlas._options import Positive
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, safe_divide, upcast
from lossatlas._validation import (
    binary_target,
    check_number,
    check_tensor,
    index_target,
)
from lossatlas.segmentation._overlap import (
    BAD_OPTION,
    SOFTMAX_OVERLAP,
    check_sigmoid_inputs,
    check_softmax_inputs,
    class_one_hot,
)

__all__ = ["boundary_loss", "hausdorff_dt_loss", "signed_distance_map"]

#: ``"softmax"`` over the class dim 1 (class-index or one-hot targets) or ``"sigmoid"`` per
#: channel (same-shape binary masks).
Activation = Literal["softmax", "sigmoid"]

#: How often (in shifts) the eager parabola pass checks whether every distance is final.
_STOP_EVERY = 4


def _first_pass(zero: Tensor, axis: int, step: float, dtype: torch.dtype) -> Tensor:
    """Squared distance along ``axis`` to the nearest ``True`` of ``zero`` on its line (O(S)).

    The nearest ``True`` at or before each position is a running maximum of its index, the
    nearest at or after a running minimum; a line without one gets ``inf``.
    """
    zero = zero.movedim(axis, -1)
    n = zero.shape[-1]
    index = torch.arange(n, device=zero.device)
    far = torch.full_like(index, 2 * n)
    before = torch.where(zero, index, -far).cummax(dim=-1).values
    after = torch.where(zero, index, far).flip(-1).cummin(dim=-1).values.flip(-1)
    steps = torch.minimum(index - before, after - index)
    distance = (steps.to(dtype) * step).square()
    return torch.where(steps > n, math.inf, distance).movedim(-1, axis)


def _parabola_pass(f: Tensor, axis: int, step: float) -> Tensor:
    """``out[p] = min_q f[q] + (step (p - q))^2`` along ``axis`` (a separable EDT pass).

    One shift ``k = |p - q|`` at a time, both directions at once. In eager mode the loop stops
    once ``(k step)^2`` exceeds every distance that can still change (``f >= 0``, so no
    farther ``q`` can win): the cost is ``S`` times the largest distance, not ``S n``. Under
    ``torch.compile`` every shift runs (a static graph).
    """
    f = f.movedim(axis, -1)
    n = f.shape[-1]
    padded = torch.nn.functional.pad(f, (n, n), value=math.inf)
    out = f
    eager = not torch.compiler.is_compiling()
    reachable = torch.isfinite(f).any(dim=-1, keepdim=True) if eager else None
    for k in range(1, n):
        cost = (k * step) ** 2
        if reachable is not None and k % _STOP_EVERY == 0:
            bound = torch.where(reachable, out, torch.zeros_like(out)).max()
            if bool(bound <= cost):
                break
        nearer = torch.minimum(padded[..., n - k : 2 * n - k], padded[..., n + k : 2 * n + k])
        out = torch.minimum(out, nearer + cost)
    return out.movedim(-1, axis)


def _squared_edt(
    zero: Tensor, dims: Sequence[int], spacing: Sequence[float], dtype: torch.dtype
) -> Tensor:
    """Squared distance of each position to the nearest ``True`` of ``zero`` (``inf`` if none)."""
    f = _first_pass(zero, dims[0], spacing[0], dtype)
    for axis, step in zip(dims[1:], spacing[1:], strict=True):
        f = _parabola_pass(f, axis, step)
    return f


def opposite_distance(
    inside: Tensor, *, spacing: Sequence[float] | None = None, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """Distance of each position to the nearest position of the other label, per ``(N, C)``.

    ``inside`` is a bool ``(N, C, d1, ...)`` mask. Returns ``(distance, has_boundary)``: the
    Euclidean distance (``>= 1`` pixel spacing wherever the mask has both labels) and a bool
    ``(N, C, 1, ...)`` that is ``False`` for an empty or full mask, whose distances are
    infinite (callers replace them).
    """
    dims = tuple(range(2, inside.dim()))
    steps = (1.0,) * len(dims) if spacing is None else tuple(float(s) for s in spacing)
    # one set of passes for both transforms: zero on the inside, then zero on the outside
    squared = _squared_edt(torch.cat([inside, ~inside], dim=0), dims, steps, dtype)
    to_inside, to_outside = squared.chunk(2, dim=0)
    distance = torch.where(inside, to_outside, to_inside).sqrt()
    flat = inside.flatten(2)
    has_boundary = flat.any(dim=-1) & ~flat.all(dim=-1)
    return distance, has_boundary.view(*inside.shape[:2], *([1] * len(dims)))


def _check_spacing(spacing: Sequence[float] | None, spatial: int) -> None:
    if spacing is None:
        return
    if isinstance(spacing, (str, bytes)) or not isinstance(spacing, Sequence):
        raise TypeError(f"spacing must be a sequence of positive numbers, got {spacing!r}")
    if len(spacing) != spatial:
        raise ValueError(
            f"spacing must give one positive step per spatial dimension ({spatial}), got "
            f"{len(spacing)} values {tuple(spacing)}"
        )
    for i, step in enumerate(spacing):
        check_number(f"spacing[{i}]", step, low=0.0, low_inclusive=False)


def signed_distance_map(
    mask: Tensor, *, spacing: Sequence[float] | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    r"""Signed Euclidean distance map of a batch of masks: negative inside, positive outside.

    The map of the boundary loss (Kervadec et al.'s ``one_hot2dist``, MONAI
    ``BoundaryLoss.compute_distance_map``). For a mask ``M`` with a boundary, a position
    outside gets its distance to the nearest position inside; a position inside gets one minus
    its distance to the nearest position outside, so the inner rim of the mask is 0 and the
    interior negative. Distances are exact Euclidean, in units of ``spacing`` (pixels by
    default), computed in torch without gradient (equal to
    ``scipy.ndimage.distance_transform_edt``).

    An **empty or full** mask has no boundary: its map is all zeros (as in MONAI; Kervadec's
    code also leaves an empty class at 0), so it is finite and adds nothing to the boundary
    loss.

    .. math::
        \phi_M(s) = \begin{cases}
            \min_{t \in M} \lVert s - t \rVert & s \notin M \\
            1 - \min_{t \notin M} \lVert s - t \rVert & s \in M
        \end{cases}

    Args:
        mask: ``(N, C, d1, ...)`` masks with at least one spatial dimension (2-D
            ``(N, C, H, W)``, 3-D ``(N, C, D, H, W)``); each ``(n, c)`` is one mask. Bool, or
            numbers read as inside where ``> 0.5``.
        spacing: The step of each spatial axis (anisotropic voxels), positive; one per
            spatial dimension. ``None``: 1 for every axis.
        dtype: Floating dtype of the map; ``None``: the mask's if floating, else torch's
            default.

    Returns:
        The map, the mask's shape, in ``dtype``; it never requires a gradient.

    Raises:
        TypeError: A mask that is not a tensor; spacing that is not a sequence; a
            non-floating ``dtype``.
        ValueError: A mask with fewer than 3 dimensions; spacing of the wrong length or with
            a non-positive step.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> mask = torch.zeros(1, 1, 1, 5, dtype=torch.bool)
        >>> mask[..., 1:4] = True
        >>> la.signed_distance_map(mask)
        tensor([[[[ 1.,  0., -1.,  0.,  1.]]]])

    References:
        H. Kervadec, J. Bouchtiba, C. Desrosiers, E. Granger, J. Dolz, I. Ben Ayed, "Boundary
        loss for highly unbalanced segmentation", MIDL 2019 / Medical Image Analysis 67, 2021,
        https://arxiv.org/abs/1812.07032

        P. F. Felzenszwalb, D. P. Huttenlocher, "Distance Transforms of Sampled Functions",
        Theory of Computing 8, 2012, https://doi.org/10.4086/toc.2012.v008a019
    """
    check_tensor("mask", mask)
    if mask.dim() < 3:
        raise ValueError(
            "mask must be (N, C, d1, ...) with at least one spatial dimension, got shape "
            f"{tuple(mask.shape)}; add the batch and channel dims (mask[None, None])"
        )
    _check_spacing(spacing, mask.dim() - 2)
    if dtype is None:
        dtype = mask.dtype if mask.is_floating_point() else torch.get_default_dtype()
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating dtype, got {dtype}")
    with torch.no_grad():
        inside = mask if mask.dtype == torch.bool else mask > 0.5
        work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
        return _signed(inside, spacing, work).to(dtype)


def _signed(inside: Tensor, spacing: Sequence[float] | None, dtype: torch.dtype) -> Tensor:
    distance, has_boundary = opposite_distance(inside, spacing=spacing, dtype=dtype)
    signed = torch.where(inside, 1.0 - distance, distance)
    return torch.where(has_boundary, signed, torch.zeros_like(signed))


# --------------------------------------------------------------------------- inputs


def dense_inputs(
    input: Tensor,
    target: Tensor,
    activation: str,
    include_background: bool,
    ignore_index: int | None = None,
    *,
    spacing: Sequence[float] | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Validated probabilities and dense target ``(N, C', d1, ...)`` and the keep mask.

    ``softmax``: class indices (or one-hot / probabilities) become a one-hot target, zero for
    every class at an ``ignore_index`` pixel; the keep mask is ``(N, 1, d1, ...)`` (``None``
    without ``ignore_index``). ``sigmoid``: a same-shape target in [0, 1]. Both in the
    compute dtype, channel 0 dropped unless ``include_background``; ``spacing`` checked
    against the number of spatial dimensions.
    """
    keep: Tensor | None = None
    if activation == "softmax":
        target = index_target(target)
        indices = check_softmax_inputs(input, target, weight=None, ignore_index=ignore_index)
    else:
        if ignore_index is not None:
            raise ValueError(
                f"ignore_index={ignore_index} applies to class-index targets "
                "(activation='softmax') only; a sigmoid target is a mask per channel"
            )
        target = binary_target(target, input)
        check_sigmoid_inputs(input, target, weight=None, include_background=include_background)
        indices = False
    dtype = compute_dtype(input, target)
    logits = upcast(input, dtype)
    probs = torch.softmax(logits, dim=1) if activation == "softmax" else torch.sigmoid(logits)
    if indices:
        dense = class_one_hot(target, input.shape[1], dtype)
        if ignore_index is not None:
            keep = (target.unsqueeze(1) != ignore_index).to(dtype)
    else:
        dense = upcast(target, dtype)
    if not include_background:
        probs, dense = probs[:, 1:], dense[:, 1:]
    _check_spacing(spacing, probs.dim() - 2)
    return probs, dense, keep


def _per_image(values: Tensor, keep: Tensor | None, *, batch: bool) -> Tensor:
    """Mean over the spatial positions (ignored ones add 0), ``(N, C')``; over N too if batch."""
    if keep is not None:
        values = values * keep
    loss = values.flatten(2).mean(dim=-1)
    return safe_divide(loss.sum(dim=0), loss.shape[0]) if batch else loss


# --------------------------------------------------------------------------- losses

#: The options of the losses of probabilities against a dense target (:func:`dense_inputs`):
#: these and the clDice losses.
DENSE_ARGS = {
    "input": "Logits ``(N, C, d1, ...)``, at least one spatial dimension (``C >= 2`` for the "
    "softmax).",
    "target": 'With ``"softmax"``: class indices ``(N, d1, ...)`` in ``[0, C)`` or '
    "``ignore_index``, or one-hot / class probabilities of the input's shape. With "
    '``"sigmoid"``: masks of the input\'s shape, in [0, 1].',
    "activation": '``"softmax"`` over dim 1 or ``"sigmoid"`` per channel.',
}

#: What goes wrong with a dense-target loss's inputs (beside a non-floating input).
DENSE_VALUE_ERRORS = (
    "A class index outside ``[0, C)`` that is not ``ignore_index`` (value and position "
    'named); a target of another shape (or, with ``"sigmoid"``, outside [0, 1]); ``C < 2`` '
    "for the softmax; no spatial dimension"
)

_DISTANCE = SOFTMAX_OVERLAP.derive(
    tasks=("segmentation", "imbalanced"),
    properties=set(),
    perfect=None,
    example=None,
    args={
        **DENSE_ARGS,
        "include_background": "``False`` leaves channel 0 out; the output then has ``C - 1`` "
        "class columns.",
        "spacing": "The physical step of each spatial axis (one positive number per spatial "
        "dimension) for anisotropic images; ``None``: pixel units.",
        "batch": "Average the per-image values over the batch before the reduction (``(C',)`` "
        'for ``"none"``; the ``"mean"`` is the same).',
        "ignore_index": "Class-index targets equal to it add 0 to the sum (their pixels still "
        "count in ``|Omega|``) and lie outside every class's mask. Softmax only.",
        "reduction": '``"none"`` | ``"mean"`` | ``"sum"`` over the ``(N, C\')`` values.',
    },
    raises={
        "ValueError": f"{DENSE_VALUE_ERRORS}; ``ignore_index`` with a one-hot target or the "
        f"sigmoid; ``spacing`` of the wrong length; {BAD_OPTION}.",
    },
)


@_DISTANCE.loss(
    formula=r"\frac{1}{|\Omega|}\sum_{s} p_{c,s}\, \phi_{G_c}(s)",
    use_when="small structures: move the predicted boundary to the true one",
    peers={
        "MONAI": "BoundaryLoss(softmax=True / sigmoid=True): same values; class indices "
        "replace to_onehot_y; 'none' is (N, C')",
    },
)
def boundary_loss(
    input: Tensor,
    target: Tensor,
    *,
    activation: Activation = "softmax",
    include_background: bool = True,
    spacing: Sequence[Positive] | None = None,
    batch: bool = False,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Boundary loss: the mean of the probabilities times the target's signed distance map.

    ``p = softmax(input)`` over dim 1 (or ``sigmoid`` per channel with
    ``activation="sigmoid"``; the loss takes logits) is weighted by the signed distance map
    :math:`\phi_{G_c}` of each class's ground-truth mask (:func:`signed_distance_map`:
    negative inside, positive outside, 0 on the inner rim), averaged over the pixels of each
    image and class. It is smallest when all the probability lies inside the mask, and its
    gradient pulls probability towards the true boundary in proportion to how far away it is.
    The map comes from the target, without gradient. The loss is negative at a good
    prediction (it is not a distance; Kervadec et al. add it to a region loss such as
    :func:`lossatlas.dice_loss` with a weight that grows during training).

    Empty or full masks: the map is 0, so such a class adds 0 (and no gradient); the loss is
    finite for any target. A soft target is thresholded at 0.5 for its map.

    .. math::
        \ell_{n,c} = \frac{1}{|\Omega|} \sum_{s \in \Omega} p_{n,c,s}\, \phi_{G_{n,c}}(s)

    Example:
        >>> logits = torch.tensor([[[[2.0, -1.0, -2.0, -3.0]],
        ...                         [[-2.0, 1.0, 2.0, 3.0]]]])  # (N=1, C=2, 1, 4)
        >>> target = torch.tensor([[[0, 1, 1, 1]]])
        >>> la.boundary_loss(logits, target, reduction="none")
        tensor([[ 0.0406, -0.7398]])

    References:
        H. Kervadec, J. Bouchtiba, C. Desrosiers, E. Granger, J. Dolz, I. Ben Ayed, "Boundary
        loss for highly unbalanced segmentation", MIDL 2019 / Medical Image Analysis 67, 2021,
        https://arxiv.org/abs/1812.07032

        MONAI BoundaryLoss, https://docs.monai.io/en/stable/losses.html
    """
    probs, dense, keep = dense_inputs(
        input, target, activation, include_background, ignore_index, spacing=spacing
    )
    with torch.no_grad():
        phi = _signed(dense > 0.5, spacing, probs.dtype)
    return reduce_loss(_per_image(probs * phi, keep, batch=batch), reduction)


@_DISTANCE.loss(
    formula=r"\frac{1}{|\Omega|}\sum_s (p_s - g_s)^2 (d_P(s)^\alpha + d_G(s)^\alpha)",
    properties={"non_negative", "zero_at_perfect"},
    perfect=ex.segmentation_perfect,
    use_when="penalise far-off mistakes (a soft Hausdorff distance)",
    peers={
        "MONAI": "HausdorffDTLoss(softmax=True / sigmoid=True): same values; its default "
        "include_background is False; 'none' is (N, C') without trailing 1s",
    },
)
def hausdorff_dt_loss(
    input: Tensor,
    target: Tensor,
    *,
    alpha: Positive = 2.0,
    activation: Activation = "softmax",
    include_background: bool = True,
    spacing: Sequence[Positive] | None = None,
    batch: bool = False,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Hausdorff distance-transform loss: squared errors weighted by both boundary distances.

    Karimi and Salcudean's distance-transform estimate of the Hausdorff distance, as MONAI's
    ``HausdorffDTLoss``: each pixel's squared error ``(p - g)^2`` is weighted by
    ``d_P^alpha + d_G^alpha``, where ``d_G`` is, for every pixel, the Euclidean distance to
    the nearest pixel of the other label in the ground-truth mask, and ``d_P`` the same for the
    prediction thresholded at ``p > 0.5``. Errors far from either boundary, which make the
    Hausdorff distance large, weigh the most. ``p`` is the softmax (or sigmoid) of the logits;
    the distances are computed without gradient, so the gradient is that of the weighted
    squared error.

    Empty or full masks (of the prediction or the target): no boundary, distance 0, as in
    MONAI; a channel whose two masks are both empty or full scores 0.

    .. math::
        \ell_{n,c} = \frac{1}{|\Omega|} \sum_{s \in \Omega} (p_{n,c,s} - g_{n,c,s})^2
            \left(d_{P_{n,c}}(s)^{\alpha} + d_{G_{n,c}}(s)^{\alpha}\right)

    Args:
        alpha: Exponent of the distances, ``> 0`` (the paper's and MONAI's 2).

    Example:
        >>> logits = torch.tensor([[[[2.0, -1.0, -2.0, -3.0]],
        ...                         [[-2.0, 1.0, 2.0, 3.0]]]])
        >>> target = torch.tensor([[[0, 0, 1, 1]]])
        >>> la.hausdorff_dt_loss(logits, target, reduction="none")
        tensor([[0.3887, 0.3887]])

    References:
        D. Karimi, S. E. Salcudean, "Reducing the Hausdorff Distance in Medical Image
        Segmentation with Convolutional Neural Networks", IEEE Transactions on Medical
        Imaging 39(2), 2020, https://arxiv.org/abs/1904.10030

        MONAI HausdorffDTLoss, https://docs.monai.io/en/stable/losses.html
    """
    probs, dense, keep = dense_inputs(
        input, target, activation, include_background, ignore_index, spacing=spacing
    )
    with torch.no_grad():
        weight = _boundary_distance(probs > 0.5, spacing, alpha, probs.dtype)
        weight = weight + _boundary_distance(dense > 0.5, spacing, alpha, probs.dtype)
    return reduce_loss(_per_image((probs - dense).square() * weight, keep, batch=batch), reduction)


def _boundary_distance(
    inside: Tensor, spacing: Sequence[float] | None, alpha: float, dtype: torch.dtype
) -> Tensor:
    """``d^alpha``: the distance to the nearest pixel of the other label, 0 without a boundary."""
    distance, has_boundary = opposite_distance(inside, spacing=spacing, dtype=dtype)
    return torch.where(has_boundary, distance.pow(alpha), torch.zeros_like(distance))


# --------------------------------------------------------------------------- modules


class BoundaryLoss(LossModule, functional=boundary_loss):
    """Module form of :func:`lossatlas.boundary_loss`."""


class HausdorffDTLoss(LossModule, functional=hausdorff_dt_loss):
    """Module form of :func:`lossatlas.hausdorff_dt_loss`."""
