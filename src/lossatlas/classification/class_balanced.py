"""Class-balanced loss: re-weighting by the effective number of samples (Cui et al. 2019).

A class seen ``n`` times is worth ``E_n = (1 - beta^n) / (1 - beta)`` effective samples: new
samples of a frequent class overlap what was already seen. Each class is weighted by
``1 / E_n``, normalised so the weights sum to the number of classes, and the weight of a
sample's class multiplies its softmax cross-entropy, its per-class sigmoid cross-entropies, or
its sigmoid focal loss, exactly as the paper's official (TensorFlow) code does.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._module import LossModule
from lossatlas._options import Interval, NonNegative, Positive, check_value
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_class_indices,
    check_index_target,
    check_number,
    describe,
    value_checks_enabled,
)
from lossatlas.classification._fused_focal import sigmoid_focal_values
from lossatlas.classification._shared import (
    BATCHED_LOGITS,
    INDEX_TYPE_ERROR,
    SOFTMAX_CLASSES,
    check_batched_logits,
)

__all__ = ["class_balanced_loss", "class_balanced_weights"]

#: The effective-number hyperparameter, in [0, 1).
EffectiveNumberBeta = Annotated[float, Interval(0.0, 1.0, high_inclusive=False)]
#: Per-class training counts: positive numbers, or a 1-D tensor of them.
ClassCounts = Sequence[Positive] | Tensor
#: The base loss the class weights multiply.
BaseLoss = Literal["softmax", "sigmoid", "focal"]


def _samples_tensor(samples_per_class: Any) -> Tensor:
    """``samples_per_class`` as a float64 1-D tensor of positive counts (checked)."""
    if isinstance(samples_per_class, Tensor):
        if samples_per_class.dtype == torch.bool or samples_per_class.is_complex():
            raise TypeError(
                f"samples_per_class must hold real counts, got {describe(samples_per_class)}"
            )
        counts = samples_per_class.to(torch.float64)
    elif isinstance(samples_per_class, Sequence) and not isinstance(samples_per_class, str):
        for i, value in enumerate(samples_per_class):
            check_number(f"samples_per_class[{i}]", value, low=0.0, low_inclusive=False)
        counts = torch.tensor([float(v) for v in samples_per_class], dtype=torch.float64)
    else:
        raise TypeError(
            f"samples_per_class must be a sequence or a 1-D tensor of counts, "
            f"got {describe(samples_per_class)}"
        )
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError(
            f"samples_per_class must be 1-D with one count per class, got shape "
            f"{tuple(counts.shape)}"
        )
    if isinstance(samples_per_class, Tensor) and value_checks_enabled():
        # A class with no samples has E_n = 0 and an infinite weight.
        bad = ~(counts > 0) | ~torch.isfinite(counts)
        if bool(bad.any()):
            position = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"samples_per_class must hold finite counts > 0, got "
                f"{float(counts[position])!r} at position ({position},)"
            )
    return counts


def class_balanced_weights(
    samples_per_class: ClassCounts, *, beta: EffectiveNumberBeta = 0.9999
) -> Tensor:
    r"""Per-class weights ``1 / E_n``, normalised to sum to ``C`` (Cui et al. 2019).

    ``beta=0`` gives equal weights (every ``E_n = 1``); ``beta -> 1`` tends to inverse class
    frequency. Computed in float64 as ``1 / -expm1(n log beta)`` (the factor ``1 - beta``
    cancels in the normalisation), returned in the default dtype.

    .. math::
        w_c = C\,\frac{1 / E_{n_c}}{\sum_k 1 / E_{n_k}},\qquad
        E_n = \frac{1 - \beta^{n}}{1 - \beta}

    Args:
        samples_per_class: ``C`` positive counts (a sequence or a 1-D tensor).
        beta: Hyperparameter in ``[0, 1)``; the paper uses 0.9, 0.99, 0.999 or 0.9999.

    Returns:
        A ``(C,)`` tensor (default dtype) that sums to ``C``.

    Raises:
        TypeError: Counts that are not numbers.
        ValueError: ``beta`` outside [0, 1), a count <= 0, an empty or multi-dimensional
            ``samples_per_class``.

    Example:
        >>> import lossatlas as la
        >>> la.class_balanced_weights([1, 2, 3], beta=0.5)  # 3 * [21, 14, 12] / 47
        tensor([1.3404, 0.8936, 0.7660])

    References:
        Y. Cui, M. Jia, T.-Y. Lin, Y. Song, S. Belongie, `Class-Balanced Loss Based on
        Effective Number of Samples <https://arxiv.org/abs/1901.05555>`_, CVPR 2019.
    """
    check_value("beta", beta, EffectiveNumberBeta)
    return _weights(_samples_tensor(samples_per_class), beta).to(torch.get_default_dtype())


def _weights(counts: Tensor, beta: float) -> Tensor:
    inverse_effective = 1.0 / -torch.expm1(counts * torch.log(counts.new_tensor(beta)))
    return inverse_effective / inverse_effective.sum() * counts.numel()


def _official_softmax(
    input: Tensor,
    target: Tensor,
    *,
    samples_per_class: Sequence[float] | Tensor,
    beta: float = 0.9999,
    loss_type: str = "softmax",
    gamma: float = 2.0,
    reduction: str = "mean",
) -> Tensor:
    """The official code's weights and softmax loss, with numpy weights (the reference)."""
    import numpy as np

    counts = np.asarray(
        samples_per_class.tolist() if isinstance(samples_per_class, Tensor) else samples_per_class,
        dtype=np.float64,
    )
    effective_num = 1.0 - np.power(beta, counts)
    weights = (1.0 - beta) / effective_num
    weights = weights / np.sum(weights) * len(counts)
    w = torch.as_tensor(weights, dtype=input.dtype)
    loss = F.cross_entropy(input, target, reduction="none") * w[target]
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


_COUNTS = (500.0, 120.0, 30.0, 8.0, 2.0)


_long_tail = ex.class_logits(len(_COUNTS), samples_per_class=list(_COUNTS), beta=0.99)


#: The declaration the long-tailed classification losses share (here and in ``long_tail.py``).
LONG_TAILED = SOFTMAX_CLASSES.derive(
    tasks=("multiclass", "imbalanced"),
    examples=_long_tail,
    args={"input": BATCHED_LOGITS, "samples_per_class": "``C`` training counts (> 0)."},
    raises={"TypeError": INDEX_TYPE_ERROR},
)


@LONG_TAILED.loss(
    formula=r"\frac{1 - \beta}{1 - \beta^{n_y}}\, L(x, y)",
    oracle=_official_softmax,
    use_when="long-tailed classes with known training counts",
)
def class_balanced_loss(
    input: Tensor,
    target: Tensor,
    *,
    samples_per_class: ClassCounts,
    beta: EffectiveNumberBeta = 0.9999,
    loss_type: BaseLoss = "softmax",
    gamma: NonNegative = 2.0,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Class-balanced loss on logits: the class weight ``1 / E_n`` times a base loss.

    With ``w = class_balanced_weights(samples_per_class, beta=beta)`` and ``y`` the sample's
    class, as in the official code:

    * ``"softmax"``: ``w_y * CE`` -- per element, ``cross_entropy(weight=w,
      reduction="none")``;
    * ``"sigmoid"``: ``w_y * sum_c BCE(x_c, onehot_c)`` (C independent sigmoids);
    * ``"focal"``: ``w_y * sum_c (1 - p_t)^gamma BCE(x_c, onehot_c)`` --
      :func:`binary_focal_loss` with ``alpha=None`` against the one-hot target, summed over
      classes.

    ``"mean"`` divides by the number of samples (the official code's normaliser for all three:
    ``tf.losses.softmax_cross_entropy``'s count of non-zero weights, or the number of positive
    labels), not by the sum of the weights as torch's weighted cross-entropy does.

    The popular PyTorch port ``vandit15/Class-balanced-loss-pytorch`` differs: its
    ``"softmax"`` feeds softmax probabilities to ``binary_cross_entropy`` against the one-hot
    target (adding ``-log(1 - p_c)`` of every other class, averaged over ``N * C``) instead of
    softmax cross-entropy; its ``"sigmoid"`` passes ``weights=`` (not an argument of
    ``binary_cross_entropy_with_logits``) and would average over ``N * C``; its ``"focal"``
    modulator uses ``log(1 + exp(-x))``, which overflows for large negative logits.

    .. math::
        \ell_n = w_{y_n}\,L(x_n, y_n),\qquad
        w_c \propto \frac{1 - \beta}{1 - \beta^{n_c}},\ \sum_c w_c = C

    Args:
        target: Class indices ``(N,)`` or ``(N, d1, ...)`` in ``[0, C)``.
        beta: In ``[0, 1)``; 0 gives plain (unweighted) losses.
        loss_type: ``"softmax"`` | ``"sigmoid"`` | ``"focal"``.
        gamma: Focusing parameter ``>= 0`` of ``"focal"`` (unused otherwise).
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by ``N * d1 * ...``.

    Returns:
        Shape ``(N, d1, ...)`` for ``"none"``, else a scalar; float32 for half precision.

    Raises:
        ValueError: ``beta`` outside [0, 1), a count <= 0, ``samples_per_class`` of the wrong
            length, an unknown ``loss_type``, ``gamma < 0``, a class index out of range.

    Example:
        >>> logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]])
        >>> target = torch.tensor([0, 2])
        >>> la.class_balanced_loss(logits, target, samples_per_class=[100, 10, 1],
        ...                        beta=0.99, reduction="none")
        tensor([0.0102, 4.1543])

    References:
        Y. Cui, M. Jia, T.-Y. Lin, Y. Song, S. Belongie, `Class-Balanced Loss Based on
        Effective Number of Samples <https://arxiv.org/abs/1901.05555>`_, CVPR 2019.

        Official code (TensorFlow), https://github.com/richardaecn/class-balanced-loss
    """
    check_batched_logits(input)
    check_index_target(input, target)
    counts = _samples_tensor(samples_per_class)
    num_classes = input.shape[1]
    if counts.numel() != num_classes:
        raise ValueError(
            f"samples_per_class must have one count per class ({num_classes} for input of shape "
            f"{tuple(input.shape)}), got {counts.numel()}"
        )
    check_class_indices("target", target, num_classes)
    dtype = compute_dtype(input)
    x = upcast(input, dtype)
    weight = _weights(counts.to(x.device), beta).to(dtype)
    if loss_type == "softmax":
        loss = F.cross_entropy(x, target, weight=weight, reduction="none")
    else:
        onehot = F.one_hot(target, num_classes).movedim(-1, 1).to(dtype)
        per_class = sigmoid_focal_values(
            x,
            onehot,
            None,
            a1=1.0,
            a0=1.0,
            b1=1.0,
            b0=1.0,
            gamma=float(gamma) if loss_type == "focal" else 0.0,
            reduce=False,
        )
        loss = weight[target] * per_class.sum(1)
    return reduce_loss(loss, reduction)


class ClassBalancedLoss(LossModule, functional=class_balanced_loss):
    """Module form of :func:`lossatlas.class_balanced_loss`; ``samples_per_class`` is a buffer.

    The weights it implies are :attr:`weight`.
    """

    @property
    def weight(self) -> Tensor:
        """The class weights ``class_balanced_weights(samples_per_class, beta)``."""
        counts = self.samples_per_class
        assert isinstance(counts, Tensor)
        return _weights(counts.to(torch.float64), self.options()["beta"]).to(
            torch.get_default_dtype()
        )
