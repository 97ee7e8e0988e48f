r"""Pixel-level image losses: total variation (a one-input prior) and negative PSNR."""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family
from lossatlas._module import LossModule
from lossatlas._options import Positive
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, safe_sqrt, upcast
from lossatlas._validation import check_dim, check_floating, check_same_shape

__all__ = ["psnr_loss", "total_variation_loss"]

#: ``"anisotropic"``: ``sum |dx| + |dy|``; ``"isotropic"``: ``sum sqrt(dx^2 + dy^2)``.
TVKind = Literal["anisotropic", "isotropic"]

_SIDE = 5


def _tv_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    return Example((ex.normal(generator, batch, 2, _SIDE, _SIDE, dtype=dtype, scale=scale),))


def _tv_perfect(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    level = ex.normal(generator, batch, 2, 1, 1, dtype=dtype, scale=scale)
    return Example((level.expand(batch, 2, _SIDE, _SIDE).clone(),))


def _psnr_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    target = ex.uniform(generator, batch, 2, _SIDE, _SIDE, dtype=dtype)
    input = ex.normal(generator, batch, 2, _SIDE, _SIDE, dtype=dtype, scale=scale)
    return Example((input, target), grad_args=(0, 1))


#: The image losses' shared declaration and docstring text (``image/ssim.py`` derives from it).
_PIXEL = Family(
    tasks=("image",),
    input_kind="images (N, C, H, W) or volumes (N, C, D, H, W)",
    args={
        "input": "Images ``(N, C, H, W)`` or volumes ``(N, C, D, H, W)``.",
        "target": "Same shape.",
        "reduction": '``"none"`` | ``"mean"`` | ``"sum"`` over the batch.',
    },
    returns='``(N,)`` for ``"none"``, else a scalar; float32 for half-precision inputs.',
    raises={"TypeError": "Non-floating inputs."},
)


@_PIXEL.loss(
    target_kind="none",
    formula=r"\sum_{c,i,j} |x_{c,i+1,j} - x_{c,i,j}| + |x_{c,i,j+1} - x_{c,i,j}|",
    examples=_tv_example,
    perfect=_tv_perfect,
    properties={"non_negative", "zero_at_perfect"},
    use_when="smoothness prior: denoising, a regulariser",
    peers={
        "kornia": "losses.total_variation: anisotropic only, per (N, C) (ours sums the "
        "channels: kornia(x).sum(1)); its 'mean' averages each axis over its own count",
    },
)
def total_variation_loss(
    input: Tensor, *, kind: TVKind = "anisotropic", reduction: Reduction = "mean"
) -> Tensor:
    r"""Total variation of each image: the summed size of its differences between neighbours.

    A loss on one input (no target): added to a reconstruction loss it favours piecewise
    smooth images (Rudin, Osher and Fatemi's denoising prior). ``"anisotropic"`` sums the
    absolute forward differences along every spatial axis (kornia's ``total_variation``);
    ``"isotropic"`` sums the Euclidean norm of the forward-difference gradient over the
    positions that have a neighbour along every axis, with a zero gradient where it is 0. The
    value of an image is its sum over channels and positions (not a mean: it grows with the
    image); the reduction is over the batch.

    .. math::
        \ell^{\text{aniso}}_n = \sum_{c,p} \sum_a |\Delta_a x_{c,p}|,\quad
        \ell^{\text{iso}}_n = \sum_{c,p} \sqrt{\textstyle\sum_a (\Delta_a x_{c,p})^2},\quad
        \Delta_a x_p = x_{p + e_a} - x_p

    Args:
        kind: ``"anisotropic"`` | ``"isotropic"``.

    Raises:
        TypeError: A non-floating input.
        ValueError: An input that is not 4-D or 5-D; a bad ``kind``.

    Example:
        >>> x = torch.tensor([[[[0.0, 1.0], [3.0, 3.0]]]])
        >>> la.total_variation_loss(x)  # |1| + |0| + |3| + |2|
        tensor(6.)
        >>> la.total_variation_loss(x, kind="isotropic")  # sqrt(1^2 + 3^2)
        tensor(3.1623)

    References:
        L. I. Rudin, S. Osher and E. Fatemi, `Nonlinear Total Variation Based Noise Removal
        Algorithms <https://doi.org/10.1016/0167-2789(92)90242-F>`_, Physica D 60, 1992.
    """
    check_floating("input", input)
    if input.dim() not in (4, 5):
        raise ValueError(
            "input must have 4 dimensions (N, C, H, W) or 5 (N, C, D, H, W), got shape "
            f"{tuple(input.shape)}"
        )
    x = upcast(input, compute_dtype(input))
    axes = range(2, x.dim())
    diffs = [x.diff(dim=axis) for axis in axes]
    if kind == "anisotropic":
        per_image = torch.stack([d.abs().flatten(1).sum(1) for d in diffs]).sum(0)
    else:
        # crop every difference to the positions with a neighbour along every axis
        region = (slice(None), slice(None), *(slice(0, size - 1) for size in x.shape[2:]))
        squares = torch.stack([d[region].square() for d in diffs]).sum(0)
        per_image = safe_sqrt(squares).flatten(1).sum(1)
    return reduce_loss(per_image, reduction)


@_PIXEL.loss(
    target_kind="images of the same shape",
    formula=r"10 \log_{10} \frac{\max(\mathrm{MSE}, L^2 10^{-P_{max}/10})}{L^2}",
    examples=_psnr_example,
    same_shape=(0, 1),
    properties={"symmetric"},
    use_when="the PSNR you report, as the objective",
    peers={
        "kornia": "losses.psnr_loss: one MSE pooled over the whole batch (ours: per image, "
        "then the reduction; equal for one image); -inf for identical inputs (ours: -max_psnr)",
    },
)
def psnr_loss(
    input: Tensor,
    target: Tensor,
    *,
    data_range: Positive = 1.0,
    max_psnr: Positive = 100.0,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Negative peak signal-to-noise ratio of each image, in decibels.

    ``-PSNR = -10 log10(L^2 / MSE)`` with the MSE of each image over all its elements. At
    ``MSE = 0`` the PSNR is infinite; here the MSE is floored at ``L^2 10^(-max_psnr / 10)``,
    so identical images give ``-max_psnr`` (``-100`` dB by default), finite, with a zero
    gradient below the floor. Minimising it is minimising ``log MSE``: the same optimum as the
    MSE, with gradients scaled by ``1 / MSE``. kornia's ``psnr_loss`` pools one MSE over the
    batch and gives ``-inf`` at ``MSE = 0``; for one image above the floor the two are equal.

    .. math::
        \ell_n = -10 \log_{10} \frac{L^2}{\max(\mathrm{MSE}_n,\ L^2\, 10^{-P_{\max}/10})},
        \quad \mathrm{MSE}_n = \operatorname{mean}_i (x_{n,i} - y_{n,i})^2

    Args:
        input: Predictions ``(N, ...)``, e.g. images ``(N, C, H, W)``.
        data_range: ``L``, the range of the values (1 for ``[0, 1]``, 255 for 8 bits).
        max_psnr: The PSNR of identical images, in dB (where the MSE is floored).

    Raises:
        ValueError: Shapes that differ, a 0-dim input, non-positive ``data_range`` or
            ``max_psnr``.

    Example:
        >>> x, y = torch.full((1, 4), 0.5), torch.full((1, 4), 0.6)
        >>> la.psnr_loss(x, y)  # -10 log10(1 / 0.01)
        tensor(-20.0000)
        >>> la.psnr_loss(y, y)  # identical: -max_psnr
        tensor(-100.)

    References:
        Q. Huynh-Thu and M. Ghanbari, `Scope of Validity of PSNR in Image/Video Quality
        Assessment <https://doi.org/10.1049/el:20080522>`_, Electronics Letters 44(13), 2008.
    """
    check_floating("input", input)
    check_floating("target", target)
    check_same_shape("input", input, "target", target)
    check_dim("input", input, min_dim=1, what="(a batch dimension first)")
    dtype = compute_dtype(input, target)
    diff = upcast(input, dtype) - upcast(target, dtype)
    squared = diff.square()
    mse = squared.mean(dim=tuple(range(1, squared.dim()))) if squared.dim() > 1 else squared
    floor = data_range**2 * 10.0 ** (-max_psnr / 10.0)
    return reduce_loss(
        10.0 * torch.log10(mse.clamp_min(floor)) - 20.0 * math.log10(data_range), reduction
    )


class TotalVariationLoss(LossModule, functional=total_variation_loss):
    """Module form of :func:`lossatlas.total_variation_loss`."""


class PSNRLoss(LossModule, functional=psnr_loss):
    """Module form of :func:`lossatlas.psnr_loss`."""
