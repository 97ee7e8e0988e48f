"""Binary margin losses: functions of the margin ``y f`` for scores and {-1, +1} labels.

Each takes real scores ``f`` (any sign, not probabilities) and labels ``y`` in {-1, +1}, and is
a function of the margin ``m = y f`` alone: hinge ``max(0, 1 - m)`` (SVM), squared hinge,
perceptron ``max(0, -m)``, exponential ``exp(-m)`` (AdaBoost), logistic ``log(1 + exp(-m))``
(logistic regression, torch's ``soft_margin_loss``) and the 0-1 loss (a metric). ``lossatlas
plot`` draws them against the margin. torch's multi-class and multi-label hinges are in
:mod:`lossatlas.classification.multi_margin`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import NonNegative
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_floating,
    check_same_shape,
    check_signs,
    check_tensor,
    describe,
)

__all__ = [
    "exponential_loss",
    "hinge_loss",
    "logistic_loss",
    "perceptron_loss",
    "squared_hinge_loss",
    "zero_one_loss",
]


# --------------------------------------------------------------------------- shared checks


def _check_sign_pair(input: Tensor, target: Tensor) -> None:
    """Scores (floating) and {-1, +1} labels (floating or integer) of exactly the same shape."""
    check_floating("input", input)
    check_tensor("target", target)
    if target.dtype == torch.bool or target.is_complex():
        raise TypeError(
            f"target must be a real tensor of labels in {{-1, +1}}, got {describe(target)}"
        )
    check_same_shape("input", input, "target", target)
    check_signs("target", target)


def _margin(input: Tensor, target: Tensor) -> Tensor:
    """``y * f`` of checked scores and labels, in the compute dtype (float32 for half precision)."""
    _check_sign_pair(input, target)
    dtype = compute_dtype(input, target)
    return target.to(dtype) * upcast(input, dtype)


# --------------------------------------------------------------------------- declarations


def _sign_perfect(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    """Correctly signed scores with margin ``1 + scale`` (> 1): zero hinge-type loss."""
    labels = ex.sign_labels(generator, batch, 3, dtype=dtype)
    return Example((labels * (1.0 + scale), labels))


#: The docstring text of losses on scores and {-1, +1} labels (here and in ``multi_margin.py``).
SIGN_DOCS = {
    "args": {
        "input": "Real scores ``f``, any shape.",
        "target": "Labels in {-1, +1} (floating or integer), same shape.",
        "margin": "The required margin, ``>= 0``.",
        "reduction": '``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of'
        " elements (0 for an empty input).",
    },
    "returns": 'Same shape as ``input`` for ``"none"``, else a scalar; float32 for half precision.',
    "raises": {
        "TypeError": "Non-floating ``input``, a boolean or complex ``target``.",
        "ValueError": "Shapes that differ, a label other than -1 or +1, a bad option.",
    },
}

_MARGIN = Family(
    tasks=("binary",),
    input_kind="scores",
    target_kind="labels in {-1, +1}",
    target_type=TargetKind.SIGNS,
    examples=ex.sign_scores,
    same_shape=(0, 1),
    curve="margin",
    **SIGN_DOCS,
    example="""
        >>> scores = torch.tensor([2.0, 0.5, -0.5, 0.0])
        >>> labels = torch.tensor([1.0, 1.0, 1.0, -1.0])
    """,
)

#: The margin losses of boosting's analysis (Friedman et al.), which both cite.
_BOOSTING = _MARGIN.derive(
    references=(
        'J. Friedman, T. Hastie, R. Tibshirani, "Additive Logistic Regression: a Statistical'
        ' View of Boosting", The Annals of Statistics 28(2), 2000,'
        " https://doi.org/10.1214/aos/1016218223",
    ),
)

# --------------------------------------------------------------------------- losses


@_MARGIN.loss(
    formula=r"\max(0, m - y f)",
    properties={"non_negative", "zero_at_perfect"},
    perfect=_sign_perfect,
    use_when="linear SVM-style max-margin training",
    peers={"scikit-learn": "metrics.hinge_loss: same mean for margin=1"},
)
def hinge_loss(
    input: Tensor, target: Tensor, *, margin: NonNegative = 1.0, reduction: Reduction = "mean"
) -> Tensor:
    r"""Hinge loss of the SVM: ``max(0, margin - y f)`` for scores and {-1, +1} labels.

    Zero once a sample is on the right side with room ``margin`` to spare; linear in the
    violation otherwise. ``margin=0`` is :func:`perceptron_loss`. The gradient at the kink
    ``y f = margin`` is taken as 0 (torch's ``relu`` convention).

    .. math::
        \ell_n = \max(0,\ \mathrm{margin} - y_n f_n)

    Example:
        >>> la.hinge_loss(scores, labels, reduction="none")
        tensor([0.0000, 0.5000, 1.5000, 1.0000])

    References:
        C. Cortes, V. Vapnik, "Support-Vector Networks", Machine Learning 20, 1995,
        https://doi.org/10.1007/BF00994018
    """
    return reduce_loss(F.relu(margin - _margin(input, target)), reduction)


@_MARGIN.loss(
    formula=r"\max(0, m - y f)^2",
    properties={"non_negative", "zero_at_perfect"},
    perfect=_sign_perfect,
    twice_differentiable=True,
    use_when="a hinge with a continuous gradient (L2-SVM)",
)
def squared_hinge_loss(
    input: Tensor, target: Tensor, *, margin: NonNegative = 1.0, reduction: Reduction = "mean"
) -> Tensor:
    r"""Squared hinge loss ``max(0, margin - y f)^2`` (the L2-SVM loss), differentiable everywhere.

    Same zero set as :func:`hinge_loss`, but quadratic in the violation, so its gradient is
    continuous (``-2 y max(0, margin - y f)``) and violations weigh more as they grow.

    .. math::
        \ell_n = \max(0,\ \mathrm{margin} - y_n f_n)^2

    Example:
        >>> la.squared_hinge_loss(scores, labels, reduction="none")
        tensor([0.0000, 0.2500, 2.2500, 1.0000])

    References:
        Y. Tang, "Deep Learning using Linear Support Vector Machines", ICML 2013 Workshop on
        Representation Learning, https://arxiv.org/abs/1306.0239
    """
    return reduce_loss(F.relu(margin - _margin(input, target)).square(), reduction)


@_MARGIN.loss(
    formula=r"\max(0, -y f)",
    properties={"non_negative", "zero_at_perfect"},
    perfect=_sign_perfect,
    use_when="any separating boundary will do; no margin",
)
def perceptron_loss(input: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""Perceptron loss ``max(0, -y f)``: zero for every correctly signed score.

    The hinge with no margin (``hinge_loss(margin=0)``): a correct decision earns nothing more
    however far it is from the boundary, so it does not maximise the margin. ``y f = 0`` costs 0
    with gradient 0.

    .. math::
        \ell_n = \max(0,\ -y_n f_n)

    Example:
        >>> la.perceptron_loss(scores, labels, reduction="none")
        tensor([0.0000, 0.0000, 0.5000, 0.0000])

    References:
        F. Rosenblatt, "The Perceptron: A Probabilistic Model for Information Storage and
        Organization in the Brain", Psychological Review 65(6), 1958,
        https://doi.org/10.1037/h0042519
    """
    return reduce_loss(F.relu(-_margin(input, target)), reduction)


# exp(-y f) exceeds every float once -y f > ~88.7 (float32): the harness's scale-1e4 probe
# cannot be finite for this loss (documented: inf, never a clamped stand-in).
@_BOOSTING.loss(
    formula=r"e^{-y f}",
    properties={"non_negative"},
    twice_differentiable=True,
    finite_at_extreme=False,
    use_when="boosting (AdaBoost); clean labels only",
)
def exponential_loss(input: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""Exponential loss ``exp(-y f)``, the loss AdaBoost minimises.

    Every sample costs something, and a misclassified one costs exponentially much in its
    margin, which makes the loss very sensitive to outliers and label noise.

    Overflow, by design: the value is computed exactly as ``exp(-y f)`` in the compute dtype
    (float32 for half-precision inputs, so float16 scores do not overflow at ``-y f > 11``).
    Where the true value exceeds the largest float -- ``-y f`` above about 88.7 in float32 and
    709.8 in float64 -- the loss and its gradient are ``inf``; nothing is clamped, because any
    finite stand-in would be a different loss. Use :func:`logistic_loss` (which grows only
    linearly) when scores can be that wrong.

    .. math::
        \ell_n = \exp(-y_n f_n)

    Example:
        >>> la.exponential_loss(scores, labels, reduction="none")
        tensor([0.1353, 0.6065, 1.6487, 1.0000])
    """
    return reduce_loss(torch.exp(-_margin(input, target)), reduction)


@_BOOSTING.loss(
    formula=r"\log(1 + e^{-y f})",
    properties={"non_negative"},
    twice_differentiable=True,
    oracle=F.soft_margin_loss,
    use_when="logistic regression on {-1, +1} labels",
    peers={
        "torch": "F.soft_margin_loss: same value; overflows to inf at -y f > 88.7",
        "scikit-learn": "metrics.log_loss on (y + 1) / 2 and sigmoid(f): same mean",
    },
)
def logistic_loss(input: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""Logistic loss ``log(1 + exp(-y f))`` for scores and {-1, +1} labels.

    The negative log-likelihood of logistic regression written in the margin: with
    ``t = (y + 1) / 2`` it equals ``binary_cross_entropy_with_logits(f, t)``, and it has the
    value of torch's ``soft_margin_loss``. Computed as ``softplus(-y f)``, so it is finite (and
    its gradient in [-1, 1]) for scores of any size.

    .. math::
        \ell_n = \log\left(1 + e^{-y_n f_n}\right)

    Example:
        >>> la.logistic_loss(scores, labels, reduction="none")
        tensor([0.1269, 0.4741, 0.9741, 0.6931])

    References:
        T. Hastie, R. Tibshirani, J. Friedman, *The Elements of Statistical Learning*, 2nd ed.,
        Springer, 2009, section 10.6.
    """
    return reduce_loss(F.softplus(-_margin(input, target)), reduction)


@_MARGIN.loss(
    formula=r"\mathbb{1}[y f \le 0]",
    properties={"non_negative", "zero_at_perfect", "bounded"},
    perfect=_sign_perfect,
    differentiable=False,
    use_when="reporting the error rate (a metric, no gradient)",
    peers={"scikit-learn": "metrics.zero_one_loss: a score of 0 counts as an error here"},
)
def zero_one_loss(input: Tensor, target: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""The 0-1 loss: 1 for a wrongly signed score, 0 for a right one (a metric, not trainable).

    Tie rule: a score of exactly 0 is no decision and counts as an error (``y f <= 0`` costs
    1), so an all-zero predictor scores 1, not 0.5. ``"mean"`` is the error rate. The result
    carries no gradient (it is piecewise constant); the catalog declares it
    ``differentiable=False``.

    .. math::
        \ell_n = \mathbb{1}\left[y_n f_n \le 0\right]

    Returns:
        Same shape as ``input`` for ``"none"``, else a scalar, in the scores' floating dtype
        (float32 for half precision); it does not require grad.

    Example:
        >>> la.zero_one_loss(scores, labels, reduction="none")
        tensor([0., 0., 1., 1.])
        >>> la.zero_one_loss(scores, labels)
        tensor(0.5000)

    References:
        T. Hastie, R. Tibshirani, J. Friedman, *The Elements of Statistical Learning*, 2nd ed.,
        Springer, 2009, section 10.6.
    """
    margin = _margin(input.detach(), target)
    # A NaN score is neither right nor wrong: it stays NaN (``NaN <= 0`` alone would say right).
    wrong = (margin <= 0).to(margin.dtype)
    return reduce_loss(torch.where(margin.isnan(), margin, wrong), reduction)


# --------------------------------------------------------------------------- modules


class HingeLoss(LossModule, functional=hinge_loss):
    """Module form of :func:`lossatlas.hinge_loss`."""


class SquaredHingeLoss(LossModule, functional=squared_hinge_loss):
    """Module form of :func:`lossatlas.squared_hinge_loss`."""


class PerceptronLoss(LossModule, functional=perceptron_loss):
    """Module form of :func:`lossatlas.perceptron_loss`."""


class ExponentialLoss(LossModule, functional=exponential_loss):
    """Module form of :func:`lossatlas.exponential_loss`."""


class LogisticLoss(LossModule, functional=logistic_loss):
    """Module form of :func:`lossatlas.logistic_loss`."""


class ZeroOneLoss(LossModule, functional=zero_one_loss):
    """Module form of :func:`lossatlas.zero_one_loss` (a metric: no gradient)."""
