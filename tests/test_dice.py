"""Dice and Jaccard losses: MONAI parity for every shared option, policies, fused path, errors."""

import itertools

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la
from lossatlas.segmentation._overlap import overlap_sums

monai_losses = pytest.importorskip("monai.losses", reason="MONAI is the reference for Dice")

N, C, H, W = 2, 3, 3, 4


def _inputs(seed=0, n=N, c=C, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, H, W, generator=g, dtype=dtype) * 2
    labels = torch.randint(0, c, (n, H, W), generator=g)
    return logits, labels


def _onehot(labels, c=C, dtype=torch.float64):
    return F.one_hot(labels, c).movedim(-1, 1).to(dtype)


# --------------------------------------------------------------------------- MONAI parity

FLAGS = list(itertools.product([True, False], repeat=4))  # background, squared, jaccard, batch


def _ours(activation, jaccard):
    if activation == "softmax":
        return la.jaccard_loss if jaccard else la.dice_loss
    return la.binary_jaccard_loss if jaccard else la.binary_dice_loss


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
@pytest.mark.parametrize(("include_background", "squared_pred", "jaccard", "batch"), FLAGS)
def test_equals_monai_for_every_flag_combination(
    activation, include_background, squared_pred, jaccard, batch
):
    logits, labels = _inputs()
    options = dict(
        include_background=include_background,
        squared_pred=squared_pred,
        smooth_nr=1e-5,
        smooth_dr=1e-5,
        batch=batch,
    )
    if activation == "softmax":
        targets = [(labels, labels.unsqueeze(1), True), (_onehot(labels), _onehot(labels), False)]
    else:  # independent masks per channel
        mask = (torch.rand(N, C, H, W, generator=torch.Generator().manual_seed(1)) > 0.6).double()
        targets = [(mask, mask, False)]
    fn = _ours(activation, jaccard)
    for ours_target, monai_target, to_onehot_y in targets:
        for reduction in ("none", "mean", "sum"):
            reference = monai_losses.DiceLoss(
                softmax=activation == "softmax",
                sigmoid=activation == "sigmoid",
                to_onehot_y=to_onehot_y,
                jaccard=jaccard,
                reduction=reduction,
                **options,
            )(logits, monai_target)
            actual = fn(logits, ours_target, reduction=reduction, **options)
            if reduction == "none":  # MONAI keeps trailing singleton spatial dimensions
                reference = reference.reshape(actual.shape)
            torch.testing.assert_close(actual, reference, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("batch", [True, False])
def test_class_weights_against_monai(activation, include_background, batch):
    logits, labels = _inputs(seed=3)
    weight = torch.tensor([0.5, 2.0, 1.5], dtype=torch.float64)
    kept = weight if include_background else weight[1:]  # MONAI wants C - 1 weights then
    if activation == "softmax":
        fn, target, monai_target = la.dice_loss, labels, labels.unsqueeze(1)
    else:
        fn, target = la.binary_dice_loss, _onehot(labels)
        monai_target = target
    ours = {
        r: fn(
            logits,
            target,
            weight=weight,
            include_background=include_background,
            batch=batch,
            reduction=r,
        )
        for r in ("none", "mean", "sum")
    }
    monai = {
        r: monai_losses.DiceLoss(
            softmax=activation == "softmax",
            sigmoid=activation == "sigmoid",
            to_onehot_y=activation == "softmax",
            include_background=include_background,
            batch=batch,
            weight=kept,
            reduction=r,
        )(logits, monai_target)
        for r in ("none", "mean", "sum")
    }
    torch.testing.assert_close(ours["none"], monai["none"].reshape(ours["none"].shape))
    torch.testing.assert_close(ours["sum"], monai["sum"])
    # MONAI's mean divides by the number of values; ours by the sum of their weights.
    rows = 1 if batch else N
    torch.testing.assert_close(ours["mean"], ours["sum"] / (rows * kept.sum()))
    torch.testing.assert_close(ours["mean"], monai["mean"] * kept.numel() / kept.sum())


def test_ignore_index_against_monai():
    logits, labels = _inputs(seed=4)
    labels[0, 0, :2] = 255
    labels[1, 2, 3] = 255
    for reduction in ("none", "mean"):
        reference = monai_losses.DiceLoss(
            softmax=True, to_onehot_y=True, ignore_index=255, reduction=reduction
        )(logits, labels.unsqueeze(1))
        actual = la.dice_loss(logits, labels, ignore_index=255, reduction=reduction)
        torch.testing.assert_close(actual, reference.reshape(actual.shape))


def test_soft_label_targets_against_monai():
    logits, _ = _inputs(seed=5)
    soft = torch.softmax(torch.randn(N, C, H, W, dtype=torch.float64), dim=1)
    for fn, flag in ((la.dice_loss, dict(softmax=True)), (la.binary_dice_loss, dict(sigmoid=True))):
        torch.testing.assert_close(fn(logits, soft), monai_losses.DiceLoss(**flag)(logits, soft))


def test_three_spatial_dimensions():
    logits = torch.randn(2, 3, 2, 3, 4, dtype=torch.float64)
    labels = torch.randint(0, 3, (2, 2, 3, 4))
    reference = monai_losses.DiceLoss(softmax=True, to_onehot_y=True, reduction="none")(
        logits, labels.unsqueeze(1)
    )
    actual = la.dice_loss(logits, labels, reduction="none")
    torch.testing.assert_close(actual, reference.reshape(2, 3))


# --------------------------------------------------------------------------- definitions


def test_formula_written_out():
    logits, labels = _inputs(seed=6)
    p = torch.softmax(logits, dim=1)
    g = _onehot(labels)
    inter = (p * g).sum(dim=(2, 3))
    expected = 1 - (2 * inter + 1e-5) / (p.sum(dim=(2, 3)) + g.sum(dim=(2, 3)) + 1e-5)
    torch.testing.assert_close(la.dice_loss(logits, labels, reduction="none"), expected)
    union = p.sum(dim=(2, 3)) + g.sum(dim=(2, 3)) - inter
    expected_j = 1 - (2 * inter + 1e-5) / (2 * union + 1e-5)
    torch.testing.assert_close(la.jaccard_loss(logits, labels, reduction="none"), expected_j)


def test_seed_global_binary_dice_is_a_special_case():
    # seeds/002_*, "方法二": DiceLoss.forward(inputs, targets, smooth=1), verbatim maths.
    def seed_dice(inputs, targets, smooth=1):
        inputs = torch.sigmoid(inputs).view(-1)
        targets = targets.view(-1)
        intersection = (inputs * targets).sum()
        dice = (2.0 * intersection + smooth) / (inputs.sum() + targets.sum() + smooth)
        return 1 - dice

    g = torch.Generator().manual_seed(7)
    logits = torch.randn(3, 1, 5, 5, generator=g, dtype=torch.float64)
    mask = (torch.rand(3, 1, 5, 5, generator=g) > 0.5).double()
    ours = la.binary_dice_loss(logits, mask, batch=True, smooth_nr=1.0, smooth_dr=1.0)
    torch.testing.assert_close(ours, seed_dice(logits, mask))


@pytest.mark.parametrize("fn", [la.dice_loss, la.jaccard_loss])
def test_reduction_none_shapes(fn):
    logits, labels = _inputs()
    assert fn(logits, labels, reduction="none").shape == (N, C)
    assert fn(logits, labels, reduction="none", include_background=False).shape == (N, C - 1)
    assert fn(logits, labels, reduction="none", batch=True).shape == (C,)
    assert fn(logits, labels, reduction="none", batch=True, include_background=False).shape == (
        C - 1,
    )


def test_index_and_onehot_targets_agree():
    logits, labels = _inputs(seed=8)
    for fn in (la.dice_loss, la.jaccard_loss):
        torch.testing.assert_close(
            fn(logits, labels, reduction="none"), fn(logits, _onehot(labels), reduction="none")
        )


def test_without_background_drops_column_zero():
    logits, labels = _inputs(seed=9)
    full = la.dice_loss(logits, labels, reduction="none")
    torch.testing.assert_close(
        la.dice_loss(logits, labels, reduction="none", include_background=False), full[:, 1:]
    )


# --------------------------------------------------------------------------- policies


def test_empty_prediction_on_empty_ground_truth_is_zero():
    # Class 1 absent from the ground truth and predicted with probability ~e^-30 everywhere.
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    logits = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
    logits[:, 0] = 30.0
    loss = la.dice_loss(logits, labels, reduction="none")
    # 1 - 1e-5 / (16 e^-30 + 1e-5) = 1.5e-7 (worked by hand); class 0 is perfect too.
    torch.testing.assert_close(loss, torch.zeros(1, 2, dtype=torch.float64), atol=1e-6, rtol=0)
    binary = la.binary_dice_loss(
        torch.full((1, 1, 4, 4), -30.0, dtype=torch.float64),
        torch.zeros(1, 1, 4, 4, dtype=torch.float64),
    )
    assert float(binary) < 1e-6


def test_confident_prediction_on_empty_ground_truth_is_close_to_one():
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    logits = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
    logits[:, 1] = 30.0  # predicts class 1 everywhere; class 1 is empty in the ground truth
    loss = la.dice_loss(logits, labels, reduction="none")
    # 1 - 1e-5 / (16 + 1e-5) = 1 - 6.25e-7
    assert float(loss[0, 1]) > 0.999999
    binary = la.binary_dice_loss(
        torch.full((1, 1, 4, 4), 30.0, dtype=torch.float64),
        torch.zeros(1, 1, 4, 4, dtype=torch.float64),
    )
    assert float(binary) > 0.999999


@pytest.mark.parametrize(
    "fn", [la.dice_loss, la.jaccard_loss, la.tversky_loss, la.focal_tversky_loss]
)
def test_ignored_pixels_change_nothing(fn):
    logits, labels = _inputs(seed=10)
    labels[0, 1, :] = 255
    labels[1, 0, 0] = 255
    ignored = (labels == 255).unsqueeze(1).expand_as(logits)
    other = logits.clone()
    other[ignored] = torch.randn(int(ignored.sum()), dtype=torch.float64) * 50
    a = logits.clone().requires_grad_(True)
    b = other.clone().requires_grad_(True)
    loss_a = fn(a, labels, ignore_index=255, reduction="none")
    loss_b = fn(b, labels, ignore_index=255, reduction="none")
    torch.testing.assert_close(loss_a, loss_b)
    loss_a.sum().backward()
    loss_b.sum().backward()
    torch.testing.assert_close(a.grad, b.grad)
    assert (a.grad[ignored] == 0).all()


def test_ignored_pixels_equal_removing_them():
    logits, labels = _inputs(seed=11, n=1)
    labels[0, :, :2] = 255  # the two left columns are void
    kept = la.dice_loss(logits[..., 2:], labels[..., 2:], reduction="none")
    torch.testing.assert_close(
        la.dice_loss(logits, labels, ignore_index=255, reduction="none"), kept
    )


def test_ignore_index_that_is_a_class():
    logits, labels = _inputs(seed=12)
    loss = la.dice_loss(logits, labels, ignore_index=1, reduction="none")
    reference = monai_losses.DiceLoss(
        softmax=True, to_onehot_y=True, ignore_index=1, reduction="none"
    )(logits, labels.unsqueeze(1))
    torch.testing.assert_close(loss, reference.reshape(loss.shape))


def test_all_pixels_ignored_gives_zero_and_finite_grad():
    logits, labels = _inputs(seed=13)
    labels[:] = 255
    x = logits.clone().requires_grad_(True)
    loss = la.dice_loss(x, labels, ignore_index=255)
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.equal(x.grad, torch.zeros_like(x))


def test_extreme_logits_half_precision_finite():
    logits, labels = _inputs(seed=14, dtype=torch.float16)
    x = (logits * 1e4).requires_grad_(True)
    loss = la.dice_loss(x, labels, squared_pred=True)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("fused", [True, False])
def test_autocast_bfloat16_keeps_float32_sums(fused):
    logits, labels = _inputs(seed=22, dtype=torch.float32)
    mask = _onehot(labels, dtype=torch.float32)
    soft = torch.softmax(torch.randn_like(logits), dim=1)
    with la.fused(fused), torch.autocast("cpu", dtype=torch.bfloat16):
        values = [
            la.dice_loss(logits, labels),
            la.dice_loss(logits, soft, squared_pred=True),
            la.binary_dice_loss(logits, mask, squared_pred=True),
            la.binary_tversky_loss(logits.bfloat16(), mask),
        ]
    expected = [
        la.dice_loss(logits.double(), labels),
        la.dice_loss(logits.double(), soft.double(), squared_pred=True),
        la.binary_dice_loss(logits.double(), mask.double(), squared_pred=True),
        la.binary_tversky_loss(logits.bfloat16().double(), mask.double()),
    ]
    for value, reference in zip(values, expected, strict=True):
        assert value.dtype == torch.float32
        torch.testing.assert_close(value.double(), reference, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- fused path


CASES = [
    ("softmax", "index", False, None),
    ("softmax", "index", True, None),
    ("softmax", "index", False, 255),
    ("softmax", "index", True, 255),
    ("softmax", "prob", False, None),
    ("softmax", "prob", True, None),
    ("sigmoid", "prob", False, None),
    ("sigmoid", "prob", True, None),
]


def _case(activation, kind, ignore_index, seed=15):
    logits, labels = _inputs(seed=seed)
    if ignore_index is not None:
        labels[0, 0, :3] = ignore_index
    if kind == "index":
        return logits, labels
    if activation == "softmax":
        return logits, torch.softmax(torch.randn_like(logits), dim=1)
    return logits, torch.rand_like(logits)


@pytest.mark.parametrize(("activation", "kind", "squared", "ignore_index"), CASES)
def test_fused_sums_equal_plain_values_and_gradients(activation, kind, squared, ignore_index):
    logits, target = _case(activation, kind, ignore_index)
    upstream = [torch.randn(N, C, dtype=torch.float64) for _ in range(3)]
    results = []
    for fused in (True, False):
        x = logits.clone().requires_grad_(True)
        sums = overlap_sums(
            x,
            target,
            activation=activation,
            ignore_index=ignore_index,
            squared=squared,
            fused=fused,
        )
        total = sum((s * u).sum() for s, u in zip(sums, upstream, strict=True))
        (grad,) = torch.autograd.grad(total, x)
        results.append((sums, grad))
    (fused_sums, fused_grad), (plain_sums, plain_grad) = results
    for a, b in zip(fused_sums, plain_sums, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fused_grad, plain_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("activation", "kind", "squared", "ignore_index"), CASES)
def test_fused_path_gradcheck(activation, kind, squared, ignore_index):
    logits, target = _case(activation, kind, ignore_index)
    x = logits[:1, :, :2, :3].contiguous().requires_grad_(True)
    target = target[:1, :2, :3] if kind == "index" else target[:1, :, :2, :3].contiguous()

    def fn(inp):
        return overlap_sums(
            inp,
            target,
            activation=activation,
            ignore_index=ignore_index,
            squared=squared,
            fused=True,
        )

    assert torch.autograd.gradcheck(fn, (x,))


@pytest.mark.parametrize(
    "option",
    [
        {},
        {"squared_pred": True},
        {"include_background": False},
        {"batch": True},
        {"weight": torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)},
        {"ignore_index": 255},
    ],
)
def test_dice_loss_fused_and_fallback_agree(option):
    logits, labels = _inputs(seed=16)
    labels[1, 1, 1] = 255
    option = dict(option)
    if "ignore_index" not in option:
        labels[1, 1, 1] = 0
    results = []
    for fused in (True, False):
        x = logits.clone().requires_grad_(True)
        with la.fused(fused):  # off: lossatlas's fallback, the plain differentiable ops
            loss = la.dice_loss(x, labels, **option)
        loss.backward()
        results.append((loss, x.grad))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-10, atol=1e-14)


def test_switching_fused_off_takes_the_plain_path():
    logits, labels = _inputs(seed=21)
    kinds = []
    for fused in (True, False):
        names = []
        x = logits.clone().requires_grad_(True)
        with la.fused(fused):
            loss = la.dice_loss(x, labels)
        node, stack = loss.grad_fn, [loss.grad_fn]
        while stack:
            node = stack.pop()
            if node is not None:
                names.append(type(node).__name__)
                stack.extend(n for n, _ in node.next_functions)
        kinds.append(names)
    assert any("FusedOverlapSums" in n for n in kinds[0])
    assert not any("FusedOverlapSums" in n for n in kinds[1])
    assert any("Softmax" in n for n in kinds[1])


def test_fused_path_saves_only_the_inputs():
    logits = torch.randn(2, 4, 32, 32)
    labels = torch.randint(0, 4, (2, 32, 32))

    def saved_bytes(fused):
        total = 0

        def pack(t):
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        x = logits.clone().requires_grad_(True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            overlap_sums(x, labels, activation="softmax", fused=fused)
        return total

    input_bytes = logits.numel() * 4 + labels.numel() * 8
    fused, plain = saved_bytes(True), saved_bytes(False)
    assert fused == input_bytes  # the logits and the labels, nothing else
    assert plain > 1.5 * fused


def test_fused_path_refuses_double_backward():
    logits, labels = _inputs(seed=18)
    x = logits.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(la.dice_loss(x, labels), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|double backward|twice"):
        grad.sum().backward()


def test_soft_target_with_grad_takes_the_plain_path():
    logits, _ = _inputs(seed=19)
    soft = torch.softmax(torch.randn_like(logits), dim=1).requires_grad_(True)
    loss = la.dice_loss(logits, soft)
    loss.backward()
    assert soft.grad is not None and soft.grad.abs().sum() > 0


def test_compiled_equals_eager():
    logits, labels = _inputs(seed=20, dtype=torch.float32)
    compiled = torch.compile(la.dice_loss, fullgraph=True, backend="eager")
    for options in ({}, {"ignore_index": 255, "squared_pred": True}):
        torch.testing.assert_close(
            compiled(logits, labels, **options), la.dice_loss(logits, labels, **options)
        )


# --------------------------------------------------------------------------- errors


def test_class_index_out_of_range_names_value_and_position():
    logits, labels = _inputs()
    labels[1, 2, 0] = 7
    with pytest.raises(ValueError, match=r"class index 7 at position \(1, 2, 0\).*\[0, 3\)"):
        la.dice_loss(logits, labels)
    labels[1, 2, 0] = 255
    with pytest.raises(ValueError, match="class index 255"):
        la.dice_loss(logits, labels)
    la.dice_loss(logits, labels, ignore_index=255)


def test_bad_shapes_and_dtypes():
    logits, labels = _inputs()
    with pytest.raises(ValueError, match="class indices must have shape"):
        la.dice_loss(logits, labels.unsqueeze(1))  # MONAI's (N, 1, H, W) form
    with pytest.raises(ValueError, match="same shape"):
        la.dice_loss(logits, _onehot(labels)[:, :, :2])
    with pytest.raises(TypeError, match="torch.long"):
        la.dice_loss(logits, labels.double())
    with pytest.raises(TypeError, match="floating-point"):
        la.dice_loss(labels.unsqueeze(1).expand(N, C, H, W), labels)
    with pytest.raises(ValueError, match="C >= 2"):
        la.dice_loss(logits[:, :1], labels.clamp(max=0))
    with pytest.raises(ValueError, match="spatial"):
        la.dice_loss(logits[:, :, 0, 0], labels[:, 0, 0])
    with pytest.raises(ValueError, match="same shape"):
        la.binary_dice_loss(logits, _onehot(labels).unsqueeze(-1))
    with pytest.raises(ValueError, match="C >= 2 channels"):
        la.binary_dice_loss(logits[:, :1], _onehot(labels)[:, :1], include_background=False)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        la.binary_dice_loss(logits, _onehot(labels) * 2)


def test_bad_options():
    logits, labels = _inputs()
    with pytest.raises(ValueError, match="ignore_index=255 applies to class-index"):
        la.dice_loss(logits, _onehot(labels), ignore_index=255)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        la.dice_loss(logits, labels, weight=torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="non-negative class weights"):
        la.dice_loss(logits, labels, weight=torch.tensor([1.0, -1.0, 1.0]))


def test_module_weight_is_a_buffer_and_options_fail_at_construction():
    weight = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    module = la.nn.DiceLoss(weight=weight, include_background=False)
    assert "weight" in dict(module.named_buffers()) and "weight" in module.state_dict()
    logits, labels = _inputs()
    torch.testing.assert_close(
        module(logits, labels),
        la.dice_loss(logits, labels, weight=weight, include_background=False),
    )
    assert la.nn.JaccardLoss()(logits, labels) == la.jaccard_loss(logits, labels)
