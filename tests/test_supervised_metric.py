"""SupCon, multi-similarity, circle and SigLIP: PML parity, hand formulas, identities, edges.

Reference values come from pytorch-metric-learning 2.9.0 (the installed package; its files
``losses/supcon_loss.py``, ``losses/multi_similarity_loss.py``, ``losses/circle_loss.py``,
``miners/multi_similarity_miner.py``) in float64, or from the papers' formulas written out
below with Python loops over the batch.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la
from lossatlas.ranking._pairs import label_masks, pair_scores

pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
pml_distances = pytest.importorskip("pytorch_metric_learning.distances")
pml_reducers = pytest.importorskip("pytorch_metric_learning.reducers")

D64 = torch.float64


def _batch(n=8, d=5, classes=3, seed=0, views=None):
    g = torch.Generator().manual_seed(seed)
    shape = (n, d) if views is None else (n, views, d)
    x = torch.randn(*shape, generator=g, dtype=D64)
    labels = torch.randint(0, classes, (n,), generator=g)
    return x, labels


# --------------------------------------------------------------------------- vocabulary


def test_label_masks_match_a_loop():
    labels = torch.tensor([2, 0, 2, 1, 0])
    positive, negative = label_masks(labels)
    for i in range(5):
        for j in range(5):
            assert bool(positive[i, j]) == (i != j and labels[i] == labels[j])
            assert bool(negative[i, j]) == (labels[i] != labels[j])


@pytest.mark.parametrize("distance", ["cosine", "euclidean", "squared_euclidean", "dot"])
def test_pair_scores_match_torch(distance):
    x, _ = _batch()
    y, _ = _batch(n=3, seed=1)
    expected = {
        "cosine": F.cosine_similarity(x[:, None], y[None], dim=-1),
        "euclidean": torch.cdist(x, y),
        "squared_euclidean": torch.cdist(x, y) ** 2,
        "dot": x @ y.T,
    }[distance]
    torch.testing.assert_close(pair_scores(x, y, distance), expected)


def test_euclidean_diagonal_has_zero_gradient():
    x, _ = _batch(n=3)
    x.requires_grad_(True)
    pair_scores(x, x, "euclidean").diagonal().sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


# --------------------------------------------------------------------------- SupCon


@pytest.mark.parametrize("views", [1, 2, 3])
def test_supcon_matches_pml(views):
    x, labels = _batch(views=views)
    t = 0.1
    ours = la.supcon_loss(x, labels, temperature=t)
    rows = x.transpose(0, 1).reshape(-1, x.shape[-1])  # view-major
    theirs = pml_losses.SupConLoss(temperature=t)(rows, labels.repeat(views))
    torch.testing.assert_close(ours, theirs)


def test_supcon_2d_input_is_one_view():
    x, labels = _batch()
    torch.testing.assert_close(la.supcon_loss(x, labels), la.supcon_loss(x[:, None], labels))


def _nt_xent(v0, v1, t):
    """SimCLR's NT-Xent by hand: CE over the 2N-1 others, the positive is the other view."""
    z = F.normalize(torch.cat([v0, v1]), dim=1)
    n = v0.shape[0]
    logits = (z @ z.T / t).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, target)


def test_supcon_one_positive_per_anchor_is_nt_xent():
    x, _ = _batch(views=2)
    labels = torch.arange(8)  # no label repeats: each anchor's only positive is its other view
    t = 0.5
    torch.testing.assert_close(
        la.supcon_loss(x, labels, temperature=t), _nt_xent(x[:, 0], x[:, 1], t)
    )
    # and PML's NT-Xent (same pairs) agrees
    rows = torch.cat([x[:, 0], x[:, 1]])
    theirs = pml_losses.NTXentLoss(temperature=t)(rows, labels.repeat(2))
    torch.testing.assert_close(la.supcon_loss(x, labels, temperature=t), theirs)


def _supcon_by_hand(x, labels, t, mode):
    """Khosla et al. eq. 2, with loops; anchors without a positive are skipped."""
    n, v, _ = x.shape
    z = F.normalize(x, dim=-1)
    rows = [(i, a) for a in range(v) for i in range(n)]  # view-major
    anchors = rows if mode == "all" else [(i, 0) for i in range(n)]
    losses = []
    for i, a in anchors:
        others = [(j, b) for j, b in rows if (j, b) != (i, a)]
        log_den = torch.logsumexp(torch.stack([z[i, a] @ z[j, b] / t for j, b in others]), 0)
        pos = [(j, b) for j, b in others if labels[j] == labels[i]]
        if pos:
            losses.append(-sum(z[i, a] @ z[j, b] / t - log_den for j, b in pos) / len(pos))
    return torch.stack(losses).mean()


@pytest.mark.parametrize("mode", ["all", "one"])
def test_supcon_matches_the_formula_by_hand(mode):
    x, labels = _batch(n=5, views=2, classes=4)
    expected = _supcon_by_hand(x, labels, 0.2, mode)
    torch.testing.assert_close(
        la.supcon_loss(x, labels, temperature=0.2, contrast_mode=mode), expected
    )


def test_supcon_none_shapes_and_uncounted_anchors():
    x, _ = _batch(n=4, views=2)
    labels = torch.tensor([0, 0, 1, 2])
    per = la.supcon_loss(x[:, :1], labels, reduction="none", contrast_mode="all")
    assert per.shape == (4, 1)
    assert per[2:].eq(0).all() and (per[:2] > 0).all()
    torch.testing.assert_close(la.supcon_loss(x[:, :1], labels), per[:2].mean())
    assert la.supcon_loss(x, labels, reduction="none").shape == (4, 2)
    assert la.supcon_loss(x, labels, reduction="none", contrast_mode="one").shape == (4,)


def test_supcon_identical_views_reach_the_documented_minimum():
    # Each class's views coincide and the two classes are opposite: as t -> 0 each anchor's
    # loss tends to log |P(i)| (its positives share the softmax mass equally).
    base = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]], dtype=D64)
    x = base[:, None].expand(4, 2, 2)
    labels = torch.tensor([0, 0, 1, 1])
    loss = la.supcon_loss(x, labels, temperature=0.01)
    torch.testing.assert_close(loss, torch.tensor(math.log(3), dtype=D64))


def test_supcon_temperature_001_is_finite_in_float32():
    x, labels = _batch(views=2)
    x = x.float().requires_grad_(True)
    loss = la.supcon_loss(x, labels, temperature=0.01)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


# --------------------------------------------------------------------------- multi-similarity


@pytest.mark.parametrize("epsilon", [None, 0.1, 0.3])
def test_multi_similarity_matches_pml(epsilon):
    x, labels = _batch(n=12)
    ours = la.multi_similarity_loss(x, labels, alpha=2.0, beta=10.0, base=0.3, epsilon=epsilon)
    loss = pml_losses.MultiSimilarityLoss(alpha=2.0, beta=10.0, base=0.3)
    if epsilon is None:
        theirs = loss(x, labels)
    else:
        theirs = loss(x, labels, pml_miners.MultiSimilarityMiner(epsilon=epsilon)(x, labels))
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("epsilon", [None, 0.1])
def test_multi_similarity_euclidean_matches_pml_unnormalised(epsilon):
    x, labels = _batch(n=10)
    distance = pml_distances.LpDistance(normalize_embeddings=False)
    kwargs = {"alpha": 2.0, "beta": 3.0, "base": 3.0}
    ours = la.multi_similarity_loss(x, labels, epsilon=epsilon, distance="euclidean", **kwargs)
    loss = pml_losses.MultiSimilarityLoss(distance=distance, **kwargs)
    if epsilon is None:
        theirs = loss(x, labels)
    else:
        miner = pml_miners.MultiSimilarityMiner(epsilon=epsilon, distance=distance)
        theirs = loss(x, labels, miner(x, labels))
    torch.testing.assert_close(ours, theirs)


def test_multi_similarity_unknown_distance_suggests():
    x, labels = _batch()
    with pytest.raises(ValueError, match="Did you mean 'cosine'"):
        la.multi_similarity_loss(x, labels, distance="cosin")
    with pytest.raises(ValueError, match="Did you mean 'euclidean'"):
        la.nn.MultiSimilarityLoss(distance="euclidian")


# --------------------------------------------------------------------------- circle


@pytest.mark.parametrize(("margin", "gamma"), [(0.4, 80.0), (0.25, 256.0), (0.25, 8.0)])
def test_circle_matches_pml_value_and_gradient(margin, gamma):
    x, labels = _batch(n=10)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    ours = la.circle_loss(x1, labels, margin=margin, gamma=gamma)
    theirs = pml_losses.CircleLoss(m=margin, gamma=gamma)(x2, labels)
    torch.testing.assert_close(ours, theirs)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_circle_paper_setting_does_not_collapse_in_float32():
    # m = 0.25, gamma = 256 (the paper's face setting): the product form
    # log(1 + sum_n e^{.} sum_p e^{.}) overflows even float64 on this batch (a loss of ~575),
    # so the reference is PML's CircleLoss in float64; ours in float32 must match it and keep
    # a non-zero gradient.
    x, labels = _batch(n=16, d=8, classes=4, seed=3)
    m, gamma = 0.25, 256.0
    expected = pml_losses.CircleLoss(m=m, gamma=gamma)(x, labels)
    x32 = x.float().requires_grad_(True)
    loss = la.circle_loss(x32, labels, margin=m, gamma=gamma)
    loss.backward()
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-4)
    assert loss > 1.0 and x32.grad.abs().max() > 0


# --------------------------------------------------------------------------- shared edges


LABELLED = [la.supcon_loss, la.multi_similarity_loss, la.circle_loss]


@pytest.mark.parametrize("loss", LABELLED, ids=lambda f: f.__name__)
def test_no_repeated_label_gives_zero_loss_and_gradient(loss):
    x, _ = _batch(n=6)
    x.requires_grad_(True)
    value = loss(x, torch.arange(6))
    value.backward()
    assert value.item() == 0.0
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("loss", LABELLED, ids=lambda f: f.__name__)
def test_labels_of_the_wrong_length_raise(loss):
    x, labels = _batch(n=6)
    with pytest.raises(ValueError, match=r"labels must have shape \(6,\)"):
        loss(x, labels[:5])
    with pytest.raises(TypeError, match="labels must be an integer tensor"):
        loss(x, labels.double())


def test_supcon_rejects_unknown_contrast_mode_and_bad_shape():
    x, labels = _batch(views=2)
    with pytest.raises(ValueError, match="Did you mean 'one'"):
        la.supcon_loss(x, labels, contrast_mode="onne")
    with pytest.raises(ValueError, match=r"\(N, D\) or \(N, V, D\)"):
        la.supcon_loss(x[..., None], labels)


# --------------------------------------------------------------------------- SigLIP


def _siglip_by_hand(q, k, t, b):
    """Zhai et al.'s pseudo-code: -sum(log_sigmoid(labels * logits)) / n."""
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    logits = t * q @ k.T + b
    labels = 2 * torch.eye(q.shape[0], dtype=q.dtype) - 1
    return -F.logsigmoid(labels * logits).sum() / q.shape[0]


def test_siglip_matches_the_paper_pseudo_code():
    q, _ = _batch(n=7, seed=1)
    k, _ = _batch(n=7, seed=2)
    torch.testing.assert_close(la.siglip_loss(q, k), _siglip_by_hand(q, k, 10.0, -10.0))
    torch.testing.assert_close(
        la.siglip_loss(q, k, scale=3.0, bias=0.5), _siglip_by_hand(q, k, 3.0, 0.5)
    )


def test_siglip_chunks_give_the_same_value_and_gradient():
    q, _ = _batch(n=9, seed=1)
    k, _ = _batch(n=9, seed=2)
    grads = []
    for chunk in (None, 2, 4):
        q1, k1 = q.clone().requires_grad_(True), k.clone().requires_grad_(True)
        t = torch.tensor(4.0, dtype=D64, requires_grad=True)
        loss = la.siglip_loss(q1, k1, scale=t, bias=-1.0, chunk=chunk)
        loss.backward()
        grads.append((loss.detach(), q1.grad, k1.grad, t.grad))
    for other in grads[1:]:
        for a, b in zip(grads[0], other, strict=True):
            torch.testing.assert_close(a, b)


def test_siglip_chunked_memory_is_n_times_chunk():
    n, chunk = 64, 8
    q, _ = _batch(n=n, d=4, seed=1)
    k, _ = _batch(n=n, d=4, seed=2)
    q.requires_grad_(True)
    largest = []

    def pack(tensor):
        largest.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = la.siglip_loss(q, k, chunk=chunk)
    loss.backward()
    assert max(largest) <= n * chunk < n * n


def test_siglip_module_owns_scale_and_bias():
    module = la.nn.SigLIPLoss()
    assert {name for name, _ in module.named_parameters()} == {"log_scale", "bias"}
    torch.testing.assert_close(module.log_scale.exp().item(), 10.0, rtol=1e-6, atol=0)
    q, _ = _batch(n=5, seed=1)
    k, _ = _batch(n=5, seed=2)
    loss = module(q.float(), k.float())
    loss.backward()
    assert module.log_scale.grad is not None and module.bias.grad is not None
    torch.testing.assert_close(
        loss.double(), _siglip_by_hand(q, k, 10.0, -10.0), rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match="scale"):
        la.nn.SigLIPLoss(scale=0.0)


def test_siglip_rejects_a_non_scalar_scale():
    q, _ = _batch(n=3)
    with pytest.raises(ValueError, match="0-dim"):
        la.siglip_loss(q, q, scale=torch.ones(2, dtype=D64))


# --------------------------------------------------------------------------- mined triplets


def _lp():
    return pml_distances.LpDistance(normalize_embeddings=False)


@pytest.mark.parametrize(("mean_over", "reducer"), [("all", "MeanReducer"), ("nonzero", None)])
def test_mined_triplet_all_matches_pml(mean_over, reducer):
    x, labels = _batch(n=10)
    kwargs = {} if reducer is None else {"reducer": getattr(pml_reducers, reducer)()}
    theirs = pml_losses.TripletMarginLoss(margin=1.0, distance=_lp(), **kwargs)(x, labels)
    ours = la.mined_triplet_loss(x, labels, margin=1.0, mining="all", mean_over=mean_over)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_mined_triplet_batch_hard_matches_pml(distance):
    x, labels = _batch(n=12)
    dist = _lp() if distance == "euclidean" else pml_distances.CosineSimilarity()
    miner = pml_miners.BatchHardMiner(distance=dist)
    loss = pml_losses.TripletMarginLoss(
        margin=0.3, distance=dist, reducer=pml_reducers.MeanReducer()
    )
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    theirs = loss(x2, labels, miner(x2, labels))
    ours = la.mined_triplet_loss(x1, labels, margin=0.3, distance=distance)
    torch.testing.assert_close(ours, theirs)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def _semi_hard_by_hand(x, labels, margin):
    """TensorFlow Addons' triplet_semihard_loss, with loops (L2 distances)."""
    d = torch.cdist(x, x)
    losses = []
    n = len(labels)
    for a in range(n):
        negatives = [k for k in range(n) if labels[k] != labels[a]]
        for p in range(n):
            if p == a or labels[p] != labels[a] or not negatives:
                continue
            farther = [d[a, k] for k in negatives if d[a, k] > d[a, p]]
            chosen = min(farther) if farther else max(d[a, k] for k in negatives)
            losses.append(torch.relu(d[a, p] - chosen + margin))
    return torch.stack(losses).mean()


def test_mined_triplet_semi_hard_matches_the_tf_definition():
    x, labels = _batch(n=12)
    expected = _semi_hard_by_hand(x, labels, 1.0)
    ours = la.mined_triplet_loss(x, labels, margin=1.0, mining="batch_semi_hard")
    torch.testing.assert_close(ours, expected)


def test_batch_hard_on_one_triplet_is_triplet_margin_loss():
    x, _ = _batch(n=3)
    labels = torch.tensor([0, 0, 1])
    # anchor 0 (positive 1, negative 2) and anchor 1 (positive 0, negative 2): torch's form on
    # those two triplets; eps=0 because torch's pairwise_distance adds eps to the difference
    expected = la.triplet_margin_loss(x[[0, 1]], x[[1, 0]], x[[2, 2]], margin=0.5, eps=0.0)
    torch.testing.assert_close(la.mined_triplet_loss(x, labels, margin=0.5), expected)


@pytest.mark.parametrize("mining", ["all", "batch_hard", "batch_semi_hard"])
def test_mined_triplet_no_repeated_label(mining):
    x, _ = _batch(n=5)
    x.requires_grad_(True)
    value = la.mined_triplet_loss(x, torch.arange(5), mining=mining)
    value.backward()
    assert value.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))


def test_mined_triplet_bad_inputs():
    x, labels = _batch(n=5)
    with pytest.raises(ValueError, match="Did you mean 'batch_hard'"):
        la.mined_triplet_loss(x, labels, mining="batch_hrad")
    with pytest.raises(ValueError, match="Did you mean 'squared_euclidean'"):
        la.mined_triplet_loss(x, labels, distance="squared_euclidian")
    with pytest.raises(ValueError, match=r"labels must have shape \(5,\)"):
        la.mined_triplet_loss(x, labels[:4])


# --------------------------------------------------------------------------- proxies


def _pml_with_proxies(pml_loss, proxies):
    with torch.no_grad():
        pml_loss.proxies.copy_(proxies)
    return pml_loss


def test_proxy_anchor_matches_pml_value_and_gradient():
    x, labels = _batch(n=10, classes=3)
    proxies = torch.randn(5, 5, dtype=D64, generator=torch.Generator().manual_seed(4))
    pml = _pml_with_proxies(
        pml_losses.ProxyAnchorLoss(5, 5, margin=0.1, alpha=32), proxies
    ).double()
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    p1 = proxies.clone().requires_grad_(True)
    ours = la.proxy_anchor_loss(x1, labels, p1, margin=0.1, alpha=32.0)
    theirs = pml(x2, labels)
    torch.testing.assert_close(ours, theirs)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-6)
    # PML's float64 gradient differs from ours by up to ~4e-7 (cause not traced), hence rtol
    torch.testing.assert_close(p1.grad, pml.proxies.grad, rtol=1e-5, atol=1e-6)


def test_proxy_nca_matches_pml():
    x, labels = _batch(n=10, classes=4)
    proxies = torch.randn(4, 5, dtype=D64, generator=torch.Generator().manual_seed(5))
    pml = _pml_with_proxies(pml_losses.ProxyNCALoss(4, 5, softmax_scale=3), proxies).double()
    ours = la.proxy_nca_loss(x, labels, proxies, scale=3.0)  # PML: LpDistance(power=2)
    torch.testing.assert_close(ours, pml(x, labels))


def test_proxy_nca_is_cross_entropy_on_squared_distances():
    x, labels = _batch(n=6, classes=3)
    proxies = torch.randn(3, 5, dtype=D64, generator=torch.Generator().manual_seed(6))
    d = torch.cdist(F.normalize(x, dim=1), F.normalize(proxies, dim=1)) ** 2  # paper's distance
    torch.testing.assert_close(la.proxy_nca_loss(x, labels, proxies), F.cross_entropy(-d, labels))


@pytest.mark.parametrize("name", ["ProxyAnchorLoss", "ProxyNCALoss"])
def test_proxy_modules_own_their_proxies(name):
    module = getattr(la.nn, name)(4, 5, dtype=D64)
    assert [n for n, _ in module.named_parameters()] == ["proxies"]
    assert module.proxies.shape == (4, 5)
    x, labels = _batch(n=8, classes=4)
    loss = module(x, labels)
    torch.testing.assert_close(loss, module.functional(x, labels, module.proxies.detach()))
    loss.backward()
    assert module.proxies.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="num_classes"):
        getattr(la.nn, name)(0, 5)


def test_proxy_losses_reject_labels_outside_the_proxies():
    x, _ = _batch(n=4)
    proxies = torch.randn(3, 5, dtype=D64)
    with pytest.raises(ValueError, match=r"class index 3"):
        la.proxy_anchor_loss(x, torch.tensor([0, 1, 2, 3]), proxies)
    with pytest.raises(ValueError, match=r"proxies must have shape"):
        la.proxy_nca_loss(x, torch.tensor([0, 1, 2, 0]), proxies[:, :4])
    with pytest.raises(ValueError, match="Did you mean 'euclidean'"):
        la.proxy_nca_loss(x, torch.tensor([0, 1, 2, 0]), proxies, distance="euclidan")
