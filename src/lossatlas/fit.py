"""Robust curve fitting with any catalog regression loss: ``polyfit`` and ``curve_fit``.

The seeds fit curves with ``np.polyfit`` and ``scipy.optimize.curve_fit``, both least squares,
which a few gross outliers drag anywhere. These two functions keep those call shapes but take
``loss=`` from the catalog (``"huber_loss"``, ``"log_cosh_loss"``, ``"pseudo_huber_loss"``...):
the parameters minimise the mean loss of the residuals, found with torch autograd and L-BFGS
(strong-Wolfe line search) in float64. With ``loss="mse_loss"`` they agree with NumPy and SciPy.

Robust losses have a scale (``delta``) in the units of ``y``: choose it from the noise level of
the inliers (e.g. ~1.35 standard deviations for Huber's 95 % efficiency).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.polynomial import Polynomial
from torch import Tensor

from lossatlas._catalog import LossSpec, get
from lossatlas._validation import check_number

__all__ = ["FitResult", "curve_fit", "polyfit"]


@dataclass(frozen=True)
class FitResult:
    """The outcome of a fit.

    Attributes:
        params: The fitted parameters (for ``polyfit``, highest power first, as NumPy).
        loss: The mean loss of the residuals at ``params``.
        residuals: ``f(x) - y`` at ``params``.
        iterations: L-BFGS iterations used.
        converged: Whether the gradient norm fell below the tolerance.
        loss_name: The catalog loss that was minimised.
    """

    params: np.ndarray
    loss: float
    residuals: np.ndarray
    iterations: int
    converged: bool
    loss_name: str


def _regression_loss(
    loss: str | LossSpec, params: dict[str, Any]
) -> tuple[LossSpec, Callable[..., Tensor]]:
    spec = loss if isinstance(loss, LossSpec) else get(loss)
    if spec.curve != "residual":
        raise ValueError(
            f"loss must be a regression loss of the residual (curve 'residual'), got {spec.name!r}"
        )

    def mean_loss(prediction: Tensor, target: Tensor) -> Tensor:
        return spec.function(prediction, target, reduction="mean", **params)

    mean_loss(torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
    return spec, mean_loss


def _minimise(
    objective: Callable[[Tensor], Tensor], start: Tensor, *, max_iter: int, tol: float
) -> tuple[Tensor, int, bool]:
    theta = start.detach().clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [theta],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=tol,
        tolerance_change=1e-15,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        value = objective(theta)
        value.backward()
        return value

    optimizer.step(closure)
    state = optimizer.state[optimizer._params[0]]
    iterations = int(state.get("n_iter", 0))
    grad = torch.autograd.grad(objective(theta), theta)[0]
    return theta.detach(), iterations, bool(grad.abs().max() <= max(tol, 1e-7))


def _as_1d(name: str, values: Any) -> Tensor:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite; it holds NaN or inf")
    return torch.from_numpy(array.copy())


def polyfit(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    deg: int,
    *,
    loss: str | LossSpec = "mse_loss",
    max_iter: int = 500,
    tol: float = 1e-10,
    **loss_params: Any,
) -> FitResult:
    r"""Fit a polynomial of degree ``deg`` by minimising a catalog loss of the residuals.

    ``loss="mse_loss"`` is ``numpy.polyfit``. The fit runs on standardised ``x`` (for
    conditioning), starts from the least-squares solution and refines it with L-BFGS; the
    coefficients are mapped back to powers of ``x``.

    .. math::
        \hat p = \arg\min_p \frac{1}{n} \sum_i \ell\!\left(\sum_k p_k x_i^k - y_i\right)

    Args:
        x: Sample points, shape ``(n,)``.
        y: Values, shape ``(n,)``.
        deg: Degree ``>= 0``.
        loss: A catalog regression loss (``curve="residual"``).
        max_iter: L-BFGS iteration cap.
        tol: Gradient tolerance.
        **loss_params: The loss's options (``delta=...``).

    Returns:
        A :class:`FitResult` whose ``params`` are highest power first, as ``numpy.polyfit``.

    Raises:
        ValueError: Mismatched or non-finite data, fewer points than ``deg + 1``, a loss that is
            not a regression loss.

    Example:
        The seeds' eight points, fitted with a cubic:

        >>> import numpy as np
        >>> from lossatlas.fit import polyfit
        >>> x = [10, 20, 30, 40, 50, 60, 70, 80]
        >>> y = [174, 236, 305, 334, 349, 351, 342, 323]
        >>> fit = polyfit(x, y, 3)
        >>> [round(float(p), 6) for p in fit.params]
        [0.000369, -0.128701, 11.057071, 72.642857]
    """
    check_number("deg", deg, low=0, integer=True)
    xs, ys = _as_1d("x", x), _as_1d("y", y)
    if xs.shape != ys.shape:
        raise ValueError(f"y must have one value per x ({xs.numel()}), got {ys.numel()}")
    if xs.numel() < deg + 1:
        raise ValueError(f"a degree-{deg} fit needs at least {deg + 1} points, got {xs.numel()}")
    spec, mean_loss = _regression_loss(loss, loss_params)
    center = float(xs.mean())
    spread = float(xs.std()) if xs.numel() > 1 and float(xs.std()) > 0 else 1.0
    t = (xs - center) / spread
    basis = torch.stack([t**k for k in range(deg + 1)], dim=1)  # lowest power first
    start = torch.linalg.lstsq(basis, ys.unsqueeze(1)).solution.squeeze(1)

    def objective(coef: Tensor) -> Tensor:
        return mean_loss(basis @ coef, ys)

    coef_t, iterations, converged = _minimise(objective, start, max_iter=max_iter, tol=tol)
    in_x = Polynomial(coef_t.numpy())(Polynomial([-center / spread, 1.0 / spread]))
    coefficients = np.zeros(deg + 1)
    coefficients[: in_x.coef.size] = in_x.coef
    residuals = (basis @ coef_t - ys).numpy()
    return FitResult(
        params=coefficients[::-1].copy(),
        loss=float(objective(coef_t)),
        residuals=residuals,
        iterations=iterations,
        converged=converged,
        loss_name=spec.name,
    )


def curve_fit(
    f: Callable[..., Tensor],
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    p0: Sequence[float] | np.ndarray,
    *,
    loss: str | LossSpec = "huber_loss",
    max_iter: int = 1000,
    tol: float = 1e-10,
    **loss_params: Any,
) -> FitResult:
    r"""Fit ``f(x, *params)`` to ``y`` by minimising a catalog loss of the residuals.

    ``f`` is written with torch operations (``torch.sqrt``, ``x ** 2``...) so autograd can
    differentiate it; it receives ``x`` as a float64 tensor and one 0-dim tensor per parameter.
    ``loss="mse_loss"`` gives ``scipy.optimize.curve_fit``'s least-squares optimum;
    ``loss="huber_loss", delta=d`` gives ``scipy.optimize.least_squares(loss="huber",
    f_scale=d)``'s.

    .. math::
        \hat\theta = \arg\min_\theta \frac{1}{n} \sum_i \ell(f(x_i; \theta) - y_i)

    Args:
        f: The model, ``f(x, *params) -> Tensor`` of the shape of ``x``.
        x: Sample points, shape ``(n,)``.
        y: Values, shape ``(n,)``.
        p0: Starting parameters (required: the fit is local).
        loss: A catalog regression loss.
        max_iter: L-BFGS iteration cap.
        tol: Gradient tolerance.
        **loss_params: The loss's options (``delta=...``).

    Returns:
        A :class:`FitResult`.

    Raises:
        ValueError: Mismatched or non-finite data, an ``f`` whose output has another shape.

    Example:
        >>> import torch
        >>> from lossatlas.fit import curve_fit
        >>> x = torch.linspace(0, 4, 9).numpy()
        >>> y = 2.0 * x + 1.0
        >>> fit = curve_fit(lambda x, a, b: a * x + b, x, y, p0=[0.0, 0.0], loss="mse_loss")
        >>> [round(float(v), 6) for v in fit.params]
        [2.0, 1.0]
    """
    xs, ys = _as_1d("x", x), _as_1d("y", y)
    if xs.shape != ys.shape:
        raise ValueError(f"y must have one value per x ({xs.numel()}), got {ys.numel()}")
    start = _as_1d("p0", p0)
    spec, mean_loss = _regression_loss(loss, loss_params)

    def predict(theta: Tensor) -> Tensor:
        out = f(xs, *theta.unbind())
        if not isinstance(out, Tensor) or out.shape != xs.shape:
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(f"f must return a tensor of x's shape {tuple(xs.shape)}, got {shape}")
        return out

    def objective(theta: Tensor) -> Tensor:
        return mean_loss(predict(theta), ys)

    theta, iterations, converged = _minimise(objective, start, max_iter=max_iter, tol=tol)
    return FitResult(
        params=theta.numpy(),
        loss=float(objective(theta)),
        residuals=(predict(theta) - ys).detach().numpy(),
        iterations=iterations,
        converged=converged,
        loss_name=spec.name,
    )
