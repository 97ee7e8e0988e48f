"""Boosting objectives: exact derivatives, and parity with the boosters' own objectives.

Analytic derivatives are written in the tests; the parity references are XGBoost's
``reg:squarederror`` / ``reg:pseudohubererror`` and LightGBM's ``regression``, trained on the
same data with the same settings.
"""

import numpy as np
import pytest

import lossatlas as la
from lossatlas.boost import (
    grad_hess,
    lightgbm_objective,
    xgboost_metric,
    xgboost_objective,
)

R = np.linspace(-4, 4, 17)
Y = np.linspace(-1, 2, 17)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize(
    ("name", "params", "grad", "hess"),
    [
        # 1/n-free per-example squared error r^2: 2r, 2.
        ("mse_loss", {}, lambda r: 2 * r, lambda r: 2 + 0 * r),
        # delta^2 (sqrt(1 + (r/delta)^2) - 1): r / sqrt(1 + (r/d)^2), (1 + (r/d)^2)^(-3/2).
        (
            "pseudo_huber_loss",
            {"delta": 1.5},
            lambda r: r / np.sqrt(1 + (r / 1.5) ** 2),
            lambda r: (1 + (r / 1.5) ** 2) ** -1.5,
        ),
        # log cosh r: tanh r, 1 / cosh^2 r.
        ("log_cosh_loss", {}, np.tanh, lambda r: 1 / np.cosh(r) ** 2),
    ],
)
def test_regression_derivatives_are_analytic(name, params, grad, hess):
    g, h = grad_hess(name, R + Y, Y, **params)
    np.testing.assert_allclose(g, grad(R), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h, hess(R), rtol=1e-10, atol=1e-12)


def test_logistic_derivatives_are_analytic():
    # BCE with logits: sigmoid(x) - y and sigmoid(x) (1 - sigmoid(x)).
    labels = (np.arange(17) % 2).astype(float)
    g, h = grad_hess("binary_cross_entropy_with_logits", R, labels)
    np.testing.assert_allclose(g, _sigmoid(R) - labels, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h, _sigmoid(R) * (1 - _sigmoid(R)), rtol=1e-10, atol=1e-12)


def test_margin_loss_labels_are_mapped_to_signs():
    if "logistic_loss" not in [s.name for s in la.catalog()]:
        pytest.skip("logistic_loss is not in the catalog")
    labels = (np.arange(17) % 2).astype(float)
    g_margin, h_margin = grad_hess("logistic_loss", R, labels)
    g_bce, h_bce = grad_hess("binary_cross_entropy_with_logits", R, labels)
    np.testing.assert_allclose(g_margin, g_bce, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_margin, h_bce, rtol=1e-10, atol=1e-12)


def test_zero_hessian_needs_the_surrogate():
    with pytest.raises(ValueError, match="'l1_loss' has a second derivative that is zero"):
        xgboost_objective("l1_loss")
    g, h = grad_hess("l1_loss", R + Y, Y, hessian="constant")
    np.testing.assert_allclose(g, np.sign(R))
    np.testing.assert_allclose(h, np.ones_like(R))


def test_custom_callable_and_errors():
    def cubic(input, target, *, reduction="none"):
        return (input - target) ** 4

    g, h = grad_hess(cubic, R, 0 * R)
    np.testing.assert_allclose(g, 4 * R**3)
    np.testing.assert_allclose(h, 12 * R**2)
    with pytest.raises(ValueError, match="not an element-wise regression or binary loss"):
        grad_hess("cross_entropy", R, Y)
    with pytest.raises(ValueError, match="hessian must be one of"):
        grad_hess("mse_loss", R, Y, hessian="exakt")


def _diabetes():
    datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn provides the data")
    X, y = datasets.load_diabetes(return_X_y=True)
    return X, (y - y.mean()) / y.std()


XGB_PARAMS = {
    "max_depth": 3,
    "eta": 0.3,
    "base_score": 0.0,
    "tree_method": "exact",
    "nthread": 1,
    "seed": 0,
}


@pytest.mark.parametrize(
    ("builtin", "loss", "params"),
    [
        ({"objective": "reg:squarederror"}, "mse_loss", {"scale": 0.5}),
        (
            {"objective": "reg:pseudohubererror", "huber_slope": 0.5},
            "pseudo_huber_loss",
            {"delta": 0.5},
        ),
    ],
)
def test_xgboost_custom_objective_equals_builtin(builtin, loss, params):
    xgb = pytest.importorskip("xgboost", reason="xgboost is the reference booster")
    X, y = _diabetes()
    data = xgb.DMatrix(X, label=y)
    reference = xgb.train({**XGB_PARAMS, **builtin}, data, 20)
    ours = xgb.train(
        {**XGB_PARAMS, "disable_default_eval_metric": 1},
        data,
        20,
        obj=xgboost_objective(loss, **params),
    )
    np.testing.assert_allclose(
        ours.predict(data, output_margin=True), reference.predict(data), atol=1e-5
    )


def test_xgboost_metric_reports_the_mean_loss():
    xgb = pytest.importorskip("xgboost", reason="xgboost is the reference booster")
    X, y = _diabetes()
    data = xgb.DMatrix(X, label=y)
    history = {}
    xgb.train(
        {**XGB_PARAMS, "disable_default_eval_metric": 1},
        data,
        3,
        obj=xgboost_objective("log_cosh_loss"),
        evals=[(data, "train")],
        custom_metric=xgboost_metric("log_cosh_loss"),
        evals_result=history,
        verbose_eval=False,
    )
    values = history["train"]["log_cosh_loss"]
    assert len(values) == 3 and values[0] > values[-1]


def test_lightgbm_custom_objective_equals_builtin():
    lgb = pytest.importorskip("lightgbm", reason="lightgbm is the reference booster")
    X, y = _diabetes()
    params = {
        "num_leaves": 7,
        "learning_rate": 0.3,
        "boost_from_average": False,
        "verbose": -1,
        "num_threads": 1,
        "deterministic": True,
        "seed": 0,
    }
    reference = lgb.train({**params, "objective": "regression"}, lgb.Dataset(X, y), 20)
    ours = lgb.train(
        {**params, "objective": lightgbm_objective("mse_loss", scale=0.5)}, lgb.Dataset(X, y), 20
    )
    np.testing.assert_allclose(ours.predict(X), reference.predict(X), atol=1e-9)


def test_importing_lossatlas_does_not_import_the_boosters():
    import subprocess
    import sys

    code = (
        "import sys, lossatlas, lossatlas.boost, lossatlas.fit; "
        "print(any(m in sys.modules for m in ('xgboost', 'lightgbm', 'scipy.optimize')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
