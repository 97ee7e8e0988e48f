"""IoU family (IoU, GIoU, DIoU, CIoU): torchvision's formulas, degenerate boxes, errors.

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
