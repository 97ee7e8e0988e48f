"""Candidate samplers: distributions, empirical frequencies, TensorFlow's expected counts, errors.

Reference values are closed forms written out here (TensorFlow's definitions, quoted from
tensorflow/core/kernels/range_sampler.cc and the tf.random.*_candidate_sampler docs), a
Python re-implementation of TensorFlow's rejection loop, or scipy's chi-square test.
"""

import math

import numpy as np
import pytest
import torch

from lossatlas.language import samplers as S

scipy_stats = pytest.importorskip("scipy.stats", reason="chi-square reference")


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- distributions


def test_log_uniform_probabilities_closed_form():
    # TF: P(k) = (log(k + 2) - log(k + 1)) / log(range_max + 1)
    v = 13
    expected = torch.tensor(
        [(math.log(k + 2) - math.log(k + 1)) / math.log(v + 1) for k in range(v)],
        dtype=torch.float64,
    )
    sampler = S.log_uniform(v)
    torch.testing.assert_close(sampler.probabilities(), expected, rtol=1e-13, atol=0)
    torch.testing.assert_close(sampler.probability(torch.arange(v)), expected, rtol=1e-13, atol=0)
    assert math.isclose(float(sampler.probabilities().sum()), 1.0, rel_tol=1e-12)


def test_uniform_and_unigram_probabilities():
    torch.testing.assert_close(
        S.uniform(4).probabilities(), torch.full((4,), 0.25, dtype=torch.float64)
    )
    counts = np.array([10.0, 3.0, 0.0, 1.0, 7.0])
    weights = counts**0.75  # word2vec's distortion, by hand
    expected = torch.from_numpy(weights / weights.sum())
    sampler = S.unigram(torch.tensor(counts))
    torch.testing.assert_close(sampler.probabilities(), expected)
    assert sampler.support_size == 4
    # distortion=0 is uniform over all ids (0 ** 0 == 1, as TensorFlow's std::pow)
    torch.testing.assert_close(
        S.unigram(torch.tensor(counts), distortion=0.0).probabilities(),
        torch.full((5,), 0.2, dtype=torch.float64),
    )
    # integer counts are accepted
    torch.testing.assert_close(
        S.unigram(torch.tensor([1, 3]), distortion=1.0).probs,
        torch.tensor([0.25, 0.75], dtype=torch.float64),
    )


# --------------------------------------------------------------------------- frequencies


@pytest.mark.parametrize(
    "sampler",
    [S.log_uniform(20), S.uniform(20), S.unigram(torch.arange(1.0, 21.0) ** 2)],
    ids=["log_uniform", "uniform", "unigram"],
)
def test_with_replacement_frequencies_chi_square(sampler):
    draws = 40_000
    out = sampler(torch.zeros(1, 1, dtype=torch.long), draws, unique=False, generator=_gen(1))
    observed = torch.bincount(out.sampled, minlength=20).numpy()
    expected = sampler.probabilities().numpy() * draws
    # Fixed seed: the p-value is deterministic; 1e-3 is the stated significance level.
    assert scipy_stats.chisquare(observed, expected).pvalue > 1e-3
    assert int(out.num_tries) == draws


def test_unique_sample_law_matches_closed_form_for_two_draws():
    # Drawing 2 distinct ids by rejection: P(i in sample) = p_i + sum_{j != i} p_j p_i / (1 - p_j)
    # and E[num_tries] = 1 + sum_j p_j / (1 - p_j) (one draw, then geometric until a new id).
    v, rounds = 5, 2500
    sampler = S.log_uniform(v)
    p = sampler.probabilities().numpy()
    inclusion = p + np.array(
        [sum(p[j] * p[i] / (1 - p[j]) for j in range(v) if j != i) for i in range(v)]
    )
    mean_tries = 1 + np.sum(p / (1 - p))
    generator = _gen(2)
    counts, tries = np.zeros(v), []
    for _ in range(rounds):
        ids, num_tries = sampler.draw_unique(2, generator=generator, device=torch.device("cpu"))
        assert ids.unique().numel() == 2
        counts[ids.numpy()] += 1
        tries.append(int(num_tries))
    standard_error = np.sqrt(inclusion * (1 - inclusion) / rounds)
    assert np.all(np.abs(counts / rounds - inclusion) < 4 * standard_error)
    tries_se = np.std(tries) / np.sqrt(rounds)
    assert abs(np.mean(tries) - mean_tries) < 4 * tries_se


def _tensorflow_rejection_loop(p, num_sampled, rng):
    """TensorFlow's RangeSampler::SampleBatchGetExpectedCountAvoid with unique=true."""
    used, picked, tries = set(), [], 0
    while len(picked) < num_sampled:
        tries += 1
        value = int(rng.choice(len(p), p=p))
        if value not in used:
            used.add(value)
            picked.append(value)
    return picked, tries


def test_unique_sample_law_matches_tensorflow_loop():
    v, k, rounds = 12, 6, 2000
    sampler = S.unigram(torch.arange(1.0, v + 1.0).flip(0))
    p = sampler.probabilities().numpy()
    rng = np.random.default_rng(0)
    ref_counts, ref_tries = np.zeros(v), []
    for _ in range(rounds):
        picked, tries = _tensorflow_rejection_loop(p, k, rng)
        ref_counts[picked] += 1
        ref_tries.append(tries)
    generator = _gen(3)
    counts, tries = np.zeros(v), []
    for _ in range(rounds):
        ids, num_tries = sampler.draw_unique(k, generator=generator, device=torch.device("cpu"))
        counts[ids.numpy()] += 1
        tries.append(int(num_tries))
    # Two independent estimates of the same inclusion probabilities: 5 standard errors of the
    # difference (each frequency has variance f (1 - f) / rounds).
    f = (counts + ref_counts) / (2 * rounds)
    se = np.sqrt(2 * f * (1 - f) / rounds) + 1e-12
    assert np.all(np.abs(counts - ref_counts) / rounds < 5 * se)
    se_tries = np.sqrt((np.var(tries) + np.var(ref_tries)) / rounds)
    assert abs(np.mean(tries) - np.mean(ref_tries)) < 5 * se_tries


def test_unique_draws_are_distinct_and_respect_zero_probabilities():
    sampler = S.unigram(torch.tensor([5.0, 0.0, 1.0, 0.0, 2.0]))
    for seed in range(20):
        out = sampler(torch.tensor([[0]]), 3, generator=_gen(seed))
        assert sorted(out.sampled.tolist()) == [0, 2, 4]


# --------------------------------------------------------------------------- expected counts


def test_expected_counts_with_replacement_are_n_times_p():
    sampler = S.log_uniform(50)
    true = torch.tensor([[0, 7], [49, 3]])
    out = sampler(true, 10, unique=False, generator=_gen(4))
    p_true = torch.tensor(
        [
            [(math.log(k + 2) - math.log(k + 1)) / math.log(51) for k in row]
            for row in true.tolist()
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(out.true_expected_count, 10 * p_true, rtol=1e-12, atol=0)
    p_sampled = sampler.probability(out.sampled)
    torch.testing.assert_close(out.sampled_expected_count, 10 * p_sampled, rtol=1e-12, atol=0)


def test_expected_counts_unique_use_num_tries():
    # TF: Q = 1 - (1 - p) ** num_tries when some draw was rejected, else num_sampled * p.
    sampler = S.log_uniform(8)
    true = torch.tensor([[0], [5]])
    seen_rejection = seen_no_rejection = False
    for seed in range(30):
        out = sampler(true, 4, generator=_gen(seed))
        tries = int(out.num_tries)
        assert tries >= 4
        for ids, counts in (
            (true, out.true_expected_count),
            (out.sampled, out.sampled_expected_count),
        ):
            for k, q in zip(ids.flatten().tolist(), counts.flatten().tolist(), strict=True):
                p = (math.log(k + 2) - math.log(k + 1)) / math.log(9)
                expected = 4 * p if tries == 4 else 1 - (1 - p) ** tries
                assert math.isclose(q, expected, rel_tol=1e-12)
        seen_rejection |= tries > 4
        seen_no_rejection |= tries == 4
    assert seen_rejection and seen_no_rejection


def test_expected_count_helper_doc_values():
    p = torch.tensor([0.1, 0.5], dtype=torch.float64)
    torch.testing.assert_close(
        S.expected_count(p, 2, torch.tensor(3)),
        torch.tensor([1 - 0.9**3, 1 - 0.5**3], dtype=torch.float64),
    )


# --------------------------------------------------------------------------- reproducibility


@pytest.mark.parametrize("unique", [True, False])
def test_generator_makes_draws_reproducible(unique):
    sampler = S.log_uniform(100)
    true = torch.tensor([[1], [2]])
    a = sampler(true, 10, unique=unique, generator=_gen(7))
    b = sampler(true, 10, unique=unique, generator=_gen(7))
    c = sampler(true, 10, unique=unique, generator=_gen(8))
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    assert not torch.equal(a.sampled, c.sampled)


def test_unigram_probabilities_stay_float64_and_out_of_the_state_dict():
    sampler = S.unigram(torch.tensor([1.0, 2.0]), distortion=1.0)
    sampler.to(torch.bfloat16)  # a head moved to bfloat16 must not round the distribution
    assert sampler.probabilities().dtype == torch.float64
    torch.testing.assert_close(
        sampler.probabilities("cpu"), torch.tensor([1 / 3, 2 / 3], dtype=torch.float64)
    )
    assert sampler.state_dict() == {}
    assert repr(sampler) == "UnigramSampler(range_max=2, distortion=1.0)"


# --------------------------------------------------------------------------- errors


def test_num_sampled_above_vocabulary_with_unique_raises():
    with pytest.raises(ValueError, match=r"num_sampled=11 distinct ids cannot be drawn.*only 10"):
        S.uniform(10)(torch.tensor([[0]]), 11)
    # with replacement it is fine
    assert S.uniform(10)(torch.tensor([[0]]), 11, unique=False).sampled.shape == (11,)
    with pytest.raises(ValueError, match=r"only 2 ids with a positive probability"):
        S.unigram(torch.tensor([1.0, 0.0, 3.0]))(torch.tensor([[0]]), 3)


def test_true_classes_out_of_range_raises_with_value_and_position():
    with pytest.raises(ValueError, match=r"true_classes has class index 10 at position \(1, 0\)"):
        S.log_uniform(10)(torch.tensor([[0], [10]]), 2)
    with pytest.raises(TypeError, match="true_classes must be an integer tensor"):
        S.log_uniform(10)(torch.tensor([[0.0]]), 2)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: S.log_uniform(0), ValueError, r"range_max must be in \[1, inf\]"),
        (lambda: S.uniform(2.5), TypeError, "range_max must be an int"),
        (lambda: S.unigram([1.0, 2.0]), TypeError, "counts must be a torch.Tensor"),
        (lambda: S.unigram(torch.ones(2, 2)), ValueError, r"counts must have shape \(V,\)"),
        (lambda: S.unigram(torch.tensor([1.0, -1.0])), ValueError, "non-negative"),
        (lambda: S.unigram(torch.zeros(3)), ValueError, "at least one positive"),
        (lambda: S.unigram(torch.ones(3), distortion=-0.5), ValueError, "distortion"),
    ],
)
def test_bad_sampler_construction(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_num_sampled_must_be_a_positive_int():
    with pytest.raises(ValueError, match="num_sampled"):
        S.uniform(5)(torch.tensor([[0]]), 0)
    with pytest.raises(TypeError, match="num_sampled must be an int"):
        S.uniform(5)(torch.tensor([[0]]), 2.0)


def test_resolve_sampler_names_and_errors():
    assert isinstance(S.resolve_sampler("uniform", 5), S.UniformSampler)
    assert isinstance(S.resolve_sampler("log_uniform", 5), S.LogUniformSampler)
    with pytest.raises(ValueError, match="Did you mean 'log_uniform'"):
        S.resolve_sampler("log_unifrom", 5)
    with pytest.raises(ValueError, match="needs the id counts"):
        S.resolve_sampler("unigram", 5)
    with pytest.raises(ValueError, match=r"sampler draws ids in \[0, 4\) but the vocabulary has 5"):
        S.resolve_sampler(S.uniform(4), 5)
    with pytest.raises(TypeError, match="sampler must be"):
        S.resolve_sampler(3, 5)
