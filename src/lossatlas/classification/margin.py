"""Margin losses: binary losses of the margin ``y f``, and torch's multi-label / multi-class hinges.

The binary family takes real scores ``f`` (any sign, not probabilities) and labels ``y`` in
{-1, +1}, and is a function of the margin ``m = y f`` alone: hinge ``max(0, 1 - m)`` (SVM),
squared hinge, perceptron ``max(0, -m)``, exponential ``exp(-m)`` (AdaBoost), logistic
``log(1 + exp(-m))`` (logistic regression, torch's ``soft_margin_loss``) and the 0-1 loss (a
metric). ``lossatlas plot`` draws them against the margin.

The torch-parity losses (``soft_margin_loss``, ``multilabel_soft_margin_loss``,
``multilabel_margin_loss``, ``multi_margin_loss``) equal ``torch.nn.functional`` where torch is
finite; lossatlas adds exact-shape and label checks, float32 accumulation of half-precision
inputs, an empty ``"mean"`` of 0, and (for ``soft_margin_loss``) a softplus form that stays
finite where torch's ``log(1 + exp(-y x))`` overflows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, LossSpec, declare
from lossatlas._module import LossModule
from lossatlas._reduction import check_reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_class_indices,
    check_class_weight,
    check_floating,
    check_index_target,
    check_integer,
    check_number,
    check_probabilities,
    check_same_shape,
    check_shape,
    check_signs,
    check_tensor,
    describe,
    value_checks_enabled,
)

__all__ = [
    "exponential_loss",
    "hinge_loss",
    "logistic_loss",
    "multi_margin_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "perceptron_loss",
    "soft_margin_loss",
    "squared_hinge_loss",
    "zero_one_loss",
]

_MARGIN_REFS = (
    "T. Hastie, R. Tibshirani, J. Friedman, The Elements of Statistical Learning, 2nd ed., "
    "Springer, 2009, section 10.6 (loss functions of the margin y f)",
)


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
    """``y * f`` in the compute dtype (float32 for half precision inputs)."""
    dtype = compute_dtype(input, target)
    return target.to(dtype) * upcast(input, dtype)


# --------------------------------------------------------------------------- binary margin losses


def hinge_loss(
    input: Tensor, target: Tensor, *, margin: float = 1.0, reduction: str = "mean"
) -> Tensor:
    r"""Hinge loss of the SVM: ``max(0, margin - y f)`` for scores and {-1, +1} labels.

    Zero once a sample is on the right side with room ``margin`` to spare; linear in the
    violation otherwise. ``margin=0`` is :func:`perceptron_loss`. The gradient at the kink
    ``y f = margin`` is taken as 0 (torch's ``relu`` convention).

    .. math::
        \ell_n = \max(0,\ \mathrm{margin} - y_n f_n)

    Args:
        input: Real scores ``f``, any shape.
        target: Labels in {-1, +1} (floating or integer), same shape.
        margin: The required margin, ``>= 0``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            elements (0 for an empty input).

    Returns:
        Same shape as ``input`` for ``"none"``, else a scalar; float32 for half precision.

    Raises:
        TypeError: Non-floating ``input``, a boolean or complex ``target``.
        ValueError: Shapes that differ, a label other than -1 or +1, ``margin < 0``.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> scores = torch.tensor([2.0, 0.5, -0.5, 0.0])
        >>> labels = torch.tensor([1.0, 1.0, 1.0, -1.0])
        >>> la.hinge_loss(scores, labels, reduction="none")
        tensor([0.0000, 0.5000, 1.5000, 1.0000])

    References:
        C. Cortes, V. Vapnik, "Support-Vector Networks", Machine Learning 20, 1995,
        https://doi.org/10.1007/BF00994018
    """
    check_reduction(reduction)
    check_number("margin", margin, low=0.0)
    _check_sign_pair(input, target)
    return reduce_loss(F.relu(margin - _margin(input, target)), reduction)


def squared_hinge_loss(
    input: Tensor, target: Tensor, *, margin: float = 1.0, reduction: str = "mean"
) -> Tensor:
    r"""Squared hinge loss ``max(0, margin - y f)^2`` (the L2-SVM loss), differentiable everywhere.

    Same zero set as :func:`hinge_loss`, but quadratic in the violation, so its gradient is
    continuous (``-2 y max(0, margin - y f)``) and violations weigh more as they grow.

    .. math::
        \ell_n = \max(0,\ \mathrm{margin} - y_n f_n)^2

    Args:
        input: Real scores ``f``, any shape.
        target: Labels in {-1, +1}, same shape.
        margin: The required margin, ``>= 0``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            elements.

    Returns:
        Same shape as ``input`` for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating ``input``, a boolean or complex ``target``.
        ValueError: Shapes that differ, a label other than -1 or +1, ``margin < 0``.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> scores = torch.tensor([2.0, 0.5, -0.5, 0.0])
        >>> labels = torch.tensor([1.0, 1.0, 1.0, -1.0])
        >>> la.squared_hinge_loss(scores, labels, reduction="none")
        tensor([0.0000, 0.2500, 2.2500, 1.0000])

    References:
        Y. Tang, "Deep Learning using Linear Support Vector Machines", ICML 2013 Workshop on
        Representation Learning, https://arxiv.org/abs/1306.0239
    """
    check_reduction(reduction)
    check_number("margin", margin, low=0.0)
    _check_sign_pair(input, target)
    return reduce_loss(F.relu(margin - _margin(input, target)).square(), reduction)


def perceptron_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""Perceptron loss ``max(0, -y f)``: zero for every correctly signed score.

    The hinge with no margin (``hinge_loss(margin=0)``): a correct decision earns nothing more
    however far it is from the boundary, so it does not maximise the margin. ``y f = 0`` costs 0
    with gradient 0.

    .. math::
        \ell_n = \max(0,\ -y_n f_n)

    Args:
        input: Real scores ``f``, any shape.
        target: Labels in {-1, +1}, same shape.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            elements.

    Returns:
        Same shape as ``input`` for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating ``input``, a boolean or complex ``target``.
        ValueError: Shapes that differ, a label other than -1 or +1.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> scores = torch.tensor([2.0, 0.5, -0.5, 0.0])
        >>> labels = torch.tensor([1.0, 1.0, 1.0, -1.0])
        >>> la.perceptron_loss(scores, labels, reduction="none")
        tensor([0.0000, 0.0000, 0.5000, 0.0000])

    References:
        F. Rosenblatt, "The Perceptron: A Probabilistic Model for Information Storage and
        Organization in the Brain", Psychological Review 65(6), 1958,
        https://doi.org/10.1037/h0042519
    """
    check_reduction(reduction)
    _check_sign_pair(input, target)
    return reduce_loss(F.relu(-_margin(input, target)), reduction)


def exponential_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
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

    Args:
        input: Real scores ``f``, any shape.
        target: Labels in {-1, +1}, same shape.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            elements.

    Returns:
        Same shape as ``input`` for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating ``input``, a boolean or complex ``target``.
        ValueError: Shapes that differ, a label other than -1 or +1.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> scores = torch.tensor([2.0, 0.5, -0.5, 0.0])
        >>> labels = torch.tensor([1.0, 1.0, 1.0, -1.0])
        >>> la.exponential_loss(scores, labels, reduction="none")
        tensor([0.1353, 0.6065, 1.6487, 1.0000])

    References:
        J. Friedman, T. Hastie, R. Tibshirani, "Additive Logistic Regression: a Statistical View
        of Boosting", The Annals of Statistics 28(2), 2000,
        https://doi.org/10.1214/aos/1016218223
    """
    check_reduction(reduction)
    _check_sign_pair(input, target)
    return reduce_loss(torch.exp(-_margin(input, target)), reduction)


def logistic_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""Logistic loss ``log(1 + exp(-y f))`` for scores and {-1, +1} labels.

    The negative log-likelihood of logistic regression written in the margin: with
    ``t = (y + 1) / 2`` it equals ``binary_cross_entropy_with_logits(f, t)``, and it has the
    value of torch's ``soft_margin_loss``. Computed as ``softplus(-y f)``, so it is finite (and
    its gradient in [-1, 1]) for scores of any size.

    .. math::
        \ell_n = \log\left(1 + e^{-y_n f_n}\right)

    Args:
        input: Real scores ``f``, any shape.
        target: Labels in {-1, +1}, same shape.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            elements.

    Returns:
        Same shape as ``input`` for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating ``input``, a boolean or complex ``target``.
        ValueError: Shapes that differ, a label other than -1 or +1.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> scores = torch.tensor([2.0, 0.5, -0.5, 0.0])
        >>> labels = torch.tensor([1.0, 1.0, 1.0, -1.0])
        >>> la.logistic_loss(scores, labels, reduction="none")
        tensor([0.1269, 0.4741, 0.9741, 0.6931])

    References:
        J. Friedman, T. Hastie, R. Tibshirani, "Additive Logistic Regression: a Statistical View
        of Boosting", The Annals of Statistics 28(2), 2000,
        https://doi.org/10.1214/aos/1016218223
    """
    check_reduction(reduction)
    _check_sign_pair(input, target)
    return reduce_loss(F.softplus(-_margin(input, target)), reduction)


def zero_one_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""The 0-1 loss: 1 for a wrongly signed score, 0 for a right one (a metric, not trainable).

    Tie rule: a score of exactly 0 is no decision and counts as an error (``y f <= 0`` costs
    1), so an all-zero predictor scores 1, not 0.5. ``"mean"`` is the error rate. The result
    carries no gradient (it is piecewise constant); the catalog declares it
    ``differentiable=False``.

    .. math::
        \ell_n = \mathbb{1}\left[y_n f_n \le 0\right]

    Args:
        input: Real scores ``f``, any shape.
        target: Labels in {-1, +1}, same shape.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            elements (the error rate; 0 for an empty input).

    Returns:
        Same shape as ``input`` for ``"none"``, else a scalar, in the scores' floating dtype
        (float32 for half precision); it does not require grad.

    Raises:
        TypeError: Non-floating ``input``, a boolean or complex ``target``.
        ValueError: Shapes that differ, a label other than -1 or +1.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> scores = torch.tensor([2.0, 0.5, -0.5, 0.0])
        >>> labels = torch.tensor([1.0, 1.0, 1.0, -1.0])
        >>> la.zero_one_loss(scores, labels, reduction="none")
        tensor([0., 0., 1., 1.])
        >>> la.zero_one_loss(scores, labels)
        tensor(0.5000)

    References:
        T. Hastie, R. Tibshirani, J. Friedman, *The Elements of Statistical Learning*, 2nd ed.,
        Springer, 2009, section 10.6.
    """
    check_reduction(reduction)
    _check_sign_pair(input, target)
    margin = _margin(input.detach(), target)
    return reduce_loss((margin <= 0).to(margin.dtype), reduction)


# --------------------------------------------------------------------------- torch parity


def soft_margin_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""Torch's two-class logistic loss ``log(1 + exp(-y x))`` on scores and {-1, +1} labels.

    The value of ``torch.nn.functional.soft_margin_loss`` (the same loss as
    :func:`logistic_loss`, under torch's name), computed as ``softplus(-y x)``: torch's kernel
    evaluates ``log1p(exp(-y x))`` and returns ``inf`` (and a NaN gradient) once ``-y x``
    passes about 88.7 in float32; this stays finite.

    .. math::
        \ell_n = \log\left(1 + e^{-y_n x_n}\right)

    Args:
        input: Real scores, any shape.
        target: Labels in {-1, +1}, same shape.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            elements.

    Returns:
        Same shape as ``input`` for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating ``input``, a boolean or complex ``target``.
        ValueError: Shapes that differ, a label other than -1 or +1.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> la.soft_margin_loss(torch.tensor([2.0, -100.0]), torch.tensor([1.0, 1.0]),
        ...                     reduction="none")
        tensor([  0.1269, 100.0000])

    References:
        torch.nn.functional.soft_margin_loss,
        https://pytorch.org/docs/stable/generated/torch.nn.SoftMarginLoss.html
    """
    check_reduction(reduction)
    _check_sign_pair(input, target)
    return reduce_loss(F.softplus(-_margin(input, target)), reduction)


def multilabel_soft_margin_loss(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Multi-label one-versus-all logistic loss: the per-class sigmoid BCE averaged over classes.

    Torch semantics: each sample's loss is the mean over its C classes of
    ``binary_cross_entropy_with_logits`` (times ``weight[c]``), so it equals
    ``binary_cross_entropy_with_logits(input, target, weight=weight, reduction="none")
    .mean(-1)``. Targets may be soft (in [0, 1]).

    .. math::
        \ell_n = -\frac{1}{C} \sum_c w_c \left[y_{nc} \log \sigma(x_{nc})
                 + (1 - y_{nc}) \log \sigma(-x_{nc})\right]

    Args:
        input: Logits ``(N, C)`` or ``(C,)``.
        target: Labels in [0, 1] (usually {0, 1}), same shape.
        weight: Per-class weights ``(C,)``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            samples ``N`` (the weights are not in the denominator, as in torch).

    Returns:
        Shape ``(N,)`` (or ``()``) for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating tensors.
        ValueError: Shapes that differ, ``input`` not 1-D or 2-D, a ``weight`` not ``(C,)``,
            a target outside [0, 1].

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> logits = torch.tensor([[2.0, -1.0, 0.0], [0.5, 0.5, -3.0]])
        >>> labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
        >>> la.multilabel_soft_margin_loss(logits, labels, reduction="none")
        tensor([0.3778, 0.4989])

    References:
        torch.nn.functional.multilabel_soft_margin_loss,
        https://pytorch.org/docs/stable/generated/torch.nn.MultiLabelSoftMarginLoss.html
    """
    check_reduction(reduction)
    check_floating("input", input)
    check_floating("target", target)
    _check_rows("input", input)
    check_same_shape("input", input, "target", target)
    check_class_weight("weight", weight, input.shape[-1])
    check_probabilities("target", target)
    dtype = compute_dtype(input, target, weight)
    loss = F.multilabel_soft_margin_loss(
        upcast(input, dtype),
        upcast(target, dtype),
        weight=None if weight is None else upcast(weight, dtype),
        reduction="none",
    )
    return reduce_loss(loss, reduction)


def multilabel_margin_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""Multi-label hinge: every target class must outscore every non-target class by 1.

    Torch semantics, including its target format: ``target`` has the input's shape and lists
    each sample's target class indices first, ended by ``-1`` (entries after the first ``-1``
    are ignored, though, as torch checks, they too must be in ``[-1, C)``): ``[3, 0, -1, 1]``
    means classes {3, 0}. A sample with no target class costs 0.

    .. math::
        \ell_n = \frac{1}{C} \sum_{j \in Y_n} \sum_{i \notin Y_n}
                 \max(0,\ 1 - (x_{n, j} - x_{n, i}))

    Args:
        input: Scores ``(N, C)`` or ``(C,)``.
        target: Class indices (``torch.long``), same shape, in ``[0, C)`` up to the first
            ``-1``; every entry in ``[-1, C)``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            samples.

    Returns:
        Shape ``(N,)`` (or ``()``) for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating ``input``, a non-integer ``target``.
        ValueError: Shapes that differ, ``input`` not 1-D or 2-D, an entry outside ``[-1, C)``
            (value and position named).

    Example:
        The example of ``torch.nn.MultiLabelMarginLoss``:

        >>> import torch
        >>> import lossatlas as la
        >>> scores = torch.tensor([[0.1, 0.2, 0.4, 0.8]])
        >>> la.multilabel_margin_loss(scores, torch.tensor([[3, 0, -1, 1]]))
        tensor(0.8500)

    References:
        torch.nn.functional.multilabel_margin_loss,
        https://pytorch.org/docs/stable/generated/torch.nn.MultiLabelMarginLoss.html
    """
    check_reduction(reduction)
    check_floating("input", input)
    check_integer("target", target)
    _check_rows("input", input)
    check_same_shape("input", input, "target", target)
    _check_padded_labels(target, input.shape[-1])
    dtype = compute_dtype(input)
    loss = F.multilabel_margin_loss(upcast(input, dtype), target, reduction="none")
    return reduce_loss(loss, reduction)


def multi_margin_loss(
    input: Tensor,
    target: Tensor,
    *,
    p: int = 1,
    margin: float = 1.0,
    weight: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Multi-class hinge summed over the wrong classes (Weston-Watkins), torch's semantics.

    Each wrong class ``i`` that comes within ``margin`` of the true class's score costs the
    shortfall (``p=1``) or its square (``p=2``), summed over wrong classes and divided by C.
    ``weight[y]`` multiplies the shortfall before the power, as torch does.

    .. math::
        \ell_n = \frac{1}{C} \sum_{i \ne y_n}
                 \max\left(0,\ w_{y_n} (\mathrm{margin} - x_{n, y_n} + x_{n, i})\right)^p

    Args:
        input: Scores ``(N, C)`` or ``(C,)``.
        target: Class indices ``(N,)`` (or ``()``) in ``[0, C)``.
        p: 1 or 2.
        margin: The required margin (any finite real; torch's default 1).
        weight: Per-class weights ``(C,)``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by the number of
            samples ``N`` (not by the weights' sum, as in torch).

    Returns:
        Shape ``(N,)`` (or ``()``) for ``"none"``, else a scalar.

    Raises:
        TypeError: Non-floating ``input``, a non-integer ``target``, a non-integer ``p``.
        ValueError: ``p`` not 1 or 2, a class index out of range (value and position named),
            ``input`` not 1-D or 2-D, a target of the wrong shape, a ``weight`` not ``(C,)``.

    Example:
        The example of ``torch.nn.MultiMarginLoss``:

        >>> import torch
        >>> import lossatlas as la
        >>> scores = torch.tensor([[0.1, 0.2, 0.4, 0.8]])
        >>> la.multi_margin_loss(scores, torch.tensor([3]))
        tensor(0.3250)

    References:
        J. Weston, C. Watkins, "Support Vector Machines for Multi-Class Pattern Recognition",
        ESANN 1999; torch.nn.functional.multi_margin_loss,
        https://pytorch.org/docs/stable/generated/torch.nn.MultiMarginLoss.html
    """
    check_reduction(reduction)
    _check_multi_margin_options(p, margin)
    check_floating("input", input)
    _check_rows("input", input)
    if input.dim() == 1:
        check_integer("target", target)
        check_shape("target", target, (), "(one class index for a (C,) input)")
    else:
        check_index_target(input, target)
    num_classes = input.shape[-1]
    check_class_weight("weight", weight, num_classes)
    check_class_indices("target", target, num_classes)
    dtype = compute_dtype(input, weight)
    loss = F.multi_margin_loss(
        upcast(input, dtype),
        target,
        p=p,
        margin=margin,
        weight=None if weight is None else upcast(weight, dtype),
        reduction="none",
    )
    return reduce_loss(loss, reduction)


def _check_multi_margin_options(p: int, margin: float) -> None:
    check_number("p", p, integer=True)
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p!r}")
    check_number("margin", margin)


def _check_rows(name: str, input: Tensor) -> None:
    if input.dim() not in (1, 2):
        raise ValueError(f"{name} must have shape (N, C) or (C,), got {tuple(input.shape)}")


def _check_padded_labels(target: Tensor, num_classes: int) -> None:
    """Every entry must be a class index in ``[0, C)`` or the end-of-labels marker ``-1``."""
    if not value_checks_enabled() or target.numel() == 0:
        return
    bad = (target < -1) | (target >= num_classes)
    if bool(bad.any()):
        position = tuple(int(i) for i in bad.nonzero()[0])
        value = int(target[position])
        raise ValueError(
            f"target has class index {value} at position {position}; expected values in "
            f"[0, {num_classes}) or -1 (the end-of-labels marker)"
        )


# --------------------------------------------------------------------------- modules


class HingeLoss(LossModule):
    """Module form of :func:`lossatlas.hinge_loss`."""

    functional = staticmethod(hinge_loss)

    def __init__(self, *, margin: float = 1.0, reduction: str = "mean") -> None:
        check_number("margin", margin, low=0.0)
        super().__init__(margin=margin, reduction=reduction)


class SquaredHingeLoss(LossModule):
    """Module form of :func:`lossatlas.squared_hinge_loss`."""

    functional = staticmethod(squared_hinge_loss)

    def __init__(self, *, margin: float = 1.0, reduction: str = "mean") -> None:
        check_number("margin", margin, low=0.0)
        super().__init__(margin=margin, reduction=reduction)


class PerceptronLoss(LossModule):
    """Module form of :func:`lossatlas.perceptron_loss`."""

    functional = staticmethod(perceptron_loss)

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)


class ExponentialLoss(LossModule):
    """Module form of :func:`lossatlas.exponential_loss`."""

    functional = staticmethod(exponential_loss)

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)


class LogisticLoss(LossModule):
    """Module form of :func:`lossatlas.logistic_loss`."""

    functional = staticmethod(logistic_loss)

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)


class ZeroOneLoss(LossModule):
    """Module form of :func:`lossatlas.zero_one_loss` (a metric: no gradient)."""

    functional = staticmethod(zero_one_loss)

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)


class SoftMarginLoss(LossModule):
    """Module form of :func:`lossatlas.soft_margin_loss`."""

    functional = staticmethod(soft_margin_loss)

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)


class MultiLabelSoftMarginLoss(LossModule):
    """Module form of :func:`lossatlas.multilabel_soft_margin_loss`; ``weight`` is a buffer."""

    functional = staticmethod(multilabel_soft_margin_loss)

    def __init__(self, *, weight: Tensor | None = None, reduction: str = "mean") -> None:
        if weight is not None:
            check_floating("weight", weight)
            check_shape("weight", weight, (None,), "(one weight per class)")
        super().__init__(weight=weight, reduction=reduction)


class MultiLabelMarginLoss(LossModule):
    """Module form of :func:`lossatlas.multilabel_margin_loss`."""

    functional = staticmethod(multilabel_margin_loss)

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)


class MultiMarginLoss(LossModule):
    """Module form of :func:`lossatlas.multi_margin_loss`; ``weight`` is a buffer."""

    functional = staticmethod(multi_margin_loss)

    def __init__(
        self,
        *,
        p: int = 1,
        margin: float = 1.0,
        weight: Tensor | None = None,
        reduction: str = "mean",
    ) -> None:
        _check_multi_margin_options(p, margin)
        if weight is not None:
            check_floating("weight", weight)
            check_shape("weight", weight, (None,), "(one weight per class)")
        super().__init__(p=p, margin=margin, weight=weight, reduction=reduction)


# --------------------------------------------------------------------------- declarations

_NUM_CLASSES = 5


def _sign_scores(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    scores = ex.normal(generator, batch, 3, dtype=dtype, scale=scale)
    return Example((scores, ex.sign_labels(generator, batch, 3, dtype=dtype)))


def _sign_perfect(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    """Correctly signed scores with margin ``1 + scale`` (> 1): zero hinge-type loss."""
    labels = ex.sign_labels(generator, batch, 3, dtype=dtype)
    return Example((labels * (1.0 + scale), labels))


def _multilabel_logits(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    logits = ex.normal(generator, batch, _NUM_CLASSES, dtype=dtype, scale=scale)
    labels = ex.binary_labels(generator, batch, _NUM_CLASSES, dtype=dtype)
    weight = ex.uniform(generator, _NUM_CLASSES, dtype=dtype, low=0.5, high=2.0)
    return Example((logits, labels), {"weight": weight})


def _padded_labels(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    scores = ex.normal(generator, batch, _NUM_CLASSES, dtype=dtype, scale=scale)
    order = torch.rand(batch, _NUM_CLASSES, generator=generator).argsort(dim=1)
    count = torch.randint(0, _NUM_CLASSES, (batch, 1), generator=generator)
    target = torch.where(torch.arange(_NUM_CLASSES) < count, order, torch.full_like(order, -1))
    return Example((scores, target))


def _class_scores(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    scores = ex.normal(generator, batch, _NUM_CLASSES, dtype=dtype, scale=scale)
    return Example((scores, ex.class_indices(generator, batch, num_classes=_NUM_CLASSES)))


def _binary_margin_spec(
    name: str,
    function: Callable[..., Tensor],
    module: type[LossModule],
    formula: str,
    **extra: Any,
) -> LossSpec:
    return LossSpec(
        name=name,
        function=function,
        module=module,
        tasks=("binary",),
        input_kind="scores",
        target_kind="labels in {-1, +1}",
        formula=formula,
        references=extra.pop("references", _MARGIN_REFS),
        examples=_sign_scores,
        same_shape=(0, 1),
        curve="margin",
        **extra,
    )


_HINGE_ZERO = frozenset({"non_negative", "zero_at_perfect"})

declare(
    _binary_margin_spec(
        "hinge_loss",
        hinge_loss,
        HingeLoss,
        r"\max(0, m - y f)",
        properties=_HINGE_ZERO,
        perfect=_sign_perfect,
        references=(
            "C. Cortes, V. Vapnik, Support-Vector Networks, Machine Learning 20, 1995, "
            "https://doi.org/10.1007/BF00994018",
        ),
    )
)
declare(
    _binary_margin_spec(
        "squared_hinge_loss",
        squared_hinge_loss,
        SquaredHingeLoss,
        r"\max(0, m - y f)^2",
        properties=_HINGE_ZERO,
        perfect=_sign_perfect,
        twice_differentiable=True,
        references=(
            "Y. Tang, Deep Learning using Linear Support Vector Machines, ICML 2013 "
            "workshop, https://arxiv.org/abs/1306.0239",
        ),
    )
)
declare(
    _binary_margin_spec(
        "perceptron_loss",
        perceptron_loss,
        PerceptronLoss,
        r"\max(0, -y f)",
        properties=_HINGE_ZERO,
        perfect=_sign_perfect,
        references=(
            "F. Rosenblatt, The Perceptron, Psychological Review 65(6), 1958, "
            "https://doi.org/10.1037/h0042519",
        ),
    )
)
declare(
    _binary_margin_spec(
        "exponential_loss",
        exponential_loss,
        ExponentialLoss,
        r"e^{-y f}",
        properties=frozenset({"non_negative"}),
        twice_differentiable=True,
        # exp(-y f) exceeds every float once -y f > ~88.7 (float32): the harness's scale-1e4 probe
        # cannot be finite for this loss (documented: inf, never a clamped stand-in).
        finite_at_extreme=False,
        references=(
            "J. Friedman, T. Hastie, R. Tibshirani, Additive Logistic Regression: a "
            "Statistical View of Boosting, Ann. Statist. 28(2), 2000, "
            "https://doi.org/10.1214/aos/1016218223",
        ),
    )
)
declare(
    _binary_margin_spec(
        "logistic_loss",
        logistic_loss,
        LogisticLoss,
        r"\log(1 + e^{-y f})",
        properties=frozenset({"non_negative"}),
        twice_differentiable=True,
        oracle=F.soft_margin_loss,
    )
)
declare(
    _binary_margin_spec(
        "zero_one_loss",
        zero_one_loss,
        ZeroOneLoss,
        r"\mathbb{1}[y f \le 0]",
        properties=_HINGE_ZERO | {"bounded"},
        perfect=_sign_perfect,
        differentiable=False,
    )
)
declare(
    LossSpec(
        name="soft_margin_loss",
        function=soft_margin_loss,
        module=SoftMarginLoss,
        tasks=("binary",),
        input_kind="scores",
        target_kind="labels in {-1, +1}",
        formula=r"\log(1 + e^{-y x})",
        references=(
            "torch.nn.SoftMarginLoss, "
            "https://pytorch.org/docs/stable/generated/torch.nn.SoftMarginLoss.html",
        ),
        properties=frozenset({"non_negative"}),
        examples=_sign_scores,
        same_shape=(0, 1),
        oracle=F.soft_margin_loss,
        twice_differentiable=True,
    )
)
declare(
    LossSpec(
        name="multilabel_soft_margin_loss",
        function=multilabel_soft_margin_loss,
        module=MultiLabelSoftMarginLoss,
        tasks=("multilabel",),
        input_kind="logits",
        target_kind="multi-hot labels in [0, 1]",
        formula=r"-\frac{1}{C}\sum_c w_c [y_c \log \sigma(x_c) + (1 - y_c) \log \sigma(-x_c)]",
        references=(
            "torch.nn.MultiLabelSoftMarginLoss, https://pytorch.org/docs/stable/generated/"
            "torch.nn.MultiLabelSoftMarginLoss.html",
        ),
        properties=frozenset({"non_negative"}),
        examples=_multilabel_logits,
        same_shape=(0, 1),
        oracle=F.multilabel_soft_margin_loss,
        twice_differentiable=True,
    )
)
declare(
    LossSpec(
        name="multilabel_margin_loss",
        function=multilabel_margin_loss,
        module=MultiLabelMarginLoss,
        tasks=("multilabel",),
        input_kind="scores",
        target_kind="class indices padded with -1",
        formula=r"\frac{1}{C}\sum_{j \in Y}\sum_{i \notin Y} \max(0, 1 - (x_j - x_i))",
        references=(
            "torch.nn.MultiLabelMarginLoss, https://pytorch.org/docs/stable/generated/"
            "torch.nn.MultiLabelMarginLoss.html",
        ),
        properties=frozenset({"non_negative"}),
        examples=_padded_labels,
        same_shape=(0, 1),
        oracle=F.multilabel_margin_loss,
    )
)
declare(
    LossSpec(
        name="multi_margin_loss",
        function=multi_margin_loss,
        module=MultiMarginLoss,
        tasks=("multiclass",),
        input_kind="scores",
        target_kind="class indices",
        formula=r"\frac{1}{C}\sum_{i \ne y} \max(0, w_y (m - x_y + x_i))^p",
        references=(
            "J. Weston, C. Watkins, Support Vector Machines for Multi-Class Pattern "
            "Recognition, ESANN 1999",
            "torch.nn.MultiMarginLoss, "
            "https://pytorch.org/docs/stable/generated/torch.nn.MultiMarginLoss.html",
        ),
        properties=frozenset({"non_negative"}),
        examples=_class_scores,
        oracle=F.multi_margin_loss,
    )
)
