"""Total variation and PSNR losses.

Reference values: the forward differences written with explicit slicing in float64 (Rudin,
Osher and Fatemi 1992's discrete TV, anisotropic and isotropic); kornia's
``losses.total_variation`` and ``losses.psnr_loss`` (installed); ``-10 log10(L^2 / MSE)``
with ``F.mse_loss`` for PSNR.
"""

import math

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la

D = torch.float64


def _image(seed=0, shape=(3, 2, 6, 7)):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D)


def test_anisotropic_tv_matches_slicing_and_kornia():
    x = _image()
    dy = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().sum((1, 2, 3))
    dx = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().sum((1, 2, 3))
    torch.testing.assert_close(la.total_variation_loss(x, reduction="none"), dy + dx)
    kornia = pytest.importorskip("kornia")
    # kornia sums over (H, W) per (N, C); ours also sums the channels.
    theirs = kornia.losses.total_variation(x).sum(1)
    torch.testing.assert_close(la.total_variation_loss(x, reduction="none"), theirs)
    torch.testing.assert_close(la.total_variation_loss(x), theirs.mean())


def test_isotropic_tv_and_3d():
    x = _image()
    dy = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]
    dx = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
    expected = (dy**2 + dx**2).sqrt().sum((1, 2, 3))
    actual = la.total_variation_loss(x, kind="isotropic", reduction="none")
    torch.testing.assert_close(actual, expected)
    v = _image(shape=(2, 1, 3, 4, 5))
    expected = sum((v.diff(dim=a).abs()).sum((1, 2, 3, 4)) for a in (2, 3, 4))
    torch.testing.assert_close(la.total_variation_loss(v, reduction="none"), expected)


def test_isotropic_tv_of_a_constant_has_a_zero_gradient():
    x = torch.full((1, 1, 4, 4), 2.0, dtype=D, requires_grad=True)
    value = la.total_variation_loss(x, kind="isotropic")
    value.backward()
    assert value == 0 and torch.equal(x.grad, torch.zeros_like(x))


def test_psnr_matches_the_formula_and_kornia():
    g = torch.Generator().manual_seed(1)
    y = torch.rand(3, 2, 5, 5, generator=g, dtype=D)
    x = y + 0.1 * torch.randn(3, 2, 5, 5, generator=g, dtype=D)
    mse = torch.stack([F.mse_loss(x[n], y[n]) for n in range(3)])
    expected = -10 * torch.log10(4.0 / mse)  # data_range = 2
    torch.testing.assert_close(la.psnr_loss(x, y, data_range=2.0, reduction="none"), expected)
    kornia = pytest.importorskip("kornia")
    # kornia pools one MSE over the batch: equal image by image
    for n in range(3):
        theirs = kornia.losses.psnr_loss(x[n : n + 1], y[n : n + 1], 2.0)
        torch.testing.assert_close(la.psnr_loss(x[n : n + 1], y[n : n + 1], data_range=2.0), theirs)


def test_psnr_identical_images_are_finite():
    y = _image(shape=(2, 3))
    x = y.clone().requires_grad_(True)
    value = la.psnr_loss(x, y, reduction="none")
    torch.testing.assert_close(value, torch.full((2,), -100.0, dtype=D))
    value.sum().backward()
    assert torch.isfinite(x.grad).all()
    capped = la.psnr_loss(x, y, max_psnr=60.0, data_range=255.0)
    assert math.isclose(float(capped.detach()), -60.0, abs_tol=1e-9)


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match=r"input must have 4 dimensions .* or 5"):
        la.total_variation_loss(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="kind must be one of"):
        la.total_variation_loss(torch.zeros(1, 1, 3, 3), kind="l2")
    with pytest.raises(TypeError, match="input must be a floating-point tensor"):
        la.total_variation_loss(torch.zeros(1, 1, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="target must have the same shape"):
        la.psnr_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"data_range must be in \(0, inf\]"):
        la.nn.PSNRLoss(data_range=-1.0)
    with pytest.raises(ValueError, match=r"max_psnr must be in \(0, inf\]"):
        la.psnr_loss(torch.zeros(2, 3), torch.zeros(2, 3), max_psnr=0.0)


def test_module_twins():
    x = _image()
    torch.testing.assert_close(la.nn.TotalVariationLoss()(x), la.total_variation_loss(x))
    torch.testing.assert_close(la.nn.PSNRLoss()(x, x * 0.5), la.psnr_loss(x, x * 0.5))
