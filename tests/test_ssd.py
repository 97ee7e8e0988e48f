"""SSD MultiBox loss and the box helpers: a case counted by hand, a loop reference, training.

The loop reference follows ssd.pytorch (``layers/box_utils.py::match`` and
``layers/modules/multibox_loss.py``, Liu et al.'s matching, encoding and 3:1 hard-negative
mining written per image and per ground truth), with lossatlas's documented choice for an image
without objects (it mines ``neg_pos_ratio`` negatives).
"""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import lossatlas as la
from lossatlas.detection.ssd import example_priors

F64 = torch.float64


def ssd_parts(*args, **kwargs):
    """``ssd_loss`` with its parts (the default returns the total alone)."""
    return la.ssd_loss(*args, return_parts=True, **kwargs)


def close(actual, expected, *, rtol=1e-6, atol=1e-9):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


def smooth_l1(x):
    return 0.5 * x * x if abs(x) < 1 else abs(x) - 0.5


def ce(logits, label):
    return math.log(sum(math.exp(v) for v in logits)) - logits[label]


# Six priors (cx, cy, w, h): four quadrants, the whole image, the centre.
PRIORS = torch.tensor(
    [
        [0.25, 0.25, 0.5, 0.5],  # [0, 0, .5, .5]
        [0.75, 0.25, 0.5, 0.5],  # [.5, 0, 1, .5]
        [0.25, 0.75, 0.5, 0.5],  # [0, .5, .5, 1]
        [0.75, 0.75, 0.5, 0.5],  # [.5, .5, 1, 1]
        [0.5, 0.5, 1.0, 1.0],  # [0, 0, 1, 1]
        [0.5, 0.5, 0.5, 0.5],  # [.25, .25, .75, .75]
    ],
    dtype=F64,
)


# --------------------------------------------------------------------------- by hand


def hand_case():
    # Image 0: one object [0, 0, .5, .6] of class 2. IoU with the priors: 0.25/0.3 = 0.833,
    # 0, 0.05/0.5 = 0.1, 0, 0.3/1 = 0.3, 0.0875/0.4625 = 0.19: prior 0 is the only positive.
    boxes = [torch.tensor([[0.0, 0.0, 0.5, 0.6]], dtype=F64), torch.zeros(0, 4, dtype=F64)]
    labels = [torch.tensor([2]), torch.zeros(0, dtype=torch.long)]
    conf = torch.tensor(
        [
            [[0, 0, 2], [0, 3, 0], [0, 0, 0], [2, 0, 0], [0, 1, 1], [1, 0, 0]],
            # Image 1 has no object; CE against background is ranked p3 > p1 > p0 > ...
            [[0, 1, 0], [0, 2, 0], [1, 0, 0], [0, 4, 0], [3, 0, 0], [2, 0, 0]],
        ],
        dtype=F64,
    )
    loc = torch.zeros(2, 6, 4, dtype=F64)
    loc[0, 0] = torch.tensor([0.5, 1.0, 0.0, 0.0])
    return loc, conf, boxes, labels


def test_hand_counted_case():
    loc, conf, boxes, labels = hand_case()
    c = conf.tolist()
    # Encoded target of prior 0 (centre .25,.25, size .5): centre (.25, .3), size (.5, .6):
    # ((.25-.25)/(.1*.5), (.3-.25)/(.1*.5), log(.5/.5)/.2, log(.6/.5)/.2) = (0, 1, 0, 0.9116).
    target = [0.0, 1.0, 0.0, math.log(0.6 / 0.5) / 0.2]
    loc_sum = sum(smooth_l1(p - t) for p, t in zip([0.5, 1.0, 0.0, 0.0], target, strict=True))
    # Image 0: the positive's CE (label 2) plus the 3 = 3 * 1 hardest of the 5 negatives:
    # background CE of p1 (3.05), p4 (1.86), p2 (1.10); p5 (0.55) and p3 (0.24) are left out.
    neg0 = sorted((ce(c[0][k], 0) for k in range(1, 6)), reverse=True)
    assert neg0[:3] == [ce(c[0][1], 0), ce(c[0][4], 0), ce(c[0][2], 0)]
    conf0 = ce(c[0][0], 2) + sum(neg0[:3])
    # Image 1 (no object) mines neg_pos_ratio * 1 = 3 negatives: p3, p1, p0.
    neg1 = sorted((ce(c[1][k], 0) for k in range(6)), reverse=True)
    assert neg1[:3] == [ce(c[1][3], 0), ce(c[1][1], 0), ce(c[1][0], 0)]
    conf_sum = conf0 + sum(neg1[:3])
    out = ssd_parts(loc, conf, PRIORS, boxes, labels)
    # One positive in the batch: both parts divided by 1.
    close(out.parts["loc"], torch.tensor(loc_sum, dtype=F64))
    close(out.parts["conf"], torch.tensor(conf_sum, dtype=F64))
    close(out.total, torch.tensor(conf_sum + loc_sum, dtype=F64))
    # Per image ("none") and summed, before the division.
    none = ssd_parts(loc, conf, PRIORS, boxes, labels, reduction="none")
    close(none.parts["conf"], torch.tensor([conf0, sum(neg1[:3])], dtype=F64))
    close(none.parts["loc"], torch.tensor([loc_sum, 0.0], dtype=F64))
    close(ssd_parts(loc, conf, PRIORS, boxes, labels, reduction="sum").total, none.total.sum())
    # Options: neg_pos_ratio=1 keeps only the hardest negative; loc_weight scales loc.
    one = ssd_parts(loc, conf, PRIORS, boxes, labels, neg_pos_ratio=1, loc_weight=2.0)
    close(one.parts["conf"], torch.tensor(ce(c[0][0], 2) + neg0[0] + neg1[0], dtype=F64))
    close(one.total, one.parts["conf"] + 2.0 * torch.tensor(loc_sum, dtype=F64))
    zero = ssd_parts(loc, conf, PRIORS, boxes, labels, neg_pos_ratio=0)
    close(zero.parts["conf"], torch.tensor(ce(c[0][0], 2), dtype=F64))


def test_two_positives_normalise_by_their_count():
    loc, conf, boxes, labels = hand_case()
    # A second object exactly on prior 3 (IoU 1) in image 0: P = 2.
    boxes = [torch.tensor([[0.0, 0.0, 0.5, 0.6], [0.5, 0.5, 1.0, 1.0]], dtype=F64), boxes[1]]
    labels = [torch.tensor([2, 1]), labels[1]]
    none = ssd_parts(loc, conf, PRIORS, boxes, labels, reduction="none")
    mean = ssd_parts(loc, conf, PRIORS, boxes, labels)
    close(mean.total, none.total.sum() / 2)
    # Image 0 now mines min(3 * 2, 6 - 2) = 4 negatives: all of p1, p2, p4, p5.
    c = conf.tolist()
    expected = ce(c[0][0], 2) + ce(c[0][3], 1) + sum(ce(c[0][k], 0) for k in (1, 2, 4, 5))
    close(none.parts["conf"][0], torch.tensor(expected, dtype=F64))


def test_image_without_objects_adds_its_mined_negatives_only():
    loc, conf, boxes, labels = hand_case()
    alone = ssd_parts(loc[:1], conf[:1], PRIORS, boxes[:1], labels[:1], reduction="sum")
    both = ssd_parts(loc, conf, PRIORS, boxes, labels, reduction="sum")
    c = conf.tolist()
    mined = sorted((ce(c[1][k], 0) for k in range(6)), reverse=True)[:3]
    close(both.parts["conf"] - alone.parts["conf"], torch.tensor(sum(mined), dtype=F64))
    close(both.parts["loc"], alone.parts["loc"])


def test_batch_without_objects_is_finite():
    loc = torch.randn(3, 6, 4, dtype=F64, requires_grad=True)
    conf = torch.randn(3, 6, 4, dtype=F64, requires_grad=True)
    boxes = [torch.zeros(0, 4, dtype=F64)] * 3
    labels = [torch.zeros(0, dtype=torch.long)] * 3
    out = ssd_parts(loc, conf, PRIORS, boxes, labels)
    assert torch.isfinite(out.total) and float(out.parts["loc"].detach()) == 0.0
    # P = 0 is floored at 1: the loss is the sum of each image's 3 hardest background CEs.
    background = -torch.log_softmax(conf.detach(), dim=2)[..., 0]
    expected = background.topk(3, dim=1).values.sum()
    close(out.total, expected)
    out.total.backward()
    assert torch.isfinite(loc.grad).all() and float(loc.grad.abs().sum()) == 0.0
    assert torch.isfinite(conf.grad).all()


# --------------------------------------------------------------------------- loop reference


def reference_ssd(loc, conf, priors, boxes, labels, threshold=0.5, ratio=3, variances=(0.1, 0.2)):
    """ssd.pytorch's match + MultiBoxLoss, image by image and ground truth by ground truth."""
    num_priors = conf.shape[1]
    corners = torch.cat((priors[:, :2] - priors[:, 2:] / 2, priors[:, :2] + priors[:, 2:] / 2), 1)
    loc_sum, conf_sum, total_pos = 0.0, 0.0, 0
    for i in range(loc.shape[0]):
        truths, lab = boxes[i], labels[i]
        conf_t = torch.zeros(num_priors, dtype=torch.long)
        matched = torch.zeros(num_priors, 4, dtype=F64)
        if truths.shape[0] > 0:
            overlaps = torch.zeros(truths.shape[0], num_priors, dtype=F64)
            for j in range(truths.shape[0]):
                for k in range(num_priors):
                    a, b = truths[j], corners[k]
                    w = max(0.0, float(min(a[2], b[2]) - max(a[0], b[0])))
                    h = max(0.0, float(min(a[3], b[3]) - max(a[1], b[1])))
                    inter = w * h
                    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]))
                    overlaps[j, k] = inter / (union - inter)
            best_prior_idx = overlaps.argmax(dim=1)
            best_truth_overlap, best_truth_idx = overlaps.max(dim=0)
            best_truth_overlap[best_prior_idx] = 2.0
            for j in range(best_prior_idx.shape[0]):
                best_truth_idx[best_prior_idx[j]] = j
            matched = truths[best_truth_idx]
            conf_t = lab[best_truth_idx].clone()
            conf_t[best_truth_overlap < threshold] = 0
        pos = conf_t > 0
        num_pos = int(pos.sum())
        total_pos += num_pos
        centre = ((matched[:, :2] + matched[:, 2:]) / 2 - priors[:, :2]) / (
            variances[0] * priors[:, 2:]
        )
        size = torch.log((matched[:, 2:] - matched[:, :2]) / priors[:, 2:]) / variances[1]
        loc_t = torch.cat((centre, size), 1)
        if num_pos:
            loc_sum = loc_sum + F.smooth_l1_loss(loc[i][pos], loc_t[pos], reduction="sum")
        losses = F.cross_entropy(conf[i], conf_t, reduction="none")
        negatives = [(float(losses[k]), k) for k in range(num_priors) if not pos[k]]
        negatives.sort(key=lambda item: -item[0])
        num_neg = min(ratio * max(num_pos, 1), num_priors - num_pos)
        keep = [k for _, k in negatives[:num_neg]] + pos.nonzero().flatten().tolist()
        conf_sum = conf_sum + losses[keep].sum()
    n = max(total_pos, 1)
    return loc_sum / n, conf_sum / n


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("threshold", "ratio"), [(0.5, 3), (0.3, 1), (0.6, 5)])
def test_equals_loop_reference(seed, threshold, ratio):
    g = torch.Generator().manual_seed(seed)
    priors = example_priors(F64)
    batch, num_priors, num_classes = 4, priors.shape[0], 5
    loc = torch.randn(batch, num_priors, 4, generator=g, dtype=F64)
    conf = torch.randn(batch, num_priors, num_classes, generator=g, dtype=F64) * 2
    boxes, labels = [], []
    for i in range(batch):
        count = [2, 0, 4, 1][i]
        corner = torch.rand(count, 2, generator=g, dtype=F64) * 0.6
        size = torch.rand(count, 2, generator=g, dtype=F64) * 0.35 + 0.05
        boxes.append(torch.cat((corner, corner + size), 1))
        labels.append(torch.randint(1, num_classes, (count,), generator=g))
    ref_loc, ref_conf = reference_ssd(loc, conf, priors, boxes, labels, threshold, ratio)
    out = ssd_parts(loc, conf, priors, boxes, labels, iou_threshold=threshold, neg_pos_ratio=ratio)
    close(out.parts["loc"], torch.as_tensor(ref_loc, dtype=F64))
    close(out.parts["conf"], ref_conf)


def test_gradient_flows_only_to_used_priors():
    loc, conf, boxes, labels = hand_case()
    loc.requires_grad_(True)
    conf.requires_grad_(True)
    la.ssd_loss(loc, conf, PRIORS, boxes, labels).backward()
    used_loc = loc.grad.abs().sum(dim=2) > 0
    assert used_loc.tolist() == [[True] + [False] * 5, [False] * 6]
    used_conf = conf.grad.abs().sum(dim=2) > 0
    assert used_conf.tolist() == [
        [True, True, True, False, True, False],
        [True, True, False, True, False, False],
    ]


# --------------------------------------------------------------------------- helpers


def test_encode_decode_round_trip():
    g = torch.Generator().manual_seed(0)
    corner = torch.rand(50, 2, generator=g, dtype=F64)
    boxes = torch.cat((corner, corner + torch.rand(50, 2, generator=g, dtype=F64) + 0.01), 1)
    priors = torch.cat(
        (
            torch.rand(50, 2, generator=g, dtype=F64),
            torch.rand(50, 2, generator=g, dtype=F64) + 0.05,
        ),
        1,
    )
    for variances in [(0.1, 0.2), (1.0, 1.0), (0.05, 0.3)]:
        offsets = la.encode_boxes(boxes, priors, variances=variances)
        close(la.decode_boxes(offsets, priors, variances=variances), boxes, atol=1e-12)
        close(
            la.encode_boxes(
                la.decode_boxes(offsets, priors, variances=variances), priors, variances=variances
            ),
            offsets,
            atol=1e-10,
        )


def test_encode_by_hand():
    prior = torch.tensor([[0.5, 0.5, 0.2, 0.4]], dtype=F64)
    box = torch.tensor([[0.45, 0.2, 0.85, 0.6]], dtype=F64)  # centre (.65, .4), size (.4, .4)
    expected = [
        (0.65 - 0.5) / (0.1 * 0.2),
        (0.4 - 0.5) / (0.1 * 0.4),
        math.log(0.4 / 0.2) / 0.2,
        math.log(0.4 / 0.4) / 0.2,
    ]
    close(la.encode_boxes(box, prior), torch.tensor([expected], dtype=F64))


def test_box_format_conversions_invert():
    boxes = torch.tensor([[0.1, 0.2, 0.5, 0.9], [1.0, 1.0, 3.0, 2.0]], dtype=F64)
    close(la.box_cxcywh_to_xyxy(la.box_xyxy_to_cxcywh(boxes)), boxes)


def test_box_iou_by_hand():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 5.0, 5.0]], dtype=F64)
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 1.0, 2.0], [5.0, 5.0, 5.0, 5.0]], dtype=F64)
    expected = torch.tensor([[1 / 7, 2 / 4, 0.0], [0.0, 0.0, 0.0]], dtype=F64)
    close(la.box_iou(a, b), expected)  # two zero-area boxes: 0, not NaN


def test_match_priors_forces_each_objects_best_prior():
    # The object overlaps its best prior (p5) with IoU 0.25^2/0.25 = ... < 0.5: still matched.
    box = torch.tensor([[0.3, 0.3, 0.55, 0.55]], dtype=F64)
    matched, labels = la.match_priors(box, torch.tensor([4]), PRIORS)
    assert labels.tolist() == [0, 0, 0, 0, 0, 4]
    close(matched[5], box[0])


def test_match_priors_later_object_keeps_a_shared_best_prior():
    # Both objects' best prior is p0; the later one keeps it (ssd.pytorch's loop order), the
    # earlier one is positive nowhere else.
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.45], [0.0, 0.0, 0.45, 0.5]], dtype=F64)
    _, labels = la.match_priors(boxes, torch.tensor([1, 2]), PRIORS)
    assert labels.tolist() == [2, 0, 0, 0, 0, 0]


def test_match_priors_threshold_and_empty_image():
    box = torch.tensor([[0.0, 0.0, 0.5, 0.6]], dtype=F64)
    _, labels = la.match_priors(box, torch.tensor([1]), PRIORS, iou_threshold=0.25)
    assert labels.tolist() == [1, 0, 0, 0, 1, 0]  # p4 has IoU 0.3 >= 0.25
    matched, labels = la.match_priors(
        torch.zeros(0, 4, dtype=F64), torch.zeros(0, dtype=torch.long), PRIORS
    )
    assert labels.tolist() == [0] * 6 and torch.isfinite(matched).all()


# --------------------------------------------------------------------------- module, dtypes


def test_module_with_and_without_priors():
    loc, conf, boxes, labels = hand_case()
    expected = ssd_parts(loc, conf, PRIORS, boxes, labels, neg_pos_ratio=2)
    owning = la.nn.SSDLoss(priors=PRIORS, neg_pos_ratio=2)
    close(owning(loc, conf, boxes, labels), expected.total)
    assert "priors" in owning.state_dict()
    plain = la.nn.SSDLoss(neg_pos_ratio=2)
    close(plain(loc, conf, PRIORS, boxes, labels), expected.total)
    with pytest.raises(TypeError, match=r"since it holds priors, got 5 inputs"):
        owning(loc, conf, PRIORS, boxes, labels)
    with pytest.raises(ValueError, match=r"neg_pos_ratio must be in \[0, inf\]"):
        la.nn.SSDLoss(neg_pos_ratio=-1)
    with pytest.raises(ValueError, match=r"priors must have shape \(A, 4\)"):
        la.nn.SSDLoss(priors=torch.zeros(3, 5))


def test_parts_work_with_combine_and_logging():
    loc, conf, boxes, labels = hand_case()
    total = la.ssd_loss(loc, conf, PRIORS, boxes, labels)
    assert isinstance(total, torch.Tensor)
    out = ssd_parts(loc, conf, PRIORS, boxes, labels)
    assert isinstance(out, la.LossParts) and out[0] is out.total
    close(out.total, total)
    owning = la.nn.SSDLoss(priors=PRIORS, return_parts=True)
    close(owning(loc, conf, boxes, labels).parts["loc"], out.parts["loc"])
    logged = out.detached()
    assert set(logged) == {"total", "loc", "conf"}
    assert logged["total"] == pytest.approx(logged["loc"] + logged["conf"])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_in_float32(dtype):
    loc, conf, boxes, labels = hand_case()
    out = ssd_parts(
        loc.to(dtype), conf.to(dtype), PRIORS.to(dtype), [b.to(dtype) for b in boxes], labels
    )
    assert out.total.dtype == torch.float32
    expected = ssd_parts(
        loc.to(dtype).double(),
        conf.to(dtype).double(),
        PRIORS.to(dtype).double(),
        [b.to(dtype).double() for b in boxes],
        labels,
    )
    close(out.total.double(), expected.total, rtol=1e-3, atol=1e-3)


def test_compiles_without_graph_breaks():
    torch._dynamo.reset()
    loc, conf, boxes, labels = hand_case()
    compiled = torch.compile(la.ssd_loss, fullgraph=True, backend="eager")
    close(
        compiled(loc, conf, PRIORS, boxes, labels),
        la.ssd_loss(loc, conf, PRIORS, boxes, labels),
    )


# --------------------------------------------------------------------------- errors


def test_errors():
    loc, conf, boxes, labels = hand_case()
    with pytest.raises(
        ValueError,
        match=r"priors must have shape \(A, 4\) as \(cx, cy, w, h\), "
        r"got \(6, 5\)",
    ):
        ssd_parts(loc, conf, torch.zeros(6, 5, dtype=F64), boxes, labels)
    with pytest.raises(ValueError, match=r"priors must have shape \(6, 4\), one per prediction"):
        ssd_parts(loc, conf, PRIORS[:5], boxes, labels)
    with pytest.raises(
        ValueError,
        match=r"w > 0 and h > 0, got \[0.5, 0.5, 0.0, 1.0\] at "
        r"position \(1,\)",
    ):
        ssd_parts(
            loc,
            conf,
            PRIORS.index_copy(
                0, torch.tensor([1]), torch.tensor([[0.5, 0.5, 0.0, 1.0]], dtype=F64)
            ),
            boxes,
            labels,
        )
    with pytest.raises(
        ValueError,
        match=r"gt_labels\[0\] must have shape \(1,\) \(one label "
        r"per box of gt_boxes\[0\]\), got \(2,\)",
    ):
        ssd_parts(loc, conf, PRIORS, boxes, [torch.tensor([1, 2]), labels[1]])
    with pytest.raises(
        ValueError,
        match=r"gt_boxes\[0\] must hold finite \(x1, y1, x2, y2\) "
        r"boxes with x2 > x1 and y2 > y1, got \[0.5, 0.0, 0.0, 0.6\]",
    ):
        ssd_parts(
            loc, conf, PRIORS, [torch.tensor([[0.5, 0.0, 0.0, 0.6]], dtype=F64), boxes[1]], labels
        )
    for bad in (0, 3):
        with pytest.raises(
            ValueError,
            match=rf"gt_labels\[0\] has label {bad} at position "
            r"\(0,\); expected values in \[1, 3\)",
        ):
            ssd_parts(loc, conf, PRIORS, boxes, [torch.tensor([bad]), labels[1]])
    with pytest.raises(
        ValueError,
        match=r"gt_boxes must hold one tensor per image \(2, the "
        r"batch size of loc_preds\), got 1",
    ):
        ssd_parts(loc, conf, PRIORS, boxes[:1], labels)
    with pytest.raises(ValueError, match=r"gt_labels must hold one tensor per image"):
        ssd_parts(loc, conf, PRIORS, boxes, labels[:1])
    with pytest.raises(TypeError, match="gt_boxes must be a list of per-image tensors"):
        ssd_parts(loc, conf, PRIORS, torch.zeros(2, 1, 4), labels)
    with pytest.raises(TypeError, match=r"gt_labels\[0\] must be an integer tensor"):
        ssd_parts(loc, conf, PRIORS, boxes, [torch.tensor([2.0]), labels[1]])
    with pytest.raises(ValueError, match=r"conf_logits must have shape \(2, 6, C\)"):
        ssd_parts(loc, conf[:, :5], PRIORS, boxes, labels)
    with pytest.raises(ValueError, match=r"loc_preds must have shape \(N, A, 4\)"):
        ssd_parts(loc[..., :3], conf, PRIORS, boxes, labels)
    with pytest.raises(ValueError, match=r"iou_threshold must be in \[0, 1\]"):
        ssd_parts(loc, conf, PRIORS, boxes, labels, iou_threshold=1.5)
    with pytest.raises(TypeError, match="variances must be a pair"):
        ssd_parts(loc, conf, PRIORS, boxes, labels, variances=(0.1,))
    with pytest.raises(ValueError, match="reduction must be one of"):
        ssd_parts(loc, conf, PRIORS, boxes, labels, reduction="batchmean")


# --------------------------------------------------------------------------- training


def synthetic_images(generator, n):
    """16 x 16 images with one bright (class 1) or dark (class 2) rectangle each."""
    corner = torch.rand(n, 2, generator=generator) * 0.55
    size = torch.rand(n, 2, generator=generator) * 0.25 + 0.2
    boxes = torch.cat((corner, corner + size), 1)
    labels = torch.randint(1, 3, (n,), generator=generator)
    grid = (torch.arange(16) + 0.5) / 16
    inside_x = (grid >= boxes[:, None, 0]) & (grid <= boxes[:, None, 2])
    inside_y = (grid >= boxes[:, None, 1]) & (grid <= boxes[:, None, 3])
    mask = (inside_y[:, :, None] & inside_x[:, None, :]).float()
    sign = torch.where(labels == 1, 1.0, -1.0)
    images = mask * sign[:, None, None] + 0.05 * torch.randn(n, 16, 16, generator=generator)
    return images.reshape(n, -1), [b[None] for b in boxes], [lab[None] for lab in labels]


@pytest.mark.slow  # 300 optimiser steps: ~15 s on a loaded CPU
def test_tiny_ssd_head_learns_to_localise():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    priors = example_priors(torch.float32)
    num_priors, num_classes = priors.shape[0], 3
    head = torch.nn.Sequential(
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, num_priors * (4 + num_classes)),
    )
    loss_fn = la.nn.SSDLoss(priors=priors)
    optimiser = torch.optim.Adam(head.parameters(), lr=2e-3)

    def predict(images):
        out = head(images).view(-1, num_priors, 4 + num_classes)
        return out[..., :4], out[..., 4:]

    test_images, test_boxes, test_labels = synthetic_images(g, 64)
    with torch.no_grad():
        initial = loss_fn(*predict(test_images), test_boxes, test_labels)
    for _ in range(300):
        images, boxes, labels = synthetic_images(g, 32)
        loss = loss_fn(*predict(images), boxes, labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        loc, conf = predict(test_images)
        final = loss_fn(loc, conf, test_boxes, test_labels)
        # The most confident non-background prior: its decoded box and its class.
        probs = conf.softmax(dim=2)
        best = (1 - probs[..., 0]).argmax(dim=1)
        rows = torch.arange(64)
        decoded = la.decode_boxes(loc[rows, best], priors[best])
        ious = torch.stack([la.box_iou(decoded[i : i + 1], test_boxes[i])[0, 0] for i in rows])
        predicted = probs[rows, best, 1:].argmax(dim=1) + 1
        truth = torch.cat(test_labels)
    assert float(final) < 0.5 * float(initial)
    assert float(ious.mean()) > 0.6
    assert float((predicted == truth).float().mean()) > 0.9


# --------------------------------------------------------------------------- properties


@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(0, 30),
    variances=st.sampled_from([(0.1, 0.2), (1.0, 1.0), (0.05, 0.5)]),
)
def test_decode_inverts_encode(seed, n, variances):
    g = torch.Generator().manual_seed(seed)
    corner = torch.rand(n, 2, generator=g, dtype=F64) * 100
    boxes = torch.cat((corner, corner + torch.rand(n, 2, generator=g, dtype=F64) * 50 + 1e-3), 1)
    priors = torch.cat(
        (
            torch.rand(n, 2, generator=g, dtype=F64) * 100,
            torch.rand(n, 2, generator=g, dtype=F64) * 50 + 1e-2,
        ),
        1,
    )
    offsets = la.encode_boxes(boxes, priors, variances=variances)
    close(la.decode_boxes(offsets, priors, variances=variances), boxes, rtol=1e-9, atol=1e-9)
