"""Composite losses return the total as a tensor; their parts come on request, computed once."""

import operator
import re

import pytest
import torch

import lossatlas as la
from lossatlas.detection.ssd import example_priors

F64 = torch.float64


def _segmentation():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, generator=g, dtype=F64)
    labels = torch.randint(0, 3, (2, 4, 4), generator=g)
    return (logits, labels), {}


def _detection():
    g = torch.Generator().manual_seed(1)
    priors = example_priors(F64)
    loc = torch.randn(2, priors.shape[0], 4, generator=g, dtype=F64)
    conf = torch.randn(2, priors.shape[0], 4, generator=g, dtype=F64)
    boxes = [torch.tensor([[0.1, 0.1, 0.5, 0.6]], dtype=F64), torch.zeros(0, 4, dtype=F64)]
    labels = [torch.tensor([2]), torch.zeros(0, dtype=torch.long)]
    return (loc, conf, priors, boxes, labels), {}


# (functional, module twin, inputs, the parts' names and weights as the total sums them)
CASES = {
    "dice_ce_loss": (
        la.dice_ce_loss,
        la.nn.DiceCELoss,
        _segmentation,
        {"lambda_dice": 0.7, "lambda_ce": 1.3},
        {"dice": 0.7, "ce": 1.3},
    ),
    "dice_focal_loss": (
        la.dice_focal_loss,
        la.nn.DiceFocalLoss,
        _segmentation,
        {"lambda_focal": 2.0},
        {"dice": 1.0, "focal": 2.0},
    ),
    "ssd_loss": (
        la.ssd_loss,
        la.nn.SSDLoss,
        _detection,
        {"loc_weight": 0.5},
        {"loc": 0.5, "conf": 1.0},
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_composite_is_a_tensor_equal_to_the_total_of_its_parts(name):
    function, module, make, options, weights = CASES[name]
    args, _ = make()
    total = function(*args, **options)
    assert isinstance(total, torch.Tensor) and total.dim() == 0
    parts = function(*args, **options, return_parts=True)
    assert isinstance(parts, la.LossParts)
    torch.testing.assert_close(total, parts.total, rtol=0, atol=0)
    # The total is the weighted sum of the unweighted parts, each as its own function gives it.
    assert set(parts.parts) == set(weights)
    expected = sum(weights[k] * v for k, v in parts.parts.items())
    torch.testing.assert_close(parts.total, expected)
    # The module twin: a tensor by default, the parts when built with return_parts=True.
    out = module(**options)(*args)
    assert isinstance(out, torch.Tensor)
    torch.testing.assert_close(out, total, rtol=0, atol=0)
    torch.testing.assert_close(module(**options, return_parts=True)(*args).total, total)


@pytest.mark.parametrize("name", list(CASES))
def test_composite_backward_and_arithmetic_like_a_torch_loss(name):
    function, module, make, options, _ = CASES[name]
    args, _ = make()
    leaf = args[0].clone().requires_grad_(True)
    loss = module(**options)(leaf, *args[1:])
    (2 * loss + leaf.square().mean()).backward()  # arithmetic of tensors, then backward
    assert leaf.grad is not None and torch.isfinite(leaf.grad).all()
    # The parts path gives the same gradient (one computation, not two).
    again = args[0].clone().requires_grad_(True)
    out = function(again, *args[1:], **options, return_parts=True)
    (2 * out.total + again.square().mean()).backward()
    torch.testing.assert_close(again.grad, leaf.grad)


def test_dice_ce_loss_module_replaces_monais():
    monai_losses = pytest.importorskip("monai.losses", reason="MONAI is the drop-in reference")
    (logits, labels), _ = _segmentation()
    ours = la.nn.DiceCELoss()(logits, labels)
    theirs = monai_losses.DiceCELoss(softmax=True, to_onehot_y=True)(logits, labels.unsqueeze(1))
    assert type(ours) is type(theirs) is torch.Tensor
    torch.testing.assert_close(ours, theirs)


def test_combine_returns_a_tensor_and_parts_on_request():
    logits, target = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=F64), torch.tensor([1, 0])
    ce = torch.nn.functional.cross_entropy(logits, target)
    smooth = torch.nn.functional.cross_entropy(logits, target, label_smoothing=0.2)
    loss = la.combine(ce=(la.cross_entropy, 1.0), smooth=(la.nn.CrossEntropyLoss(), 0.5))
    out = loss(logits, target)
    assert isinstance(out, torch.Tensor)
    torch.testing.assert_close(out, ce + 0.5 * ce)
    parts = la.combine(
        ce=(la.cross_entropy, 1.0),
        smooth=(lambda x, y: la.cross_entropy(x, y, label_smoothing=0.2), 0.5),
        return_parts=True,
    )(logits, target)
    torch.testing.assert_close(parts.total, ce + 0.5 * smooth)
    torch.testing.assert_close(parts.parts["smooth"], smooth)
    # A composite term contributes its total, with or without parts.
    nested = la.combine(
        dice_ce=(la.nn.DiceCELoss(return_parts=True), 1.0), dice=(la.nn.DiceLoss(), 1.0)
    )
    (seg, labels), _ = _segmentation()
    torch.testing.assert_close(
        nested(seg, labels), la.dice_ce_loss(seg, labels) + la.dice_loss(seg, labels)
    )
    assert "return_parts=True" in repr(la.combine(a=(la.mse_loss, 1.0), return_parts=True))
    with pytest.raises(TypeError, match="return_parts must be a bool"):
        la.combine(a=(la.mse_loss, 1.0), return_parts="no")


# --------------------------------------------------------------------------- LossParts arithmetic


def _parts():
    return la.LossParts(torch.tensor(3.0), {"a": torch.tensor(1.0), "b": torch.tensor(4.0)})


@pytest.mark.parametrize(
    ("make", "factor"),
    [
        (lambda p: 2 * p, 2.0),
        (lambda p: p * 2.0, 2.0),
        (lambda p: torch.tensor(0.5) * p, 0.5),
        (lambda p: p * torch.tensor(3.0), 3.0),
        (lambda p: p / 4, 0.25),
        (lambda p: -p, -1.0),
    ],
)
def test_scaling_loss_parts_scales_the_total_and_every_part(make, factor):
    out = make(_parts())
    assert isinstance(out, la.LossParts) and len(out) == 2
    torch.testing.assert_close(out.total, torch.tensor(3.0 * factor))
    assert {k: float(v) for k, v in out.parts.items()} == {"a": factor, "b": 4.0 * factor}


@pytest.mark.parametrize(
    ("op", "symbol"),
    [
        (operator.add, "+"),
        (lambda a, b: b + a, "+"),
        (operator.sub, "-"),
        (lambda a, b: b - a, "-"),
        (lambda a, b: b / a, "/"),
        (operator.pow, "**"),
        (operator.floordiv, "//"),
        (operator.mod, "%"),
    ],
)
@pytest.mark.parametrize(
    "other", [torch.tensor(1.0), 1.0, _parts()], ids=["tensor", "float", "parts"]
)
def test_other_arithmetic_on_loss_parts_is_a_clear_type_error(op, symbol, other):
    with pytest.raises(
        TypeError, match=f"LossParts does not support {re.escape(repr(symbol))}: use .total"
    ):
        op(_parts(), other)


@pytest.mark.parametrize("factor", [torch.ones(2), "2", (2,)])
def test_scaling_by_a_non_scalar_is_a_type_error(factor):
    with pytest.raises(TypeError, match="LossParts scales by a number or a 0-d tensor"):
        _parts() * factor
    with pytest.raises(TypeError, match="LossParts scales by a number or a 0-d tensor"):
        _parts() / factor


def test_loss_parts_still_unpacks_and_indexes_like_a_pair():
    total, parts = _parts()
    assert float(total) == 3.0 and set(parts) == {"a", "b"}
    assert _parts()[0] is not None and len(_parts()) == 2
