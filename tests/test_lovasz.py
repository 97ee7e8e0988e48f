"""Lovász hinge and Lovász-Softmax: kornia parity, the reference algorithm, ignore, compile."""

import pytest
import torch

import lossatlas as la

kornia_losses = pytest.importorskip("kornia.losses", reason="kornia is the Lovász reference")


# The algorithm of Berman et al.'s reference code (github.com/bermanmaxim/LovaszSoftmax,
# lovasz_losses.py), written here with Python loops and boolean indexing: ignored pixels are
# removed, absent classes skipped in "present" mode, per-image losses averaged.


def ref_grad(gt_sorted):
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1].clone()
    return jaccard


def ref_hinge_flat(logits, labels):
    if len(labels) == 0:
        return logits.sum() * 0.0
    signs = 2.0 * labels.double() - 1.0
    errors = 1.0 - logits * signs
    errors_sorted, perm = torch.sort(errors, descending=True)
    return torch.dot(torch.relu(errors_sorted), ref_grad(labels[perm].double()))


def ref_hinge(logits, labels, per_image, ignore=None):
    def flat(x, y):
        x, y = x.reshape(-1), y.reshape(-1)
        if ignore is None:
            return x, y
        return x[y != ignore], y[y != ignore]

    if per_image:
        return torch.stack(
            [ref_hinge_flat(*flat(x, y)) for x, y in zip(logits, labels, strict=True)]
        ).mean()
    return ref_hinge_flat(*flat(logits, labels))


def ref_softmax_flat(probas, labels, classes):
    if probas.numel() == 0:
        return probas.sum() * 0.0
    losses = []
    for c in range(probas.shape[1]):
        fg = (labels == c).double()
        if classes == "present" and fg.sum() == 0:
            continue
        errors = (fg - probas[:, c]).abs()
        errors_sorted, perm = torch.sort(errors, descending=True)
        losses.append(torch.dot(errors_sorted, ref_grad(fg[perm])))
    return torch.stack(losses).mean() if losses else probas.sum() * 0.0


def ref_softmax(logits, labels, classes, per_image, ignore=None):
    probas = torch.softmax(logits, dim=1)

    def flat(p, y):  # (N, C, H, W) -> (P, C)
        p = p.movedim(1, -1).reshape(-1, p.shape[1])
        y = y.reshape(-1)
        if ignore is None:
            return p, y
        return p[y != ignore], y[y != ignore]

    if per_image:
        return torch.stack(
            [
                ref_softmax_flat(*flat(p[None], y[None]), classes)
                for p, y in zip(probas, labels, strict=True)
            ]
        ).mean()
    return ref_softmax_flat(*flat(probas, labels), classes)


def _hinge_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(3, 5, 6, generator=g, dtype=torch.float64) * 2,
        torch.randint(0, 2, (3, 5, 6), generator=g),
    )


def _softmax_inputs(seed=0, classes=4):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, classes, 5, 6, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, classes - 1, (3, 5, 6), generator=g)  # the last class is absent
    return logits, labels


# --------------------------------------------------------------------------- kornia


def test_hinge_equals_kornia():
    for seed in range(3):
        logits, labels = _hinge_inputs(seed)
        expected = kornia_losses.lovasz_hinge_loss(logits.unsqueeze(1), labels)
        torch.testing.assert_close(la.lovasz_hinge_loss(logits, labels), expected)


def test_softmax_per_image_all_classes_equals_kornia():
    for seed in range(3):
        logits, labels = _softmax_inputs(seed)
        expected = kornia_losses.lovasz_softmax_loss(logits, labels)
        actual = la.lovasz_softmax_loss(logits, labels, per_image=True, classes="all")
        torch.testing.assert_close(actual, expected)


def test_gradients_equal_kornia():
    logits, labels = _softmax_inputs(seed=4)
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    la.lovasz_softmax_loss(a, labels, per_image=True, classes="all").backward()
    kornia_losses.lovasz_softmax_loss(b, labels).backward()
    torch.testing.assert_close(a.grad, b.grad)


WEIGHT = torch.tensor([0.5, 2.0, 1.0, 0.0], dtype=torch.float64)  # zero: a class left out


def test_weighted_softmax_equals_kornia():
    # kornia >= 0.8: weight multiplies each class's term, the mean still divides by C.
    logits, labels = _softmax_inputs(seed=12)
    weight = WEIGHT[: logits.shape[1]]
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    actual = la.lovasz_softmax_loss(a, labels, per_image=True, classes="all", weight=weight)
    expected = kornia_losses.lovasz_softmax_loss(b, labels, weight=weight)
    torch.testing.assert_close(actual, expected)
    actual.backward()
    expected.backward()
    torch.testing.assert_close(a.grad, b.grad)
    twin = la.nn.LovaszSoftmaxLoss(per_image=True, classes="all", weight=weight)
    torch.testing.assert_close(twin(logits, labels), expected.detach())


@pytest.mark.parametrize("per_image", [True, False])
def test_weighted_present_classes_by_hand(per_image):
    # The per-class terms from the reference algorithm (unweighted, one class at a time via
    # a one-hot weight), then sum_c w_c l_c / |present| by hand.
    logits, labels = _softmax_inputs(seed=13)
    c = logits.shape[1]
    weight = WEIGHT[:c]
    rows = (
        [(logits[i : i + 1], labels[i : i + 1]) for i in range(3)]
        if per_image
        else [(logits, labels)]
    )
    expected = []
    for x, y in rows:
        terms = torch.stack(
            [
                la.lovasz_softmax_loss(x, y, classes="all", weight=torch.eye(c, dtype=x.dtype)[k])
                * c
                for k in range(c)
            ]
        )
        present = torch.stack([(y == k).any() for k in range(c)]).to(x.dtype)
        expected.append((weight * terms * present).sum() / present.sum())
    actual = la.lovasz_softmax_loss(logits, labels, per_image=per_image, weight=weight)
    torch.testing.assert_close(actual, torch.stack(expected).mean())
    torch.testing.assert_close(
        la.lovasz_softmax_loss(logits, labels, per_image=per_image, weight=torch.ones(c) * 2),
        2 * la.lovasz_softmax_loss(logits, labels, per_image=per_image),
    )


def test_weight_must_be_per_class_and_non_negative():
    logits, labels = _softmax_inputs(seed=14)
    c = logits.shape[1]
    with pytest.raises(ValueError, match="weight"):
        la.lovasz_softmax_loss(logits, labels, weight=torch.ones(c + 1, dtype=logits.dtype))
    with pytest.raises(ValueError, match="weight"):
        la.lovasz_softmax_loss(logits, labels, weight=-torch.ones(c, dtype=logits.dtype))


# --------------------------------------------------------------------------- reference code


@pytest.mark.parametrize("per_image", [True, False])
def test_hinge_equals_reference_algorithm(per_image):
    logits, labels = _hinge_inputs(seed=5)
    torch.testing.assert_close(
        la.lovasz_hinge_loss(logits, labels, per_image=per_image),
        ref_hinge(logits, labels, per_image),
    )
    none = la.lovasz_hinge_loss(logits, labels, per_image=per_image, reduction="none")
    assert none.shape == ((3,) if per_image else ())


@pytest.mark.parametrize("classes", ["present", "all"])
@pytest.mark.parametrize("per_image", [True, False])
def test_softmax_equals_reference_algorithm(classes, per_image):
    logits, labels = _softmax_inputs(seed=6)
    actual = la.lovasz_softmax_loss(logits, labels, classes=classes, per_image=per_image)
    torch.testing.assert_close(actual, ref_softmax(logits, labels, classes, per_image))


@pytest.mark.parametrize("per_image", [True, False])
def test_ignore_index_equals_removing_the_pixels(per_image):
    logits, labels = _softmax_inputs(seed=7)
    labels[0, :2] = 255
    labels[2, 4, 5] = 255
    for classes in ("present", "all"):
        actual = la.lovasz_softmax_loss(
            logits, labels, classes=classes, per_image=per_image, ignore_index=255
        )
        torch.testing.assert_close(actual, ref_softmax(logits, labels, classes, per_image, 255))
    hinge_logits, hinge_labels = _hinge_inputs(seed=7)
    hinge_labels[1, :, :3] = -1
    torch.testing.assert_close(
        la.lovasz_hinge_loss(hinge_logits, hinge_labels, per_image=per_image, ignore_index=-1),
        ref_hinge(hinge_logits, hinge_labels, per_image, -1),
    )


def test_ignored_logits_change_nothing():
    logits, labels = _softmax_inputs(seed=8)
    labels[1, 2:] = 255
    ignored = (labels == 255).unsqueeze(1).expand_as(logits)
    other = logits.clone()
    other[ignored] = 40.0
    a, b = logits.clone().requires_grad_(True), other.clone().requires_grad_(True)
    la.lovasz_softmax_loss(a, labels, ignore_index=255).backward()
    la.lovasz_softmax_loss(b, labels, ignore_index=255).backward()
    torch.testing.assert_close(a.grad, b.grad)
    assert (a.grad[ignored] == 0).all()


def test_hand_worked_hinge_value():
    # Errors 1 + x for the three background pixels, 1 - x for the foreground one:
    # [-1 (fg), 0.5, 1.3, -2] -> sorted 1.3, 0.5 (both background). With one foreground pixel
    # the Jaccard loss after one mistake is 1 - 1/2, after two 1 - 1/3: weights 1/2, 1/6.
    logits = torch.tensor([[[2.0, -0.5], [0.3, -3.0]]], dtype=torch.float64)
    labels = torch.tensor([[[1, 0], [0, 0]]])
    expected = 1.3 * 0.5 + 0.5 * (1 / 6)
    torch.testing.assert_close(
        la.lovasz_hinge_loss(logits, labels), torch.tensor(expected, dtype=torch.float64)
    )


def test_no_present_class_gives_zero():
    logits, labels = _softmax_inputs(seed=9)
    labels[:] = 255
    x = logits.clone().requires_grad_(True)
    loss = la.lovasz_softmax_loss(x, labels, ignore_index=255)
    loss.backward()
    assert float(loss.detach()) == 0.0 and (x.grad == 0).all()


def test_compiles_fullgraph():
    logits, labels = _softmax_inputs(seed=10)
    logits = logits.float()
    labels[0, 0, 0] = 255
    compiled = torch.compile(la.lovasz_softmax_loss, fullgraph=True, backend="eager")
    torch.testing.assert_close(
        compiled(logits, labels, ignore_index=255),
        la.lovasz_softmax_loss(logits, labels, ignore_index=255),
    )
    hinge_logits, hinge_labels = _hinge_inputs(seed=10)
    compiled_hinge = torch.compile(la.lovasz_hinge_loss, fullgraph=True, backend="eager")
    torch.testing.assert_close(
        compiled_hinge(hinge_logits.float(), hinge_labels),
        la.lovasz_hinge_loss(hinge_logits.float(), hinge_labels),
    )


def test_modules():
    logits, labels = _softmax_inputs(seed=11)
    torch.testing.assert_close(
        la.nn.LovaszSoftmaxLoss(classes="all")(logits, labels),
        la.lovasz_softmax_loss(logits, labels, classes="all"),
    )
    hinge_logits, hinge_labels = _hinge_inputs(seed=11)
    torch.testing.assert_close(
        la.nn.LovaszHingeLoss(per_image=False)(hinge_logits, hinge_labels),
        la.lovasz_hinge_loss(hinge_logits, hinge_labels, per_image=False),
    )


def test_bad_input():
    logits, labels = _softmax_inputs()
    labels[2, 1, 1] = 9
    with pytest.raises(ValueError, match=r"class index 9 at position \(2, 1, 1\)"):
        la.lovasz_softmax_loss(logits, labels)
    hinge_logits, hinge_labels = _hinge_inputs()
    hinge_labels[0, 0, 0] = 2
    with pytest.raises(ValueError, match=r"class index 2 at position \(0, 0, 0\).*\[0, 2\)"):
        la.lovasz_hinge_loss(hinge_logits, hinge_labels)
    with pytest.raises(TypeError, match="integer tensor"):
        la.lovasz_hinge_loss(hinge_logits, hinge_labels.double())
    with pytest.raises(ValueError, match="same shape"):
        la.lovasz_hinge_loss(hinge_logits, hinge_labels[..., :1])
    with pytest.raises(ValueError, match="C >= 2"):
        la.lovasz_softmax_loss(logits[:, :1], labels.clamp(max=0))
