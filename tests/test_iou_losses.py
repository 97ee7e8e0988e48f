"""IoU family: torchvision's IoU, GIoU, DIoU, CIoU; mmdetection's EIoU, SIoU, weight, avg_factor.

torchvision is not installed, so its formulas are written below as it writes them
(``torchvision/ops/_utils.py::_loss_inter_union``, ``giou_loss.py::generalized_box_iou_loss``,
``diou_loss.py::_diou_iou_loss``, ``ciou_loss.py::complete_box_iou_loss``; boolean-mask
intersection, ``eps=1e-7`` in the same places, CIoU's ``alpha`` under ``torch.no_grad``).
"""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import lossatlas as la

F64 = torch.float64
EPS = 1e-7
LOSSES = [la.iou_loss, la.giou_loss, la.diou_loss, la.ciou_loss]


# --------------------------------------------------------------------------- torchvision


def tv_inter_union(boxes1, boxes2):
    """torchvision.ops._utils._loss_inter_union."""
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    xkis1 = torch.max(x1, x1g)
    ykis1 = torch.max(y1, y1g)
    xkis2 = torch.min(x2, x2g)
    ykis2 = torch.min(y2, y2g)
    intsctk = torch.zeros_like(x1)
    mask = (ykis2 > ykis1) & (xkis2 > xkis1)
    intsctk[mask] = (xkis2[mask] - xkis1[mask]) * (ykis2[mask] - ykis1[mask])
    unionk = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - intsctk
    return intsctk, unionk


def tv_iou(boxes1, boxes2, eps=EPS):
    """1 - IoU with torchvision's union + eps (torchvision has no plain IoU loss)."""
    intsct, union = tv_inter_union(boxes1, boxes2)
    return 1 - intsct / (union + eps)


def tv_giou(boxes1, boxes2, eps=EPS):
    """torchvision.ops.generalized_box_iou_loss, reduction='none'."""
    intsctk, unionk = tv_inter_union(boxes1, boxes2)
    iouk = intsctk / (unionk + eps)
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    xc1, yc1 = torch.min(x1, x1g), torch.min(y1, y1g)
    xc2, yc2 = torch.max(x2, x2g), torch.max(y2, y2g)
    area_c = (xc2 - xc1) * (yc2 - yc1)
    miouk = iouk - ((area_c - unionk) / (area_c + eps))
    return 1 - miouk


def tv_diou_iou(boxes1, boxes2, eps=EPS):
    """torchvision.ops.diou_loss._diou_iou_loss."""
    intsct, union = tv_inter_union(boxes1, boxes2)
    iou = intsct / (union + eps)
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    xc1, yc1 = torch.min(x1, x1g), torch.min(y1, y1g)
    xc2, yc2 = torch.max(x2, x2g), torch.max(y2, y2g)
    diagonal_distance_squared = ((xc2 - xc1) ** 2) + ((yc2 - yc1) ** 2) + eps
    x_p, y_p = (x2 + x1) / 2, (y2 + y1) / 2
    x_g, y_g = (x1g + x2g) / 2, (y1g + y2g) / 2
    centers_distance_squared = ((x_p - x_g) ** 2) + ((y_p - y_g) ** 2)
    return 1 - iou + (centers_distance_squared / diagonal_distance_squared), iou


def tv_diou(boxes1, boxes2, eps=EPS):
    return tv_diou_iou(boxes1, boxes2, eps)[0]


def tv_ciou(boxes1, boxes2, eps=EPS):
    """torchvision.ops.complete_box_iou_loss, reduction='none'."""
    diou_loss, iou = tv_diou_iou(boxes1, boxes2, eps)
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    w_pred, h_pred = x2 - x1, y2 - y1
    w_gt, h_gt = x2g - x1g, y2g - y1g
    v = (4 / (torch.pi**2)) * torch.pow((torch.atan(w_gt / h_gt) - torch.atan(w_pred / h_pred)), 2)
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return diou_loss + alpha * v


PAIRS = [
    (la.iou_loss, tv_iou),
    (la.giou_loss, tv_giou),
    (la.diou_loss, tv_diou),
    (la.ciou_loss, tv_ciou),
]
IDS = ["iou", "giou", "diou", "ciou"]


def random_pairs(n, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    corner = torch.rand(n, 2, generator=g, dtype=F64) * 10
    size = torch.rand(n, 2, generator=g, dtype=F64) * 5 + 0.1
    target = torch.cat((corner, corner + size), dim=1)
    shift = torch.randn(n, 2, generator=g, dtype=F64) * 2
    scale = torch.rand(n, 2, generator=g, dtype=F64) + 0.5
    centre = corner + size / 2 + shift
    psize = size * scale
    pred = torch.cat((centre - psize / 2, centre + psize / 2), dim=1)
    return pred.to(dtype), target.to(dtype)


def close(actual, expected, *, rtol=1e-6, atol=1e-9):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(("loss", "reference"), PAIRS, ids=IDS)
def test_equals_torchvision_formula(loss, reference):
    pred, target = random_pairs(64)
    expected = reference(pred, target)
    close(loss(pred, target, reduction="none"), expected)
    close(loss(pred, target, reduction="sum"), expected.sum())
    close(loss(pred, target), expected.mean())  # torchvision's "mean": number of pairs


@pytest.mark.parametrize(("loss", "reference"), PAIRS, ids=IDS)
def test_gradient_equals_torchvision(loss, reference):
    # Includes CIoU, whose gradient treats alpha as a constant (the reference's no_grad).
    pred, target = random_pairs(32, seed=1)
    a = pred.clone().requires_grad_(True)
    b = pred.clone().requires_grad_(True)
    (ga,) = torch.autograd.grad(loss(a, target, reduction="sum"), a)
    (gb,) = torch.autograd.grad(reference(b, target).sum(), b)
    close(ga, gb)


@pytest.mark.parametrize(("loss", "reference"), PAIRS, ids=IDS)
def test_eps_option(loss, reference):
    pred, target = random_pairs(16, seed=2)
    close(loss(pred, target, eps=0.5, reduction="none"), reference(pred, target, eps=0.5))


def test_hand_values():
    # [0,0,2,2] vs [1,1,3,3]: intersection 1, union 7, enclosing box 3x3 (area 9, diagonal^2
    # 18), centres (1,1) and (2,2) at squared distance 2.
    pred = torch.tensor([[0.0, 0.0, 2.0, 2.0]], dtype=F64)
    gt = torch.tensor([[1.0, 1.0, 3.0, 3.0]], dtype=F64)
    iou = 1 / (7 + EPS)
    close(la.iou_loss(pred, gt), torch.tensor(1 - iou, dtype=F64))
    close(la.giou_loss(pred, gt), torch.tensor(1 - iou + (9 - 7) / (9 + EPS), dtype=F64))
    close(la.diou_loss(pred, gt), torch.tensor(1 - iou + 2 / (18 + EPS), dtype=F64))
    # Same aspect ratio: v = 0, CIoU = DIoU.
    close(la.ciou_loss(pred, gt), la.diou_loss(pred, gt))


def test_ciou_aspect_term_by_hand():
    # [0,0,2,2] vs [0,0.5,2,1.5]: same centre, IoU 2/4, v = 4/pi^2 (atan 2 - atan 1)^2.
    pred = torch.tensor([[0.0, 0.0, 2.0, 2.0]], dtype=F64)
    gt = torch.tensor([[0.0, 0.5, 2.0, 1.5]], dtype=F64)
    iou = 2 / (4 + EPS)
    v = 4 / math.pi**2 * (math.atan(2.0) - math.atan(1.0)) ** 2
    alpha = v / (1 - iou + v + EPS)
    close(la.ciou_loss(pred, gt), torch.tensor(1 - iou + alpha * v, dtype=F64))


def test_disjoint_boxes_keep_a_gradient_except_iou():
    pred = torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=F64, requires_grad=True)
    gt = torch.tensor([[2.0, 2.0, 3.0, 3.0]], dtype=F64)
    (g_iou,) = torch.autograd.grad(la.iou_loss(pred, gt), pred)
    assert float(g_iou.abs().sum()) == 0.0
    for loss in (la.giou_loss, la.diou_loss, la.ciou_loss):
        (grad,) = torch.autograd.grad(loss(pred, gt), pred)
        assert float(grad.abs().sum()) > 0


@pytest.mark.parametrize("loss", LOSSES, ids=IDS)
def test_identical_boxes_give_zero_and_finite_gradients(loss):
    boxes = torch.tensor([[0.0, 0.0, 2.0, 3.0], [5.0, 5.0, 6.0, 9.0]], dtype=F64)
    pred = boxes.clone().requires_grad_(True)
    value = loss(pred, boxes, reduction="none")
    area = torch.tensor([6.0, 4.0], dtype=F64)
    # 1 - A / (A + eps) = eps / (A + eps): zero up to eps.
    close(value, EPS / (area + EPS), atol=1e-12)
    (grad,) = torch.autograd.grad(value.sum(), pred)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("loss", LOSSES, ids=IDS)
@pytest.mark.parametrize(
    "pair",
    [
        ([1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]),  # two identical points
        ([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 2.0]),  # a point inside a box
        ([0.0, 1.0, 2.0, 1.0], [0.0, 0.0, 2.0, 2.0]),  # a zero-height segment
        ([1.0, 0.0, 1.0, 2.0], [3.0, 3.0, 3.0, 3.0]),  # a zero-width segment and a point
    ],
    ids=["points", "point-in-box", "segment", "segment-point"],
)
def test_zero_area_boxes_are_finite(loss, pair):
    pred = torch.tensor([pair[0]], dtype=F64, requires_grad=True)
    target = torch.tensor([pair[1]], dtype=F64)
    value = loss(pred, target)
    assert torch.isfinite(value)
    (grad,) = torch.autograd.grad(value, pred)
    assert torch.isfinite(grad).all()


def test_ciou_zero_height_box_matches_torchvision():
    # h = 0, w > 0: torchvision's atan(w / 0) = pi / 2, as our atan2.
    pred = torch.tensor([[0.0, 1.0, 2.0, 1.0]], dtype=F64)
    target = torch.tensor([[0.0, 0.0, 2.0, 3.0]], dtype=F64)
    close(la.ciou_loss(pred, target, reduction="none"), tv_ciou(pred, target))


@pytest.mark.parametrize("loss", LOSSES, ids=IDS)
def test_empty_input_mean_is_zero(loss):
    pred = torch.zeros(0, 4, requires_grad=True)
    value = loss(pred, torch.zeros(0, 4))
    assert float(value.detach()) == 0.0
    (grad,) = torch.autograd.grad(value, pred)
    assert grad.shape == (0, 4)


@pytest.mark.parametrize(("loss", "reference"), PAIRS, ids=IDS)
def test_batched_leading_dims(loss, reference):
    pred, target = random_pairs(12, seed=3)
    value = loss(pred.view(3, 4, 4), target.view(3, 4, 4), reduction="none")
    assert value.shape == (3, 4)
    close(value.reshape(-1), reference(pred, target))


@pytest.mark.parametrize("loss", LOSSES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_in_float32(loss, dtype):
    pred, target = random_pairs(16, seed=4)
    value = loss(pred.to(dtype), target.to(dtype))
    assert value.dtype == torch.float32
    expected = loss(pred.to(dtype).double(), target.to(dtype).double())
    close(value.double(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss", LOSSES, ids=IDS)
def test_symmetric(loss):
    pred, target = random_pairs(16, seed=5)
    close(loss(pred, target, reduction="none"), loss(target, pred, reduction="none"))


@pytest.mark.parametrize("module", [la.nn.IoULoss, la.nn.GIoULoss, la.nn.DIoULoss, la.nn.CIoULoss])
def test_modules(module):
    pred, target = random_pairs(8, seed=6)
    m = module(eps=1e-3, reduction="sum")
    close(m(pred, target), m.functional(pred, target, eps=1e-3, reduction="sum"))
    assert "eps=0.001" in repr(m)
    with pytest.raises(ValueError, match="eps must be in"):
        module(eps=-1.0)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("loss", LOSSES, ids=IDS)
def test_errors(loss):
    good = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    with pytest.raises(
        ValueError,
        match=r"input must hold finite \(x1, y1, x2, y2\) boxes with "
        r"x2 >= x1 and y2 >= y1, got \[1.0, 0.0, 0.0, 1.0\] at position \(0,\)",
    ):
        loss(torch.tensor([[1.0, 0.0, 0.0, 1.0]]), good)
    with pytest.raises(ValueError, match="target must hold finite"):
        loss(good, torch.tensor([[0.0, 2.0, 1.0, 1.0]]))
    with pytest.raises(ValueError, match=r"target must have the same shape as input \(1, 4\)"):
        loss(good, good.view(4))
    with pytest.raises(ValueError, match=r"input must have shape \(\.\.\., 4\)"):
        loss(torch.zeros(2, 5), torch.zeros(2, 5))
    with pytest.raises(TypeError, match="input must be a floating-point tensor"):
        loss(good.long(), good)
    with pytest.raises(ValueError, match="reduction must be one of"):
        loss(good, good, reduction="avg")
    with pytest.raises(ValueError, match="eps must be in"):
        loss(good, good, eps=-1.0)


def test_value_checks_can_be_switched_off():
    bad = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    with la.value_checks(False):
        assert torch.isfinite(la.giou_loss(bad, torch.tensor([[0.0, 0.0, 1.0, 1.0]])))


# --------------------------------------------------------------------------- properties


BOUNDS = {"iou": 1.0, "giou": 2.0, "diou": 2.0, "ciou": 3.0}


@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 20),
    spread=st.sampled_from([0.01, 1.0, 100.0, 1e4]),
)
def test_bounds_and_permutation(seed, n, spread):
    pred, target = random_pairs(n, seed=seed % 10_000)
    pred, target = pred * spread, target * spread
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    for name, loss in zip(IDS, LOSSES, strict=True):
        value = loss(pred, target, reduction="none")
        assert (value >= 0).all() and (value <= BOUNDS[name]).all(), name
        close(loss(pred[perm], target[perm], reduction="none"), value[perm])


# ----------------------------------------------------------------- mmdetection's EIoU, SIoU
# Scalar references in float64 written from mmdetection's ``mmdet/models/losses/iou_loss.py``
# (``eiou_loss``: the extended intersection from the enclosing box's low corner, smoothed at
# ``smooth_point``; ``siou_loss``: angle, distance and shape costs, the SIoU clamped to [-1, 1])
# and the papers (Peng & Yu, TIP 2021; Gevorgyan, arXiv 2205.12740).


def ref_eiou(box, gt, smooth_point=0.1, eps=EPS):
    px1, py1, px2, py2 = (float(v) for v in box)
    tx1, ty1, tx2, ty2 = (float(v) for v in gt)
    ex1, ey1 = min(px1, tx1), min(py1, ty1)
    ix1, iy1, ix2, iy2 = max(px1, tx1), max(py1, ty1), min(px2, tx2), min(py2, ty2)
    xmin, ymin, xmax, ymax = min(ix1, ix2), min(iy1, iy2), max(ix1, ix2), max(iy1, iy2)
    inter = (
        (ix2 - ex1) * (iy2 - ey1)
        + (xmin - ex1) * (ymin - ey1)
        - (ix1 - ex1) * (ymax - ey1)
        - (xmax - ex1) * (iy1 - ey1)
    )
    union = (px2 - px1) * (py2 - py1) + (tx2 - tx1) * (ty2 - ty1) - inter + eps
    loss = 1 - inter / union
    if loss < smooth_point:
        return 0.5 * loss**2 / smooth_point
    return loss - 0.5 * smooth_point


def ref_siou(box, gt, neg_gamma=True, eps=EPS):
    px1, py1, px2, py2 = (float(v) for v in box)
    tx1, ty1, tx2, ty2 = (float(v) for v in gt)
    overlap = max(min(px2, tx2) - max(px1, tx1), 0) * max(min(py2, ty2) - max(py1, ty1), 0)
    union = (px2 - px1) * (py2 - py1) + (tx2 - tx1) * (ty2 - ty1) - overlap + eps
    iou = overlap / union
    cw = max(max(px2, tx2) - min(px1, tx1), eps)
    ch = max(max(py2, ty2) - min(py1, ty1), eps)
    w1, h1 = px2 - px1, py2 - py1 + eps
    w2, h2 = tx2 - tx1, ty2 - ty1 + eps
    s_cw = (tx1 + tx2 - px1 - px2) * 0.5 + eps
    s_ch = (ty1 + ty2 - py1 - py2) * 0.5 + eps
    sigma = math.sqrt(s_cw**2 + s_ch**2)
    sin1, sin2 = abs(s_cw) / sigma, abs(s_ch) / sigma
    sin_alpha = sin2 if sin1 > math.sqrt(2) / 2 else sin1
    angle = math.cos(2 * math.asin(sin_alpha) - math.pi / 2)
    gamma = angle - 2 if neg_gamma else 2 - angle
    distance = 2 - math.exp(gamma * (s_cw / cw) ** 2) - math.exp(gamma * (s_ch / ch) ** 2)
    shape = sum(
        (1 - math.exp(-abs(a - b) / max(a, b))) ** 4 if max(a, b) > 0 else 0.0
        for a, b in ((w1, w2), (h1, h2))
    )
    siou = iou - 0.5 * (distance + shape)
    return 1 - min(max(siou, -1.0), 1.0)


def by_box(reference, pred, target, **options):
    return torch.tensor(
        [reference(p, t, **options) for p, t in zip(pred, target, strict=True)], dtype=F64
    )


@pytest.mark.parametrize("smooth_point", [0.1, 0.5, 2.5])
def test_eiou_equals_mmdetection_formula(smooth_point):
    pred, target = random_pairs(48, seed=7)
    expected = by_box(ref_eiou, pred, target, smooth_point=smooth_point)
    value = la.eiou_loss(pred, target, smooth_point=smooth_point, reduction="none")
    close(value, expected)


def test_eiou_extended_intersection_by_hand():
    # Overlapping: the true intersection. Disjoint in x, [0,0,1,1] vs [2,0,3,1]: the signed
    # intersection is -1 (a gap of 1 times a height of 1), the union 1 + 1 + 1.
    pred = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]], dtype=F64)
    gt = torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 0.0, 3.0, 1.0]], dtype=F64)
    loss = torch.tensor([1 - 1 / (7 + EPS), 1 + 1 / (3 + EPS)], dtype=F64)
    close(la.eiou_loss(pred, gt, reduction="none"), loss - 0.05)
    # Below smooth_point it is quadratic: l^2 / (2 s), and C^1 at l = s.
    near = torch.tensor([[0.0, 0.0, 10.0, 10.0]], dtype=F64)
    shifted = near + torch.tensor([[0.1, 0.0, 0.1, 0.0]], dtype=F64)
    l_small = 1 - 99 / (101 + EPS)
    close(la.eiou_loss(near, shifted), torch.tensor(l_small**2 / 0.2, dtype=F64))
    # farther apart, a larger loss (IoU loss would be stuck at 1)
    far = gt[1:] + torch.tensor([[5.0, 0.0, 5.0, 0.0]], dtype=F64)
    assert la.eiou_loss(pred[1:], far) > la.eiou_loss(pred[1:], gt[1:])
    assert float(la.iou_loss(pred[1:], far)) == float(la.iou_loss(pred[1:], gt[1:])) == 1.0


@pytest.mark.parametrize("neg_gamma", [True, False])
def test_siou_equals_mmdetection_formula(neg_gamma):
    pred, target = random_pairs(48, seed=8)
    expected = by_box(ref_siou, pred, target, neg_gamma=neg_gamma)
    close(la.siou_loss(pred, target, neg_gamma=neg_gamma, reduction="none"), expected)
    # gradient against central differences of the reference (in float64)
    x = pred[:6].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(
        la.siou_loss(x, target[:6], neg_gamma=neg_gamma, reduction="sum"), x
    )
    h = 1e-6
    for i in range(6):
        for k in range(4):
            up, down = pred[i].clone(), pred[i].clone()
            up[k] += h
            down[k] -= h
            numeric = ref_siou(up, target[i], neg_gamma) - ref_siou(down, target[i], neg_gamma)
            close(grad[i, k], torch.tensor(numeric / (2 * h), dtype=F64), rtol=1e-5, atol=1e-7)


def test_siou_sign_pitfall():
    # Same size, the prediction moved right along x: the shape cost is 0 and the angle cost 0
    # (gamma = 2), so the SIoU loss minus the IoU loss is half the distance cost. The paper's
    # (neg_gamma=True) is 1 - exp(-2 rho) > 0 and grows with the offset; mmdetection's default
    # (neg_gamma=False) is 1 - exp(2 rho) < 0 and shrinks: it rewards the boxes separating.
    gt = torch.tensor([[0.0, 0.0, 2.0, 2.0]], dtype=F64)
    costs = {True: [], False: []}
    for dx in (0.25, 0.5, 1.0):
        pred = gt + torch.tensor([[dx, 0.0, dx, 0.0]], dtype=F64)
        rho = (dx / (2 + dx)) ** 2
        for neg_gamma in (True, False):
            value = la.siou_loss(pred, gt, neg_gamma=neg_gamma)
            close(value, torch.tensor(ref_siou(pred[0], gt[0], neg_gamma), dtype=F64))
            cost = 2 * float(value - la.iou_loss(pred, gt))
            sign = -1 if neg_gamma else 1
            close(
                torch.tensor(cost), torch.tensor(1 - math.exp(sign * 2 * rho)), rtol=1e-5, atol=1e-6
            )
            costs[neg_gamma].append(cost)
    assert all(c > 0 for c in costs[True]) and costs[True] == sorted(costs[True])
    assert all(c < 0 for c in costs[False]) and costs[False] == sorted(costs[False], reverse=True)


# --------------------------------------------------------------------------- weight, avg_factor

ALL_LOSSES = [*LOSSES, la.eiou_loss, la.siou_loss]
ALL_IDS = [*IDS, "eiou", "siou"]


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=ALL_IDS)
def test_weight_and_avg_factor_are_mmdetections(loss):
    # mmdet/models/losses/utils.py::weight_reduce_loss: loss * weight; "mean" is the mean over
    # the boxes, or sum / avg_factor; "none" ignores avg_factor; "sum" with it raises.
    pred, target = random_pairs(10, seed=9)
    values = loss(pred, target, reduction="none")
    weight = torch.linspace(0.0, 2.0, 10, dtype=F64)
    close(loss(pred, target, weight=weight, reduction="none"), values * weight)
    close(loss(pred, target, weight=weight), (values * weight).sum() / 10)
    close(loss(pred, target, weight=weight, reduction="sum"), (values * weight).sum())
    close(loss(pred, target, weight=weight, avg_factor=2.5), (values * weight).sum() / 2.5)
    close(loss(pred, target, avg_factor=4.0, reduction="none"), values)
    with pytest.raises(ValueError, match=r"avg_factor=2.5 cannot be used with reduction='sum'"):
        loss(pred, target, avg_factor=2.5, reduction="sum")
    with pytest.raises(ValueError, match="avg_factor must be in"):
        loss(pred, target, avg_factor=0.0)
    with pytest.raises(ValueError, match=r"weight must broadcast .* \(10,\) .* weight.mean\(-1\)"):
        loss(pred, target, weight=torch.ones(10, 4, dtype=F64))
    with pytest.raises(TypeError, match="weight must be a floating-point tensor"):
        loss(pred, target, weight=torch.ones(10, dtype=torch.long))
    # leading dimensions: a weight per box
    value = loss(pred.view(2, 5, 4), target.view(2, 5, 4), weight=weight.view(2, 5), avg_factor=3.0)
    close(value, (values * weight).sum() / 3.0)


@pytest.mark.parametrize(
    "module",
    [la.nn.IoULoss, la.nn.GIoULoss, la.nn.DIoULoss, la.nn.CIoULoss, la.nn.EIoULoss, la.nn.SIoULoss],
)
def test_modules_take_weight_and_avg_factor_per_call(module):
    pred, target = random_pairs(8, seed=10)
    weight = torch.rand(8, dtype=F64)
    m = module()
    close(
        m(pred, target, weight=weight, avg_factor=2.0),
        m.functional(pred, target, weight=weight, avg_factor=2.0),
    )
    close(m(pred, target), m.functional(pred, target))
    with pytest.raises(ValueError, match="cannot be used with reduction='sum'"):
        module(reduction="sum")(pred, target, avg_factor=2.0)


@pytest.mark.parametrize("loss", [la.eiou_loss, la.siou_loss], ids=["eiou", "siou"])
@pytest.mark.parametrize(
    "pair",
    [
        ([1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]),
        ([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 2.0]),
        ([0.0, 1.0, 2.0, 1.0], [0.0, 0.0, 2.0, 2.0]),
        ([1.0, 0.0, 1.0, 2.0], [3.0, 3.0, 3.0, 3.0]),
    ],
    ids=["points", "point-in-box", "segment", "segment-point"],
)
def test_mmdet_variants_zero_area_boxes_are_finite(loss, pair):
    # mmdetection's siou_loss gives NaN for two zero-width boxes (|w1 - w2| / max = 0 / 0).
    pred = torch.tensor([pair[0]], dtype=F64, requires_grad=True)
    value = loss(pred, torch.tensor([pair[1]], dtype=F64))
    (grad,) = torch.autograd.grad(value, pred)
    assert torch.isfinite(value) and torch.isfinite(grad).all()


@pytest.mark.parametrize("loss", [la.eiou_loss, la.siou_loss], ids=["eiou", "siou"])
def test_mmdet_variants_errors(loss):
    good = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="input must hold finite"):
        loss(torch.tensor([[1.0, 0.0, 0.0, 1.0]]), good)
    with pytest.raises(ValueError, match=r"input must have shape \(\.\.\., 4\)"):
        loss(torch.zeros(2, 5), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="target must have the same shape"):
        loss(good, good.view(4))
    with pytest.raises(ValueError, match="eps must be in"):
        loss(good, good, eps=-1.0)
    if loss is la.eiou_loss:
        with pytest.raises(ValueError, match="smooth_point must be in"):
            loss(good, good, smooth_point=0.0)
    else:
        with pytest.raises(TypeError, match="neg_gamma must be a bool"):
            loss(good, good, neg_gamma="yes")


@given(seed=st.integers(0, 2**31 - 1), spread=st.sampled_from([0.01, 1.0, 100.0, 1e4]))
def test_mmdet_variants_bounds(seed, spread):
    pred, target = random_pairs(12, seed=seed % 10_000)
    eiou = la.eiou_loss(pred * spread, target * spread, reduction="none")
    siou = la.siou_loss(pred * spread, target * spread, reduction="none")
    assert ((eiou >= 0) & (eiou < 2)).all() and ((siou >= 0) & (siou <= 2)).all()
    close(eiou, la.eiou_loss(target * spread, pred * spread, reduction="none"))
