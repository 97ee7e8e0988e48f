"""Fused heads: distillation and per-sequence log-probs from hidden states, chunk by chunk.

References are the unfused computations on the full logits ``hidden @ weight.T`` (torch's
``F.log_softmax`` / ``F.cross_entropy`` worked out here in float64, and the library's logit
losses, which have their own sourced tests).
"""

import math

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la
import lossatlas.nn as lnn

N, HS, HT, V = 11, 4, 3, 9


def _heads(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    tensors = (
        torch.randn(N, HS, generator=g, dtype=dtype),
        torch.randn(V, HS, generator=g, dtype=dtype),
        torch.randn(N, HT, generator=g, dtype=dtype),
        torch.randn(V, HT, generator=g, dtype=dtype),
    )
    labels = torch.randint(0, V, (N,), generator=g)
    labels[[1, 6]] = -100
    return [t.requires_grad_() for t in tensors], labels


def _by_hand(sh, sw, th, tw, labels, *, temperature, alpha, beta):
    """alpha CE + (1 - alpha) T^2 JSD_beta, written out from the formula on the full logits."""
    s, t = sh @ sw.T, th @ tw.T
    p = F.softmax(s / temperature, 1)
    q = F.softmax(t / temperature, 1)
    m = beta * q + (1 - beta) * p
    if beta == 0.0:
        div = (q * (q.log() - p.log())).sum(1)
    elif beta == 1.0:
        div = (p * (p.log() - q.log())).sum(1)
    else:
        div = beta * (q * (q.log() - m.log())).sum(1) + (1 - beta) * (p * (p.log() - m.log())).sum(
            1
        )
    keep = labels != -100
    ce = F.log_softmax(s, 1).gather(1, labels.clamp(min=0)[:, None])[:, 0].neg()
    rows = (1 - alpha) * temperature**2 * div + alpha * ce
    return rows[keep].mean()


@pytest.mark.parametrize(
    "options",
    [
        dict(temperature=1.0, alpha=0.0, beta=0.0),
        dict(temperature=2.0, alpha=0.3, beta=0.0),
        dict(temperature=1.5, alpha=0.0, beta=0.5),
        dict(temperature=1.0, alpha=0.5, beta=1.0),
        dict(temperature=0.7, alpha=0.2, beta=0.25),
    ],
)
@pytest.mark.parametrize("chunk_size", [1, 4, None])
def test_distillation_equals_the_unfused_formula_in_value_and_gradient(options, chunk_size):
    tensors, labels = _heads()
    fused = la.linear_distillation_loss(*tensors, labels, chunk_size=chunk_size, **options)
    expected = _by_hand(*tensors, labels, **options)
    torch.testing.assert_close(fused, expected, rtol=1e-12, atol=1e-12)
    got = torch.autograd.grad(fused, tensors)
    want = torch.autograd.grad(expected, tensors)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_beta_zero_is_distillation_loss_and_alpha_zero_is_t2_times_gkd():
    (sh, sw, th, tw), labels = _heads(1)
    s, t = sh @ sw.T, th @ tw.T
    torch.testing.assert_close(
        la.linear_distillation_loss(sh, sw, th, tw, labels, temperature=2.0, alpha=0.4),
        la.distillation_loss(s, t, labels, temperature=2.0, alpha=0.4),
    )
    torch.testing.assert_close(
        la.linear_distillation_loss(sh, sw, th, tw, labels, temperature=2.0, beta=0.5),
        4.0 * la.generalized_jsd_loss(s, t, labels, temperature=2.0, beta=0.5),
    )


def test_mean_is_over_kept_tokens_and_none_zeroes_ignored_rows():
    (sh, sw, th, tw), labels = _heads(2)
    rows = la.linear_distillation_loss(sh, sw, th, tw, labels, reduction="none", chunk_size=3)
    assert rows.shape == (N,)
    assert torch.all(rows[labels == -100] == 0)
    mean = la.linear_distillation_loss(sh, sw, th, tw, labels, chunk_size=3)
    torch.testing.assert_close(mean, rows.sum() / 9)  # 11 tokens, 2 ignored, not / V
    total = la.linear_distillation_loss(sh, sw, th, tw, labels, reduction="sum")
    torch.testing.assert_close(total, rows.sum())


def test_jsd_is_bounded_by_t2_log2():
    (sh, sw, th, tw), labels = _heads(3)
    rows = la.linear_distillation_loss(
        10 * sh, sw, -10 * th, tw, labels, beta=0.5, temperature=1.0, reduction="none"
    )
    assert torch.all(rows <= math.log(2) + 1e-12)


def test_float64_gradcheck_through_the_checkpointed_chunks():
    (sh, sw, th, tw), labels = _heads(4)
    assert torch.autograd.gradcheck(
        lambda *a: la.linear_distillation_loss(*a, labels, alpha=0.3, beta=0.4, chunk_size=4),
        (sh, sw, th, tw),
    )


def test_module_twin_and_bad_input():
    (sh, sw, th, tw), labels = _heads(5)
    module = lnn.LinearDistillationLoss(temperature=2.0, beta=0.5)
    torch.testing.assert_close(
        module(sh, sw, th, tw, labels),
        la.linear_distillation_loss(sh, sw, th, tw, labels, temperature=2.0, beta=0.5),
    )
    with pytest.raises(ValueError, match="alpha"):
        la.linear_distillation_loss(sh, sw, th, tw, None, alpha=0.5)
    with pytest.raises(ValueError, match="teacher_weight"):
        la.linear_distillation_loss(sh, sw, th, tw[:-1], labels)
    with pytest.raises(ValueError, match="teacher_hidden"):
        la.linear_distillation_loss(sh, sw, th[:-1], tw, labels)
    with pytest.raises(ValueError, match="temperature"):
        la.linear_distillation_loss(sh, sw, th, tw, labels, temperature=0.0)
    with pytest.raises(ValueError, match="chunk_size"):
        la.linear_distillation_loss(sh, sw, th, tw, labels, chunk_size=0)
    with pytest.raises(ValueError, match="target"):
        la.linear_distillation_loss(sh, sw, th, tw, torch.full((N,), V))


def test_half_inputs_compute_in_float32():
    (sh, sw, th, tw), labels = _heads(6, dtype=torch.float32)
    half = [t.detach().bfloat16() for t in (sh, sw, th, tw)]
    out = la.linear_distillation_loss(*half, labels)
    assert out.dtype == torch.float32
    ref = la.distillation_loss(
        half[0].float() @ half[1].float().T, half[2].float() @ half[3].float().T, labels
    )
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_empty_batch_gives_zero():
    sw, tw = torch.randn(V, HS), torch.randn(V, HT)
    out = la.linear_distillation_loss(
        torch.zeros(0, HS), sw, torch.zeros(0, HT), tw, torch.zeros(0, dtype=torch.long)
    )
    assert out.item() == 0.0


# --------------------------------------------------------------------------- log-probs


def _sequences(seed=0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(3, 5, HS, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(V, HS, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, V, (3, 5), generator=g)
    labels[0, :2] = -100
    labels[2] = -100  # an empty sequence
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1, 4] = False
    return hidden, weight, labels, mask


@pytest.mark.parametrize("average", [False, True])
@pytest.mark.parametrize("chunk_size", [1, 4, None])
def test_sequence_log_probs_equal_the_unfused_log_softmax(average, chunk_size):
    hidden, weight, labels, mask = _sequences()
    fused = la.linear_sequence_log_probs(
        hidden, weight, labels, mask=mask, average=average, chunk_size=chunk_size
    )
    # By hand on the full logits: log_softmax gathered at the label, over kept tokens.
    logp = F.log_softmax(hidden @ weight.T, -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    keep = (labels != -100) & mask
    total = (logp * keep).sum(-1)
    expected = total / keep.sum(-1).clamp(min=1) if average else total
    torch.testing.assert_close(fused, expected, rtol=1e-12, atol=1e-12)
    assert fused[2].item() == 0.0
    weights = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    got = torch.autograd.grad((fused * weights).sum(), (hidden, weight))
    want = torch.autograd.grad((expected * weights).sum(), (hidden, weight))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(
        fused,
        la.sequence_log_probs(hidden @ weight.T, labels, mask=mask, average=average),
    )


def test_sequence_log_probs_feed_dpo_with_the_same_gradient():
    hidden, weight, labels, _ = _sequences(1)
    labels[2, 0] = 3
    ref = torch.tensor([-4.0, -6.0], dtype=torch.float64)

    def dpo(logps):
        return la.dpo_loss(logps[:2], logps[1:], ref, ref - 0.5, beta=0.1)

    fused = dpo(la.linear_sequence_log_probs(hidden, weight, labels, chunk_size=2))
    plain = dpo(la.sequence_log_probs(hidden @ weight.T, labels))
    torch.testing.assert_close(fused, plain)
    for a, b in zip(
        torch.autograd.grad(fused, (hidden, weight)),
        torch.autograd.grad(plain, (hidden, weight)),
        strict=True,
    ):
        torch.testing.assert_close(a, b)


def test_sequence_log_probs_bad_input():
    hidden, weight, labels, _ = _sequences()
    with pytest.raises(ValueError, match="weight"):
        la.linear_sequence_log_probs(hidden, weight[:, :-1], labels)
    with pytest.raises(ValueError, match="labels"):
        la.linear_sequence_log_probs(hidden, weight, labels[:, :-1])
    with pytest.raises(ValueError, match="labels"):
        la.linear_sequence_log_probs(hidden, weight, torch.full_like(labels, V))
    with pytest.raises(ValueError, match="chunk_size"):
        la.linear_sequence_log_probs(hidden, weight, labels, chunk_size=0)
    with pytest.raises(TypeError, match="labels"):
        la.linear_sequence_log_probs(hidden, weight, labels.double())


def test_peak_memory_does_not_grow_with_the_vocabulary_beyond_one_chunk():
    """The saved tensors for backward are the inputs only: no N x V block stays alive.

    Counted with saved-tensor hooks: the distinct storages autograd keeps for backward.
    """
    n, h = 256, 16

    def saved_bytes(vocab, fn):
        hidden = torch.randn(n, h, requires_grad=True)
        weight = torch.randn(vocab, h, requires_grad=True)
        storages = {}

        def pack(t):
            storage = t.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()  # aliases counted once
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn(hidden, weight)
        return sum(storages.values())

    def fused(hidden, weight):
        labels = torch.zeros(n, dtype=torch.long)
        return la.linear_distillation_loss(hidden, weight, hidden, weight, labels, chunk_size=32)

    def unfused(hidden, weight):
        return la.distillation_loss(hidden @ weight.T, hidden @ weight.T, None)

    small, large = saved_bytes(1024, fused), saved_bytes(8192, fused)
    assert large - small < 1.05 * (8192 - 1024) * h * 4  # only the weight itself grows
    assert saved_bytes(8192, unfused) > 8 * n * 8192  # the unfused path keeps N x V blocks
