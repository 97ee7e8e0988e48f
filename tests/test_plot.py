"""plot_loss / loss_curve and ``lossatlas plot``: every catalog curve, sweeps, values, errors."""

from __future__ import annotations

import struct

import pytest
import torch
from click.testing import CliRunner

import lossatlas as la
from lossatlas.cli import main
from lossatlas.lab.command import parse_params
from lossatlas.plot import loss_curve

pytest.importorskip("matplotlib", reason="plots need matplotlib")

# parametrised over the catalog at collection time, so every new curve declaration is covered
CURVED = [spec.name for spec in la.catalog() if spec.curve is not None]


def png_size(path) -> tuple[int, int]:
    """Width and height from the PNG signature and IHDR chunk (PNG spec, section 11.2.2)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_the_catalog_has_curves():
    assert len(CURVED) >= 10


@pytest.mark.parametrize("name", CURVED)
def test_every_curve_entry_plots_to_png(name, tmp_path):
    path = tmp_path / f"{name}.png"
    fig = la.plot_loss(name, path=path, points=101)
    # figsize (11.0, 4.2) inches at 100 dpi
    assert png_size(path) == (1100, 420)
    loss_ax, grad_ax = fig.axes
    assert loss_ax.get_ylabel() == "loss" and loss_ax.get_xlabel()
    assert grad_ax.get_ylabel().startswith("d loss / d")
    assert fig._suptitle.get_text() == name
    curve = loss_curve(name, points=101)
    assert torch.isfinite(curve.loss).all(), f"{name}: non-finite loss along its curve"
    if curve.grad is not None:
        assert torch.isfinite(curve.grad).all(), f"{name}: non-finite gradient along its curve"


# reference formulas worked by hand: r = residual, p = probability of the true class, m = margin
def test_residual_curves_match_hand_formulas():
    r = loss_curve("mse_loss", points=7)
    torch.testing.assert_close(r.loss, r.x**2)
    torch.testing.assert_close(r.grad, 2 * r.x)
    huber = loss_curve("huber_loss", points=9, x_range=(-4.0, 4.0), delta=2.0)
    x = huber.x
    expected = torch.where(x.abs() <= 2, 0.5 * x**2, 2 * (x.abs() - 1))
    torch.testing.assert_close(huber.loss, expected)
    torch.testing.assert_close(huber.grad, x.clamp(-2, 2))
    q = loss_curve("quantile_loss", points=5, x_range=(-2.0, 2.0), quantile=0.9)
    # pinball with y = 0, prediction r: (1 - tau) * r for r > 0, -tau * r for r < 0
    torch.testing.assert_close(q.loss, torch.where(q.x > 0, 0.1 * q.x, -0.9 * q.x))


def test_probability_curves_match_hand_formulas():
    bce = loss_curve("binary_cross_entropy_with_logits", points=5, x_range=(0.1, 0.9))
    torch.testing.assert_close(bce.loss, -torch.log(bce.x))
    torch.testing.assert_close(bce.grad, bce.x - 1)  # d/dz softplus(-z) = sigmoid(z) - 1
    ce = loss_curve("cross_entropy", points=5, x_range=(0.1, 0.9))
    torch.testing.assert_close(ce.loss, -torch.log(ce.x))
    torch.testing.assert_close(ce.grad, ce.x - 1)
    # focal, gamma = 2, alpha = None: -(1 - p)^2 log p (Lin et al. 2017, eq. 4)
    focal = loss_curve("binary_focal_loss", points=5, x_range=(0.1, 0.9), gamma=2.0, alpha=None)
    torch.testing.assert_close(focal.loss, -((1 - focal.x) ** 2) * torch.log(focal.x))


def test_margin_curve_matches_hinge():
    hinge = loss_curve("hinge_loss", points=7, x_range=(-1.5, 1.5))
    torch.testing.assert_close(hinge.loss, (1 - hinge.x).clamp_min(0))
    torch.testing.assert_close(hinge.grad, torch.where(hinge.x < 1, -1.0, 0.0).double())


def test_sweep_draws_one_line_per_value_and_once_for_losses_without_the_option():
    fig = la.plot_loss(["huber_loss", "l1_loss"], params={"delta": [0.5, 1, 2]}, points=11)
    labels = [
        line.get_label() for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")
    ]
    assert labels == [
        "huber_loss (delta=0.5)",
        "huber_loss (delta=1)",
        "huber_loss (delta=2)",
        "l1_loss",
    ]
    single = la.plot_loss("binary_focal_loss", params={"gamma": [0, 0.5, 1, 2, 5]}, points=11)
    texts = [t.get_text() for t in single.axes[0].get_legend().get_texts()]
    assert texts == ["gamma=0", "gamma=0.5", "gamma=1", "gamma=2", "gamma=5"]


SEEDS_PICTURES = [
    (["smooth_l1_loss", "l1_loss", "mse_loss"], None),
    ("huber_loss", {"delta": [0.5, 1.0, 2.0]}),
    ("binary_focal_loss", {"gamma": [0, 0.5, 1, 2, 5]}),
    (["log_cosh_loss", "mse_loss", "l1_loss"], None),
    ("quantile_loss", {"quantile": [0.1, 0.5, 0.9]}),
]


@pytest.mark.parametrize(("names", "params"), SEEDS_PICTURES)
def test_the_seeds_pictures(names, params, tmp_path):
    path = tmp_path / "picture.png"
    la.plot_loss(names, params=params, path=path, points=101)
    assert png_size(path) == (1100, 420)


def test_errors():
    with pytest.raises(KeyError, match="(?i)did you mean"):
        la.plot_loss("huber_los")
    no_curve = next(s.name for s in la.catalog() if s.curve is None)
    with pytest.raises(ValueError, match="declares no curve"):
        la.plot_loss(no_curve)
    with pytest.raises(ValueError, match="must share a curve kind"):
        la.plot_loss(["mse_loss", "cross_entropy"])
    with pytest.raises(ValueError, match="takes an option 'gamma'"):
        la.plot_loss("mse_loss", params={"gamma": [1, 2]})
    with pytest.raises(ValueError, match="non-empty list"):
        la.plot_loss("huber_loss", params={"delta": []})
    with pytest.raises(ValueError, match="at least one loss name"):
        la.plot_loss([])


def test_parse_params():
    assert parse_params(["gamma=0,0.5,2", "alpha=none", "kind=x"]) == {
        "gamma": [0, 0.5, 2],
        "alpha": [None],
        "kind": ["x"],
    }


def test_cli_plot(tmp_path):
    runner = CliRunner()
    out = tmp_path / "focal.png"
    result = runner.invoke(
        main, ["plot", "binary_focal_loss", "--param", "gamma=0,0.5,1,2,5", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert png_size(out) == (1100, 420)
    assert "wrote" in result.output

    result = runner.invoke(main, ["plot", "huber_loss", "--param", "delta", "-o", str(out)])
    assert result.exit_code == 2
    assert "expected NAME=V1,V2" in result.output

    result = runner.invoke(main, ["plot", "hubber_loss", "-o", str(out)])
    assert result.exit_code == 1
    assert "no loss named 'hubber_loss'" in result.output

    result = runner.invoke(main, ["plot", "mse_loss", "--param", "gamma=1", "-o", str(out)])
    assert result.exit_code == 1
    assert "takes an option 'gamma'" in result.output


@pytest.mark.parametrize("name", sorted(la.ACTIVATIONS))
def test_every_activation_plots_with_its_derivative(name, tmp_path):
    path = tmp_path / f"{name}.png"
    fig = la.plot_activation(name, path=path)
    assert png_size(path) == (1100, 420)
    value_ax, grad_ax = fig.axes
    line = grad_ax.get_lines()[0]
    x, slope = torch.as_tensor(line.get_xdata()), torch.as_tensor(line.get_ydata())
    # The drawn derivative agrees with finite differences of the drawn value away from kinks.
    y = torch.as_tensor(value_ax.get_lines()[0].get_ydata())
    central = (y[2:] - y[:-2]) / (x[2:] - x[:-2])
    smooth = (x[1:-1].abs() > 0.1) & (x[1:-1].abs() < 4.9)
    if name != "hardmax":
        torch.testing.assert_close(central[smooth], slope[1:-1][smooth], atol=2e-3, rtol=1e-2)


def test_cli_plot_activation(tmp_path):
    out = tmp_path / "act.png"
    runner = CliRunner()
    result = runner.invoke(
        main, ["plot", "--activation", "swish", "--activation", "relu", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert png_size(out) == (1100, 420)
    result = runner.invoke(main, ["plot", "--activation", "swissh"])
    assert result.exit_code != 0 and "Did you mean 'swish'" in result.output
    result = runner.invoke(main, ["plot"])
    assert result.exit_code != 0 and "not both and not neither" in result.output


def test_a_per_element_weight_of_the_example_is_not_carried_to_the_curve():
    # balanced_l1_loss's example passes a weight shaped like its inputs: the curve is the
    # unweighted loss at target 0 (la.balanced_l1_loss itself, with weight left at None)
    curve = loss_curve("balanced_l1_loss", points=5)
    x = curve.x.clone()
    expected = la.balanced_l1_loss(x, torch.zeros_like(x), reduction="none")
    torch.testing.assert_close(curve.loss, expected)
