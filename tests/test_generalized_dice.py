"""Generalised Dice and generalised Wasserstein Dice: MONAI parity, identities, pitfalls, errors.

References: the installed MONAI (``monai.losses.GeneralizedDiceLoss``,
``GeneralizedWassersteinDiceLoss``), the formulas of Sudre et al. 2017 and Fidon et al. 2017
worked in float64 from ``torch`` sums here, and :func:`lossatlas.dice_loss` for the identities.
"""

import itertools

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la

monai_losses = pytest.importorskip("monai.losses", reason="MONAI is the reference")

N, C, H, W = 2, 3, 3, 4
# MONAI computes the GDL weights in float32 (``w_func(ground_o.float())``) and the GWDL alphas
# in float32 too, so float64 parity holds to float32's relative precision, not float64's.
MONAI_TOL = dict(rtol=1e-6, atol=1e-7)


def _inputs(seed=0, n=N, c=C, h=H, w=W):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, h, w, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, c, (n, h, w), generator=g)
    return logits, labels


def _onehot(labels, c=C):
    return F.one_hot(labels, c).movedim(-1, 1).to(torch.float64)


def _mask(seed=1, shape=(N, C, H, W)):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g, dtype=torch.float64) > 0.6).double()


def _sums(probs, onehot):
    """``I, P, G`` of shape ``(N, C)`` by hand (float64)."""
    return (
        (probs * onehot).flatten(2).sum(-1),
        probs.flatten(2).sum(-1),
        onehot.flatten(2).sum(-1),
    )


# --------------------------------------------------------------------------- GDL: MONAI parity

GDL_FLAGS = list(itertools.product([True, False], [True, False], ["square", "simple", "uniform"]))
SMOOTHS = [(1e-5, 1e-5), (0.0, 1e-3)]


def _gdl_options(include_background, batch, w_type):
    for smooth_nr, smooth_dr in SMOOTHS:
        yield dict(
            include_background=include_background,
            batch=batch,
            w_type=w_type,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
        )


@pytest.mark.parametrize(("include_background", "batch", "w_type"), GDL_FLAGS)
def test_gdl_softmax_equals_monai(include_background, batch, w_type):
    logits, labels = _inputs()
    labels[0, 0] = 1  # a sample in which class 2 is absent: its weight is the largest finite
    labels[0][labels[0] == 2] = 0
    assert not (labels[0] == 2).any() and (labels[1] == 2).any()
    for options in _gdl_options(include_background, batch, w_type):
        for ours_target, monai_target, to_onehot_y in [
            (labels, labels.unsqueeze(1), True),
            (_onehot(labels), _onehot(labels), False),
        ]:
            for reduction in ("none", "mean", "sum"):
                reference = monai_losses.GeneralizedDiceLoss(
                    softmax=True, to_onehot_y=to_onehot_y, reduction=reduction, **options
                )(logits, monai_target)
                actual = la.generalized_dice_loss(
                    logits, ours_target, reduction=reduction, **options
                )
                if reduction == "none":  # MONAI keeps singleton class and spatial dims
                    reference = reference.reshape(actual.shape)
                torch.testing.assert_close(actual, reference, **MONAI_TOL)


@pytest.mark.parametrize(("include_background", "batch", "w_type"), GDL_FLAGS)
def test_gdl_sigmoid_equals_monai(include_background, batch, w_type):
    logits, _ = _inputs(seed=2)
    mask = _mask()
    mask[0, 1] = 0.0  # an empty channel in one sample
    for options in _gdl_options(include_background, batch, w_type):
        for reduction in ("none", "mean", "sum"):
            reference = monai_losses.GeneralizedDiceLoss(
                sigmoid=True, reduction=reduction, **options
            )(logits, mask)
            actual = la.binary_generalized_dice_loss(logits, mask, reduction=reduction, **options)
            if reduction == "none":
                reference = reference.reshape(actual.shape)
            torch.testing.assert_close(actual, reference, **MONAI_TOL)


def test_gdl_none_shapes():
    logits, labels = _inputs()
    assert la.generalized_dice_loss(logits, labels, reduction="none").shape == (N,)
    assert la.generalized_dice_loss(logits, labels, batch=True, reduction="none").shape == ()


# --------------------------------------------------------------------------- GDL: the formula


@pytest.mark.parametrize("batch", [False, True])
def test_gdl_sums_the_classes_before_the_division(batch):
    """Sudre et al. eq. 2 by hand; the weights must not cancel (MONAI #369, #6765)."""
    logits, labels = _inputs(seed=4)
    probs, onehot = torch.softmax(logits, 1), _onehot(labels)
    inter, pred, truth = _sums(probs, onehot)
    if batch:
        inter, pred, truth = inter.sum(0), pred.sum(0), truth.sum(0)
    w = 1.0 / truth**2
    s = 1e-5
    expected = 1 - (2 * (w * inter).sum(-1) + s) / ((w * (pred + truth)).sum(-1) + s)
    actual = la.generalized_dice_loss(logits, labels, batch=batch, reduction="none")
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)
    # the element-wise division of the buggy releases: the weights cancel per class
    cancelled = (1 - (2 * w * inter + s) / (w * (pred + truth) + s)).mean(-1)
    assert (actual - cancelled).abs().min() > 1e-3


def test_gdl_weights_scale_the_classes():
    """``simple`` and ``square`` differ, and ``uniform`` is the unweighted pooled ratio."""
    logits, labels = _inputs(seed=5)
    probs, onehot = torch.softmax(logits, 1), _onehot(labels)
    inter, pred, truth = _sums(probs, onehot)
    uniform = 1 - (2 * inter.sum(-1) + 1e-5) / ((pred + truth).sum(-1) + 1e-5)
    torch.testing.assert_close(
        la.generalized_dice_loss(logits, labels, w_type="uniform", reduction="none"), uniform
    )
    simple = la.generalized_dice_loss(logits, labels, w_type="simple", reduction="none")
    square = la.generalized_dice_loss(logits, labels, w_type="square", reduction="none")
    assert (simple - square).abs().min() > 1e-4


def test_a_class_absent_from_the_whole_batch_is_finite_with_a_finite_gradient():
    """Its weight is the largest finite weight of the row (MONAI #4656), by hand here."""
    logits, labels = _inputs(seed=6)
    labels[labels == 2] = 1  # class 2 in no sample
    for batch in (False, True):
        x = logits.clone().requires_grad_(True)
        loss = la.generalized_dice_loss(x, labels, batch=batch)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    probs, onehot = torch.softmax(logits, 1), _onehot(labels)
    inter, pred, truth = _sums(probs, onehot)
    w = torch.where(truth > 0, 1.0 / truth.clamp_min(1) ** 2, 0.0)
    w = torch.where(truth > 0, w, w.amax(-1, keepdim=True))
    expected = 1 - (2 * (w * inter).sum(-1) + 1e-5) / ((w * (pred + truth)).sum(-1) + 1e-5)
    torch.testing.assert_close(la.generalized_dice_loss(logits, labels, reduction="none"), expected)
    # the absent class's false positives count: more of it raises the loss
    more = logits.clone()
    more[:, 2] += 1.0
    assert la.generalized_dice_loss(more, labels) > la.generalized_dice_loss(logits, labels)


def test_a_sample_with_no_class_present_scores_its_false_positives():
    """Documented difference: weight 1 for every class here; MONAI's weights are all 0."""
    logits, labels = _inputs(seed=7)
    labels[0] = 0  # only background in sample 0; without background no class is present
    x = logits.clone().requires_grad_(True)
    ours = la.generalized_dice_loss(x, labels, include_background=False, reduction="none")
    foreground = torch.softmax(logits, 1)[0, 1:].sum()
    torch.testing.assert_close(ours[0], 1 - 1e-5 / (foreground + 1e-5))  # by hand, w = 1
    ours[0].backward()
    assert torch.isfinite(x.grad).all() and x.grad[0].abs().sum() > 0
    monai = monai_losses.GeneralizedDiceLoss(
        softmax=True, to_onehot_y=True, include_background=False, reduction="none"
    )(logits, labels.unsqueeze(1)).flatten()
    torch.testing.assert_close(monai[0], torch.tensor(0.0, dtype=torch.float64))  # 1 - s/s
    torch.testing.assert_close(ours[1], monai[1], **MONAI_TOL)


def test_empty_soft_mask_weights_stay_finite():
    logits = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.zeros(2, 2, 4, 4, dtype=torch.float64)
    loss = la.binary_generalized_dice_loss(logits, mask)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


# --------------------------------------------------------------------------- GDL: identities


def _binary_logits(probs):
    """Two-class logits ``(0, logit p)`` whose softmax is ``(1 - p, p)``."""
    return torch.stack([torch.zeros_like(probs), torch.log(probs) - torch.log1p(-probs)], dim=1)


@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("batch", [False, True])
def test_uniform_gdl_is_dice_of_the_flattened_one_hot(include_background, batch):
    """``w_type="uniform"`` = :func:`dice_loss` of class 1 of the two-class problem (1-p, p)
    over every (class, position) pair of each sample."""
    logits, labels = _inputs(seed=8)
    first = 0 if include_background else 1
    probs = torch.softmax(logits, 1)[:, first:].reshape(N, -1)
    flat_target = _onehot(labels)[:, first:].reshape(N, -1).long()
    smooth = dict(smooth_nr=1e-4, smooth_dr=2e-4)
    dice = la.dice_loss(
        _binary_logits(probs).unsqueeze(-1),
        flat_target.unsqueeze(-1),
        include_background=False,
        batch=batch,
        reduction="none",
        **smooth,
    )
    gdl = la.generalized_dice_loss(
        logits,
        labels,
        w_type="uniform",
        include_background=include_background,
        batch=batch,
        reduction="none",
        **smooth,
    )
    torch.testing.assert_close(gdl, dice.reshape(gdl.shape), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("batch", [False, True])
def test_uniform_gdl_is_micro_dice(include_background, batch):
    """``w_type="uniform"`` = ``dice_loss(average="micro")``."""
    logits, labels = _inputs(seed=19)
    options = dict(include_background=include_background, batch=batch, reduction="none")
    options.update(smooth_nr=1e-4, smooth_dr=2e-4)
    torch.testing.assert_close(
        la.generalized_dice_loss(logits, labels, w_type="uniform", **options),
        la.dice_loss(logits, labels, average="micro", **options),
    )


@pytest.mark.parametrize("batch", [False, True])
def test_uniform_binary_gdl_is_binary_dice_of_the_channels_end_to_end(batch):
    logits, _ = _inputs(seed=9)
    mask = _mask(seed=3)
    gdl = la.binary_generalized_dice_loss(
        logits, mask, w_type="uniform", batch=batch, reduction="none"
    )
    dice = la.binary_dice_loss(
        logits.reshape(N, 1, -1), mask.reshape(N, 1, -1), batch=batch, reduction="none"
    )
    torch.testing.assert_close(gdl, dice.reshape(gdl.shape), rtol=1e-12, atol=1e-12)
    # one channel: any w_type is Dice with the smoothing divided by the weight (here w = 1/G)
    one = la.binary_generalized_dice_loss(logits[:, :1], mask[:, :1], w_type="simple")
    volume = mask[:, :1].flatten(1).sum(-1)
    per_sample = [
        la.binary_dice_loss(
            logits[i : i + 1, :1],
            mask[i : i + 1, :1],
            smooth_nr=1e-5 * float(volume[i]),
            smooth_dr=1e-5 * float(volume[i]),
        )
        for i in range(N)
    ]
    torch.testing.assert_close(one, torch.stack(per_sample).mean())


def test_ignore_index_is_cropping_the_ignored_pixels():
    logits, labels = _inputs(seed=10)
    labels[:, :, -1] = 255  # the last column is void
    ours = la.generalized_dice_loss(logits, labels, ignore_index=255, reduction="none")
    cropped = la.generalized_dice_loss(
        logits[..., :-1], labels[..., :-1].contiguous(), reduction="none"
    )
    torch.testing.assert_close(ours, cropped)
    changed = logits.clone()
    changed[..., -1] = 50.0
    torch.testing.assert_close(
        la.generalized_dice_loss(changed, labels, ignore_index=255, reduction="none"), ours
    )


@pytest.mark.parametrize("w_type", ["square", "uniform"])
def test_gdl_fused_and_plain_paths_agree(w_type):
    logits, labels = _inputs(seed=11)
    results = []
    for fused in (True, False):
        x = logits.clone().requires_grad_(True)
        with la.fused(fused):
            loss = la.generalized_dice_loss(x, labels, w_type=w_type)
        loss.backward()
        results.append((loss.detach(), x.grad))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


# --------------------------------------------------------------------------- GDL: errors, module


def test_gdl_bad_inputs_name_the_argument():
    logits, labels = _inputs()
    with pytest.raises(ValueError, match="w_type.*square"):
        la.generalized_dice_loss(logits, labels, w_type="squared")
    with pytest.raises(TypeError, match="class indices must be torch.long"):
        la.generalized_dice_loss(logits, labels.double())
    with pytest.raises(ValueError, match="C >= 2"):
        la.generalized_dice_loss(logits[:, :1], labels.clamp_max(0))
    with pytest.raises(ValueError, match="smooth_dr"):
        la.generalized_dice_loss(logits, labels, smooth_dr=0.0)
    with pytest.raises(ValueError, match="target must have the same shape"):
        la.binary_generalized_dice_loss(logits, _mask()[:, :2])
    with pytest.raises(ValueError, match="w_type"):
        la.nn.BinaryGeneralizedDiceLoss(w_type="cube")


def test_gdl_modules_equal_the_functionals():
    logits, labels = _inputs(seed=12)
    module = la.nn.GeneralizedDiceLoss(w_type="simple", include_background=False, batch=True)
    torch.testing.assert_close(
        module(logits, labels),
        la.generalized_dice_loss(
            logits, labels, w_type="simple", include_background=False, batch=True
        ),
    )
    mask = _mask()
    binary = la.nn.BinaryGeneralizedDiceLoss(reduction="sum")
    torch.testing.assert_close(
        binary(logits, mask), la.binary_generalized_dice_loss(logits, mask, reduction="sum")
    )


# --------------------------------------------------------------------------- GWDL

DISTANCES = torch.tensor(
    [[0.0, 2.0, 1.5], [2.0, 0.0, 0.5], [1.5, 0.5, 0.0]], dtype=torch.float64
)  # max 2: MONAI and lossatlas both divide by it


@pytest.mark.parametrize("weighting_mode", ["default", "GDL"])
def test_gwdl_equals_monai(weighting_mode):
    logits, labels = _inputs(seed=13)
    for smooth_nr, smooth_dr in SMOOTHS:
        for reduction in ("none", "mean", "sum"):
            reference = monai_losses.GeneralizedWassersteinDiceLoss(
                dist_matrix=DISTANCES.clone(),
                weighting_mode=weighting_mode,
                reduction=reduction,
                smooth_nr=smooth_nr,
                smooth_dr=smooth_dr,
            )(logits, labels)
            actual = la.generalized_wasserstein_dice_loss(
                logits,
                labels,
                dist_matrix=DISTANCES,
                weighting_mode=weighting_mode,
                smooth_nr=smooth_nr,
                smooth_dr=smooth_dr,
                reduction=reduction,
            )
            torch.testing.assert_close(actual, reference, **MONAI_TOL)


def test_gwdl_is_unchanged_by_scaling_the_distances():
    logits, labels = _inputs(seed=14)
    one = la.generalized_wasserstein_dice_loss(logits, labels, dist_matrix=DISTANCES)
    three = la.generalized_wasserstein_dice_loss(logits, labels, dist_matrix=3 * DISTANCES)
    torch.testing.assert_close(one, three)


def test_gwdl_with_zero_one_distances_two_classes_is_foreground_dice():
    """Derived: M = 1 - I, C = 2, default weights -> dice_loss of class 1 (no background)."""
    logits, labels = _inputs(seed=15, c=2)
    zero_one = 1 - torch.eye(2, dtype=torch.float64)
    for smooth_nr, smooth_dr in SMOOTHS:
        smooth = dict(smooth_nr=smooth_nr, smooth_dr=smooth_dr)
        gwdl = la.generalized_wasserstein_dice_loss(
            logits, labels, dist_matrix=zero_one, reduction="none", **smooth
        )
        dice = la.dice_loss(logits, labels, include_background=False, reduction="none", **smooth)
        torch.testing.assert_close(gwdl, dice[:, 0], rtol=1e-12, atol=1e-12)


def test_gwdl_with_zero_one_distances_general_formula():
    """M = 1 - I, C = 3: TP is the foreground intersection, the errors the misclassified mass
    (default); ``GDL``: TP = sum_c a_c I_c, D = sum_c a_c (G_c + I_c), a_c = 1 / (G_c + 1)."""
    logits, labels = _inputs(seed=16)
    zero_one = 1 - torch.eye(C, dtype=torch.float64)
    inter, _, truth = _sums(torch.softmax(logits, 1), _onehot(labels))
    positions = H * W
    s = 1e-5
    true_pos = inter[:, 1:].sum(-1)
    expected = 1 - (2 * true_pos + s) / (2 * true_pos + positions - inter.sum(-1) + s)
    actual = la.generalized_wasserstein_dice_loss(
        logits, labels, dist_matrix=zero_one, reduction="none"
    )
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)
    alpha = 1 / (truth + 1)
    true_pos = (alpha * inter).sum(-1)
    expected = 1 - (2 * true_pos + s) / ((alpha * (truth + inter)).sum(-1) + s)
    actual = la.generalized_wasserstein_dice_loss(
        logits, labels, dist_matrix=zero_one, weighting_mode="GDL", reduction="none"
    )
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


def test_gwdl_prefers_the_milder_confusion():
    """Calling class 1 class 2 (distance 0.5) costs less than calling it background (1)."""
    labels = torch.ones(1, 1, 4, dtype=torch.long)
    as_two = torch.tensor([0.0, 0.0, 5.0]).reshape(1, 3, 1, 1).expand(1, 3, 1, 4)
    as_background = torch.tensor([5.0, 0.0, 0.0]).reshape(1, 3, 1, 1).expand(1, 3, 1, 4)
    m = DISTANCES.float()
    mild = la.generalized_wasserstein_dice_loss(as_two, labels, dist_matrix=m)
    severe = la.generalized_wasserstein_dice_loss(as_background, labels, dist_matrix=m)
    assert mild < severe


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (torch.zeros(2, 2), r"dist_matrix must have shape \(3, 3\)"),
        (torch.zeros(3), r"dist_matrix must have shape \(3, 3\)"),
        (-DISTANCES, "dist_matrix must hold finite distances >= 0"),
        (DISTANCES.clone().fill_diagonal_(float("nan")), "dist_matrix must hold finite"),
        (DISTANCES + torch.eye(3, dtype=torch.float64), "zero diagonal"),
        (DISTANCES + torch.triu(torch.ones(3, 3, dtype=torch.float64), 1), "symmetric"),
        (torch.zeros(3, 3), "positive distance"),
    ],
)
def test_gwdl_bad_dist_matrix_is_named(matrix, message):
    logits, labels = _inputs()
    with pytest.raises(ValueError, match=message):
        la.generalized_wasserstein_dice_loss(logits, labels, dist_matrix=matrix)


def test_gwdl_bad_inputs_name_the_argument():
    logits, labels = _inputs()
    with pytest.raises(TypeError, match="dist_matrix must be a floating-point tensor"):
        la.generalized_wasserstein_dice_loss(logits, labels, dist_matrix=DISTANCES.long())
    with pytest.raises(TypeError, match="dist_matrix"):
        la.generalized_wasserstein_dice_loss(logits, labels, dist_matrix=DISTANCES.tolist())
    with pytest.raises(TypeError, match="dist_matrix"):
        la.generalized_wasserstein_dice_loss(logits, labels)
    with pytest.raises(TypeError, match="target must hold class indices"):
        la.generalized_wasserstein_dice_loss(logits, _onehot(labels), dist_matrix=DISTANCES)
    with pytest.raises(ValueError, match="weighting_mode"):
        la.generalized_wasserstein_dice_loss(
            logits, labels, dist_matrix=DISTANCES, weighting_mode="gdl"
        )
    with pytest.raises(ValueError, match="class index 3"):
        la.generalized_wasserstein_dice_loss(logits, labels + 1, dist_matrix=DISTANCES)
    with pytest.raises(TypeError, match="dist_matrix"):
        la.nn.GeneralizedWassersteinDiceLoss(dist_matrix=DISTANCES.tolist())


def test_gwdl_module_holds_the_matrix_as_a_buffer():
    logits, labels = _inputs(seed=17)
    module = la.nn.GeneralizedWassersteinDiceLoss(dist_matrix=DISTANCES.float())
    assert "dist_matrix" in dict(module.named_buffers())
    assert "dist_matrix" in module.state_dict()
    module = module.double()
    assert module.dist_matrix.dtype == torch.float64
    torch.testing.assert_close(
        module(logits, labels),
        la.generalized_wasserstein_dice_loss(logits, labels, dist_matrix=DISTANCES),
    )


def test_gwdl_gradient_is_finite_and_checked():
    logits, labels = _inputs(seed=18, n=1, h=2, w=2)
    x = logits.clone().requires_grad_(True)
    for mode in ("default", "GDL"):
        assert torch.autograd.gradcheck(
            lambda v, mode=mode: la.generalized_wasserstein_dice_loss(
                v, labels, dist_matrix=DISTANCES, weighting_mode=mode
            ),
            (x,),
        )
