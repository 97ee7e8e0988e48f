"""NCE, sampled softmax and SGNS: equivalences with the full softmax, hand formulas, errors.

Reference values: torch's own ``F.cross_entropy`` (full softmax), and the TensorFlow formulas
(``_compute_sampled_logits`` + sigmoid / softmax cross-entropy, as documented for
``tf.nn.nce_loss`` and ``tf.nn.sampled_softmax_loss``) written out by hand in float64 below.
"""

import math

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la
from lossatlas.language import samplers as S
from lossatlas.language.samplers import SampledCandidates

D = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _problem(v=10, h=4, n=5, num_true=1, seed=0):
    g = _gen(seed)
    weight = torch.randn(v, h, generator=g, dtype=D)
    bias = torch.randn(v, generator=g, dtype=D)
    hidden = torch.randn(n, h, generator=g, dtype=D)
    labels = torch.randint(0, v, (n, num_true), generator=g)
    return weight, bias, hidden, labels


def _hand_logits(weight, bias, hidden, labels, sample):
    """TF's _compute_sampled_logits, by hand: true (N, T) and sampled (N, S), log-Q corrected."""
    sampled, true_q, sampled_q = sample[:3]
    true = (
        torch.stack(
            [
                torch.stack([hidden[i] @ weight[k] + bias[k] for k in labels[i].tolist()])
                for i in range(hidden.shape[0])
            ]
        )
        - true_q.log()
    )
    samp = hidden @ weight[sampled].T + bias[sampled] - sampled_q.log()
    return true, samp


def _hits(labels, sampled):
    return torch.tensor(
        [[int(s) in labels[i].tolist() for s in sampled.tolist()] for i in range(labels.shape[0])],
        dtype=torch.bool,
    )


# --------------------------------------------------------------------------- sampled softmax


@pytest.mark.parametrize("seed", range(3))
def test_sampled_softmax_over_whole_vocabulary_is_full_cross_entropy(seed):
    # Uniform sampler, num_sampled = V, unique: every id once, all Q equal (log-Q cancels);
    # the accidental hit (the true class among the samples) is removed.
    weight, bias, hidden, labels = _problem(seed=seed)
    weight.requires_grad_(True)
    hidden.requires_grad_(True)
    loss = la.sampled_softmax_loss(
        weight,
        bias,
        hidden,
        labels,
        num_sampled=10,
        sampler="uniform",
        generator=_gen(seed),
        reduction="none",
    )
    full = F.cross_entropy(hidden @ weight.T + bias, labels[:, 0], reduction="none")
    torch.testing.assert_close(loss, full, rtol=1e-12, atol=1e-12)
    g_loss = torch.autograd.grad(loss.sum(), (weight, hidden))
    g_full = torch.autograd.grad(full.sum(), (weight, hidden))
    for a, b in zip(g_loss, g_full, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_accidental_hits_are_never_negatives():
    weight, bias, hidden, labels = _problem(v=6, n=4)
    # A sample that contains every row's true class.
    sampled = torch.arange(6)
    sample = (sampled, torch.full((4, 1), 0.7, dtype=D), torch.linspace(0.2, 1.2, 6, dtype=D))
    bias = bias.clone().requires_grad_(True)
    loss = la.sampled_softmax_loss(
        weight, bias, hidden, labels, sampled_values=sample, reduction="none"
    )
    true, samp = _hand_logits(weight, bias.detach(), hidden, labels, sample)
    hits = _hits(labels, sampled)
    assert hits.sum(1).eq(1).all()
    # By hand: the softmax runs over the true logit and the non-hit sampled logits only.
    expected = torch.stack(
        [torch.logsumexp(torch.cat([true[i], samp[i][~hits[i]]]), 0) - true[i, 0] for i in range(4)]
    )
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-12, atol=1e-12)
    # Row 0's true-class bias gets only the positive gradient -(1 - p_true): nothing from
    # the (masked) negative copy of itself.
    (grad,) = torch.autograd.grad(loss[0], bias)
    p_true = torch.softmax(torch.cat([true[0], samp[0][~hits[0]]]), 0)[0]
    torch.testing.assert_close(grad[int(labels[0, 0])], -(1 - p_true), rtol=1e-10, atol=1e-12)
    # Without removal the hit stays in the softmax: a different (larger) loss.
    kept = la.sampled_softmax_loss(
        weight,
        bias.detach(),
        hidden,
        labels,
        sampled_values=sample,
        remove_accidental_hits=False,
        reduction="none",
    )
    expected_kept = torch.logsumexp(torch.cat([true, samp], 1), 1) - true[:, 0]
    torch.testing.assert_close(kept, expected_kept, rtol=1e-12, atol=1e-12)
    assert (kept > loss.detach()).all()


def test_sampled_softmax_num_true_splits_the_target():
    weight, bias, hidden, labels = _problem(num_true=3, seed=4)
    sample = S.log_uniform(10)(labels, 4, generator=_gen(4))
    loss = la.sampled_softmax_loss(
        weight,
        bias,
        hidden,
        labels,
        sampled_values=sample,
        remove_accidental_hits=False,
        reduction="none",
    )
    true, samp = _hand_logits(weight, bias, hidden, labels, sample)
    log_p = torch.log_softmax(torch.cat([true, samp], 1), 1)
    expected = -(log_p[:, :3] / 3).sum(1)  # labels 1/num_true on each true class (TF)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)


def test_expected_gradient_approaches_full_softmax_gradient():
    # Statistical: the mean over R draws of the sampled-softmax gradient w.r.t. hidden tends
    # to the full softmax gradient as num_sampled grows (sampled softmax is consistent, biased
    # for small S). Fixed seeds make it deterministic; tolerance stated below.
    v, rounds = 30, 150
    weight, bias, hidden, labels = _problem(v=v, h=5, n=3, seed=5)
    weight, hidden = weight * 0.5, hidden.requires_grad_(True)
    full = F.cross_entropy(hidden @ weight.T + bias, labels[:, 0], reduction="sum")
    (g_full,) = torch.autograd.grad(full, hidden)
    generator = _gen(5)
    errors = {}
    for num_sampled in (3, 25):
        total = torch.zeros_like(hidden)
        for _ in range(rounds):
            loss = la.sampled_softmax_loss(
                weight,
                bias,
                hidden,
                labels,
                num_sampled=num_sampled,
                sampler="log_uniform",
                generator=generator,
                reduction="sum",
            )
            total += torch.autograd.grad(loss, hidden)[0]
        errors[num_sampled] = float((total / rounds - g_full).norm() / g_full.norm())
    assert errors[25] < errors[3]
    assert errors[25] < 0.1, errors  # stated tolerance: 10% relative error at S = 25 of 30


# --------------------------------------------------------------------------- NCE


@pytest.mark.parametrize("num_true", [1, 2])
@pytest.mark.parametrize("remove_accidental_hits", [False, True])
def test_nce_loss_equals_sigmoid_cross_entropies_by_hand(num_true, remove_accidental_hits):
    weight, bias, hidden, labels = _problem(v=8, n=6, num_true=num_true, seed=num_true)
    sample = S.log_uniform(8)(labels, 5, generator=_gen(num_true))
    loss = la.nce_loss(
        weight,
        bias,
        hidden,
        labels,
        sampled_values=sample,
        remove_accidental_hits=remove_accidental_hits,
        reduction="none",
    )
    true, samp = _hand_logits(weight, bias, hidden, labels, sample)
    t = 1.0 / num_true  # TF: each true class has target 1 / num_true
    sig_true, sig_samp = torch.sigmoid(true), torch.sigmoid(samp)
    true_part = -(t * sig_true.log() + (1 - t) * (1 - sig_true).log()).sum(1)
    samp_terms = -(1 - sig_samp).log()
    if remove_accidental_hits:  # a hit's logit is -FLT_MAX: its term is 0
        samp_terms = torch.where(_hits(labels, sample.sampled), 0.0, samp_terms)
    expected = true_part + samp_terms.sum(1)
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-12)


def test_nce_draws_with_generator_are_reproducible_and_match_explicit_sample():
    weight, bias, hidden, labels = _problem()
    a = la.nce_loss(weight, bias, hidden, labels, num_sampled=4, generator=_gen(9))
    b = la.nce_loss(weight, bias, hidden, labels, num_sampled=4, generator=_gen(9))
    sample = S.log_uniform(10)(labels, 4, generator=_gen(9))
    c = la.nce_loss(weight, bias, hidden, labels, sampled_values=sample)
    assert torch.equal(a, b) and torch.equal(a, c)


def test_one_dimensional_labels_mean_num_true_one():
    weight, bias, hidden, labels = _problem()
    sample = S.uniform(10)(labels, 3, generator=_gen(1))
    for fn in (la.nce_loss, la.sampled_softmax_loss):
        torch.testing.assert_close(
            fn(weight, bias, hidden, labels[:, 0], sampled_values=sample),
            fn(weight, bias, hidden, labels, sampled_values=sample),
        )


def test_bias_none_equals_zero_bias():
    weight, _, hidden, labels = _problem()
    sample = S.uniform(10)(labels, 3, generator=_gen(1))
    for fn in (la.nce_loss, la.sampled_softmax_loss):
        torch.testing.assert_close(
            fn(weight, None, hidden, labels, sampled_values=sample),
            fn(weight, torch.zeros(10, dtype=D), hidden, labels, sampled_values=sample),
        )


def test_duplicate_samples_with_replacement_are_all_masked():
    weight, bias, hidden, labels = _problem(v=4, n=2)
    labels = torch.tensor([[1], [2]])
    sampled = torch.tensor([1, 1, 3])  # id 1 twice: both copies are hits for row 0
    sample = (sampled, torch.ones(2, 1, dtype=D), torch.ones(3, dtype=D))
    loss = la.sampled_softmax_loss(
        weight, bias, hidden, labels, sampled_values=sample, reduction="none"
    )
    true, samp = _hand_logits(weight, bias, hidden, labels, sample)
    expected0 = torch.logsumexp(torch.stack([true[0, 0], samp[0, 2]]), 0) - true[0, 0]
    torch.testing.assert_close(loss[0], expected0)


def test_zero_expected_count_stays_finite():
    # A true id the unigram sampler never draws has Q = 0: log Q is floored, no inf/NaN.
    weight, bias, hidden, _ = _problem(v=4, n=2)
    labels = torch.tensor([[1], [0]])
    sampler = S.unigram(torch.tensor([3.0, 0.0, 1.0, 2.0]))
    for fn in (la.nce_loss, la.sampled_softmax_loss):
        loss = fn(
            weight.requires_grad_(True),
            bias,
            hidden,
            labels,
            num_sampled=2,
            sampler=sampler,
            generator=_gen(0),
        )
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(weight.grad).all()
        weight.grad = None


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_gives_float32(dtype):
    weight, bias, hidden, labels = (t.to(dtype) if t.is_floating_point() else t for t in _problem())
    for fn in (la.nce_loss, la.sampled_softmax_loss):
        loss = fn(weight, bias, hidden * 1e3, labels, num_sampled=4, generator=_gen(0))
        assert loss.dtype == torch.float32 and torch.isfinite(loss)


# --------------------------------------------------------------------------- heads


@pytest.mark.parametrize(
    ("cls", "fn"),
    [(la.nn.NCELoss, la.nce_loss), (la.nn.SampledSoftmaxLoss, la.sampled_softmax_loss)],
)
def test_heads_own_weight_and_bias_and_equal_the_functional(cls, fn):
    torch.manual_seed(0)
    head = cls(20, 6, num_sampled=5, reduction="sum")
    assert set(head.state_dict()) == {"weight", "bias"}
    assert head.weight.shape == (20, 6) and torch.equal(head.bias, torch.zeros(20))
    # Truncated normal initialisation within 2 std of 0 (std = 1/sqrt(6)).
    assert head.weight.abs().max() <= 2 / math.sqrt(6) + 1e-6
    hidden, labels = torch.randn(4, 6), torch.randint(0, 20, (4, 2))
    out = head(hidden, labels, generator=_gen(3))
    expected = fn(
        head.weight,
        head.bias,
        hidden,
        labels,
        num_sampled=5,
        generator=_gen(3),
        reduction="sum",
        remove_accidental_hits=head.remove_accidental_hits,
    )
    torch.testing.assert_close(out, expected)
    sample = S.log_uniform(20)(labels, 5, generator=_gen(3))
    torch.testing.assert_close(head(hidden, labels, sampled_values=sample), expected)
    torch.testing.assert_close(head.logits(hidden), hidden @ head.weight.T + head.bias)
    assert "num_classes=20, embedding_dim=6, bias=True" in repr(head)
    no_bias = cls(20, 6, num_sampled=5, bias=False)
    assert no_bias.bias is None and set(no_bias.state_dict()) == {"weight"}


def test_sampled_softmax_head_trains_the_full_softmax():
    # Training with sampled softmax lowers the *full* cross-entropy (the quantity it estimates).
    torch.manual_seed(0)
    v, h, n = 40, 8, 64
    head = la.nn.SampledSoftmaxLoss(v, h, num_sampled=8, sampler="uniform")
    hidden = torch.randn(n, h)
    labels = (hidden[:, 0] > 0).long() * 3 + (hidden[:, 1] > 0).long()  # 4 classes used
    with torch.no_grad():
        before = float(F.cross_entropy(head.logits(hidden), labels))
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
    generator = _gen(0)
    for _ in range(150):
        optimizer.zero_grad()
        head(hidden, labels, generator=generator).backward()
        optimizer.step()
    with torch.no_grad():
        after = float(F.cross_entropy(head.logits(hidden), labels))
    assert after < 0.5 * before


def test_head_validates_at_construction():
    with pytest.raises(ValueError, match="num_sampled=11 distinct ids cannot be drawn"):
        la.nn.SampledSoftmaxLoss(10, 4, num_sampled=11)
    la.nn.SampledSoftmaxLoss(10, 4, num_sampled=11, unique=False)
    with pytest.raises(ValueError, match="Did you mean 'uniform'"):
        la.nn.NCELoss(10, 4, num_sampled=2, sampler="unifrom")
    with pytest.raises(ValueError, match="reduction"):
        la.nn.NCELoss(10, 4, num_sampled=2, reduction="avg")
    with pytest.raises(ValueError, match="vocabulary has 10 classes"):
        la.nn.NCELoss(10, 4, num_sampled=2, sampler=S.uniform(9))
    head = la.nn.NCELoss(10, 4, num_sampled=2, sampler=S.unigram(torch.arange(10.0)))
    assert isinstance(head.sampler, S.UnigramSampler)


# --------------------------------------------------------------------------- SGNS


def test_negative_sampling_loss_by_hand():
    g = _gen(11)
    center, context = (
        torch.randn(5, 4, generator=g, dtype=D),
        torch.randn(5, 4, generator=g, dtype=D),
    )
    negatives = torch.randn(5, 3, 4, generator=g, dtype=D)
    loss = la.negative_sampling_loss(center, context, negatives, reduction="none")
    expected = torch.stack(
        [
            -torch.sigmoid(center[i] @ context[i]).log()
            - sum(torch.sigmoid(-(center[i] @ negatives[i, k])).log() for k in range(3))
            for i in range(5)
        ]
    )
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        la.negative_sampling_loss(center, context, negatives), expected.mean()
    )
    torch.testing.assert_close(
        la.nn.NegativeSamplingLoss(reduction="sum")(center, context, negatives), expected.sum()
    )


def test_negative_sampling_loss_is_finite_at_extreme_scores():
    center = torch.full((2, 3), 100.0, requires_grad=True)
    context = torch.full((2, 3), -100.0)
    negatives = torch.full((2, 4, 3), 100.0)
    loss = la.negative_sampling_loss(center, context, negatives)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(center.grad).all()
    # each score is 3e4 on the wrong side: softplus(3e4) = 3e4, five terms
    torch.testing.assert_close(loss, torch.tensor(5 * 3e4))


# --------------------------------------------------------------------------- errors


def test_bad_inputs_raise_clear_errors():
    weight, bias, hidden, labels = _problem()
    call = la.sampled_softmax_loss
    with pytest.raises(ValueError, match=r"labels has class index 10 at position \(2, 0\)"):
        call(weight, bias, hidden, torch.tensor([[0], [1], [10], [2], [3]]), num_sampled=3)
    with pytest.raises(ValueError, match=r"labels has class index -1"):
        la.nce_loss(weight, bias, hidden, torch.tensor([[0], [1], [-1], [2], [3]]), num_sampled=3)
    with pytest.raises(ValueError, match="num_sampled=12 distinct ids cannot be drawn"):
        call(weight, bias, hidden, labels, num_sampled=12)
    with pytest.raises(ValueError, match="num_sampled is required"):
        call(weight, bias, hidden, labels)
    with pytest.raises(ValueError, match=r"weight must have shape \(\*, \*\)"):
        call(weight[0], bias, hidden, labels, num_sampled=3)
    with pytest.raises(ValueError, match=r"bias must have shape \(10,\) \(one bias per row"):
        call(weight, bias[:5], hidden, labels, num_sampled=3)
    with pytest.raises(ValueError, match=r"hidden must have shape \(\*, 4\)"):
        call(weight, bias, hidden[:, :3], labels, num_sampled=3)
    with pytest.raises(ValueError, match=r"labels must have shape \(5, \*\)"):
        call(weight, bias, hidden, labels[:3], num_sampled=3)
    with pytest.raises(TypeError, match="labels must be an integer tensor"):
        call(weight, bias, hidden, labels.double(), num_sampled=3)
    with pytest.raises(TypeError, match="weight must be a floating-point tensor"):
        call(weight.long(), bias, hidden, labels, num_sampled=3)
    with pytest.raises(ValueError, match="Did you mean 'log_uniform'"):
        call(weight, bias, hidden, labels, num_sampled=3, sampler="loguniform")
    with pytest.raises(ValueError, match="reduction"):
        call(weight, bias, hidden, labels, num_sampled=3, reduction="batchmean")


def test_bad_sampled_values_raise():
    weight, bias, hidden, labels = _problem()
    sample = S.uniform(10)(labels, 3, generator=_gen(0))
    call = la.nce_loss
    with pytest.raises(ValueError, match="num_sampled=4 but sampled_values holds 3"):
        call(weight, bias, hidden, labels, num_sampled=4, sampled_values=sample)
    with pytest.raises(ValueError, match=r"sampled_values.sampled has class index 10"):
        call(
            weight,
            bias,
            hidden,
            labels,
            sampled_values=SampledCandidates(torch.tensor([0, 10, 2]), *sample[1:]),
        )
    with pytest.raises(ValueError, match=r"true_expected_count must have shape \(5, 1\)"):
        call(
            weight,
            bias,
            hidden,
            labels,
            sampled_values=(
                sample.sampled,
                sample.true_expected_count[:2],
                sample.sampled_expected_count,
            ),
        )
    with pytest.raises(TypeError, match="sampled_values must be a SampledCandidates"):
        call(weight, bias, hidden, labels, sampled_values=[sample.sampled])


def test_value_checks_can_be_switched_off():
    weight, bias, hidden, labels = _problem()
    with la.value_checks(False):
        loss = la.nce_loss(weight, bias, hidden, labels, num_sampled=3, generator=_gen(0))
    assert torch.isfinite(loss)


def test_compiled_with_a_ready_sample_equals_eager():
    weight, bias, hidden, labels = (t.float() if t.is_floating_point() else t for t in _problem())
    sample = S.log_uniform(10)(labels, 4, generator=_gen(0))
    for fn in (la.nce_loss, la.sampled_softmax_loss):
        torch._dynamo.reset()
        compiled = torch.compile(fn, fullgraph=True, backend="eager")
        torch.testing.assert_close(
            compiled(weight, bias, hidden, labels, sampled_values=sample),
            fn(weight, bias, hidden, labels, sampled_values=sample),
        )


def test_compiled_drawing_from_the_global_rng_equals_eager():
    # A torch.Generator cannot be traced; the global RNG can, and gives eager's draw.
    weight, bias, hidden, labels = (
        t.float() if t.is_floating_point() else t for t in _problem(v=50)
    )
    for fn in (la.nce_loss, la.sampled_softmax_loss):
        torch._dynamo.reset()
        compiled = torch.compile(fn, fullgraph=True, backend="eager")
        torch.manual_seed(3)
        actual = compiled(weight, bias, hidden, labels, num_sampled=5)
        torch.manual_seed(3)
        torch.testing.assert_close(actual, fn(weight, bias, hidden, labels, num_sampled=5))
