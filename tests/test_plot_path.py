"""loss_path / plot_loss_path: every loss without a one-variable curve, drawn along a path."""

from __future__ import annotations

import math
import struct

import pytest
import torch

import lossatlas as la
from lossatlas.plot import loss_path

pytest.importorskip("matplotlib", reason="plots need matplotlib")

PATHED = [spec.name for spec in la.catalog() if spec.curve is None]


def test_the_catalog_has_losses_without_a_curve():
    assert len(PATHED) >= 10


@pytest.mark.parametrize("name", PATHED)
def test_every_loss_without_a_curve_draws_a_finite_path(name, tmp_path):
    curve = loss_path(name, points=9)
    assert curve.label in ("perfect", "descent", "scale")
    assert torch.isfinite(curve.loss).all(), f"{name}: non-finite loss along its path"
    assert curve.grad is not None and torch.isfinite(curve.grad).all()
    if curve.label == "perfect" and "zero_at_perfect" in la.get(name).properties:
        assert curve.loss[-1].abs() < 1e-6, f"{name}: the path does not end at a perfect loss"
    path = tmp_path / f"{name}.png"
    fig = la.plot_loss_path(name, path=path, points=9)
    data = path.read_bytes()
    assert struct.unpack(">II", data[16:24]) == (1100, 420)  # 11 x 4.2 in at 100 dpi
    assert fig._suptitle.get_text() == name


def test_perfect_path_of_mse_is_quadratic():
    # residual (1 - t) r along the path to the target: loss (1 - t)^2 m0, slope -2 (1 - t) m0
    curve = loss_path("mse_loss", points=5)
    assert curve.label == "perfect"
    t, m0 = curve.x, curve.loss[0]
    torch.testing.assert_close(curve.loss, (1 - t) ** 2 * m0)
    torch.testing.assert_close(curve.grad, -2 * (1 - t) * m0)


def test_descent_slice_of_nll_is_linear():
    # mean NLL is linear in its input: gradient -1/N at (n, y_n), so |g| = 1/sqrt(N); the step
    # d = -g |x| / |g| gives d loss / d s = g . d = -|x| / sqrt(N), the same at every s
    spec = la.get("nll_loss")
    example = spec.make_example()
    curve = loss_path("nll_loss", points=5)
    assert curve.label == "descent"
    n = example.args[0].shape[0]
    slope = -example.args[0].norm() / math.sqrt(n)
    torch.testing.assert_close(curve.grad, slope.expand(5).to(torch.float64))
    torch.testing.assert_close(curve.loss, curve.loss[2] + slope * curve.x)


def test_ctc_falls_back_to_the_scale_path():
    # a step along the gradient leaves the log-probabilities' simplex, which ctc_loss refuses
    curve = loss_path("ctc_loss", points=4)
    assert curve.label == "scale"
    torch.testing.assert_close(curve.x[[0, -1]], torch.tensor([0.05, 3.0], dtype=torch.float64))


def test_errors():
    with pytest.raises(KeyError, match="no loss named"):
        loss_path("no_such_loss")
