"""Learning-to-rank losses: RankNet, LambdaLoss, ListNet, ListMLE, softmax, ApproxNDCG.

Reference values: formulas worked by hand in float64 on a 2-query example (each written in the
test with its source: Burges et al. 2005, Wang et al. 2018, Cao et al. 2007, Xia et al. 2008,
Qin et al. 2010), optax's documented outputs of ``ranking_softmax_loss`` (``1.408`` and
``0.497``, printed in the docstring of ``optax/losses/_ranking.py``), ``torch.nn.functional``
for the identities, and per-query Python loops over the truncated lists on random ragged
batches (an implementation that never sees padding).
"""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la

F64 = torch.float64
LN2 = math.log(2.0)
LOSSES = {
    "ranknet_loss": la.ranknet_loss,
    "lambda_loss": la.lambda_loss,
    "listnet_loss": la.listnet_loss,
    "listmle_loss": la.listmle_loss,
    "ranking_softmax_loss": la.ranking_softmax_loss,
    "approx_ndcg_loss": la.approx_ndcg_loss,
}


def close(actual, expected, *, rtol=1e-10, atol=1e-12):
    torch.testing.assert_close(
        actual, torch.as_tensor(expected, dtype=actual.dtype), rtol=rtol, atol=atol
    )


def softplus(x):
    return math.log1p(math.exp(x)) if x < 30 else x + math.log1p(math.exp(-x))


def lse(*xs):
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def two_queries():
    """Query 0: three items graded 2, 1, 0; query 1: grades 1, 0 and a padded third slot."""
    scores = torch.tensor([[2.0, 1.0, 0.0], [0.5, 1.5, 7.0]], dtype=F64)
    relevance = torch.tensor([[2.0, 1.0, 0.0], [1.0, 0.0, 3.0]], dtype=F64)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    return scores, relevance, mask


# --------------------------------------------------------------------------- hand-computed


def test_ranknet_two_queries_by_hand():
    s, y, m = two_queries()
    # Burges 2005: l = sum over pairs y_i > y_j of log(1 + exp(-(s_i - s_j))).
    q0 = softplus(-(2 - 1)) + softplus(-(2 - 0)) + softplus(-(1 - 0))
    q1 = softplus(-(0.5 - 1.5))  # the padded slot (score 7, grade 3) makes no pair
    close(la.ranknet_loss(s, y, mask=m, reduction="none"), [q0, q1])
    close(la.ranknet_loss(s, y, mask=m), (q0 + q1) / 4)  # mean over the batch's 4 pairs
    close(la.ranknet_loss(s, y, mask=m, reduction="sum"), q0 + q1)
    # sigma scales the score gaps
    q1_sigma = softplus(-2.0 * (0.5 - 1.5))
    close(la.ranknet_loss(s, y, mask=m, sigma=2.0, reduction="none")[1], q1_sigma)


def _ndcg_numbers():
    d = lambda r: 1.0 / math.log2(1.0 + r)  # noqa: E731 (the NDCG discount 1 / log2(1 + r))
    idcg0 = (2**2 - 1) * d(1) + (2**1 - 1) * d(2)  # grades 2, 1, 0 in the ideal order
    g0 = [3 / idcg0, 1 / idcg0, 0.0]
    idcg1 = 1 * d(1)
    g1 = [1 / idcg1, 0.0]
    return d, g0, g1


def test_lambda_loss_ndcg2_by_hand():
    s, y, m = two_queries()
    d, g0, g1 = _ndcg_numbers()
    # Wang et al. 2018, NDCG-Loss2: w_ij = |G_i - G_j| |1/D(|r_i - r_j|) - 1/D(|r_i - r_j| + 1)|
    # times log2(1 + exp(-(s_i - s_j))). Query 0 is ranked 0, 1, 2 by its scores.
    delta = lambda gap: abs(d(gap) - d(gap + 1))  # noqa: E731
    q0 = (
        abs(g0[0] - g0[1]) * delta(1) * softplus(-1.0)
        + abs(g0[0] - g0[2]) * delta(2) * softplus(-2.0)
        + abs(g0[1] - g0[2]) * delta(1) * softplus(-1.0)
    ) / LN2
    # Query 1 is ranked 1, 0 (score 1.5 above 0.5): one pair, ranks 2 and 1.
    q1 = abs(g1[0] - g1[1]) * delta(1) * softplus(-(0.5 - 1.5)) / LN2
    close(la.lambda_loss(s, y, mask=m, reduction="none"), [q0, q1])
    close(la.lambda_loss(s, y, mask=m), (q0 + q1) / 2)


def test_lambda_loss_lambdarank_weights_by_hand():
    s, y, m = two_queries()
    d, g0, g1 = _ndcg_numbers()
    # LambdaRank: w_ij = |Delta NDCG_ij| = |G_i - G_j| |1/D(r_i) - 1/D(r_j)|.
    q0 = (
        abs(g0[0] - g0[1]) * abs(d(1) - d(2)) * softplus(-1.0)
        + abs(g0[0] - g0[2]) * abs(d(1) - d(3)) * softplus(-2.0)
        + abs(g0[1] - g0[2]) * abs(d(2) - d(3)) * softplus(-1.0)
    ) / LN2
    q1 = abs(g1[0] - g1[1]) * abs(d(2) - d(1)) * softplus(1.0) / LN2
    out = la.lambda_loss(s, y, mask=m, weighting="lambdarank", reduction="none")
    close(out, [q0, q1])


def test_lambda_loss_lambdarank_gradient_is_the_lambda():
    """The gradient of the LambdaRank-weighted loss is Burges's lambda: |dNDCG| sigma(-ds)."""
    s = torch.tensor([[0.3, 1.2, -0.4, 0.9]], dtype=F64, requires_grad=True)
    y = torch.tensor([[2.0, 0.0, 1.0, 3.0]], dtype=F64)
    la.lambda_loss(s, y, weighting="lambdarank", reduction="sum").backward()
    ranks = [3, 1, 4, 2]  # 1-based, by score: 1.2 (slot 1), 0.9 (slot 3), 0.3, -0.4
    gains = [2**g - 1 for g in y[0].tolist()]
    ideal = sorted(gains, reverse=True)
    idcg = sum(g / math.log2(1 + r) for r, g in enumerate(ideal, start=1))
    lam = [0.0] * 4
    sv = s.detach()[0].tolist()
    for i, j in itertools.permutations(range(4), 2):
        if y[0, i] > y[0, j]:
            dndcg = abs(gains[i] - gains[j]) / idcg
            dndcg *= abs(1 / math.log2(1 + ranks[i]) - 1 / math.log2(1 + ranks[j]))
            rho = 1.0 / (1.0 + math.exp(sv[i] - sv[j]))  # sigmoid(-(s_i - s_j))
            lam[i] -= dndcg * rho / LN2
            lam[j] += dndcg * rho / LN2
    close(s.grad[0], lam)


def test_listnet_two_queries_by_hand():
    s, y, m = two_queries()
    # Cao et al. 2007, top-one: l = -sum_i P_y(i) log P_s(i), P = softmax over the real items.
    py0 = [math.exp(v) / sum(math.exp(u) for u in (2, 1, 0)) for v in (2, 1, 0)]
    logps0 = [v - lse(2, 1, 0) for v in (2, 1, 0)]
    q0 = -sum(p * lp for p, lp in zip(py0, logps0, strict=True))
    py1 = [math.exp(1) / (math.exp(1) + 1), 1 / (math.exp(1) + 1)]
    logps1 = [v - lse(0.5, 1.5) for v in (0.5, 1.5)]
    q1 = -sum(p * lp for p, lp in zip(py1, logps1, strict=True))
    close(la.listnet_loss(s, y, mask=m, reduction="none"), [q0, q1])
    close(la.listnet_loss(s, y, mask=m), (q0 + q1) / 2)
    # target="linear": P_y = y / sum(y)
    q0_lin = -(2 / 3 * logps0[0] + 1 / 3 * logps0[1])
    q1_lin = -logps1[0]
    close(la.listnet_loss(s, y, mask=m, target="linear", reduction="none"), [q0_lin, q1_lin])


def test_listmle_two_queries_by_hand():
    s, y, m = two_queries()
    # Xia et al. 2008: l = -sum_i (s_pi(i) - log sum_{j >= i} exp(s_pi(j))), pi by grade.
    q0 = (lse(2, 1, 0) - 2) + (lse(1, 0) - 1) + 0.0
    q1 = lse(0.5, 1.5) - 0.5  # the padded slot is not in the permutation
    close(la.listmle_loss(s, y, mask=m, reduction="none"), [q0, q1])
    close(la.listmle_loss(s, y, mask=m), (q0 + q1) / 2)
    # top-k: only the first k steps
    close(la.listmle_loss(s, y, mask=m, k=1, reduction="none"), [lse(2, 1, 0) - 2, q1])


def test_listmle_breaks_ties_by_slot():
    scores = torch.tensor([[0.5, 1.5, 0.0]], dtype=F64)
    relevance = torch.tensor([[1.0, 0.0, 0.0]], dtype=F64)  # slots 1 and 2 tie
    # pi = (0, 1, 2): the tied items in slot order
    expected = (lse(0.5, 1.5, 0.0) - 0.5) + (lse(1.5, 0.0) - 1.5)
    close(la.listmle_loss(scores, relevance), expected)
    # swapping the two tied slots swaps their order in pi
    swapped = scores[:, [0, 2, 1]]
    close(la.listmle_loss(swapped, relevance), (lse(0.5, 0.0, 1.5) - 0.5) + (lse(0.0, 1.5) - 0.0))


def test_ranking_softmax_matches_optax_documented_values():
    # optax/losses/_ranking.py module docstring: print(f"{loss:.3f}") -> 1.408 and 0.497.
    one = la.ranking_softmax_loss(
        torch.tensor([[2.0, 1.0, 3.0]], dtype=F64), torch.tensor([[1.0, 0.0, 0.0]], dtype=F64)
    )
    assert f"{float(one):.3f}" == "1.408"
    scores = torch.tensor([[2.0, 1.0, 0.0], [1.0, 0.5, 1.5]], dtype=F64)
    labels = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=F64)
    where = torch.tensor([[True, True, False], [True, True, True]])
    two = la.ranking_softmax_loss(scores, labels, mask=where)
    assert f"{float(two):.3f}" == "0.497"
    # by hand: -log softmax([2, 1])[0] and -log softmax([1, .5, 1.5])[2], mean of the two
    close(two, ((lse(2, 1) - 2) + (lse(1, 0.5, 1.5) - 1.5)) / 2)


def test_ranking_softmax_two_queries_by_hand():
    s, y, m = two_queries()
    # optax: l = -sum_i y_i log softmax(s)_i over the real items, grades unnormalised.
    q0 = -(2 * (2 - lse(2, 1, 0)) + 1 * (1 - lse(2, 1, 0)))
    q1 = -(1 * (0.5 - lse(0.5, 1.5)))
    close(la.ranking_softmax_loss(s, y, mask=m, reduction="none"), [q0, q1])


def test_approx_ndcg_two_queries_by_hand():
    s, y, m = two_queries()
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    d, g0, g1 = _ndcg_numbers()
    t = 0.5
    # Qin et al. 2010: rank_i = 1 + sum_{j != i} sigmoid((s_j - s_i) / T); l = 1 - NDCG(rank).
    sv0 = [2.0, 1.0, 0.0]
    ranks0 = [1 + sum(sig((sv0[j] - sv0[i]) / t) for j in range(3) if j != i) for i in range(3)]
    q0 = 1 - sum(g * d(r) for g, r in zip(g0, ranks0, strict=True))
    sv1 = [0.5, 1.5]
    ranks1 = [1 + sig((sv1[1] - sv1[0]) / t), 1 + sig((sv1[0] - sv1[1]) / t)]
    q1 = 1 - sum(g * d(r) for g, r in zip(g1, ranks1, strict=True))
    close(la.approx_ndcg_loss(s, y, mask=m, temperature=t, reduction="none"), [q0, q1])
    close(la.approx_ndcg_loss(s, y, mask=m, temperature=t), (q0 + q1) / 2)


# --------------------------------------------------------------------------- identities


def test_listnet_on_one_hot_relevance_is_softmax_cross_entropy():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(6, 5, generator=g, dtype=F64)
    target = torch.randint(0, 5, (6,), generator=g)
    onehot = F.one_hot(target, 5).to(F64)
    close(la.listnet_loss(scores, onehot, target="linear"), F.cross_entropy(scores, target))
    close(la.ranking_softmax_loss(scores, onehot), F.cross_entropy(scores, target))
    # the paper's softmax target is cross-entropy against softmax(relevance), any relevance
    grades = torch.randint(0, 4, (6, 5), generator=g).to(F64)
    close(la.listnet_loss(scores, grades), F.cross_entropy(scores, grades.softmax(dim=1)))


def test_ranknet_on_two_items_is_logistic_loss_on_the_difference():
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(8, 2, generator=g, dtype=F64)
    relevance = torch.tensor([[1.0, 0.0]] * 8, dtype=F64)
    diff = scores[:, 0] - scores[:, 1]
    close(la.ranknet_loss(scores, relevance, reduction="none"), F.softplus(-diff))
    bce = F.binary_cross_entropy_with_logits(diff, torch.ones_like(diff))
    close(la.ranknet_loss(scores, relevance), bce)


def test_lambda_loss_without_weights_is_ranknet_in_bits():
    s, y, m = two_queries()
    ranknet = la.ranknet_loss(s, y, mask=m, reduction="none")
    close(la.lambda_loss(s, y, mask=m, weighting="none", reduction="none"), ranknet / LN2)


def test_softmax_loss_is_listnet_linear_times_the_grade_sum():
    s, y, m = two_queries()
    total = torch.where(m, y, 0).sum(dim=1)
    linear = la.listnet_loss(s, y, mask=m, target="linear", reduction="none")
    close(la.ranking_softmax_loss(s, y, mask=m, reduction="none"), linear * total)


def test_approx_ndcg_at_small_temperature_is_one_minus_ndcg():
    scores = torch.tensor([[0.3, 1.2, -0.4, 0.9], [2.0, 1.0, 0.0, -1.0]], dtype=F64)
    relevance = torch.tensor([[2.0, 0.0, 1.0, 3.0], [0.0, 1.0, 0.0, 2.0]], dtype=F64)
    out = la.approx_ndcg_loss(scores, relevance, temperature=0.01, reduction="none")
    expected = []
    for sv, yv in zip(scores.tolist(), relevance.tolist(), strict=True):
        order = sorted(range(4), key=lambda i: -sv[i])
        dcg = sum((2 ** yv[i] - 1) / math.log2(2 + r) for r, i in enumerate(order))
        ideal = sorted(yv, reverse=True)
        idcg = sum((2**v - 1) / math.log2(2 + r) for r, v in enumerate(ideal))
        expected.append(1 - dcg / idcg)
    # score gaps >= 0.3 = 30 T: each sigmoid is within e^-30 of its step
    close(out, expected, rtol=1e-9, atol=1e-9)
    assert torch.isfinite(out).all()


# --------------------------------------------------------------------------- loop references


def _reference(name, s, y, **options):
    """One query's loss from its list of real items, written with Python loops."""
    n = len(s)
    if name == "ranknet_loss":
        return sum(softplus(-(s[i] - s[j])) for i in range(n) for j in range(n) if y[i] > y[j])
    if name == "ranking_softmax_loss":
        return -sum(y[i] * (s[i] - lse(*s)) for i in range(n))
    if name == "listnet_loss":
        p = [math.exp(v - lse(*y)) for v in y]
        return -sum(p[i] * (s[i] - lse(*s)) for i in range(n))
    if name == "listmle_loss":
        order = sorted(range(n), key=lambda i: (-y[i], i))
        return sum(lse(*[s[j] for j in order[i:]]) - s[order[i]] for i in range(n))
    gains = [2**v - 1 for v in y]
    idcg = sum(g / math.log2(2 + r) for r, g in enumerate(sorted(gains, reverse=True)))
    if name == "approx_ndcg_loss":
        if idcg == 0:
            return 0.0
        t = options.get("temperature", 0.1)
        rank = [
            1 + sum(1 / (1 + math.exp(-(s[j] - s[i]) / t)) for j in range(n) if j != i)
            for i in range(n)
        ]
        return 1 - sum(g / math.log2(1 + r) for g, r in zip(gains, rank, strict=True)) / idcg
    # lambda_loss, NDCG-Loss2
    order = sorted(range(n), key=lambda i: (-s[i], i))
    rank = {item: r + 1 for r, item in enumerate(order)}
    total = 0.0
    for i, j in itertools.permutations(range(n), 2):
        if y[i] > y[j]:
            gap = abs(rank[i] - rank[j])
            delta = abs(1 / math.log2(1 + gap) - 1 / math.log2(2 + gap))
            w = abs(gains[i] - gains[j]) / idcg * delta
            total += w * softplus(-(s[i] - s[j])) / LN2
    return total


def _ragged(seed, queries=7, slots=6):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(queries, slots, generator=g, dtype=F64) * 2
    relevance = torch.randint(0, 4, (queries, slots), generator=g).to(F64)
    lengths = torch.randint(0, slots + 1, (queries, 1), generator=g)
    lengths[0] = slots
    lengths[1] = 0  # one list entirely padding
    mask = torch.arange(slots) < lengths
    # padding holds garbage that must never be read
    scores = torch.where(mask, scores, torch.tensor(float("nan"), dtype=F64))
    relevance = torch.where(mask, relevance, torch.tensor(-1.0, dtype=F64))
    return scores, relevance, mask


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_a_loop_over_the_truncated_lists(name, seed):
    s, y, m = _ragged(seed)
    out = LOSSES[name](s, y, mask=m, reduction="none")
    expected = []
    for q in range(s.shape[0]):
        keep = m[q]
        sv, yv = s[q, keep].tolist(), y[q, keep].tolist()
        expected.append(_reference(name, sv, yv) if sv else 0.0)
    close(out, expected, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", list(LOSSES))
def test_padding_never_leaks_into_value_or_gradient(name):
    s, y, m = _ragged(3)
    reference = None
    for fill in (0.0, float("-inf"), float("inf"), 1e30, float("nan")):
        scores = torch.where(m, s, torch.tensor(fill, dtype=F64)).requires_grad_(True)
        loss = LOSSES[name](scores, y, mask=m)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(scores.grad).all(), (name, fill)
        assert (scores.grad[~m] == 0).all(), (name, fill)
        if reference is None:
            reference = (loss.detach(), scores.grad)
        else:
            close(loss.detach(), reference[0])
            close(scores.grad, reference[1])
    # the list that is all padding: value 0, zero gradient, not counted by "mean"
    scores = torch.where(m, s, torch.tensor(0.0, dtype=F64)).requires_grad_(True)
    none = LOSSES[name](scores, y, mask=m, reduction="none")
    assert none[1] == 0
    none.sum().backward()
    assert (scores.grad[1] == 0).all()


@pytest.mark.parametrize("name", list(LOSSES))
def test_a_batch_of_only_padding_gives_zero_and_zero_gradient(name):
    scores = torch.randn(3, 4, dtype=F64, requires_grad=True)
    relevance = torch.ones(3, 4, dtype=F64)
    mask = torch.zeros(3, 4, dtype=torch.bool)
    for reduction in ("mean", "sum"):
        loss = LOSSES[name](scores, relevance, mask=mask, reduction=reduction)
        (grad,) = torch.autograd.grad(loss, scores)
        assert float(loss.detach()) == 0.0 and (grad == 0).all()


def test_mean_counts_the_queries_that_have_a_loss():
    s, y, m = _ragged(4)
    for name, fn in LOSSES.items():
        none = fn(s, y, mask=m, reduction="none")
        mean = fn(s, y, mask=m)
        if name == "ranknet_loss":
            yv = torch.where(m, y, 0)
            pairs = (m[:, :, None] & m[:, None, :] & (yv[:, :, None] > yv[:, None, :])).sum()
            close(mean, none.sum() / pairs)
            continue
        lists = [yq[k] for yq, k in zip(y, m, strict=True)]
        counted = {
            "lambda_loss": [any(a > b for a in yq for b in yq) for yq in lists],
            "approx_ndcg_loss": [bool((yq > 0).any()) for yq in lists],
        }.get(name, m.any(dim=1).tolist())
        close(mean, none.sum() / sum(counted))


# --------------------------------------------------------------------------- equal relevance


def test_all_equal_relevance():
    scores = torch.tensor([[0.3, -1.0, 2.0], [1.0, 1.0, 1.0]], dtype=F64, requires_grad=True)
    relevance = torch.full((2, 3), 2.0, dtype=F64)
    # no pair has y_i > y_j: zero loss, zero gradient, and nothing for the mean to count
    for fn in (la.ranknet_loss, la.lambda_loss):
        loss = fn(scores, relevance)
        (grad,) = torch.autograd.grad(loss, scores)
        assert float(loss.detach()) == 0.0 and (grad == 0).all()
    # ListNet's target is uniform: cross-entropy against 1/3 each, minimal for equal scores
    uniform = torch.full((2, 3), 1 / 3, dtype=F64)
    close(la.listnet_loss(scores, relevance), F.cross_entropy(scores, uniform))
    close(la.listnet_loss(scores, relevance, reduction="none")[1], math.log(3))
    # ApproxNDCG: equal gains and equal scores give rank 1.5 + ... ; finite and in [0, 1)
    approx = la.approx_ndcg_loss(scores, relevance, reduction="none")
    assert torch.isfinite(approx).all() and (approx >= 0).all() and (approx < 1).all()
    # all-zero grades: no relevant item, ApproxNDCG and ListNet "linear" give 0, not counted
    zero = torch.zeros(2, 3, dtype=F64)
    assert float(la.approx_ndcg_loss(scores, zero).detach()) == 0.0
    assert float(la.listnet_loss(scores, zero, target="linear").detach()) == 0.0


# --------------------------------------------------------------------------- k variants


def test_lambda_loss_at_k_keeps_pairs_touching_the_top_k():
    s = torch.tensor([[0.3, 1.2, -0.4, 0.9]], dtype=F64)
    y = torch.tensor([[2.0, 0.0, 1.0, 3.0]], dtype=F64)
    ranks = {1: 1, 3: 2, 0: 3, 2: 4}  # slot -> 1-based rank by score
    gains = [3.0, 0.0, 1.0, 7.0]
    idcg2 = 7 / math.log2(2) + 3 / math.log2(3)  # IDCG@2
    total = 0.0
    for i, j in itertools.permutations(range(4), 2):
        if y[0, i] > y[0, j] and min(ranks[i], ranks[j]) <= 2:
            gap = abs(ranks[i] - ranks[j])
            delta = abs(1 / math.log2(1 + gap) - 1 / math.log2(2 + gap))
            sv = s[0].tolist()
            total += abs(gains[i] - gains[j]) / idcg2 * delta * softplus(-(sv[i] - sv[j])) / LN2
    close(la.lambda_loss(s, y, k=2), total)
    # k >= L is the whole list
    close(la.lambda_loss(s, y, k=4), la.lambda_loss(s, y))


def test_ranknet_at_k_two_queries_by_hand():
    s, y, m = two_queries()
    # RankNet@1: the pairs y_i > y_j with an item ranked first by score. Query 0 ranks slots
    # 0, 1, 2 (slot 0 first): pairs (0, 1), (0, 2) kept, (1, 2) dropped. Query 1 ranks slot 1
    # first (score 1.5; the padded slot has no rank): its one pair (0, 1) touches it.
    q0 = softplus(-(2 - 1)) + softplus(-(2 - 0))
    q1 = softplus(-(0.5 - 1.5))
    close(la.ranknet_loss(s, y, mask=m, k=1, reduction="none"), [q0, q1])
    close(la.ranknet_loss(s, y, mask=m, k=1), (q0 + q1) / 3)  # mean over the 3 kept pairs
    # k = 2 keeps every pair of both queries (each has an item in the top 2)
    close(la.ranknet_loss(s, y, mask=m, k=2), la.ranknet_loss(s, y, mask=m))


def test_approx_ndcg_at_k_two_queries_by_hand():
    s, y, m = two_queries()
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    d = lambda r: 1.0 / math.log2(1.0 + r)  # noqa: E731
    t = 0.5
    # ApproxNDCG@1: IDCG@1 = the best gain; only the item ranked first by score counts, with
    # its approximate rank 1 + sum_{j != i} sigmoid((s_j - s_i) / T) in the discount.
    sv0 = [2.0, 1.0, 0.0]
    rank0 = 1 + sig((sv0[1] - sv0[0]) / t) + sig((sv0[2] - sv0[0]) / t)  # slot 0 is first
    q0 = 1 - (2**2 - 1) * d(rank0) / ((2**2 - 1) * d(1))
    # query 1: slot 1 (grade 0) is first by score, so NDCG@1 counts no gain
    q1 = 1.0
    close(la.approx_ndcg_loss(s, y, mask=m, temperature=t, k=1, reduction="none"), [q0, q1])
    close(la.approx_ndcg_loss(s, y, mask=m, temperature=t, k=1), (q0 + q1) / 2)
    # k >= L is the whole list; gradients reach the top items only
    full = la.approx_ndcg_loss(s, y, mask=m, temperature=t)
    close(la.approx_ndcg_loss(s, y, mask=m, temperature=t, k=3), full)
    x = s.clone().requires_grad_(True)
    la.approx_ndcg_loss(x, y, mask=m, temperature=t, k=1).backward()
    assert torch.isfinite(x.grad).all() and x.grad[0].abs().sum() > 0


def test_listmle_at_one_is_cross_entropy_on_the_top_item():
    g = torch.Generator().manual_seed(5)
    scores = torch.randn(4, 5, generator=g, dtype=F64)
    relevance = torch.rand(4, 5, generator=g, dtype=F64)
    top = relevance.argmax(dim=1)
    close(la.listmle_loss(scores, relevance, k=1), F.cross_entropy(scores, top))


# --------------------------------------------------------------------------- stability


@pytest.mark.parametrize("name", list(LOSSES))
def test_temperature_and_extreme_scores_stay_finite(name):
    g = torch.Generator().manual_seed(6)
    scores = (torch.randn(4, 6, generator=g) * 1e4).requires_grad_(True)
    relevance = torch.randint(0, 4, (4, 6), generator=g).float()
    options = {"temperature": 0.01} if name == "approx_ndcg_loss" else {}
    loss = LOSSES[name](scores, relevance, **options)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(scores.grad).all()


def test_module_forward_takes_the_mask():
    s, y, m = two_queries()
    module = la.nn.LambdaLoss(weighting="lambdarank", k=2)
    close(module(s, y, m), la.lambda_loss(s, y, mask=m, weighting="lambdarank", k=2))
    fixed = la.nn.ListNetLoss(mask=m)
    close(fixed(s, y), la.listnet_loss(s, y, mask=m))
    assert "weighting='lambdarank'" in repr(module)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name", list(LOSSES))
def test_bad_inputs_raise_with_messages(name):
    fn = LOSSES[name]
    s, y, m = two_queries()
    with pytest.raises(ValueError, match=r"mask must have the shape of scores \(2, 3\)"):
        fn(s, y, mask=m[:, :2])
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        fn(s, y, mask=m.to(F64))
    bad = s.clone()
    bad[0, 1] = float("nan")
    with pytest.raises(ValueError, match=r"scores must hold finite values .* position \(0, 1\)"):
        fn(bad, y, mask=m)
    bad[0, 1] = float("inf")
    with pytest.raises(ValueError, match="scores must hold finite values"):
        fn(bad, y, mask=m)
    negative = y.clone()
    negative[1, 0] = -1.0
    with pytest.raises(ValueError, match=r"relevance must hold grades >= 0 .* -1\.0 .* \(1, 0\)"):
        fn(s, negative, mask=m)
    with pytest.raises(ValueError, match=r"scores must have shape \(\*, \*\)"):
        fn(s[0], y[0])
    with pytest.raises(ValueError, match="relevance must have the same shape as scores"):
        fn(s, y[:, :2])
    with pytest.raises(TypeError, match="relevance must be a real"):
        fn(s, y > 0)
    # integer grades are accepted
    close(fn(s, y.long(), mask=m), fn(s, y, mask=m))


def test_bad_options_raise_with_messages():
    s, y, _ = two_queries()
    with pytest.raises(ValueError, match="weighting.*Did you mean 'ndcg2'"):
        la.lambda_loss(s, y, weighting="ndcg")
    with pytest.raises(ValueError, match="target"):
        la.listnet_loss(s, y, target="soft")
    with pytest.raises(ValueError, match="k"):
        la.listmle_loss(s, y, k=0)
    with pytest.raises(ValueError, match="temperature"):
        la.approx_ndcg_loss(s, y, temperature=0.0)
    with pytest.raises(ValueError, match="sigma"):
        la.nn.RankNetLoss(sigma=-1.0)


def test_the_stub_types_the_mask_argument_of_forward():
    from lossatlas._stubs import render_nn_stub

    stub = render_nn_stub()
    block = stub[stub.index("class ListMLELoss(") :].split("\n\n")[0]
    forward = "def forward(self, scores: Tensor, relevance: Tensor, mask: Tensor | None = ...)"
    assert forward in block
