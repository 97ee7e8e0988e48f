"""Lifted structure, N-pair and the mined contrastive loss: PML parity, hand formulas, edges.

Reference values come from pytorch-metric-learning 2.9.0 (the installed package; its files
``losses/lifted_structure_loss.py``, ``losses/n_pairs_loss.py``, ``losses/contrastive_loss.py``,
``miners/batch_easy_hard_miner.py``) in float64, with ``LpDistance(normalize_embeddings=False)``
for our un-normalised Euclidean distance, or from the papers' formulas written out below with
Python loops over the batch.
"""

from __future__ import annotations

import math

import pytest
import torch

import lossatlas as la

pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
pml_distances = pytest.importorskip("pytorch_metric_learning.distances")
pml_reducers = pytest.importorskip("pytorch_metric_learning.reducers")

D64 = torch.float64
LOSSES = [la.lifted_structure_loss, la.npair_loss, la.mined_contrastive_loss]


def _batch(n=10, d=5, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=D64), torch.randint(0, classes, (n,), generator=g)


def _lp():
    return pml_distances.LpDistance(normalize_embeddings=False)


def _pml_distance(distance):
    return {
        "euclidean": _lp(),
        "squared_euclidean": pml_distances.LpDistance(normalize_embeddings=False, power=2),
        "cosine": pml_distances.CosineSimilarity(),
        "dot": pml_distances.DotProductSimilarity(normalize_embeddings=False),
    }[distance]


def _value_and_grad_match(ours_fn, theirs_fn, x):
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ours, theirs = ours_fn(x1), theirs_fn(x2)
    torch.testing.assert_close(ours, theirs)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(x1.grad, x2.grad)


# --------------------------------------------------------------------------- lifted structure


@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean", "cosine", "dot"])
@pytest.mark.parametrize(("pos_margin", "neg_margin"), [(0.0, 1.0), (0.5, 2.0)])
def test_lifted_matches_pml(distance, pos_margin, neg_margin):
    x, labels = _batch()
    margins = {"pos_margin": pos_margin, "neg_margin": neg_margin}
    pml = pml_losses.LiftedStructureLoss(distance=_pml_distance(distance), **margins)
    _value_and_grad_match(
        lambda e: la.lifted_structure_loss(e, labels, distance=distance, **margins),
        lambda e: pml(e, labels),
        x,
    )


def _lifted_by_hand(x, labels, alpha):
    """Oh Song et al. 2016, eq. (4): 1/(2|P|) sum over unordered positive pairs of max(0, J)^2."""
    d = torch.cdist(x, x)
    n = len(labels)
    total, pairs = 0.0, 0
    for i in range(n):
        for j in range(i + 1, n):
            if labels[i] != labels[j]:
                continue
            terms = [alpha - d[i, k] for k in range(n) if labels[k] != labels[i]]
            terms += [alpha - d[j, m] for m in range(n) if labels[m] != labels[j]]
            big_j = math.log(sum(math.exp(t) for t in terms)) + d[i, j].item()
            total += max(0.0, big_j) ** 2
            pairs += 1
    return total / (2 * pairs)


def test_lifted_matches_the_paper_formula():
    x, labels = _batch(n=9, seed=2)
    expected = _lifted_by_hand(x, labels, alpha=1.0)
    torch.testing.assert_close(la.lifted_structure_loss(x, labels).item(), expected)


def test_lifted_none_is_per_ordered_pair():
    x, labels = _batch(n=6)
    none = la.lifted_structure_loss(x, labels, reduction="none")
    positive = (labels[:, None] == labels[None, :]) & ~torch.eye(6, dtype=torch.bool)
    assert none.shape == (6, 6) and torch.equal(none[~positive], torch.zeros_like(none[~positive]))
    torch.testing.assert_close(none, none.T)  # J is symmetric in (i, j)
    torch.testing.assert_close(none.sum() / positive.sum(), la.lifted_structure_loss(x, labels))


# --------------------------------------------------------------------------- N-pair


@pytest.mark.parametrize(
    ("distance", "pml_distance"),
    [
        ("dot", pml_distances.DotProductSimilarity(normalize_embeddings=False)),
        ("cosine", None),  # PML's default DotProductSimilarity normalises: our "cosine"
        ("euclidean", _lp()),
    ],
)
@pytest.mark.parametrize(
    "labels",
    [
        torch.tensor([2, 0, 1, 0, 2, 1, 1, 0, 2, 2]),  # several samples per class
        torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 3, 4]),  # classes 3, 4 have no pair
    ],
)
def test_npair_matches_pml(distance, pml_distance, labels):
    x, _ = _batch()
    kwargs = {} if pml_distance is None else {"distance": pml_distance}
    pml = pml_losses.NPairsLoss(**kwargs)
    _value_and_grad_match(
        lambda e: la.npair_loss(e, labels, distance=distance), lambda e: pml(e, labels), x
    )


def test_npair_uses_the_first_two_samples_of_each_class():
    # Sohn 2016, eq. (3) with N = 2 pairs: anchors are rows 1 (class 0) and 0 (class 1), their
    # positives rows 3 and 2; rows 4 and 5 are third samples and unused.
    x, _ = _batch(n=6)
    labels = torch.tensor([1, 0, 1, 0, 0, 1])
    f = x @ x.T
    expected = [
        math.log(1 + math.exp(f[1, 2] - f[1, 3])),  # anchor 1: negative positive 2
        math.log(1 + math.exp(f[0, 3] - f[0, 2])),  # anchor 0: negative positive 3
    ]
    none = la.npair_loss(x, labels, reduction="none")
    torch.testing.assert_close(none[[1, 0]], torch.tensor(expected, dtype=D64))
    assert torch.equal(none[2:], torch.zeros(4, dtype=D64))
    moved = x.clone()
    moved[4:] = 100.0  # the unused rows change nothing
    torch.testing.assert_close(la.npair_loss(moved, labels), la.npair_loss(x, labels))


# --------------------------------------------------------------------------- mined contrastive


@pytest.mark.parametrize("mining", ["all", "batch_hard"])
@pytest.mark.parametrize(("mean_over", "reducer"), [("all", "MeanReducer"), ("nonzero", None)])
@pytest.mark.parametrize(("pos_margin", "neg_margin"), [(0.0, 1.0), (0.5, 4.0)])
def test_mined_contrastive_matches_pml(mining, mean_over, reducer, pos_margin, neg_margin):
    x, labels = _batch(n=12)
    kwargs = {} if reducer is None else {"reducer": getattr(pml_reducers, reducer)()}
    margins = {"pos_margin": pos_margin, "neg_margin": neg_margin}
    pml = pml_losses.ContrastiveLoss(distance=_lp(), **margins, **kwargs)  # AvgNonZero default

    def theirs(e):
        if mining == "all":
            return pml(e, labels)
        return pml(e, labels, pml_miners.BatchHardMiner(distance=_lp())(e, labels))

    _value_and_grad_match(
        lambda e: la.mined_contrastive_loss(
            e, labels, mining=mining, mean_over=mean_over, **margins
        ),
        theirs,
        x,
    )


@pytest.mark.parametrize("mean_over", ["all", "nonzero"])
def test_mined_contrastive_cosine_matches_pml(mean_over):
    x, labels = _batch(n=12)
    reducer = pml_reducers.MeanReducer() if mean_over == "all" else pml_reducers.AvgNonZeroReducer()
    pml = pml_losses.ContrastiveLoss(
        pos_margin=0.8, neg_margin=0.2, distance=pml_distances.CosineSimilarity(), reducer=reducer
    )
    _value_and_grad_match(
        lambda e: la.mined_contrastive_loss(
            e, labels, pos_margin=0.8, neg_margin=0.2, distance="cosine", mean_over=mean_over
        ),
        lambda e: pml(e, labels),
        x,
    )


def test_mined_contrastive_is_two_means_by_hand():
    x, labels = _batch(n=7, seed=3)
    d = torch.cdist(x, x)
    pos, neg = [], []
    for i in range(7):
        for j in range(7):
            if i == j:
                continue
            if labels[i] == labels[j]:
                pos.append(max(0.0, d[i, j].item() - 0.3))
            else:
                neg.append(max(0.0, 2.0 - d[i, j].item()))
    expected = sum(pos) / len(pos) + sum(neg) / len(neg)
    value = la.mined_contrastive_loss(x, labels, pos_margin=0.3, neg_margin=2.0)
    torch.testing.assert_close(value.item(), expected)
    total = la.mined_contrastive_loss(x, labels, pos_margin=0.3, neg_margin=2.0, reduction="sum")
    torch.testing.assert_close(total.item(), sum(pos) + sum(neg))


# --------------------------------------------------------------------------- edges, bad input


@pytest.mark.parametrize("loss", [la.lifted_structure_loss, la.npair_loss])
def test_no_repeated_label_gives_zero_loss_and_gradient(loss):
    x, _ = _batch(n=6)
    x.requires_grad_(True)
    value = loss(x, torch.arange(6))
    value.backward()
    assert value.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))


def test_mined_contrastive_without_positives_is_its_negative_part():
    x, _ = _batch(n=5)
    x.requires_grad_(True)
    value = la.mined_contrastive_loss(x, torch.arange(5), neg_margin=4.0)
    value.backward()
    d = torch.cdist(x.detach(), x.detach())
    off = ~torch.eye(5, dtype=torch.bool)
    torch.testing.assert_close(value.detach(), (4.0 - d[off]).clamp_min(0).mean())
    assert torch.isfinite(x.grad).all()
    # batch-hard needs a positive and a negative per anchor: none is formed
    y = x.detach().clone().requires_grad_(True)
    hard = la.mined_contrastive_loss(y, torch.arange(5), mining="batch_hard")
    hard.backward()
    assert hard.item() == 0.0 and torch.equal(y.grad, torch.zeros_like(y))


@pytest.mark.parametrize("loss", LOSSES, ids=lambda f: f.__name__)
def test_one_label_gives_a_finite_result(loss):
    x = torch.zeros(4, 3, dtype=D64, requires_grad=True)  # identical rows: d = 0, no negative
    value = loss(x, torch.zeros(4, dtype=torch.long))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("loss", LOSSES, ids=lambda f: f.__name__)
def test_bad_inputs_raise(loss):
    x, labels = _batch(n=6)
    with pytest.raises(ValueError, match=r"labels must have shape \(6,\)"):
        loss(x, labels[:5])
    with pytest.raises(TypeError, match="labels must be an integer tensor"):
        loss(x, labels.double())
    with pytest.raises(ValueError, match="Did you mean 'euclidean'"):
        loss(x, labels, distance="euclidian")


def test_mined_contrastive_unknown_mining_suggests():
    x, labels = _batch(n=6)
    with pytest.raises(ValueError, match="Did you mean 'batch_hard'"):
        la.mined_contrastive_loss(x, labels, mining="batch_hrad")
    with pytest.raises(ValueError, match="Did you mean 'nonzero'"):
        la.nn.MinedContrastiveLoss(mean_over="nonzro")
