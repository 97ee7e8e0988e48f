"""CTC: torch parity for every option, a brute-force reference, the gradient fix, validation.

Reference values come from ``torch.nn.functional.ctc_loss`` (computed in the test), from an
enumeration of every alignment of short inputs (the definition in Graves et al., 2006, section
3), and from a two-frame case worked by hand.
"""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la

F64 = torch.float64


def close(actual, expected, *, rtol=1e-6, atol=1e-9):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


def case(seed=0, T=10, N=4, C=5, S=4, blank=0):
    """Random log-probabilities and padded targets that fit (padding holds -1)."""
    g = torch.Generator().manual_seed(seed)
    log_probs = torch.log_softmax(torch.randn(T, N, C, generator=g, dtype=F64) * 2, dim=2)
    labels = [c for c in range(C) if c != blank]
    targets = torch.tensor(labels)[torch.randint(0, len(labels), (N, S), generator=g)]
    target_lengths = torch.randint(1, S + 1, (N,), generator=g)
    targets = targets.masked_fill(torch.arange(S) >= target_lengths.unsqueeze(1), -1)
    input_lengths = torch.randint(2 * S, T + 1, (N,), generator=g)
    return log_probs, targets, input_lengths, target_lengths


def concatenated(targets, target_lengths):
    return torch.cat([targets[n, : int(length)] for n, length in enumerate(target_lengths)])


def brute_force_nll(probs, target, blank=0):
    """-log of the total probability of the alignments of ``target`` (``probs`` is ``(T, C)``)."""
    T, C = probs.shape
    total = 0.0
    for path in itertools.product(range(C), repeat=T):
        collapsed = [c for i, c in enumerate(path) if c != blank and (i == 0 or c != path[i - 1])]
        if collapsed == list(target):
            total += math.prod(float(probs[t, c]) for t, c in enumerate(path))
    return -math.log(total)


# --------------------------------------------------------------------------- values


def test_two_frames_by_hand():
    # Classes {blank, 1} at probability 0.5 each: (1, 1), (blank, 1), (1, blank) -> 0.75.
    log_probs = torch.full((2, 1, 2), 0.5, dtype=F64).log()
    value = la.ctc_loss(log_probs, torch.tensor([[1]]), [2], [1], reduction="none")
    close(value, torch.tensor([-math.log(0.75)], dtype=F64))


@pytest.mark.parametrize(("target", "blank"), [([1, 2], 0), ([1, 1], 0), ([2], 0), ([0, 1], 2)])
def test_brute_force_alignments(target, blank):
    g = torch.Generator().manual_seed(len(target) + blank)
    log_probs = torch.log_softmax(torch.randn(5, 1, 3, generator=g, dtype=F64), dim=2)
    value = la.ctc_loss(
        log_probs, torch.tensor([target]), [5], [len(target)], blank=blank, reduction="none"
    )
    expected = brute_force_nll(log_probs[:, 0].exp(), target, blank=blank)
    close(value, torch.tensor([expected], dtype=F64), rtol=1e-10)


@pytest.mark.parametrize(
    ("reduction", "zero_infinity", "blank", "layout"),
    list(itertools.product(["none", "mean", "sum"], [False, True], [0, 4], ["padded", "concat"])),
)
def test_torch_parity(reduction, zero_infinity, blank, layout):
    log_probs, targets, input_lengths, target_lengths = case(seed=blank + 1, blank=blank)
    # torch needs valid labels even in the padding of padded targets.
    padded = targets.clamp(min=0)
    targets = concatenated(targets, target_lengths) if layout == "concat" else padded
    options = dict(blank=blank, reduction=reduction, zero_infinity=zero_infinity)
    ours = la.ctc_loss(log_probs, targets, input_lengths, target_lengths, **options)
    theirs = F.ctc_loss(log_probs, targets, input_lengths, target_lengths, **options)
    close(ours, theirs)
    module = la.nn.CTCLoss(**options)
    close(
        module(log_probs, targets, input_lengths, target_lengths),
        torch.nn.CTCLoss(**options)(log_probs, targets, input_lengths, target_lengths),
    )


def test_lengths_as_lists_and_padding_ignored():
    log_probs, targets, input_lengths, target_lengths = case(seed=2)
    expected = la.ctc_loss(log_probs, targets.clamp(min=0), input_lengths, target_lengths)
    close(
        la.ctc_loss(log_probs, targets, input_lengths.tolist(), target_lengths.tolist()), expected
    )


def test_mean_divides_by_target_length_then_averages():
    log_probs, targets, input_lengths, target_lengths = case(seed=3)
    none = la.ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="none")
    mean = la.ctc_loss(log_probs, targets, input_lengths, target_lengths)
    close(mean, (none / target_lengths.to(F64)).mean())


def test_empty_target_and_empty_batch():
    # An empty target: the only alignment is all blanks, -sum_t log p_t(blank).
    log_probs, *_ = case(seed=4, N=1)
    value = la.ctc_loss(log_probs, torch.zeros(1, 0, dtype=torch.long), [10], [0], reduction="none")
    close(value, -log_probs[:, 0, 0].sum().unsqueeze(0))
    # An empty batch: 0 with a zero gradient.
    empty = torch.zeros(6, 0, 5, dtype=F64, requires_grad=True)
    no_lengths = torch.zeros(0, dtype=torch.long)
    for reduction in ("mean", "sum"):
        loss = la.ctc_loss(
            empty, torch.zeros(0, 3, dtype=torch.long), no_lengths, no_lengths, reduction=reduction
        )
        assert float(loss.detach()) == 0.0
        loss.backward()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_gives_finite_float32(dtype):
    log_probs, targets, input_lengths, target_lengths = case(seed=5)
    x = log_probs.to(dtype).requires_grad_(True)
    loss = la.ctc_loss(x, targets, input_lengths, target_lengths)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    close(
        loss,
        la.ctc_loss(log_probs, targets, input_lengths, target_lengths).float(),
        rtol=5e-2 if dtype != torch.float32 else 1e-5,
        atol=1e-3,
    )
    loss.backward()
    assert torch.isfinite(x.grad).all()


def test_compile_with_graph_breaks_matches_eager():
    # torch's kernel cannot be captured in one graph (data-dependent output shape), so the
    # declaration sets compile=False; compiling with graph breaks still works.
    log_probs, targets, input_lengths, target_lengths = case(seed=6)
    torch._dynamo.reset()
    compiled = torch.compile(la.ctc_loss, backend="eager")
    close(
        compiled(log_probs, targets, input_lengths, target_lengths),
        la.ctc_loss(log_probs, targets, input_lengths, target_lengths),
    )


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_gradient_through_log_softmax_equals_torch(reduction):
    g = torch.Generator().manual_seed(7)
    logits = torch.randn(10, 4, 5, generator=g, dtype=F64)
    _, targets, input_lengths, target_lengths = case(seed=7)
    targets = targets.clamp(min=0)
    weights = torch.rand(4, generator=g, dtype=F64)  # a non-uniform upstream gradient

    def run(fn):
        x = logits.clone().requires_grad_(True)
        out = fn(
            torch.log_softmax(x, dim=2), targets, input_lengths, target_lengths, reduction=reduction
        )
        (out * weights).sum().backward() if reduction == "none" else out.backward()
        return x.grad

    close(run(la.ctc_loss), run(F.ctc_loss))


def test_gradient_with_respect_to_log_probs_is_the_true_derivative():
    log_probs, targets, input_lengths, target_lengths = case(seed=8, T=6, N=3, C=4, S=2)
    targets = targets.clamp(min=0)

    def ours(x):
        return la.ctc_loss(x, targets, input_lengths, target_lengths, reduction="sum")

    def theirs(x):
        return F.ctc_loss(x, targets, input_lengths, target_lengths, reduction="sum")

    x = log_probs.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(ours, (x,), eps=1e-6, atol=1e-5, rtol=1e-4)
    # torch's backward differs by exp(log_probs) on each frame inside the input length
    # (pytorch/pytorch#52241).
    (g_ours,) = torch.autograd.grad(ours(x), x)
    (g_torch,) = torch.autograd.grad(theirs(x), x)
    inside = (torch.arange(6).unsqueeze(1) < input_lengths).unsqueeze(2).to(F64)
    close(g_torch - g_ours, log_probs.exp() * inside)


def test_zero_infinity_zeroes_infeasible_samples_and_their_gradient():
    log_probs, targets, input_lengths, target_lengths = case(seed=9, T=6, N=3, C=4, S=2)
    targets = targets.clamp(min=0)
    targets[1] = torch.tensor([2, 2])
    target_lengths[1], input_lengths[1] = 2, 2  # "2 2" needs 3 frames
    x = log_probs.clone().requires_grad_(True)
    loss = la.ctc_loss(
        x, targets, input_lengths, target_lengths, zero_infinity=True, reduction="none"
    )
    assert loss[1] == 0 and torch.isfinite(loss).all()
    close(
        loss,
        F.ctc_loss(
            log_probs, targets, input_lengths, target_lengths, zero_infinity=True, reduction="none"
        ),
    )
    loss.sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad[:, 1] == 0).all()


# --------------------------------------------------------------------------- errors


def test_blank_inside_targets_raises_with_value_and_position():
    log_probs, targets, input_lengths, target_lengths = case(seed=10)
    targets = targets.clamp(min=0)
    targets[1, 0] = 0
    target_lengths[1] = 2
    with pytest.raises(ValueError, match=r"targets has the blank label 0 at position \(1, 0\)"):
        la.ctc_loss(log_probs, targets, input_lengths, target_lengths)
    flat = torch.tensor([1, 2, 3, 3])
    with pytest.raises(ValueError, match=r"blank label 3 at position \(2,\)"):
        la.ctc_loss(log_probs, flat, input_lengths, torch.tensor([1, 1, 1, 1]), blank=3)


def test_target_longer_than_input_raises():
    log_probs = case(seed=11, N=2)[0]
    targets = torch.tensor([[1, 2, 3, 4], [1, 1, 2, 2]])
    # Sample 1: 4 labels with 2 repeated neighbours need 6 frames; give it 5.
    with pytest.raises(
        ValueError,
        match=r"the target of sample 1 cannot fit its input: 4 labels "
        r"with 2 repeated neighbours need at least 6 frames, but "
        r"input_lengths\[1\] is 5",
    ):
        la.ctc_loss(log_probs, targets, torch.tensor([10, 5]), torch.tensor([4, 4]))
    # 6 frames fit, and torch's loss is finite there.
    value = la.ctc_loss(
        log_probs, targets, torch.tensor([10, 6]), torch.tensor([4, 4]), reduction="none"
    )
    assert torch.isfinite(value).all()
    # Concatenated targets: repeats counted within a sample only ("1 | 1 2" has none).
    with pytest.raises(ValueError, match="the target of sample 0 cannot fit its input"):
        la.ctc_loss(
            log_probs, torch.tensor([3, 3, 3, 1]), torch.tensor([4, 10]), torch.tensor([3, 1])
        )
    la.ctc_loss(log_probs, torch.tensor([1, 1, 2]), torch.tensor([1, 2]), torch.tensor([1, 2]))
    # With value checks off torch's inf comes back; zero_infinity=True skips the check.
    with la.value_checks(False):
        assert torch.isinf(
            la.ctc_loss(
                log_probs, targets, torch.tensor([10, 5]), torch.tensor([4, 4]), reduction="sum"
            )
        )
    la.ctc_loss(log_probs, targets, torch.tensor([10, 5]), torch.tensor([4, 4]), zero_infinity=True)


def test_length_and_label_errors():
    log_probs, targets, input_lengths, target_lengths = case(seed=12)
    with pytest.raises(
        ValueError, match=r"input_lengths must be in \[0, 10\], got 11 for sample 0"
    ):
        la.ctc_loss(log_probs, targets, torch.tensor([11, 10, 10, 10]), target_lengths)
    with pytest.raises(ValueError, match=r"target_lengths must be in \[0, 4\], got 5 for sample 2"):
        la.ctc_loss(log_probs, targets, input_lengths, torch.tensor([1, 1, 5, 1]))
    with pytest.raises(
        ValueError,
        match=r"concatenated targets must hold sum\(target_lengths\) = "
        r"4 labels, got 3",
    ):
        la.ctc_loss(log_probs, torch.tensor([1, 2, 3]), input_lengths, torch.tensor([1, 1, 1, 1]))
    bad = targets.clone()
    bad[0, 0] = 7
    with pytest.raises(
        ValueError,
        match=r"targets has label 7 at position \(0, 0\); expected "
        r"values in \[0, 5\)",
    ):
        la.ctc_loss(log_probs, bad, input_lengths, target_lengths)
    with pytest.raises(
        ValueError,
        match=r"input_lengths must have shape \(4,\) \(one length per sample\), got \(3,\)",
    ):
        la.ctc_loss(log_probs, targets, input_lengths[:3], target_lengths)
    with pytest.raises(TypeError, match="target_lengths must be an integer tensor"):
        la.ctc_loss(log_probs, targets, input_lengths, target_lengths.double())
    with pytest.raises(TypeError, match="input_lengths must be an integer tensor or a sequence"):
        la.ctc_loss(log_probs, targets, [10.0] * 4, target_lengths)
    with pytest.raises(ValueError, match=r"padded targets must have shape \(N, S\) with N = 4"):
        la.ctc_loss(log_probs, targets[:3], input_lengths, target_lengths)


def test_input_errors():
    log_probs, targets, input_lengths, target_lengths = case(seed=13)
    with pytest.raises(TypeError, match="log_probs must be a floating-point tensor"):
        la.ctc_loss(log_probs.long(), targets, input_lengths, target_lengths)
    with pytest.raises(TypeError, match="targets must be an integer tensor"):
        la.ctc_loss(log_probs, targets.double(), input_lengths, target_lengths)
    with pytest.raises(ValueError, match=r"log_probs must have shape \(\*, \*, \*\) \(T, N, C\)"):
        la.ctc_loss(log_probs[:, 0], targets, input_lengths, target_lengths)
    with pytest.raises(ValueError, match=r"blank must be in \[0, 5\) \(C = 5\), got 5"):
        la.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=5)
    with pytest.raises(ValueError, match=r"blank must be in \[0, inf\]"):
        la.nn.CTCLoss(blank=-1)
    with pytest.raises(
        ValueError,
        match=r"log_softmax\(logits, dim=2\); frame \(t=0, n=0\) has "
        r"logsumexp",
    ):
        la.ctc_loss(log_probs + 1.0, targets, input_lengths, target_lengths)
    with pytest.raises(TypeError, match="zero_infinity must be a bool"):
        la.ctc_loss(log_probs, targets, input_lengths, target_lengths, zero_infinity=0)
    with pytest.raises(ValueError, match="Did you mean 'mean'"):
        la.ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="mena")
    # Frames past an input length are not checked (padding may hold anything).
    padded = log_probs.clone()
    short = input_lengths.clone()
    short[0] = 8
    padded[8:, 0] = 0.0
    la.ctc_loss(padded, targets, short, target_lengths)
