"""Robust fitting: NumPy/SciPy parity for least squares, outlier resistance for robust losses.

References: ``numpy.polyfit`` and ``scipy.optimize.curve_fit`` / ``least_squares`` computed in
the tests; the data are the seeds' two examples (``seeds/002_*``, "函数拟合").
"""

import numpy as np
import pytest
import torch

from lossatlas.fit import curve_fit, polyfit

scipy_optimize = pytest.importorskip("scipy.optimize", reason="scipy is the fit reference")

# seeds/002_*: np.polyfit(x, y, 3) on eight points.
SEED_POLY_X = [10, 20, 30, 40, 50, 60, 70, 80]
SEED_POLY_Y = [174, 236, 305, 334, 349, 351, 342, 323]
# seeds/002_*: curve_fit(a*sqrt(x)*(b*x^2+c)) on six points.
SEED_CURVE_X = np.array([20, 30, 40, 50, 60, 70.0])
SEED_CURVE_Y = np.array([453, 482, 503, 508, 498, 479.0])


def test_polyfit_mse_equals_numpy_on_the_seed_points():
    fit = polyfit(SEED_POLY_X, SEED_POLY_Y, 3, loss="mse_loss")
    np.testing.assert_allclose(fit.params, np.polyfit(SEED_POLY_X, SEED_POLY_Y, 3), rtol=1e-8)
    assert fit.loss_name == "mse_loss" and fit.residuals.shape == (8,)


@pytest.mark.parametrize("deg", [0, 1, 2, 5])
def test_polyfit_mse_equals_numpy_any_degree(deg):
    rng = np.random.default_rng(deg)
    x, y = rng.uniform(-3, 5, 30), rng.normal(size=30)
    np.testing.assert_allclose(
        polyfit(x, y, deg).params, np.polyfit(x, y, deg), rtol=1e-7, atol=1e-9
    )


def test_curve_fit_mse_matches_scipy_on_the_seed_curve():
    # a, b, c are not identifiable (only a*b and a*c are), so compare the fitted curves and
    # the residual sum of squares, not the parameters.
    popt, _ = scipy_optimize.curve_fit(
        lambda x, a, b, c: a * np.sqrt(x) * (b * x**2 + c), SEED_CURVE_X, SEED_CURVE_Y
    )
    fit = curve_fit(
        lambda x, a, b, c: a * torch.sqrt(x) * (b * x**2 + c),
        SEED_CURVE_X,
        SEED_CURVE_Y,
        p0=[1.0, 1.0, 1.0],
        loss="mse_loss",
    )
    expected = popt[0] * np.sqrt(SEED_CURVE_X) * (popt[1] * SEED_CURVE_X**2 + popt[2])
    np.testing.assert_allclose(fit.residuals + SEED_CURVE_Y, expected, atol=1e-3)
    assert fit.loss == pytest.approx(np.mean((expected - SEED_CURVE_Y) ** 2), rel=1e-6)


def _outlier_data(seed=0):
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 4, 60)
    y = 1.5 * np.exp(-0.7 * x) + 0.3 + rng.normal(0, 0.02, 60)
    gross = rng.choice(60, 12, replace=False)  # 20 % gross outliers
    y[gross] += rng.choice([-1, 1], 12) * rng.uniform(2, 4, 12)
    return x, y


def _decay(x, a, b, c):
    return a * torch.exp(-b * x) + c


TRUE = np.array([1.5, 0.7, 0.3])


@pytest.mark.parametrize(
    ("loss", "params"),
    [
        ("huber_loss", {"delta": 0.05}),
        ("log_cosh_loss", {}),
        ("pseudo_huber_loss", {"delta": 0.05}),
    ],
)
def test_robust_losses_recover_parameters_despite_outliers(loss, params):
    x, y = _outlier_data()
    least_squares_error = np.abs(
        curve_fit(_decay, x, y, p0=[1, 1, 0], loss="mse_loss").params - TRUE
    ).max()
    robust = curve_fit(_decay, x, y, p0=[1, 1, 0], loss=loss, **params)
    robust_error = np.abs(robust.params - TRUE).max()
    assert robust_error < least_squares_error / 2, (robust_error, least_squares_error)


def test_huber_curve_fit_agrees_with_scipy_least_squares():
    # scipy's loss="huber" with f_scale=d minimises sum of Huber(d) of the residuals.
    x, y = _outlier_data()
    reference = scipy_optimize.least_squares(
        lambda p: p[0] * np.exp(-p[1] * x) + p[2] - y, [1, 1, 0], loss="huber", f_scale=0.05
    )
    fit = curve_fit(_decay, x, y, p0=[1, 1, 0], loss="huber_loss", delta=0.05)
    np.testing.assert_allclose(fit.params, reference.x, rtol=1e-5)
    assert fit.converged


def test_polyfit_huber_resists_outliers():
    rng = np.random.default_rng(1)
    x = np.linspace(-2, 2, 50)
    y = 0.5 * x**2 - x + 2 + rng.normal(0, 0.05, 50)
    y[::5] += 10  # 20 % outliers, all on one side
    robust = polyfit(x, y, 2, loss="huber_loss", delta=0.1).params
    assert np.abs(robust - [0.5, -1.0, 2.0]).max() < 0.1
    assert np.abs(np.polyfit(x, y, 2) - [0.5, -1.0, 2.0]).max() > 1.0


class TestErrors:
    def test_not_a_regression_loss(self):
        with pytest.raises(ValueError, match="regression loss of the residual"):
            polyfit([0, 1, 2], [0, 1, 2], 1, loss="cross_entropy")

    def test_unknown_loss(self):
        with pytest.raises(KeyError, match="Did you mean 'huber_loss'"):
            polyfit([0, 1, 2], [0, 1, 2], 1, loss="hubber_loss")

    def test_mismatched_data(self):
        with pytest.raises(ValueError, match=r"y must have one value per x \(3\), got 2"):
            polyfit([0, 1, 2], [0, 1], 1)

    def test_too_few_points(self):
        with pytest.raises(ValueError, match="needs at least 4 points"):
            polyfit([0, 1, 2], [0, 1, 2], 3)

    def test_nan(self):
        with pytest.raises(ValueError, match="y must be finite"):
            curve_fit(_decay, [0, 1, 2], [0, np.nan, 1], p0=[1, 1, 0])

    def test_bad_model_output(self):
        with pytest.raises(ValueError, match=r"f must return a tensor of x's shape \(3,\)"):
            curve_fit(lambda x, a: a * x.sum(), [0, 1, 2], [0, 1, 2], p0=[1.0], loss="mse_loss")
