r"""Structural similarity losses: SSIM and multi-scale SSIM, ``1 - SSIM`` per image.

Both take 2-D images ``(N, C, H, W)`` or 3-D volumes ``(N, C, D, H, W)``. The local moments are
Gaussian-weighted: a separable window, one ``conv2d``/``conv3d`` pass per axis with the channels
folded into the batch (the same as a depthwise ``groups=C`` convolution, which
``torch.compile(dynamic=True)`` would specialise to the batch size). ``padding="valid"`` (the
default, as the paper's MATLAB code, MONAI and pytorch-msssim) keeps only the positions where
the whole window fits; ``"same"`` reflects the border, as kornia does. The variances are
computed from images shifted by their own per-channel mean (SSIM's variance terms do not change
under a shift), which keeps ``E[x^2] - E[x]^2`` from cancelling for images with a large offset.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example
from lossatlas._module import LossModule
from lossatlas._options import Check, Interval, NonNegative, Positive
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import check_floating, check_same_shape
from lossatlas.image.pixel import _PIXEL

__all__ = ["ms_ssim_loss", "ssim_loss"]

#: The border: ``"valid"`` (no padding) or ``"same"`` (reflect padding, kornia's default).
SSIMPadding = Literal["valid", "same"]

#: Wang, Simoncelli and Bovik's five scale weights (finest first).
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _check_odd(name: str, value: Any) -> None:
    if isinstance(value, int) and value % 2 == 0:
        raise ValueError(f"{name} must be odd (a window centred on its pixel), got {value}")


def _check_scales(name: str, value: Any) -> None:
    if isinstance(value, Sequence) and not len(value):
        raise ValueError(f"{name} must have at least one scale weight, got {value!r}")


#: An odd window size >= 1.
WindowSize = Annotated[int, Interval(1), Check(_check_odd, invalid=(4,), description="odd")]
#: One non-negative weight per scale, at least one.
ScaleWeights = Annotated[
    Sequence[NonNegative], Check(_check_scales, invalid=((),), description="non-empty")
]


def _gaussian_window(size: int, sigma: float, like: Tensor) -> Tensor:
    """The normalised 1-D Gaussian ``exp(-d^2 / (2 sigma^2))``, ``d`` the offset from the centre."""
    offset = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    window = torch.exp(-offset.square() / (2.0 * sigma * sigma))
    return window / window.sum()


def _blur(x: Tensor, window: Tensor, padding: str) -> Tensor:
    """Separable Gaussian filtering of ``(N, C, *spatial)`` over every spatial axis.

    Each channel is filtered on its own (the channels are folded into the batch, one
    single-channel convolution per axis: a depthwise convolution with ``groups=C``).
    """
    spatial = x.dim() - 2
    if padding == "same":
        radius = window.numel() // 2
        x = F.pad(x, [radius] * (2 * spatial), mode="reflect")
    conv = F.conv2d if spatial == 2 else F.conv3d
    shape = x.shape
    out = x.reshape(-1, 1, *shape[2:])
    for axis in range(spatial):
        taps = [1] * spatial
        taps[axis] = window.numel()
        out = conv(out, window.view(1, 1, *taps))
    return out.reshape(shape[0], shape[1], *out.shape[2:])


def _ssim_maps(
    x: Tensor,
    y: Tensor,
    *,
    window: Tensor,
    c1: float,
    c2: float,
    padding: str,
) -> tuple[Tensor, Tensor]:
    """The SSIM map ``l * cs`` and the contrast-structure map ``cs`` of two image batches."""
    spatial_dims = tuple(range(2, x.dim()))
    # Shift each channel by its mean (detached: the value does not depend on the shift).
    sx = x.detach().mean(dim=spatial_dims, keepdim=True)
    sy = y.detach().mean(dim=spatial_dims, keepdim=True)
    xs, ys = x - sx, y - sy
    channels = x.shape[1]
    with torch.autocast(x.device.type, enabled=False):
        moments = _blur(torch.cat([xs, ys, xs * xs, ys * ys, xs * ys], dim=1), window, padding)
    mx, my, exx, eyy, exy = moments.split(channels, dim=1)
    var_x = exx - mx * mx
    var_y = eyy - my * my
    cov = exy - mx * my
    mu_x, mu_y = mx + sx, my + sy
    luminance = (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    cs = (2.0 * cov + c2) / (var_x + var_y + c2)
    return luminance * cs, cs


def _check_images(input: Tensor, target: Tensor) -> torch.dtype:
    check_floating("input", input)
    check_floating("target", target)
    check_same_shape("input", input, "target", target)
    if input.dim() not in (4, 5):
        raise ValueError(
            "input must have 4 dimensions (N, C, H, W) or 5 (N, C, D, H, W), got shape "
            f"{tuple(input.shape)}"
        )
    return compute_dtype(input, target)


def _check_size(input: Tensor, window_size: int, padding: str, scales: int) -> None:
    """Every spatial size must hold the window at the coarsest of ``scales`` dyadic scales."""
    # "valid" needs the whole window inside; "same" reflects, which needs size > radius.
    fits = window_size if padding == "valid" else window_size // 2 + 1
    minimum = fits * 2 ** (scales - 1)
    spatial = tuple(input.shape[2:])
    if min(spatial) < minimum:
        why = (
            f" ({fits} * 2^{scales - 1}: with {scales} scales, len(weights), each halving the "
            "size, the coarsest must still hold the window)"
            if scales > 1
            else ""
        )
        raise ValueError(
            f"input's spatial size {spatial} is too small for window_size={window_size} with "
            f"padding={padding!r}: every spatial size must be at least {minimum}{why}; pass a "
            "smaller "
            "window_size or larger images"
        )


def _prepare(
    input: Tensor,
    target: Tensor,
    scales: int,
    data_range: float,
    window_size: int,
    sigma: float,
    k1: float,
    k2: float,
    padding: str,
) -> tuple[Tensor, Tensor, Tensor, float, float]:
    """The checked images in the compute dtype, the Gaussian window, ``C_1`` and ``C_2``.

    ``scales`` is the number of dyadic scales the images must hold the window at.
    """
    dtype = _check_images(input, target)
    _check_size(input, window_size, padding, scales)
    x, y = upcast(input, dtype), upcast(target, dtype)
    window = _gaussian_window(window_size, sigma, x)
    return x, y, window, (k1 * data_range) ** 2, (k2 * data_range) ** 2


def _per_image_mean(values: Tensor) -> Tensor:
    return values.flatten(1).mean(1)


def _positive_power(value: Tensor, weight: float) -> Tensor:
    """``relu(value) ** weight`` with a zero (not infinite or NaN) gradient where ``value <= 0``.

    NaN stays NaN (the non-positive branch is ``value * 0``), as :func:`safe_sqrt` does.
    """
    positive = value > 0
    return torch.where(positive, torch.where(positive, value, 1.0) ** weight, value * 0)


# --------------------------------------------------------------------------- examples

_SIDE = 12


def _example(window_size: int, **options: Any) -> Any:
    def example(
        generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
    ) -> Example:
        target = ex.uniform(generator, batch, 2, _SIDE, _SIDE, dtype=torch.float64)
        noise = ex.normal(generator, batch, 2, _SIDE, _SIDE, dtype=torch.float64)
        # Correlated with the target (positive contrast-structure at every scale) at scale 1.
        input = (target + 0.2 * noise) * scale
        return Example(
            (input.to(dtype), target.to(dtype)),
            {"window_size": window_size, **options},
            grad_args=(0, 1),
        )

    return example


def _perfect(window_size: int, **options: Any) -> Any:
    def perfect(
        generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
    ) -> Example:
        target = ex.uniform(generator, batch, 2, _SIDE, _SIDE, dtype=dtype, high=scale)
        return Example((target.clone(), target), {"window_size": window_size, **options})

    return perfect


_SSIM = _PIXEL.derive(
    target_kind="images of the same shape",
    same_shape=(0, 1),
    properties={"non_negative", "zero_at_perfect", "symmetric", "bounded"},
    args={
        "data_range": "``L``, the range of the pixel values (1 for ``[0, 1]``, 255 for 8 bits);"
        " it sets ``C_1`` and ``C_2``, the values are not rescaled.",
        "window_size": "Taps of the Gaussian window along each axis (odd).",
        "sigma": "Standard deviation of the Gaussian, in pixels.",
        "k1": "``k_1`` of ``C_1``.",
        "k2": "``k_2`` of ``C_2``.",
        "padding": '``"valid"`` (positions where the window fits: every spatial size must be at'
        ' least ``window_size``) or ``"same"`` (reflect padding, kornia\'s default: sizes above'
        " ``window_size // 2``).",
    },
    raises={
        "ValueError": "Shapes that differ, inputs that are not 4-D or 5-D, spatial sizes smaller"
        " than the window at the coarsest scale (the message gives the minimum), an even or"
        " non-positive ``window_size``, non-positive ``data_range``, ``sigma``, ``k1`` or"
        " ``k2``; for MS-SSIM, empty or negative ``weights``.",
    },
)

_SCALE_WEIGHTS = (0.5, 0.3, 0.2)


@_SSIM.loss(
    formula=r"1 - \operatorname{mean}_p \frac{(2\mu_x\mu_y + C_1)(2\sigma_{xy} + C_2)}"
    r"{(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)}",
    examples=_example(5),
    perfect=_perfect(5),
    use_when="restoration: local structure and contrast",
    peers={
        "kornia": "losses.ssim_loss returns mean((1 - SSIM) / 2) over every pixel (half ours), "
        "clamped to [0, 1], padding='same' (reflect) by default, eps=1e-12 in the denominator",
        "MONAI": "losses.SSIMLoss(spatial_dims): the same value (valid padding), in float32",
    },
)
def ssim_loss(
    input: Tensor,
    target: Tensor,
    *,
    data_range: Positive = 1.0,
    window_size: WindowSize = 11,
    sigma: Positive = 1.5,
    k1: Positive = 0.01,
    k2: Positive = 0.03,
    padding: SSIMPadding = "valid",
    reduction: Reduction = "mean",
) -> Tensor:
    r"""One minus the structural similarity (SSIM) of each image, Gaussian-windowed.

    The SSIM map compares local means (luminance), standard deviations (contrast) and the
    correlation (structure) in a Gaussian window at every position; an image's SSIM is the
    mean of its map over positions and channels, and its loss ``1 - SSIM`` lies in ``[0, 2]``:
    0 for identical images, above 1 for anti-correlated ones (no clamp, so the gradient always
    pushes towards the target). Differences from the peers: kornia's ``ssim_loss`` is
    ``(1 - SSIM) / 2`` per pixel, clamped to ``[0, 1]``, with reflect (``"same"``) padding by
    default and ``eps = 1e-12`` added to the denominator -- ours is twice kornia's at
    ``padding="same"``, ``eps=0`` wherever kornia's clamp is inactive; MONAI's ``SSIMLoss``
    is this loss with ``padding="valid"`` (computed in float32).

    .. math::
        \ell_n = 1 - \frac{1}{|P|}\sum_{p \in P}
        \frac{(2\mu_x\mu_y + C_1)(2\sigma_{xy} + C_2)}
        {(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)},
        \quad C_1 = (k_1 L)^2,\ C_2 = (k_2 L)^2

    Example:
        >>> x = torch.linspace(0, 1, 64).reshape(1, 1, 8, 8)
        >>> la.ssim_loss(x, x, window_size=7)
        tensor(0.)
        >>> la.ssim_loss(x, 1 - x, window_size=7)  # anti-correlated: above 1
        tensor(1.9414)

    References:
        Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, `Image Quality Assessment:
        From Error Visibility to Structural Similarity
        <https://doi.org/10.1109/TIP.2003.819861>`_, IEEE Transactions on Image Processing 13(4),
        2004.
    """
    x, y, window, c1, c2 = _prepare(
        input, target, 1, data_range, window_size, sigma, k1, k2, padding
    )
    ssim_map, _ = _ssim_maps(x, y, window=window, c1=c1, c2=c2, padding=padding)
    return reduce_loss(1.0 - _per_image_mean(ssim_map), reduction)


@_SSIM.loss(
    formula=r"1 - \operatorname{relu}(\mathrm{SSIM}_M)^{w_M}"
    r"\prod_{j<M} \operatorname{relu}(\mathrm{cs}_j)^{w_j}",
    examples=_example(3, weights=_SCALE_WEIGHTS),
    perfect=_perfect(3, weights=_SCALE_WEIGHTS),
    use_when="SSIM over several resolutions; large images",
    peers={
        "MONAI": "metrics.MultiScaleSSIMMetric: the same value (1 - it), relu clamps, float32",
        "pytorch-msssim": "ms_ssim: the product per channel then the channel mean (ours and "
        "MONAI's average the channels at each scale first: equal for one channel); pads odd "
        "sizes before pooling; NaN for negative cs before 1.0 (relu since)",
    },
)
def ms_ssim_loss(
    input: Tensor,
    target: Tensor,
    *,
    data_range: Positive = 1.0,
    window_size: WindowSize = 11,
    sigma: Positive = 1.5,
    k1: Positive = 0.01,
    k2: Positive = 0.03,
    weights: ScaleWeights = MS_SSIM_WEIGHTS,
    padding: SSIMPadding = "valid",
    reduction: Reduction = "mean",
) -> Tensor:
    r"""One minus the multi-scale structural similarity (MS-SSIM) of each image.

    At scale ``j = 1..M`` (``M = len(weights)``; after each scale both images are
    average-pooled by 2 along every spatial axis, odd sizes rounded down) the mean
    contrast-structure ``cs_j`` of each image is taken over positions and channels, and at the
    coarsest scale the full SSIM. A negative ``cs`` (anti-correlated content) raised to a
    fractional power is NaN, the bug of pytorch-msssim before 1.0; here each factor is clamped
    at 0 first (``relu``, as pytorch-msssim 1.0 and MONAI do), with a zero -- not infinite --
    gradient at the clamp: images anti-correlated at some scale get MS-SSIM 0, a loss of 1 and
    no gradient from that scale's factor (use :func:`ssim_loss`, which is not clamped, to
    push them apart). With one weight ``(1,)`` this is :func:`ssim_loss` where SSIM >= 0.

    .. math::
        \ell_n = 1 - \operatorname{relu}(\mathrm{SSIM}_{M})^{w_M}
        \prod_{j=1}^{M-1} \operatorname{relu}(\mathrm{cs}_j)^{w_j},\quad
        \mathrm{cs} = \frac{2\sigma_{xy} + C_2}{\sigma_x^2 + \sigma_y^2 + C_2}

    Args:
        input: Images ``(N, C, H, W)`` or volumes ``(N, C, D, H, W)``; every spatial size must
            be at least ``window_size * 2^(M - 1)`` with ``"valid"`` padding (176 at the
            defaults), ``(window_size // 2 + 1) * 2^(M - 1)`` with ``"same"``.
        weights: The exponent of each scale, finest first (Wang et al.'s five by default; not
            normalised).

    Example:
        >>> x = torch.linspace(0, 1, 576).reshape(1, 1, 24, 24)
        >>> la.ms_ssim_loss(x, x, window_size=3, weights=(0.5, 0.3, 0.2))
        tensor(0.)
        >>> la.ms_ssim_loss(x, 1 - x, window_size=3, weights=(0.5, 0.3, 0.2))  # clamped: 1
        tensor(1.)

    References:
        Z. Wang, E. P. Simoncelli and A. C. Bovik, `Multiscale Structural Similarity for Image
        Quality Assessment <https://doi.org/10.1109/ACSSC.2003.1292216>`_, Asilomar Conference
        on Signals, Systems and Computers, 2003.
    """
    scales = len(weights)
    x, y, window, c1, c2 = _prepare(
        input, target, scales, data_range, window_size, sigma, k1, k2, padding
    )
    pool = F.avg_pool2d if x.dim() == 4 else F.avg_pool3d
    value: Tensor | None = None
    for j, weight in enumerate(weights):
        ssim_map, cs = _ssim_maps(x, y, window=window, c1=c1, c2=c2, padding=padding)
        last = j == scales - 1
        factor = _per_image_mean(ssim_map if last else cs)
        term = _positive_power(factor, float(weight))
        value = term if value is None else value * term
        if not last:
            x, y = pool(x, kernel_size=2), pool(y, kernel_size=2)
    assert value is not None  # weights is non-empty (checked with the options)
    return reduce_loss(1.0 - value, reduction)


class SSIMLoss(LossModule, functional=ssim_loss):
    """Module form of :func:`lossatlas.ssim_loss`."""


class MSSSIMLoss(LossModule, functional=ms_ssim_loss):
    """Module form of :func:`lossatlas.ms_ssim_loss`."""
