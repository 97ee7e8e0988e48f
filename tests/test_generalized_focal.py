"""QFL, DFL and VFL: mmdetection's formulas worked element by element, identities, pitfalls, errors.

mmdetection is not installed, so the references below are scalar loops in float64 written from
the papers' equations as mmdetection codes them:

* ``mmdet/models/losses/gfocal_loss.py::quality_focal_loss``: BCE against 0 times
  ``sigmoid^beta`` for every class; for a positive (label in ``[0, C)``) its label's column is
  BCE against the score times ``|score - sigmoid|^beta``; summed over classes (GFL eq. 5).
* ``gfocal_loss.py::distribution_focal_loss``: ``CE(left) * (right - y) + CE(right) * (y -
  left)`` with ``left = floor(y)`` (GFL eq. 6).
* ``mmdet/models/losses/varifocal_loss.py::varifocal_loss``: BCE times ``q`` where ``q > 0``
  (``iou_weighted``) else ``alpha * |sigmoid - q|^gamma`` (VFNet eq. 2).
* ``mmdet/models/losses/utils.py::weight_reduce_loss``: ``loss * weight``; ``"mean"`` is
  ``loss.mean()``, or ``loss.sum() / avg_factor``; ``"sum"`` with ``avg_factor`` raises.
"""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import lossatlas as la

F64 = torch.float64


def close(actual, expected, *, rtol=1e-7, atol=1e-10):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


def sig(x):
    return 1.0 / (1.0 + math.exp(-x))


def bce(x, t):
    """-(t log sigma(x) + (1 - t) log(1 - sigma(x))), by hand."""
    return -(t * math.log(sig(x)) + (1 - t) * math.log(1 - sig(x)))


def mmdet_reduce(values, weight, reduction, avg_factor):
    """weight_reduce_loss (mmdet/models/losses/utils.py) on a float64 tensor."""
    if weight is not None:
        values = values * weight
    if avg_factor is None:
        return {"none": values, "mean": values.mean(), "sum": values.sum()}[reduction]
    if reduction == "mean":
        return values.sum() / avg_factor
    if reduction == "none":
        return values
    raise ValueError('avg_factor can not be used with reduction="sum"')


def ref_qfl(logits, labels, score, beta=2.0):
    n, c = logits.shape
    out = torch.zeros(n, dtype=F64)
    for i in range(n):
        for k in range(c):
            x = float(logits[i, k])
            if int(labels[i]) == k:
                s = float(score[i])
                out[i] += bce(x, s) * abs(s - sig(x)) ** beta
            else:
                out[i] += bce(x, 0.0) * sig(x) ** beta
    return out


def ref_dfl(logits, distance):
    out = torch.zeros(logits.shape[0], dtype=F64)
    for i in range(logits.shape[0]):
        row = [float(v) for v in logits[i]]
        log_z = math.log(sum(math.exp(v) for v in row))
        y = float(distance[i])
        left = math.floor(y)
        right = left + 1
        out[i] = (log_z - row[left]) * (right - y) + (log_z - row[right]) * (y - left)
    return out


def ref_vfl(logits, target, alpha=0.75, gamma=2.0, iou_weighted=True):
    out = torch.zeros_like(logits, dtype=F64)
    for index in torch.cartesian_prod(*(torch.arange(s) for s in logits.shape)):
        i = tuple(int(v) for v in index)
        x, q = float(logits[i]), float(target[i])
        weight = (q if iou_weighted else 1.0) if q > 0 else alpha * abs(sig(x) - q) ** gamma
        out[i] = bce(x, q) * weight
    return out


def qfl_inputs(n=7, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g, dtype=F64) * 2
    labels = torch.randint(0, c + 1, (n,), generator=g)
    labels[:2] = torch.tensor([0, c])  # at least one positive and one background sample
    score = torch.rand(n, generator=g, dtype=F64)
    return logits, labels, score


def vfl_inputs(n=6, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g, dtype=F64) * 2
    iou = torch.rand(n, c, generator=g, dtype=F64)
    target = torch.where(torch.rand(n, c, generator=g, dtype=F64) < 0.3, iou, 0.0)
    target[0, 0] = 0.6
    return logits, target


# --------------------------------------------------------------------------- QFL


@pytest.mark.parametrize("beta", [0.0, 0.5, 2.0, 3.0])
def test_qfl_equals_the_elementwise_reference(beta):
    logits, labels, score = qfl_inputs()
    expected = ref_qfl(logits, labels, score, beta)
    close(la.quality_focal_loss(logits, labels, score, beta=beta, reduction="none"), expected)
    close(la.quality_focal_loss(logits, labels, score, beta=beta), expected.mean())


def test_qfl_hard_targets_are_sigmoid_focal_without_alpha():
    # score = 1 on every positive: QFL = sigmoid focal loss (gamma = beta, alpha disabled) on
    # one-hot targets, summed over classes; background rows are all-zero targets.
    logits, labels, _ = qfl_inputs(n=9, seed=1)
    one_hot = torch.nn.functional.one_hot(labels, logits.shape[1] + 1)[:, :-1].to(F64)
    focal = la.binary_focal_loss(logits, one_hot, alpha=None, gamma=2.0, reduction="none")
    qfl = la.quality_focal_loss(logits, labels, torch.ones(9, dtype=F64), reduction="none")
    close(qfl, focal.sum(dim=1))


def test_qfl_gradient_flows_through_the_modulating_factor():
    # mmdetection does not detach |s - sigma|^beta or sigma^beta: d/dx of the reference.
    x = torch.tensor([[0.3, -0.7]], dtype=F64, requires_grad=True)
    labels, score = torch.tensor([0]), torch.tensor([0.4], dtype=F64)
    (grad,) = torch.autograd.grad(la.quality_focal_loss(x, labels, score, reduction="sum"), x)
    h = 1e-6
    for k in range(2):
        up, down = x.detach().clone(), x.detach().clone()
        up[0, k] += h
        down[0, k] -= h
        numeric = (ref_qfl(up, labels, score) - ref_qfl(down, labels, score)) / (2 * h)
        close(grad[0, k], numeric[0], rtol=1e-6, atol=1e-9)


def test_qfl_finite_at_extreme_logits_and_perfect_scores():
    x = torch.tensor([[60.0, -60.0], [-200.0, 200.0]], dtype=torch.float32, requires_grad=True)
    value = la.quality_focal_loss(x, torch.tensor([0, 2]), torch.tensor([1.0, 0.0]))
    (grad,) = torch.autograd.grad(value, x)
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    # beta = 0.5 at score == sigmoid: |s - sigma|^beta has an infinite slope there; finite here
    x = torch.tensor([[0.0]], dtype=F64, requires_grad=True)
    value = la.quality_focal_loss(x, torch.tensor([0]), torch.tensor([0.5], dtype=F64), beta=0.5)
    (grad,) = torch.autograd.grad(value, x)
    assert float(value.detach()) == 0.0 and torch.isfinite(grad).all()


def test_qfl_errors():
    logits, labels, score = qfl_inputs(n=3, c=2)
    with pytest.raises(ValueError, match=r"class index 3 .* expected values in \[0, 3\)"):
        la.quality_focal_loss(logits, torch.tensor([0, 3, 1]), score)
    with pytest.raises(ValueError, match=r"target has class index -1"):
        la.quality_focal_loss(logits, torch.tensor([0, -1, 1]), score)
    with pytest.raises(TypeError, match="target must be an integer tensor"):
        la.quality_focal_loss(logits, labels.double(), score)
    with pytest.raises(ValueError, match=r"score must hold probabilities in \[0, 1\]"):
        la.quality_focal_loss(logits, labels, score + 1.5)
    with pytest.raises(ValueError, match=r"score must have the same shape as target"):
        la.quality_focal_loss(logits, labels, score[:2])
    with pytest.raises(ValueError, match=r"input must have shape \(\*, \*\)"):
        la.quality_focal_loss(logits[0], labels, score)
    with pytest.raises(ValueError, match=r"target must have shape \(3,\)"):
        la.quality_focal_loss(logits, labels[:2], score[:2])
    with pytest.raises(ValueError, match=r"weight must broadcast .* \(3,\) \(one weight per"):
        la.quality_focal_loss(logits, labels, score, weight=torch.ones(3, 2, dtype=F64))
    with pytest.raises(ValueError, match="beta must be in"):
        la.quality_focal_loss(logits, labels, score, beta=-1.0)


# --------------------------------------------------------------------------- DFL


def test_dfl_equals_the_elementwise_reference():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(12, 8, generator=g, dtype=F64)
    distance = torch.rand(12, generator=g, dtype=F64) * 6.99
    distance[0] = 3.0  # an integer distance: all the weight on its own bin
    expected = ref_dfl(logits, distance)
    close(la.distribution_focal_loss(logits, distance, reduction="none"), expected)
    close(la.distribution_focal_loss(logits, distance, reg_max=7), expected.mean())


def test_dfl_at_reg_max_uses_the_last_bin():
    # y = reg_max: mmdetection would index bin reg_max + 1; the limit y -> reg_max is CE to the
    # last bin, -log_softmax(x)[reg_max].
    logits = torch.tensor([[0.5, -1.0, 2.0]], dtype=F64)
    value = la.distribution_focal_loss(logits, torch.tensor([2.0], dtype=F64), reduction="none")
    close(value, -torch.log_softmax(logits, dim=1)[:, 2])
    near = la.distribution_focal_loss(logits, torch.tensor([2.0 - 1e-9], dtype=F64))
    close(near, value[0], rtol=1e-8, atol=1e-8)


def test_dfl_is_minimal_at_the_two_bin_distribution():
    # CE is minimal at the target distribution: mass 0.7 on bin 1 and 0.3 on bin 2 for y = 1.3.
    best = torch.log(torch.tensor([[1e-12, 0.7, 0.3, 1e-12]], dtype=F64))
    y = torch.tensor([1.3], dtype=F64)
    entropy = -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))
    close(la.distribution_focal_loss(best, y), torch.tensor(entropy, dtype=F64), rtol=1e-9)
    other = best + torch.tensor([[0.0, 0.1, -0.1, 0.0]], dtype=F64)
    assert la.distribution_focal_loss(other, y) > la.distribution_focal_loss(best, y)


def test_dfl_four_sides_are_four_rows():
    # The pitfall: a (N, 4 * (reg_max + 1)) head output is reshaped to (4N, reg_max + 1).
    g = torch.Generator().manual_seed(3)
    head = torch.randn(5, 4 * 9, generator=g, dtype=F64)
    sides = torch.rand(5, 4, generator=g, dtype=F64) * 8
    value = la.distribution_focal_loss(head.reshape(-1, 9), sides.reshape(-1), reg_max=8)
    close(value, ref_dfl(head.reshape(20, 9), sides.reshape(20)).mean())
    with pytest.raises(ValueError, match=r"reshape a \(N, 4 \* \(reg_max \+ 1\)\) head output"):
        la.distribution_focal_loss(head.reshape(5, 4, 9), sides, reg_max=8)
    with pytest.raises(ValueError, match=r"reg_max=8 needs input with reg_max \+ 1 = 9 bins"):
        la.distribution_focal_loss(head, sides.reshape(-1)[:5], reg_max=8)


def test_dfl_errors():
    logits = torch.zeros(3, 5)
    with pytest.raises(ValueError, match=r"target must hold distances \(reg_max = 4\) in \[0, 4\]"):
        la.distribution_focal_loss(logits, torch.tensor([0.0, 4.5, 1.0]))
    with pytest.raises(ValueError, match=r"target must hold distances"):
        la.distribution_focal_loss(logits, torch.tensor([0.0, -0.1, 1.0]))
    with pytest.raises(ValueError, match=r"reg_max=16 needs input with reg_max \+ 1 = 17 bins"):
        la.distribution_focal_loss(logits, torch.zeros(3), reg_max=16)
    with pytest.raises(ValueError, match=r"target must have shape \(3,\)"):
        la.distribution_focal_loss(logits, torch.zeros(3, 1))
    with pytest.raises(ValueError, match="at least 2 bins"):
        la.distribution_focal_loss(torch.zeros(3, 1), torch.zeros(3))
    with pytest.raises(TypeError, match="target must be a floating-point tensor"):
        la.distribution_focal_loss(logits, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="reg_max must be in"):
        la.distribution_focal_loss(logits, torch.zeros(3), reg_max=0)


# --------------------------------------------------------------------------- VFL


@pytest.mark.parametrize(
    ("alpha", "gamma", "iou_weighted"), [(0.75, 2.0, True), (0.25, 1.5, False), (1.0, 0.0, True)]
)
def test_vfl_equals_the_elementwise_reference(alpha, gamma, iou_weighted):
    logits, target = vfl_inputs()
    options = {"alpha": alpha, "gamma": gamma, "iou_weighted": iou_weighted}
    expected = ref_vfl(logits, target, **options)
    close(la.varifocal_loss(logits, target, **options, reduction="none"), expected)
    close(la.varifocal_loss(logits, target, **options), expected.mean())


def test_vfl_positive_is_iou_weighted_bce_and_negative_is_not_focal_loss():
    # A positive with q = 1 is BCE (no focal factor, unlike focal loss's (1 - p)^gamma).
    x = torch.tensor([[0.4, 0.4]], dtype=F64)
    q = torch.tensor([[1.0, 0.0]], dtype=F64)
    value = la.varifocal_loss(x, q, reduction="none")
    close(value[0, 0], torch.tensor(bce(0.4, 1.0), dtype=F64))
    close(value[0, 1], torch.tensor(0.75 * sig(0.4) ** 2 * bce(0.4, 0.0), dtype=F64))


def test_vfl_reduction_pitfall_and_avg_factor():
    logits, target = vfl_inputs(n=8, c=5, seed=4)
    n_pos = int((target > 0).sum())
    total = float(ref_vfl(logits, target).sum())
    # "mean" divides by every element, N * C = 40, negatives included ...
    close(la.varifocal_loss(logits, target), torch.tensor(total / 40, dtype=F64))
    # ... with avg_factor by it alone (VFNet passes the number of positives) ...
    by_pos = la.varifocal_loss(logits, target, avg_factor=float(n_pos))
    close(by_pos, torch.tensor(total / n_pos, dtype=F64))
    # ... and "mean" then divided again by the positives is N * C times too small.
    twice = la.varifocal_loss(logits, target) / n_pos
    close(by_pos / twice, torch.tensor(40.0, dtype=F64))
    # "none" ignores avg_factor; "sum" with it is an error, as mmdetection.
    close(
        la.varifocal_loss(logits, target, avg_factor=3.0, reduction="none"), ref_vfl(logits, target)
    )
    with pytest.raises(ValueError, match="avg_factor=3.0 cannot be used with reduction='sum'"):
        la.varifocal_loss(logits, target, avg_factor=3.0, reduction="sum")
    with pytest.raises(ValueError, match="avg_factor must be in"):
        la.varifocal_loss(logits, target, avg_factor=0.0)


def test_vfl_weights_broadcast_as_element_weights():
    logits, target = vfl_inputs(n=4, c=3, seed=5)
    values = ref_vfl(logits, target)
    per_sample = torch.tensor([[1.0], [0.0], [2.0], [0.5]], dtype=F64)
    for weight in (per_sample, torch.tensor([0.2, 1.0, 3.0], dtype=F64)):
        for reduction, avg in (("mean", None), ("mean", 2.5), ("none", None)):
            expected = mmdet_reduce(values, weight, reduction, avg)
            actual = la.varifocal_loss(
                logits, target, weight=weight, avg_factor=avg, reduction=reduction
            )
            close(actual, expected)
    with pytest.raises(ValueError, match=r"weight must broadcast .* \(4, 3\)"):
        la.varifocal_loss(logits, target, weight=torch.ones(4, dtype=F64))  # (N,): use (N, 1)


def test_vfl_errors():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"target must hold probabilities in \[0, 1\]"):
        la.varifocal_loss(x, torch.full((2, 3), -0.1))
    with pytest.raises(ValueError, match="target must have the same shape as input"):
        la.varifocal_loss(x, torch.zeros(2, 4))
    with pytest.raises(TypeError, match="iou_weighted must be a bool"):
        la.varifocal_loss(x, torch.zeros(2, 3), iou_weighted=1)
    with pytest.raises(ValueError, match="alpha must be in"):
        la.varifocal_loss(x, torch.zeros(2, 3), alpha=-0.5)


# --------------------------------------------------------------------------- shared options


CASES = [
    (
        "qfl",
        lambda w, a, r: la.quality_focal_loss(*qfl_inputs(), weight=w, avg_factor=a, reduction=r),
        lambda: ref_qfl(*qfl_inputs()),
        7,
    ),
    (
        "dfl",
        lambda w, a, r: la.distribution_focal_loss(
            *dfl_inputs(), weight=w, avg_factor=a, reduction=r
        ),
        lambda: ref_dfl(*dfl_inputs()),
        7,
    ),
]


def dfl_inputs():
    g = torch.Generator().manual_seed(6)
    return torch.randn(7, 5, generator=g, dtype=F64), torch.rand(7, generator=g, dtype=F64) * 4


@pytest.mark.parametrize(("name", "loss", "reference", "n"), CASES, ids=[c[0] for c in CASES])
def test_weight_and_avg_factor_are_mmdetections(name, loss, reference, n):
    weight = torch.linspace(0.0, 2.0, n, dtype=F64)
    values = reference()
    for reduction in ("none", "mean", "sum"):
        close(loss(weight, None, reduction), mmdet_reduce(values, weight, reduction, None))
    close(loss(weight, 4.0, "mean"), mmdet_reduce(values, weight, "mean", 4.0))
    close(loss(None, 4.0, "none"), values)
    with pytest.raises(ValueError, match="cannot be used with reduction='sum'"):
        loss(weight, 4.0, "sum")


@pytest.mark.parametrize(
    ("module", "inputs"),
    [
        (la.nn.QualityFocalLoss, qfl_inputs),
        (la.nn.DistributionFocalLoss, dfl_inputs),
        (la.nn.VarifocalLoss, vfl_inputs),
    ],
)
def test_modules_take_weight_and_avg_factor_per_call(module, inputs):
    args = inputs()
    n = args[0].shape[0]
    weight = torch.rand(n, dtype=F64) if module is not la.nn.VarifocalLoss else None
    m = module()
    functional = m.functional
    close(m(*args), functional(*args))
    close(m(*args, weight=weight, avg_factor=2.0), functional(*args, weight=weight, avg_factor=2.0))
    with pytest.raises(ValueError, match="avg_factor must be in"):
        module(avg_factor=-1.0)


@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([0.1, 1.0, 10.0, 100.0]))
def test_non_negative_and_finite(seed, scale):
    logits, labels, score = qfl_inputs(seed=seed % 1000)
    assert (la.quality_focal_loss(logits * scale, labels, score, reduction="none") >= 0).all()
    logits, target = vfl_inputs(seed=seed % 1000)
    value = la.varifocal_loss(logits * scale, target, reduction="none")
    assert torch.isfinite(value).all() and (value >= 0).all()
    g = torch.Generator().manual_seed(seed)
    bins = torch.randn(4, 6, generator=g, dtype=F64) * scale
    value = la.distribution_focal_loss(bins, torch.rand(4, generator=g, dtype=F64) * 5)
    assert torch.isfinite(value) and value >= 0
