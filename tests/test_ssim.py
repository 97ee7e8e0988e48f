"""SSIM and MS-SSIM losses.

Reference values: a float64 SSIM written from Wang et al. 2004 eq. 13 with explicit loops over
the window positions and an independently built 2-D Gaussian window (``torch.outer`` of
``exp(-d^2 / 2 sigma^2)``); kornia's ``metrics.ssim`` / ``losses.ssim_loss`` (installed) for
the ``"same"`` (reflect) border and its ``(1 - SSIM) / 2`` scaling; MONAI's ``SSIMLoss`` and
``compute_ms_ssim`` (installed, float32) for the valid border, 3-D volumes and MS-SSIM.
"""

import math

import pytest
import torch

import lossatlas as la

D = torch.float64


def _images(seed=0, shape=(2, 2, 16, 16), noise=0.3):
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(*shape, generator=g, dtype=D)
    x = (y + noise * torch.randn(*shape, generator=g, dtype=D)).clamp(0, 1)
    return x, y


def _loop_ssim(x, y, size=11, sigma=1.5, L=1.0):
    """Mean SSIM of one (H, W) image pair, window position by window position (valid)."""
    d = torch.arange(size, dtype=D) - (size - 1) / 2
    g = torch.exp(-(d**2) / (2 * sigma**2))
    w = torch.outer(g, g)
    w = w / w.sum()
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    H, W = x.shape
    values = []
    for i in range(H - size + 1):
        for j in range(W - size + 1):
            px, py = x[i : i + size, j : j + size], y[i : i + size, j : j + size]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            values.append(
                (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
            )
    return torch.stack(values).mean()


def test_ssim_matches_the_formula_by_loops():
    x, y = _images(shape=(2, 1, 14, 13))
    expected = torch.stack([1 - _loop_ssim(x[n, 0], y[n, 0]) for n in range(2)])
    torch.testing.assert_close(la.ssim_loss(x, y, reduction="none"), expected)
    x7, y7 = x * 255, y * 255  # data_range scales C1, C2 with the values
    expected = torch.stack([1 - _loop_ssim(x7[n, 0], y7[n, 0], 7, 1.0, 255.0) for n in range(2)])
    actual = la.ssim_loss(x7, y7, data_range=255.0, window_size=7, sigma=1.0, reduction="none")
    torch.testing.assert_close(actual, expected)


def test_ssim_equals_kornia_same_padding_and_twice_its_loss():
    kornia = pytest.importorskip("kornia")
    x, y = _images(shape=(2, 3, 16, 16))
    ssim_map = kornia.metrics.ssim(x, y, 11, max_val=1.0, eps=0.0, padding="same")
    ours = la.ssim_loss(x, y, padding="same", reduction="none")
    torch.testing.assert_close(ours, 1 - ssim_map.flatten(1).mean(1))
    # kornia's loss is (1 - SSIM) / 2 per pixel, clamped to [0, 1], mean over every pixel.
    theirs = kornia.losses.ssim_loss(x, y, 11, max_val=1.0, eps=0.0, padding="same")
    torch.testing.assert_close(la.ssim_loss(x, y, padding="same"), 2 * theirs)
    valid = kornia.metrics.ssim(x, y, 11, max_val=1.0, eps=0.0, padding="valid")
    torch.testing.assert_close(la.ssim_loss(x, y, reduction="none"), 1 - valid.flatten(1).mean(1))


def test_ssim_equals_monai_in_2d_and_3d():
    losses = pytest.importorskip("monai.losses")
    x, y = _images(shape=(2, 2, 16, 16))
    monai = losses.SSIMLoss(spatial_dims=2)(x.float(), y.float())
    torch.testing.assert_close(la.ssim_loss(x, y).float(), monai, rtol=1e-5, atol=1e-6)
    x3, y3 = _images(shape=(2, 1, 12, 13, 14))
    monai = losses.SSIMLoss(spatial_dims=3, win_size=7)(x3.float(), y3.float())
    ours = la.ssim_loss(x3, y3, window_size=7).float()
    torch.testing.assert_close(ours, monai, rtol=1e-5, atol=1e-6)


def test_ms_ssim_equals_monai():
    regression = pytest.importorskip("monai.metrics.regression")
    x, y = _images(shape=(2, 2, 176, 180), noise=0.2)
    monai = regression.compute_ms_ssim(x.float(), y.float(), spatial_dims=2).flatten()
    ours = la.ms_ssim_loss(x, y, reduction="none")
    torch.testing.assert_close(ours.float(), 1 - monai, rtol=1e-4, atol=1e-4)  # float32
    x3, y3 = _images(shape=(1, 1, 12, 13, 14), noise=0.2)
    weights = (0.6, 0.4)
    monai = regression.compute_ms_ssim(
        x3.float(), y3.float(), spatial_dims=3, kernel_size=5, weights=weights
    ).flatten()
    ours = la.ms_ssim_loss(x3, y3, window_size=5, weights=weights, reduction="none")
    torch.testing.assert_close(ours.float(), 1 - monai, rtol=1e-4, atol=1e-4)  # float32


def test_ms_ssim_by_hand_pooling_and_product():
    x, y = _images(shape=(1, 1, 24, 26))
    weights = (0.5, 0.3, 0.2)
    # One scale is SSIM; weights only on the last scale give SSIM of the twice-pooled images.
    one = la.ms_ssim_loss(x, y, window_size=5, weights=(1.0,), reduction="none")
    torch.testing.assert_close(one, la.ssim_loss(x, y, window_size=5, reduction="none"))
    pooled = torch.nn.functional.avg_pool2d
    xs, ys = pooled(pooled(x, 2), 2), pooled(pooled(y, 2), 2)
    last = 1 - la.ssim_loss(xs, ys, window_size=5, reduction="none")
    only_last = la.ms_ssim_loss(x, y, window_size=5, weights=(0.0, 0.0, 0.7), reduction="none")
    torch.testing.assert_close(only_last, 1 - last**0.7)
    full = la.ms_ssim_loss(x, y, window_size=5, weights=weights)
    assert 0 < full < 1


def test_identical_and_constant_images():
    x, _ = _images()
    assert la.ssim_loss(x, x) == 0 and la.ms_ssim_loss(x, x, window_size=3, weights=(0.5, 0.5)) == 0
    c = torch.full((1, 1, 16, 16), 0.3, dtype=D)
    assert la.ssim_loss(c, c.clone()) == 0
    other = torch.full_like(c, 0.7)
    # constants: sigma = 0, SSIM = luminance = (2 * .3 * .7 + C1) / (.09 + .49 + C1)
    c1 = 0.01**2
    expected = 1 - (2 * 0.3 * 0.7 + c1) / (0.09 + 0.49 + c1)
    torch.testing.assert_close(la.ssim_loss(c, other), torch.tensor(expected, dtype=D))


@pytest.mark.parametrize("loss", [la.ssim_loss, la.ms_ssim_loss])
def test_anti_correlated_images_are_finite_with_finite_gradients(loss):
    x, _ = _images(shape=(2, 1, 24, 24), noise=0.0)
    x = x.requires_grad_(True)
    options = {} if loss is la.ssim_loss else {"weights": (0.5, 0.3, 0.2)}
    value = loss(x, 1 - x, window_size=3, reduction="none", **options)
    assert torch.isfinite(value).all()
    value.sum().backward()
    assert torch.isfinite(x.grad).all()
    if loss is la.ssim_loss:
        assert (value > 1).all()  # negative SSIM, not clamped
    else:
        torch.testing.assert_close(value, torch.ones_like(value))  # relu-clamped cs: MS-SSIM 0


def test_large_offset_does_not_cancel_the_variance():
    x, y = _images()
    shifted = la.ssim_loss(x.float() + 1000, y.float() + 1000, reduction="none")
    # float32 against float64 at the same offset: E[x^2] - E[x]^2 would lose ~1e-1 to
    # cancellation at 1000 in float32 without the per-channel shift.
    reference = la.ssim_loss(x + 1000, y + 1000, reduction="none").float()
    torch.testing.assert_close(shifted, reference, atol=1e-4, rtol=0)


def test_bad_inputs_name_the_argument():
    x, y = _images(shape=(1, 1, 16, 16))
    with pytest.raises(ValueError, match="target must have the same shape"):
        la.ssim_loss(x, y[..., :15])
    with pytest.raises(ValueError, match=r"input must have 4 dimensions .* or 5"):
        la.ssim_loss(x[0], y[0])
    with pytest.raises(ValueError, match=r"window_size=17 .* at least 17"):
        la.ssim_loss(x, y, window_size=17)
    with pytest.raises(
        ValueError, match=r"at least 176 \(11 \* 2\^4: with 5 scales, len\(weights\)"
    ):
        la.ms_ssim_loss(x, y)
    with pytest.raises(ValueError, match="window_size must be odd"):
        la.ssim_loss(x, y, window_size=4)
    with pytest.raises(ValueError, match="weights must have at least one"):
        la.ms_ssim_loss(x, y, weights=())
    with pytest.raises(ValueError, match=r"data_range must be in \(0, inf\]"):
        la.nn.SSIMLoss(data_range=0.0)
    with pytest.raises(TypeError, match="input must be a floating-point tensor"):
        la.ssim_loss(x.long(), y)


def test_module_twins():
    x, y = _images(shape=(2, 1, 24, 24))
    torch.testing.assert_close(
        la.nn.SSIMLoss(window_size=7)(x, y), la.ssim_loss(x, y, window_size=7)
    )
    module = la.nn.MSSSIMLoss(window_size=3, weights=(0.5, 0.5))
    torch.testing.assert_close(
        module(x, y), la.ms_ssim_loss(x, y, window_size=3, weights=(0.5, 0.5))
    )
    assert math.isclose(sum(la.get("ms_ssim_loss").options["weights"]), 1.0001)
