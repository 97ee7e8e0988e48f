"""``compare --task ranking``: its generated data, NDCG@k and MRR, and a small run.

NDCG@k is checked against scikit-learn's ``ndcg_score`` (given the gains ``2^g - 1`` as its
``y_true``, one query at a time over its real items), MRR against a hand count.
"""

import math

import pytest
import torch

from lossatlas.lab.compare import resolve_candidates, run_comparison
from lossatlas.lab.ranking import PAD, evaluate_ranking, mrr, ndcg_at_k, utility
from lossatlas.lab.tasks import COMPARE_TASKS

pytest.importorskip("sklearn", reason="compare's metrics reference needs scikit-learn")

TASK = COMPARE_TASKS["ranking"]


def test_ndcg_at_k_matches_scikit_learn_per_query():
    metrics = pytest.importorskip("sklearn.metrics")
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(6, 9, generator=generator)
    grades = torch.randint(0, 4, (6, 9), generator=generator).float()
    lengths = [9, 5, 7, 3, 9, 6]
    for q, n in enumerate(lengths):
        grades[q, n:] = PAD
    grades[2, :7] = 0.0  # no relevant item: left out of the mean
    for k in (3, 5, 10):
        expected = [
            metrics.ndcg_score([(2.0 ** grades[q, :n] - 1).tolist()], [scores[q, :n].tolist()], k=k)
            for q, n in enumerate(lengths)
            if q != 2
        ]
        assert ndcg_at_k(scores, grades, k) == pytest.approx(sum(expected) / len(expected))


def test_mrr_by_hand():
    scores = torch.tensor([[0.9, 0.5, 0.7, 0.1], [0.2, 0.8, 0.3, 9.0], [0.5, 0.4, 0.3, 0.2]])
    grades = torch.tensor([[0.0, 3.0, 2.0, 0.0], [2.0, 1.0, 0.0, PAD], [1.0, 0.0, 0.0, 1.0]])
    # query 0: order 0, 2, 1, 3 -> the first item graded >= 2 (slot 2) is at rank 2
    # query 1: padding (score 9) is never ranked; order 1, 2, 0 -> rank 3
    # query 2: no item graded >= 2, left out
    assert mrr(scores, grades) == pytest.approx((1 / 2 + 1 / 3) / 2)


def test_the_data_is_ragged_graded_and_a_function_of_the_seed():
    data = TASK.load(0)
    again = TASK.load(0)
    assert torch.equal(data.train.x, again.train.x) and torch.equal(data.test.y, again.test.y)
    assert not torch.equal(TASK.load(1).train.y, data.train.y)
    x, y = data.train.x, data.train.y
    real = y != PAD
    lengths = real.sum(dim=1)
    assert int(lengths.min()) >= 8 and int(lengths.max()) == 20
    assert (x[~real] == 0).all()
    shares = [float((y[real] == g).float().mean()) for g in range(4)]
    # the thresholds are the training utilities' 60th, 85th and 95th percentiles
    for share, expected in zip(shares, (0.60, 0.25, 0.10, 0.05), strict=True):
        assert share == pytest.approx(expected, abs=0.01)
    # the grades come from the known function: ranking by it is far above chance
    oracle = ndcg_at_k(utility(data.test.x), data.test.y, 10)
    chance = TASK.metrics[0].chance(data)
    assert oracle > 0.9 and chance < 0.55


def test_a_small_run_trains_every_list_loss_above_chance():
    comparison = run_comparison(TASK, seeds=1, epochs=3)
    data = TASK.load(0)
    chance = {m.key: m.chance(data) for m in TASK.metrics}
    assert {r["candidate"] for r in comparison.runs} == {c.key for c in TASK.candidates}
    for run in comparison.runs:
        assert run["status"] == "ok", run
        for key, value in run["metrics"].items():
            assert math.isfinite(value) and value > chance[key] + 0.1, (run["candidate"], key)


def test_an_untrained_scorer_is_near_chance():
    torch.manual_seed(0)
    data = TASK.load(0)
    model = TASK.make_model(data)
    torch.nn.init.zeros_(model.mlp[-1].weight)  # constant scores: lists kept in slot order
    scores = evaluate_ranking(model, data, torch.device("cpu"))
    assert scores["ndcg_at_10"] == pytest.approx(TASK.metrics[0].chance(data), abs=0.03)


def test_other_ranking_tagged_losses_need_their_own_adapters():
    with pytest.raises(ValueError, match="through its own adapters"):
        resolve_candidates(TASK, ["info_nce_loss"])
    resolved, skipped = resolve_candidates(TASK, ["lambdarank", "listmle_loss"])
    assert [c.key for c, _ in resolved] == ["lambdarank", "listmle"] and not skipped
