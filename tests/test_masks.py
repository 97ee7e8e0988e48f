"""Integer and bool masks as targets of the overlap losses: the same values as long / float."""

import pytest
import torch

import lossatlas as la

F64 = torch.float64

# Softmax losses: class-index targets (N, d1, ...), any integer dtype or bool (for C = 2).
SOFTMAX = [
    "dice_loss",
    "jaccard_loss",
    "tversky_loss",
    "focal_tversky_loss",
    "dsc_loss",
    "lovasz_softmax_loss",
    "dice_ce_loss",
    "dice_focal_loss",
]
# Sigmoid losses: {0, 1} masks of the input's shape, float in the reference.
SIGMOID = [
    "binary_dice_loss",
    "binary_jaccard_loss",
    "binary_tversky_loss",
    "binary_focal_tversky_loss",
    "binary_dsc_loss",
    "lovasz_hinge_loss",
]
INTEGER_DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32]


def _softmax_case(num_classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, num_classes, 5, 5, generator=g, dtype=F64)
    labels = torch.randint(0, num_classes, (2, 5, 5), generator=g)
    return logits, labels


def _grad(fn, logits, target, **options):
    leaf = logits.clone().requires_grad_(True)
    value = fn(leaf, target, **options)
    value.backward()
    return value.detach(), leaf.grad


@pytest.mark.parametrize("name", SOFTMAX)
@pytest.mark.parametrize("dtype", INTEGER_DTYPES, ids=str)
def test_softmax_overlap_losses_take_integer_masks(name, dtype):
    fn = getattr(la, name)
    logits, labels = _softmax_case()
    expected, expected_grad = _grad(fn, logits, labels)
    value, grad = _grad(fn, logits, labels.to(dtype))
    torch.testing.assert_close(value, expected, rtol=0, atol=0)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=0)
    module = la.get(name).module
    assert module is not None
    torch.testing.assert_close(module()(logits, labels.to(dtype)), expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", SOFTMAX)
def test_softmax_overlap_losses_take_bool_masks_for_two_classes(name):
    fn = getattr(la, name)
    logits, labels = _softmax_case(num_classes=2, seed=1)
    mask = labels.bool()
    torch.testing.assert_close(fn(logits, mask), fn(logits, labels), rtol=0, atol=0)


@pytest.mark.parametrize("name", SOFTMAX)
def test_uint8_masks_with_ignore_index_255(name):
    fn = getattr(la, name)
    logits, labels = _softmax_case(seed=2)
    labels[0, :2] = 255
    expected = fn(logits, labels, ignore_index=255)
    torch.testing.assert_close(
        fn(logits, labels.to(torch.uint8), ignore_index=255), expected, rtol=0, atol=0
    )


@pytest.mark.parametrize("name", SOFTMAX)
def test_integer_masks_out_of_range_raise_with_position(name):
    fn = getattr(la, name)
    logits, labels = _softmax_case(seed=3)
    labels[1, 2, 3] = 7
    with pytest.raises(ValueError, match=r"class index 7 at position \(1, 2, 3\)"):
        fn(logits, labels.to(torch.uint8))
    two, _ = _softmax_case(num_classes=2)
    with pytest.raises(ValueError, match="class indices must have shape"):
        fn(two, labels.unsqueeze(1).bool())  # a channel dim is not a class-index mask


@pytest.mark.parametrize("name", SIGMOID)
@pytest.mark.parametrize("dtype", [torch.bool, *INTEGER_DTYPES], ids=str)
def test_sigmoid_overlap_losses_take_binary_masks(name, dtype):
    fn = getattr(la, name)
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 1, 5, 5, generator=g, dtype=F64)
    mask = torch.rand(2, 1, 5, 5, generator=g) > 0.5
    # lovasz_hinge_loss takes {0, 1} labels as integers; the others {0, 1} floats.
    reference = mask.long() if name == "lovasz_hinge_loss" else mask.to(F64)
    expected, expected_grad = _grad(fn, logits, reference)
    value, grad = _grad(fn, logits, mask.to(dtype))
    torch.testing.assert_close(value, expected, rtol=0, atol=0)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=0)


@pytest.mark.parametrize("name", [n for n in SIGMOID if n != "lovasz_hinge_loss"])
def test_binary_masks_with_other_values_raise(name):
    fn = getattr(la, name)
    logits = torch.zeros(1, 1, 2, 2, dtype=F64)
    mask = torch.tensor([[[[0, 1], [3, 0]]]], dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"target must hold probabilities in \[0, 1\], got 3"):
        fn(logits, mask)


def test_lovasz_hinge_mask_with_other_values_raises():
    mask = torch.tensor([[[0, 1], [3, 0]]], dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"class index 3 at position \(0, 1, 0\)"):
        la.lovasz_hinge_loss(torch.zeros(1, 2, 2, dtype=F64), mask)


def test_half_precision_logits_with_a_bool_mask():
    logits = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(5))
    mask = logits > 0.3
    expected = la.binary_dice_loss(logits, mask.float())
    value = la.binary_dice_loss(logits.half(), mask)
    torch.testing.assert_close(value.float(), expected, rtol=2e-3, atol=2e-3)
