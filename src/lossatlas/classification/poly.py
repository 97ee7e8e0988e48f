"""PolyLoss: cross-entropy plus a polynomial correction of its leading term (Leng et al. 2022).

Cross-entropy expands as ``-log p_t = sum_j (1 - p_t)^j / j``; Poly-1 re-weights the first
term by ``1 + epsilon``. ``epsilon > 0`` pushes harder on confident predictions (the paper's
ImageNet setting ``epsilon=1``), ``epsilon < 0`` softens like focal loss. It keeps everything
cross-entropy has: class weights, ``ignore_index``, label smoothing, class-probability targets.
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._module import LossModule
from lossatlas._options import Interval, UnitInterval
from lossatlas._reduction import Reduction, reduce_loss, upcast
from lossatlas.classification._shared import (
    SOFT_TARGET_DOCS,
    SOFTMAX_CLASSES,
    check_class_call,
    reduce_kept,
)
from lossatlas.distributed import ProcessGroup

__all__ = ["poly1_cross_entropy"]

#: ``epsilon >= -1`` keeps the loss non-negative.
PolyEpsilon = Annotated[float, Interval(-1.0)]


def _paper_poly1(
    input: Tensor,
    target: Tensor,
    *,
    epsilon: float = 1.0,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> Tensor:
    """The paper's ``poly1_cross_entropy`` (one-hot labels) with torch ops: the reference."""
    num_classes = input.shape[1]
    labels = F.one_hot(target, num_classes).to(input.dtype)
    smooth_labels = labels * (1 - label_smoothing) + label_smoothing / num_classes
    one_minus_pt = (smooth_labels * (1 - torch.softmax(input, dim=1))).sum(1)
    ce = F.cross_entropy(input, target, label_smoothing=label_smoothing, reduction="none")
    loss = ce + epsilon * one_minus_pt
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


_class_logits = ex.class_logits(5, epsilon=2.0, label_smoothing=0.1)


_POLY = SOFTMAX_CLASSES.derive(
    tasks=("multiclass", "imbalanced"),
    target_kind="class indices or class probabilities",
    examples=_class_logits,
    **SOFT_TARGET_DOCS,
)


@_POLY.loss(
    formula=r"-\log p_{y} + \epsilon\,(1 - p_{y})",
    oracle=_paper_poly1,
    twice_differentiable=True,
    use_when="a one-knob tweak of cross-entropy to tune per task",
)
def poly1_cross_entropy(
    input: Tensor,
    target: Tensor,
    *,
    epsilon: PolyEpsilon = 1.0,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: UnitInterval = 0.0,
    reduction: Reduction = "mean",
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Poly-1 cross-entropy: ``CE + epsilon * (1 - p_t)`` on logits (PolyLoss, ICLR 2022).

    ``epsilon=0`` is :func:`lossatlas.cross_entropy` for every option. With label smoothing
    ``p_t`` is taken against the smoothed target ``q = (1 - s) onehot + s / C``, as in the
    paper's code (``one_minus_pt = sum(q * (1 - softmax))``), so the correction gains a
    constant ``s (1 - 1/C)`` that does not change the gradient. Class weights weigh each class
    term of both parts, as torch weighs smoothed cross-entropy: per element
    ``sum_c w_c q_c (-log p_c + epsilon (1 - p_c))``, which is ``w_y * Poly1`` without
    smoothing.

    .. math::
        \ell_n = \sum_c w_c\, q_{n,c} \left[-\log p_{n,c} + \epsilon\,(1 - p_{n,c})\right],
        \quad p = \operatorname{softmax}(x)

    Args:
        target: Class indices ``(N,)``, ``()`` or ``(N, d1, ...)`` (``torch.long``), or class
            probabilities with the input's shape.
        epsilon: Weight of the first polynomial term, ``>= -1`` (the loss stays >= 0).
        ignore_index: Index targets equal to it contribute 0 and are not counted.
        label_smoothing: ``s`` in ``[0, 1]``, spread as ``s / C`` over all classes (torch's).

    Raises:
        ValueError: A class index out of range, mismatched shapes, ``epsilon < -1``,
            ``label_smoothing`` outside [0, 1].

    Example:
        >>> logits = torch.tensor([[1.0, 2.0], [1.0, 3.0], [1.0, 3.0]])
        >>> target = torch.tensor([0, 1, 1])
        >>> la.poly1_cross_entropy(logits, target, reduction="none")
        tensor([2.0443, 0.2461, 0.2461])
        >>> la.poly1_cross_entropy(logits, target, epsilon=0.0)  # cross-entropy
        tensor(0.5224)

    References:
        Z. Leng, M. Tan, C. Liu, E. D. Cubuk, X. Shi, S. Cheng, D. Anguelov, `PolyLoss: A
        Polynomial Expansion Perspective of Classification Loss Functions
        <https://arxiv.org/abs/2204.12511>`_, ICLR 2022.
    """
    is_index, dtype = check_class_call(
        input, target, weight, ignore_index, process_group, allow_probabilities=True
    )
    class_dim = 1 if input.dim() >= 2 else 0
    num_classes = input.shape[class_dim]
    log_p = F.log_softmax(upcast(input, dtype), dim=class_dim)
    terms = -log_p - epsilon * torch.expm1(log_p)  # -log p_c + epsilon (1 - p_c)
    if weight is not None:
        shape = [1] * log_p.dim()
        shape[class_dim] = num_classes
        terms = terms * upcast(weight, dtype).view(shape)
    smooth = label_smoothing / num_classes
    if not is_index:
        q = (1.0 - label_smoothing) * upcast(target, dtype) + smooth
        return reduce_loss((q * terms).sum(class_dim), reduction, process_group=process_group)
    kept = target != ignore_index
    safe_target = torch.where(kept, target, torch.zeros_like(target)).unsqueeze(class_dim)
    loss = (1.0 - label_smoothing) * terms.gather(class_dim, safe_target).squeeze(class_dim)
    if label_smoothing:
        loss = loss + smooth * terms.sum(class_dim)
    loss = loss * kept.to(dtype)
    return reduce_kept(loss, reduction, target, weight, ignore_index, dtype, process_group)


class Poly1CrossEntropyLoss(LossModule, functional=poly1_cross_entropy):
    """Module form of :func:`lossatlas.poly1_cross_entropy`; ``weight`` is a buffer."""
