r"""Quantile (pinball), percentage-error and logarithmic-error regression losses.

``quantile_loss`` is scikit-learn's ``mean_pinball_loss`` (one quantile, or several against a
trailing quantile axis of the prediction), ``mape_loss`` is scikit-learn's
``mean_absolute_percentage_error`` (a fraction, not a percentage), ``smape_loss`` is the
symmetric percentage error, bounded by 2 and defined as 0 where prediction and target are
both 0, and ``msle_loss`` is Keras's mean squared logarithmic error (a relative error for
non-negative targets, values below Keras's epsilon clipped to it).
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import torch
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import NonNegative, OpenUnitInterval, Positive
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_floating,
    check_same_shape,
    check_shape,
    value_checks_enabled,
)
from lossatlas.regression._pair import PAIR_DOCS, prepare_pair

__all__ = ["mape_loss", "msle_loss", "quantile_loss", "smape_loss"]

#: scikit-learn's floor on ``|y|`` in ``mean_absolute_percentage_error`` (float64's epsilon).
SKLEARN_MAPE_EPS = float(torch.finfo(torch.float64).eps)

#: Keras's ``backend.epsilon()``, the floor ``mean_squared_logarithmic_error`` clips both sides to.
KERAS_EPSILON = 1e-7


#: One quantile in (0, 1), or a 1-D tensor of them (one per entry of the input's last axis).
Quantile = OpenUnitInterval | Tensor


def _check_quantile_tensor(quantile: Tensor) -> None:
    """A tensor of quantiles: 1-D, floating, not empty, entries in (0, 1) (a value check)."""
    check_floating("quantile", quantile)
    check_shape("quantile", quantile, (None,), what="(one quantile per entry of the last axis)")
    if quantile.numel() == 0:
        raise ValueError("quantile must hold at least one quantile, got an empty tensor")
    if value_checks_enabled():
        bad = ~((quantile > 0) & (quantile < 1))
        if bool(bad.any()):
            position = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"quantile must hold values in (0, 1), got {float(quantile[position])!r} "
                f"at position {position}"
            )


def _quantile_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    example = ex.residual_example(generator, batch=batch, dtype=dtype, scale=scale)
    return Example(example.args, {"quantile": 0.3})


def _quantile_perfect(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    example = ex.residual_perfect(generator, batch=batch, dtype=dtype, scale=scale)
    return Example(example.args, {"quantile": 0.3})


def _nonzero_targets(generator: torch.Generator, batch: int, dtype: torch.dtype) -> Tensor:
    """Targets with ``0.5 <= |y| < 2`` (percentage errors need targets away from 0)."""
    magnitude = ex.uniform(generator, batch, 3, dtype=torch.float64, low=0.5, high=2.0)
    return (magnitude * ex.sign_labels(generator, batch, 3, dtype=torch.float64)).to(dtype)


def _percentage_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    target = _nonzero_targets(generator, batch, dtype)
    return Example((ex.normal(generator, batch, 3, dtype=dtype, scale=scale), target))


def _percentage_perfect(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    target = _nonzero_targets(generator, batch, dtype)
    return Example((target.clone(), target))


def _counts_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    """Non-negative predictions (``scale`` multiplies them) and targets, for MSLE."""
    input = ex.uniform(generator, batch, 3, dtype=dtype, low=0.1, high=3.0 * scale)
    return Example((input, ex.uniform(generator, batch, 3, dtype=dtype, low=0.0, high=3.0)))


def _counts_perfect(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    target = ex.uniform(generator, batch, 3, dtype=dtype, low=0.0, high=3.0 * scale)
    return Example((target.clone(), target))


_ERRORS = Family(
    tasks=("regression",),
    input_kind="predictions",
    target_kind="real values",
    target_type=TargetKind.REAL,
    properties={"non_negative", "zero_at_perfect"},
    same_shape=(0, 1),
    **PAIR_DOCS,
)

# MAPE and SMAPE have no residual curve: with a zero target they are degenerate (|x| / eps and
# the constant 2).

# --------------------------------------------------------------------------- functionals


@_ERRORS.loss(
    input_kind="predictions (one per quantile)",
    formula=r"\max\left(q (y - x),\, (q - 1)(y - x)\right)",
    examples=_quantile_example,
    perfect=_quantile_perfect,
    curve="residual",
    use_when="prediction intervals; a percentile, not the mean",
    peers={"scikit-learn": "metrics.mean_pinball_loss(alpha=quantile): same mean"},
)
def quantile_loss(
    input: Tensor,
    target: Tensor,
    *,
    quantile: Quantile = 0.5,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Quantile (pinball) loss, whose minimiser is the ``quantile``-th conditional quantile.

    Under-prediction (``y > x``) costs ``q`` per unit and over-prediction ``1 - q``, so
    ``q = 0.9`` pushes predictions up to the 90th percentile. ``q = 0.5`` is half the MAE.
    Several quantiles at once: pass a 1-D tensor of ``Q`` quantiles and an input whose last
    axis has ``Q`` entries (one prediction per quantile); the target then has the input's shape
    without that axis and is compared with every one of them.

    .. math::
        \ell_n = \max\left(q\,(y_n - x_n),\; (q - 1)(y_n - x_n)\right)

    Args:
        input: Predictions, any shape; ``(*, Q)`` with a tensor of ``Q`` quantiles.
        target: Targets, the input's shape; ``(*)`` with a tensor of quantiles.
        quantile: A float in ``(0, 1)`` or a 1-D floating tensor of them.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            elements of the input (samples times quantiles), so for one quantile it equals
            scikit-learn's ``mean_pinball_loss(target, input, alpha=quantile)``.

    Raises:
        TypeError: Non-floating tensors, a quantile that is neither a number nor a tensor.
        ValueError: A quantile outside (0, 1), shapes that do not match, an unknown reduction.

    Example:
        >>> target = torch.tensor([1.0, 2.0, 3.0])
        >>> la.quantile_loss(torch.tensor([2.0, 2.0, 2.0]), target, quantile=0.9)
        tensor(0.3333)
        >>> two = torch.tensor([[0.0, 2.0], [2.0, 2.0], [2.0, 4.0]])
        >>> la.quantile_loss(two, target, quantile=torch.tensor([0.1, 0.9]), reduction="none")
        tensor([[0.1000, 0.1000],
                [0.0000, 0.0000],
                [0.1000, 0.1000]])

    References:
        R. Koenker and G. Bassett, "Regression Quantiles", Econometrica 46(1), 1978,
        https://doi.org/10.2307/1913643

        scikit-learn metrics,
        https://scikit-learn.org/stable/modules/model_evaluation.html
    """
    check_floating("input", input)
    check_floating("target", target)
    if isinstance(quantile, Tensor):
        _check_quantile_tensor(quantile)
        (count,) = quantile.shape
        if input.dim() == 0 or input.shape[-1] != count:
            raise ValueError(
                f"input must have a last axis of {count} entries (one per quantile) for "
                f"{count} quantiles, got shape {tuple(input.shape)}"
            )
        if target.shape != input.shape[:-1]:
            raise ValueError(
                f"target must have the input's shape without its quantile axis "
                f"{tuple(input.shape[:-1])}, got {tuple(target.shape)} (lossatlas does not "
                f"broadcast; reshape explicitly)"
            )
        dtype = compute_dtype(input, target, quantile)
        q: Tensor | float = upcast(quantile, dtype).to(input.device)
        residual = upcast(target, dtype).unsqueeze(-1) - upcast(input, dtype)
    else:
        check_same_shape("input", input, "target", target)
        dtype = compute_dtype(input, target)
        q = float(quantile)
        residual = upcast(target, dtype) - upcast(input, dtype)
    loss = torch.where(residual >= 0, q * residual, (q - 1.0) * residual)
    return reduce_loss(loss, reduction)


@_ERRORS.loss(
    target_kind="real values (away from 0)",
    formula=r"\frac{|x - y|}{\max(|y|, \epsilon)}",
    examples=_percentage_example,
    perfect=_percentage_perfect,
    use_when="relative errors of positive targets away from 0",
    peers={"scikit-learn": "metrics.mean_absolute_percentage_error: same mean and eps"},
)
def mape_loss(
    input: Tensor,
    target: Tensor,
    *,
    eps: Positive = SKLEARN_MAPE_EPS,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Mean absolute percentage error as a fraction (scikit-learn's definition).

    The error relative to the target. Where ``|y| < eps`` the denominator is ``eps``
    (scikit-learn's guard: float64's machine epsilon), so a zero target gives a huge but finite
    loss rather than ``inf``. Multiply by 100 for a percentage. Not
    symmetric: over-predictions are unbounded, under-predictions of a positive target cost at
    most 1.

    .. math::
        \ell_n = \frac{|x_n - y_n|}{\max(|y_n|, \epsilon)}

    Args:
        eps: Floor of the denominator, ``> 0``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            elements and equals ``sklearn.metrics.mean_absolute_percentage_error``.

    Example:
        >>> la.mape_loss(torch.tensor([2.5, 0.0, 2.0, 8.0]), torch.tensor([3.0, -0.5, 2.0, 7.0]))
        tensor(0.3274)

    References:
        R. J. Hyndman and A. B. Koehler, "Another look at measures of forecast accuracy",
        International Journal of Forecasting 22(4), 2006,
        https://doi.org/10.1016/j.ijforecast.2006.03.001

        scikit-learn metrics,
        https://scikit-learn.org/stable/modules/model_evaluation.html
    """
    input, target = prepare_pair(input, target)
    loss = (input - target).abs() / target.abs().clamp_min(eps)
    return reduce_loss(loss, reduction)


@_ERRORS.loss(
    formula=r"\frac{2 |x - y|}{|x| + |y|}",
    properties={"non_negative", "zero_at_perfect", "symmetric", "bounded"},
    examples=ex.residual_example,
    perfect=_percentage_perfect,
    use_when="a bounded relative error (forecasting competitions)",
)
def smape_loss(input: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""Symmetric mean absolute percentage error, in [0, 2], with 0/0 counted as 0.

    The absolute error relative to the mean magnitude of prediction and target. Bounded by 2
    (reached when the two have opposite signs or one is 0) and symmetric in its arguments. Where
    both are exactly 0 the error is 0 and so is its gradient (never NaN). Multiply by 100 for
    a percentage.

    .. math::
        \ell_n = \frac{2\,|x_n - y_n|}{|x_n| + |y_n|}, \qquad \ell_n = 0 \text{ if }
        x_n = y_n = 0

    Returns:
        Values in ``[0, 2]``, of the input's shape for ``"none"``, else a scalar.

    Example:
        >>> x, y = torch.tensor([1.0, 0.0, 3.0, -1.0]), torch.tensor([2.0, 0.0, 3.0, 1.0])
        >>> la.smape_loss(x, y, reduction="none")
        tensor([0.6667, 0.0000, 0.0000, 2.0000])

    References:
        S. Makridakis, "Accuracy measures: theoretical and practical concerns", International
        Journal of Forecasting 9(4), 1993, https://doi.org/10.1016/0169-2070(93)90079-3

        R. J. Hyndman and A. B. Koehler, "Another look at measures of forecast accuracy",
        International Journal of Forecasting 22(4), 2006,
        https://doi.org/10.1016/j.ijforecast.2006.03.001
    """
    input, target = prepare_pair(input, target)
    denominator = input.abs() + target.abs()
    zero = denominator == 0
    safe = torch.where(zero, torch.ones_like(denominator), denominator)
    ratio = 2.0 * (input - target).abs() / safe
    return reduce_loss(torch.where(zero, torch.zeros_like(ratio), ratio), reduction)


@_ERRORS.loss(
    target_kind="non-negative real values (counts, prices)",
    formula=r"\left(\log(1 + \max(x, \epsilon)) - \log(1 + \max(y, \epsilon))\right)^2",
    properties={"non_negative", "zero_at_perfect", "symmetric"},
    examples=_counts_example,
    perfect=_counts_perfect,
    use_when="positive targets spanning magnitudes; relative errors",
    peers={
        "Keras": "losses.mean_squared_logarithmic_error: same clip at epsilon = 1e-7 on both "
        "sides; it averages the last axis only, the 'mean' here is over every element",
        "scikit-learn": "metrics.mean_squared_log_error: no clip (log1p of values in (-1, 0)), "
        "an error for values <= -1; equal for values >= eps",
    },
)
def msle_loss(
    input: Tensor,
    target: Tensor,
    *,
    eps: NonNegative = KERAS_EPSILON,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Mean squared logarithmic error, Keras's definition (values clipped at ``eps``).

    The squared difference of ``log(1 + x)`` and ``log(1 + y)``: a relative error, so an
    under-prediction of a large target costs about as much as the same ratio of a small one,
    and under-prediction costs more than over-prediction by the same amount. As in Keras
    (``ops.maximum(y_pred, epsilon)``, ``ops.maximum(y_true, epsilon)`` with
    ``epsilon = 1e-7``), both sides are clipped below at ``eps``: negative values are not an
    error, they count as ``eps``, and a prediction below ``eps`` gets **no gradient** (give the
    model a non-negative head, such as ``softplus`` or ``exp``). ``eps=0`` clips at 0.

    .. math::
        \ell_n = \left(\log(1 + \max(x_n, \epsilon)) - \log(1 + \max(y_n, \epsilon))\right)^2

    Args:
        eps: The floor of both sides, ``>= 0`` (Keras's ``backend.epsilon()``).
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            elements: Keras's value for inputs of one sample (Keras averages the last axis, then
            its reduction the samples).

    Returns:
        Values ``>= 0``: the input's shape for ``"none"``, else a scalar.

    Example:
        >>> target = torch.tensor([[0.0, 1.0], [0.0, 0.0]])  # Keras's documented example
        >>> la.msle_loss(torch.tensor([[1.0, 1.0], [1.0, 0.0]]), target)
        tensor(0.2402)

    References:
        Keras, ``keras.losses.mean_squared_logarithmic_error``,
        https://keras.io/api/losses/regression_losses/

        scikit-learn metrics (``mean_squared_log_error``),
        https://scikit-learn.org/stable/modules/model_evaluation.html
    """
    input, target = prepare_pair(input, target)
    difference = torch.log1p(input.clamp_min(eps)) - torch.log1p(target.clamp_min(eps))
    return reduce_loss(difference.square(), reduction)


# --------------------------------------------------------------------------- modules


class QuantileLoss(LossModule, functional=quantile_loss):
    """Module form of :func:`lossatlas.quantile_loss`; a tensor of quantiles is a buffer."""


class MAPELoss(LossModule, functional=mape_loss):
    """Module form of :func:`lossatlas.mape_loss`."""


class MSLELoss(LossModule, functional=msle_loss):
    """Module form of :func:`lossatlas.msle_loss`."""


class SMAPELoss(LossModule, functional=smape_loss):
    """Module form of :func:`lossatlas.smape_loss`."""
