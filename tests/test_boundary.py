"""Boundary and Hausdorff distance-transform losses, and the torch Euclidean distance transform.

References: ``scipy.ndimage.distance_transform_edt`` for every distance map, the installed
MONAI's ``BoundaryLoss`` / ``HausdorffDTLoss`` for the losses (float64), and maps and losses
worked by hand on 1-D rows.
"""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lossatlas as la

ndimage = pytest.importorskip("scipy.ndimage", reason="scipy's EDT is the distance reference")
monai_losses = pytest.importorskip("monai.losses", reason="MONAI is the loss reference")


def _kervadec_map(mask: np.ndarray, sampling=None) -> np.ndarray:
    """``one_hot2dist`` of Kervadec et al.'s code for one class, with MONAI's full-mask rule."""
    if not mask.any() or mask.all():
        return np.zeros(mask.shape)
    outside = ndimage.distance_transform_edt(~mask, sampling=sampling)
    inside = ndimage.distance_transform_edt(mask, sampling=sampling)
    return outside * ~mask - (inside - 1) * mask


def _masks(shape, density, seed=0):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < density


def _onehot(labels, c):
    return F.one_hot(labels, c).movedim(-1, 1).double()


# --------------------------------------------------------------------------- distance map


@pytest.mark.parametrize(
    ("shape", "density"),
    [((2, 3, 7, 9), 0.4), ((1, 2, 5, 6, 4), 0.3), ((3, 1, 11), 0.2), ((1, 2, 23, 17), 0.01)],
)
def test_signed_distance_map_equals_scipy_edt(shape, density):
    masks = _masks(shape, density)
    masks[0, 0] = False  # an empty mask
    masks[-1, -1].view(-1)[0] = True  # and a single pixel somewhere
    actual = la.signed_distance_map(masks, dtype=torch.float64)
    for n, c in itertools.product(range(shape[0]), range(shape[1])):
        expected = _kervadec_map(masks[n, c].numpy())
        # torch's float64 sqrt may be 1 ulp from numpy's; the squared distances are exact
        np.testing.assert_allclose(actual[n, c].numpy(), expected, rtol=1e-15, atol=0)
        outside = ~masks[n, c].numpy()
        if outside.any() and not outside.all():
            squared = actual[n, c].numpy()[outside] ** 2
            np.testing.assert_array_equal(squared.round(), squared.round(6))


def test_signed_distance_map_with_spacing_equals_scipy_sampling():
    masks = _masks((2, 2, 13, 10, 6), 0.02, seed=3)
    spacing = (0.7, 2.5, 1.25)
    actual = la.signed_distance_map(masks, spacing=spacing, dtype=torch.float64)
    for n, c in itertools.product(range(2), range(2)):
        expected = _kervadec_map(masks[n, c].numpy(), sampling=spacing)
        np.testing.assert_allclose(actual[n, c].numpy(), expected, rtol=1e-14, atol=1e-14)


def test_signed_distance_map_far_pixel_is_exact():
    """One pixel in a corner: every distance runs across the whole image (the loop's worst case)."""
    mask = torch.zeros(1, 1, 40, 33, dtype=torch.bool)
    mask[0, 0, 0, 0] = True
    rows, cols = torch.meshgrid(torch.arange(40.0), torch.arange(33.0), indexing="ij")
    rows, cols = rows.double(), cols.double()  # integers: exact in float32 too
    expected = torch.hypot(rows, cols)  # distance to (0, 0) by hand
    expected[0, 0] = 0.0  # 1 - distance to the outside (1) on the single inner pixel
    actual = la.signed_distance_map(mask, dtype=torch.float64)[0, 0]
    torch.testing.assert_close(actual, expected, rtol=1e-15, atol=0)


def test_signed_distance_map_by_hand_and_input_kinds():
    # 1-D row 0 1 1 1 1 0 0: outside 1 (left), 1, 2 (right); inside 1 - (1, 2, 2, 1)
    row = torch.tensor([0, 1, 1, 1, 1, 0, 0])
    expected = torch.tensor([[[1.0, 0.0, -1.0, -1.0, 0.0, 1.0, 2.0]]])
    for mask in (row.bool(), row, row.float(), row * 0.9):
        out = la.signed_distance_map(mask.view(1, 1, 7))
        torch.testing.assert_close(out, expected)
        assert out.dtype == (mask.dtype if mask.is_floating_point() else torch.float32)
        assert not out.requires_grad
    soft = torch.tensor([0.2, 0.6, 0.7]).view(1, 1, 3).requires_grad_()
    assert not la.signed_distance_map(soft).requires_grad  # thresholded at 0.5, no gradient
    assert la.signed_distance_map(row.view(1, 1, 7), dtype=torch.float16).dtype == torch.float16


def test_signed_distance_map_empty_and_full_are_zero():
    masks = torch.zeros(2, 1, 4, 5, dtype=torch.bool)
    masks[1] = True
    out = la.signed_distance_map(masks)
    assert torch.equal(out, torch.zeros(2, 1, 4, 5))


def test_signed_distance_map_errors():
    with pytest.raises(ValueError, match=r"at least one spatial dimension.*\(4, 4\)"):
        la.signed_distance_map(torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"one positive step per spatial dimension \(2\)"):
        la.signed_distance_map(torch.zeros(1, 1, 4, 4), spacing=(1.0,))
    with pytest.raises(ValueError, match=r"spacing\[1\]"):
        la.signed_distance_map(torch.zeros(1, 1, 4, 4), spacing=(1.0, 0.0))
    with pytest.raises(TypeError, match="spacing must be a sequence"):
        la.signed_distance_map(torch.zeros(1, 1, 4, 4), spacing=2.0)
    with pytest.raises(TypeError, match="dtype must be a floating dtype"):
        la.signed_distance_map(torch.zeros(1, 1, 4, 4), dtype=torch.long)
    with pytest.raises(TypeError, match="mask"):
        la.signed_distance_map(np.zeros((1, 1, 4)))


# --------------------------------------------------------------------------- boundary loss


def _softmax_case(seed=0, c=4, spatial=(6, 7)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, c, *spatial, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, c, (3, *spatial), generator=g)
    labels[0] = 0  # image 0: class 0 full, the others empty
    labels[1].view(-1)[:-1] = 1  # image 1: class 0 a single pixel
    return logits, labels


CASES = [  # (loss, MONAI class, include_background, batch, extra options)
    ("boundary_loss", "BoundaryLoss", True, False, {}),
    ("boundary_loss", "BoundaryLoss", False, True, {}),
    ("hausdorff_dt_loss", "HausdorffDTLoss", True, False, {"alpha": 2.0}),
    ("hausdorff_dt_loss", "HausdorffDTLoss", False, False, {"alpha": 1.0}),
    ("hausdorff_dt_loss", "HausdorffDTLoss", True, True, {"alpha": 0.5}),
    ("hausdorff_dt_loss", "HausdorffDTLoss", False, True, {"alpha": 3.0}),
]


@pytest.mark.parametrize(("name", "peer", "include_background", "batch", "extra"), CASES)
def test_softmax_losses_equal_monai(name, peer, include_background, batch, extra):
    logits, labels = _softmax_case(seed=len(extra))
    options = dict(include_background=include_background, batch=batch, **extra)
    for target in (labels, _onehot(labels, 4)):
        for reduction in ("none", "mean", "sum"):
            reference = getattr(monai_losses, peer)(
                softmax=True,
                to_onehot_y=not target.is_floating_point(),
                reduction=reduction,
                **options,
            )(logits, target if target.is_floating_point() else target.unsqueeze(1))
            actual = getattr(la, name)(logits, target, reduction=reduction, **options)
            if reduction == "none":  # MONAI's Hausdorff keeps (N, C', 1, 1) / (1, C', 1, 1)
                reference = reference.reshape(actual.shape)
            # MONAI keeps its distance maps in float32: 1e-7 relative
            torch.testing.assert_close(actual, reference, rtol=1e-6, atol=1e-9)


def test_boundary_loss_sigmoid_3d_equals_monai():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 2, 5, 4, 6, generator=g, dtype=torch.float64)
    masks = (torch.rand(2, 2, 5, 4, 6, generator=g) > 0.7).double()
    masks[1, 1] = 0.0  # an empty mask
    for include_background in (True, False):
        reference = monai_losses.BoundaryLoss(
            sigmoid=True, include_background=include_background, reduction="none"
        )(logits, masks)
        actual = la.boundary_loss(
            logits,
            masks,
            activation="sigmoid",
            include_background=include_background,
            reduction="none",
        )
        torch.testing.assert_close(actual, reference, rtol=1e-6, atol=1e-9)


def test_boundary_loss_by_hand():
    # the docstring's row: classes 0 | 1 1 1 give maps (0 1 2 3) and (1 0 -1 -2)
    logits = torch.tensor([[[[2.0, -1.0, -2.0, -3.0]], [[-2.0, 1.0, 2.0, 3.0]]]]).double()
    p = torch.softmax(logits, dim=1)[0, :, 0]
    phi = torch.tensor([[0.0, 1.0, 2.0, 3.0], [1.0, 0.0, -1.0, -2.0]], dtype=torch.float64)
    expected = (p * phi).mean(dim=-1).unsqueeze(0)
    actual = la.boundary_loss(logits, torch.tensor([[[0, 1, 1, 1]]]), reduction="none")
    torch.testing.assert_close(actual, expected)
    # gradient: d loss / d p = phi / |Omega|, through the softmax's Jacobian
    x = logits.clone().requires_grad_()
    la.boundary_loss(x, torch.tensor([[[0, 1, 1, 1]]]), reduction="sum").backward()
    probs = torch.softmax(logits.requires_grad_(), 1)[0, :, 0]
    (grad_ref,) = torch.autograd.grad((probs * phi).sum() / 4, logits)
    torch.testing.assert_close(x.grad, grad_ref)


def test_boundary_loss_spacing_scales_the_map():
    logits, labels = _softmax_case(seed=2, c=3, spatial=(5, 8))
    onehot = _onehot(labels, 3)
    phi = la.signed_distance_map(onehot, spacing=(2.0, 0.5))
    expected = (torch.softmax(logits, 1) * phi).flatten(2).mean(-1)
    actual = la.boundary_loss(logits, labels, spacing=(2.0, 0.5), reduction="none")
    torch.testing.assert_close(actual, expected)
    with pytest.raises(ValueError, match=r"spacing.*\(2\)"):
        la.boundary_loss(logits, labels, spacing=(1.0, 1.0, 1.0))


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_boundary_loss_empty_or_full_mask_is_zero_with_zero_gradient(fill):
    logits = torch.randn(2, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    masks = torch.full((2, 1, 6, 6), fill, dtype=torch.float64)
    loss = la.boundary_loss(logits, masks, activation="sigmoid")
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))


def test_boundary_loss_single_pixel_target():
    logits = torch.zeros(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    labels = torch.zeros(1, 5, 5, dtype=torch.long)
    labels[0, 2, 2] = 1
    loss = la.boundary_loss(logits, labels, include_background=False, reduction="none")
    rows, cols = torch.meshgrid(torch.arange(5.0), torch.arange(5.0), indexing="ij")
    phi = torch.hypot(
        rows.double() - 2, cols.double() - 2
    )  # outside: distance to the pixel; inside 0
    torch.testing.assert_close(loss, (0.5 * phi).mean().view(1, 1))
    loss.sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_boundary_loss_ignore_index():
    logits, labels = _softmax_case(seed=4, c=3, spatial=(5, 6))
    void = labels.clone()
    void[0, 1, :3] = 255
    void[2, 4, 5] = 255
    keep = (void != 255).unsqueeze(1).double()
    onehot = _onehot(torch.where(void == 255, 0, void), 3) * keep  # void: outside every class
    phi = la.signed_distance_map(onehot, dtype=torch.float64)
    expected = (torch.softmax(logits, 1) * phi * keep).flatten(2).mean(-1)
    actual = la.boundary_loss(logits, void, ignore_index=255, reduction="none")
    torch.testing.assert_close(actual, expected)
    moved = logits.clone()
    moved[0, :, 1, :3] += 7.0  # the void pixels' logits do not change the loss
    torch.testing.assert_close(la.boundary_loss(moved, void, ignore_index=255), actual.mean())


def test_boundary_and_hausdorff_errors():
    logits = torch.randn(2, 3, 4, 4)
    labels = torch.randint(0, 3, (2, 4, 4))
    for fn in (la.boundary_loss, la.hausdorff_dt_loss):
        with pytest.raises(ValueError, match=r"must have shape \(2, 4, 4\)"):
            fn(logits, labels[:, :3])
        with pytest.raises(ValueError, match="spatial dimension"):
            fn(logits[:, :, 0, 0], labels[:, 0, 0])
        with pytest.raises(ValueError, match="C >= 2"):
            fn(logits[:, :1], labels.clamp(max=0))
        with pytest.raises(ValueError, match=r"class index 3"):
            fn(logits, labels + 1)
        with pytest.raises(ValueError, match="ignore_index=255 applies to class-index"):
            fn(logits, torch.rand(2, 3, 4, 4), activation="sigmoid", ignore_index=255)
        with pytest.raises(ValueError, match="same shape"):
            fn(logits, torch.rand(2, 3, 4, 5), activation="sigmoid")
        with pytest.raises(ValueError, match="activation"):
            fn(logits, labels, activation="relu")
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            fn(logits, torch.rand(2, 3, 4, 4) * 2, activation="sigmoid")


# --------------------------------------------------------------------------- Hausdorff DT loss


def test_hausdorff_dt_loss_sigmoid_3d_equals_monai():
    g = torch.Generator().manual_seed(6)
    logits = torch.randn(2, 2, 4, 5, 6, generator=g, dtype=torch.float64) * 3
    masks = (torch.rand(2, 2, 4, 5, 6, generator=g) > 0.6).double()
    masks[0, 1] = 1.0  # a full mask
    logits[1, 0] = -5.0  # an empty thresholded prediction
    reference = monai_losses.HausdorffDTLoss(
        sigmoid=True, include_background=True, reduction="none"
    )(logits, masks)
    actual = la.hausdorff_dt_loss(logits, masks, activation="sigmoid", reduction="none")
    torch.testing.assert_close(actual, reference.reshape(actual.shape), rtol=1e-6, atol=1e-9)


def test_hausdorff_dt_loss_by_hand():
    # the docstring's row; target classes 0 0 | 1 1: both masks have d_G = (2, 1, 1, 2).
    # The prediction p(class 1) = (.018, .881, .982, .998) thresholds to 0 1 1 1: d_P = (1, 1, 2, 3)
    # for class 1 and the same for class 0 (its complement).
    logits = torch.tensor([[[[2.0, -1.0, -2.0, -3.0]], [[-2.0, 1.0, 2.0, 3.0]]]]).double()
    target = torch.tensor([[[0, 0, 1, 1]]])
    p = torch.softmax(logits, 1)[0, :, 0]
    g = _onehot(target, 2)[0, :, 0]
    weight = torch.tensor([1.0, 1.0, 2.0, 3.0]) ** 2 + torch.tensor([2.0, 1.0, 1.0, 2.0]) ** 2
    expected = ((p - g) ** 2 * weight.double()).mean(-1).unsqueeze(0)
    torch.testing.assert_close(la.hausdorff_dt_loss(logits, target, reduction="none"), expected)


def test_hausdorff_dt_loss_extremes():
    labels = torch.zeros(2, 5, 5, dtype=torch.long)
    labels[1, 3, 1] = 1  # a single pixel
    perfect = _onehot(labels, 2) * 80 - 40
    perfect.requires_grad_()
    loss = la.hausdorff_dt_loss(perfect, labels)
    loss.backward()
    assert 0.0 <= loss.item() < 1e-30 and torch.isfinite(perfect.grad).all()
    # everything background in both: no boundary, distance 0, loss 0 with a zero gradient
    logits = torch.randn(2, 2, 5, 5, dtype=torch.float64)
    logits[:, 0] += 50.0
    logits.requires_grad_()
    empty = torch.zeros(2, 5, 5, dtype=torch.long)
    loss = la.hausdorff_dt_loss(logits, empty)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))


def test_module_twins():
    logits, labels = _softmax_case(seed=7, c=3)
    torch.testing.assert_close(
        la.nn.BoundaryLoss(include_background=False)(logits, labels),
        la.boundary_loss(logits, labels, include_background=False),
    )
    torch.testing.assert_close(
        la.nn.HausdorffDTLoss(alpha=1.0, batch=True, reduction="none")(logits, labels),
        la.hausdorff_dt_loss(logits, labels, alpha=1.0, batch=True, reduction="none"),
    )
    with pytest.raises(ValueError, match="alpha"):
        la.nn.HausdorffDTLoss(alpha=0.0)
