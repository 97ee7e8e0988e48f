"""Any element-wise catalog loss as an XGBoost or LightGBM custom objective.

Gradient boosting takes Newton steps, so a custom objective returns the first and second
derivative of the loss with respect to the raw prediction, per example. Here both come from
``torch.func`` applied to the catalog's loss: exact, vectorised, in float64, and right for any
element-wise loss (the Hessian of a sum of element-wise terms is diagonal, so the gradient of
the summed gradient is exactly the per-example second derivative).

Losses whose second derivative is zero almost everywhere (MAE, quantile, hinge...) give the
booster nothing to step with: they raise unless you opt into the documented surrogate
``hessian="constant"`` (a Hessian of 1, LightGBM's own choice for L1 and quantile).

xgboost and lightgbm are optional (``pip install lossatlas[boost]``); importing this module
does not need them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from lossatlas._catalog import LossSpec, get
from lossatlas._validation import check_choice, check_number, value_checks

__all__ = [
    "elementwise_loss",
    "grad_hess",
    "lightgbm_objective",
    "xgboost_metric",
    "xgboost_objective",
]

Hessian = Literal["exact", "constant"]
_BOOSTABLE_CURVES = ("residual", "binary-logit", "margin")


def elementwise_loss(
    loss: str | LossSpec | Callable[..., Tensor], *, scale: float = 1.0, **params: Any
) -> tuple[Callable[[Tensor, Tensor], Tensor], LossSpec | None]:
    """The per-example loss ``(prediction, label) -> values`` of a catalog or custom loss.

    Labels are the booster's: real values for regression losses, {0, 1} for binary ones
    (turned into {-1, +1} for margin losses such as ``logistic_loss``).

    Args:
        loss: A catalog name, a declaration, or a callable ``f(input, target, *,
            reduction="none", **params)`` that works element-wise.
        scale: A constant factor on the loss (XGBoost's squared error is ``0.5 r^2``: use
            ``scale=0.5`` with ``mse_loss`` to reproduce it exactly).
        **params: The loss's own options (``delta=...``, ``quantile=...``).

    Returns:
        The per-example function and the declaration (``None`` for a plain callable).
    """
    check_number("scale", scale, low=0.0, low_inclusive=False)
    spec: LossSpec | None
    if isinstance(loss, str):
        spec = get(loss)
    elif isinstance(loss, LossSpec):
        spec = loss
    else:
        spec = None
    if spec is not None and spec.curve not in _BOOSTABLE_CURVES:
        raise ValueError(
            f"{spec.name!r} is not an element-wise regression or binary loss (its curve is "
            f"{spec.curve!r}); boosting objectives need one of {', '.join(_BOOSTABLE_CURVES)}"
        )
    function = spec.function if spec is not None else loss
    assert callable(function)  # for the type checker: a str was resolved above
    margin = spec is not None and spec.curve == "margin"

    def per_example(prediction: Tensor, label: Tensor) -> Tensor:
        target = label * 2 - 1 if margin else label
        return function(prediction, target, reduction="none", **params) * scale

    return per_example, spec


def grad_hess(
    loss: str | LossSpec | Callable[..., Tensor],
    prediction: np.ndarray | Tensor,
    label: np.ndarray | Tensor,
    *,
    hessian: Hessian = "exact",
    scale: float = 1.0,
    **params: Any,
) -> tuple[np.ndarray, np.ndarray]:
    r"""First and second derivatives of an element-wise loss w.r.t. each prediction.

    .. math::
        g_i = \frac{\partial \ell(\hat y_i, y_i)}{\partial \hat y_i}, \qquad
        h_i = \frac{\partial^2 \ell(\hat y_i, y_i)}{\partial \hat y_i^2}

    Args:
        loss: A catalog name, declaration, or element-wise callable (see
            :func:`elementwise_loss`).
        prediction: Raw predictions (margins for binary losses), shape ``(n,)``.
        label: Labels, shape ``(n,)``.
        hessian: ``"exact"``, or ``"constant"`` (all ones: the surrogate for losses whose
            second derivative vanishes almost everywhere).
        scale: Constant factor on the loss.
        **params: The loss's options.

    Returns:
        ``(grad, hess)`` as float64 NumPy arrays of shape ``(n,)``.

    Raises:
        ValueError: ``hessian="exact"`` for a loss whose Hessian is zero almost everywhere.

    Example:
        Log-cosh has gradient ``tanh(r)`` and Hessian ``1 / cosh(r)^2``:

        >>> import numpy as np
        >>> from lossatlas.boost import grad_hess
        >>> g, h = grad_hess("log_cosh_loss", np.array([0.0, 1.0]), np.array([0.0, 0.0]))
        >>> np.round(g, 4), np.round(h, 4)
        (array([0.    , 0.7616]), array([1.  , 0.42]))
    """
    check_choice("hessian", hessian, ("exact", "constant"))
    per_example, spec = elementwise_loss(loss, scale=scale, **params)
    if hessian == "exact" and spec is not None and not spec.twice_differentiable:
        raise ValueError(
            f"{spec.name!r} has a second derivative that is zero or undefined almost "
            "everywhere, so a Newton booster cannot step with it; pass hessian='constant' "
            "for the documented surrogate (a Hessian of 1), or choose a twice-differentiable "
            "loss such as pseudo_huber_loss or log_cosh_loss"
        )
    pred = torch.as_tensor(np.asarray(prediction, dtype=np.float64)).reshape(-1)
    target = torch.as_tensor(np.asarray(label, dtype=np.float64)).reshape(-1)
    if pred.shape != target.shape:
        raise ValueError(
            f"label must have one value per prediction ({pred.numel()}), got {target.numel()}"
        )
    per_example(pred, target)  # validate the inputs once, with the value checks on

    def total(p: Tensor) -> Tensor:
        return per_example(p, target).sum()

    with value_checks(False):
        grad = torch.func.grad(total)(pred)
        if hessian == "constant":
            hess = torch.full_like(pred, scale)
        else:
            hess = torch.func.grad(lambda p: torch.func.grad(total)(p).sum())(pred)
    if hessian == "exact" and spec is None and bool((hess == 0).all()) and pred.numel() > 1:
        raise ValueError(
            "the loss's second derivative is zero at every prediction; pass "
            "hessian='constant' for the documented surrogate"
        )
    return grad.numpy(), hess.numpy()


def xgboost_objective(
    loss: str | LossSpec | Callable[..., Tensor],
    *,
    hessian: Hessian = "exact",
    scale: float = 1.0,
    **params: Any,
) -> Callable[[np.ndarray, Any], tuple[np.ndarray, np.ndarray]]:
    """An XGBoost custom objective ``obj(predt, dtrain) -> (grad, hess)`` from a loss.

    Pass it as ``xgboost.train(params, dtrain, obj=...)``; XGBoost then hands it raw margins.

    Args:
        loss: A catalog name, declaration or element-wise callable.
        hessian: ``"exact"`` or the ``"constant"`` surrogate.
        scale: Constant factor (``scale=0.5`` with ``mse_loss`` is ``reg:squarederror``).
        **params: The loss's options.

    Returns:
        The objective function.

    Example:
        >>> from lossatlas.boost import xgboost_objective
        >>> objective = xgboost_objective("pseudo_huber_loss", delta=1.0)
        >>> callable(objective)
        True
    """
    _resolve(loss, hessian, scale, params)

    def objective(predt: np.ndarray, dtrain: Any) -> tuple[np.ndarray, np.ndarray]:
        return grad_hess(loss, predt, dtrain.get_label(), hessian=hessian, scale=scale, **params)

    return objective


def lightgbm_objective(
    loss: str | LossSpec | Callable[..., Tensor],
    *,
    hessian: Hessian = "exact",
    scale: float = 1.0,
    **params: Any,
) -> Callable[[np.ndarray, Any], tuple[np.ndarray, np.ndarray]]:
    """A LightGBM custom objective ``fobj(preds, train_data) -> (grad, hess)`` from a loss.

    Pass it as ``params["objective"]`` (LightGBM >= 4) and set ``boost_from_average`` yourself:
    LightGBM starts custom objectives from 0.

    Args:
        loss: A catalog name, declaration or element-wise callable.
        hessian: ``"exact"`` or the ``"constant"`` surrogate.
        scale: Constant factor (``scale=0.5`` with ``mse_loss`` is LightGBM's ``regression``).
        **params: The loss's options.

    Returns:
        The objective function.

    Example:
        >>> from lossatlas.boost import lightgbm_objective
        >>> callable(lightgbm_objective("log_cosh_loss"))
        True
    """
    _resolve(loss, hessian, scale, params)

    def objective(preds: np.ndarray, train_data: Any) -> tuple[np.ndarray, np.ndarray]:
        return grad_hess(
            loss, preds, train_data.get_label(), hessian=hessian, scale=scale, **params
        )

    return objective


def xgboost_metric(
    loss: str | LossSpec | Callable[..., Tensor], *, scale: float = 1.0, **params: Any
) -> Callable[[np.ndarray, Any], tuple[str, float]]:
    """An XGBoost evaluation metric ``(predt, dmatrix) -> (name, mean loss)`` from a loss.

    Pass it as ``xgboost.train(..., custom_metric=...)``. ``predt`` is what XGBoost gives the
    metric: raw margins when a custom objective is used, transformed predictions otherwise.

    Example:
        >>> from lossatlas.boost import xgboost_metric
        >>> xgboost_metric("log_cosh_loss").__name__
        'log_cosh_loss'
    """
    per_example, spec = elementwise_loss(loss, scale=scale, **params)
    name = spec.name if spec is not None else getattr(loss, "__name__", "loss")

    def metric(predt: np.ndarray, dmatrix: Any) -> tuple[str, float]:
        pred = torch.as_tensor(np.asarray(predt, dtype=np.float64)).reshape(-1)
        label = torch.as_tensor(np.asarray(dmatrix.get_label(), dtype=np.float64)).reshape(-1)
        return name, float(per_example(pred, label).mean())

    metric.__name__ = name
    return metric


def _resolve(
    loss: str | LossSpec | Callable[..., Tensor],
    hessian: str,
    scale: float,
    params: dict[str, Any],
) -> None:
    """Fail when the objective is built, not at the booster's first iteration."""
    probe_prediction, probe_label = np.array([-0.5, 0.25]), np.array([0.0, 1.0])
    grad_hess(
        loss,
        probe_prediction,
        probe_label,
        hessian=hessian,  # type: ignore[arg-type]
        scale=scale,
        **params,
    )
