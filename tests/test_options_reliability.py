"""Issue 19, item 7: options that were never checked, reproduced on every loss that takes them.

The generic fix is the constraint vocabulary of the declare-once work (``lossatlas._options``:
annotations checked by one validator); these tests hold each reported case to it. A bad option
must raise a typed error naming the option before any arithmetic, never behave as another
value (``"False"`` read as True) or be silently accepted.
"""

import pytest
import torch

import lossatlas as la

# Every loss with an ignore_index: the migrated ones check it from their annotation, the others
# (linear_cross_entropy until it is migrated) in the shared check_class_indices.
IGNORE_INDEX_LOSSES = [
    pytest.param(spec, id=spec.name) for spec in la.catalog() if "ignore_index" in spec.options
]


@pytest.mark.parametrize("spec", IGNORE_INDEX_LOSSES)
def test_ignore_index_must_be_an_int(spec):
    example = spec.make_example(dtype=torch.float32)
    with pytest.raises(TypeError, match="ignore_index"):
        spec.function(*example.args, **{**example.kwargs, "ignore_index": 2.5})


def _sampled_inputs():
    gen = torch.Generator().manual_seed(7)
    weight = torch.randn(20, 4, generator=gen)
    bias = torch.zeros(20)
    hidden = torch.randn(3, 4, generator=gen)
    labels = torch.randint(0, 20, (3,), generator=gen)
    return weight, bias, hidden, labels


@pytest.mark.parametrize("name", ["nce_loss", "sampled_softmax_loss"])
def test_remove_accidental_hits_refuses_a_string(name):
    loss = getattr(la, name)
    with pytest.raises(TypeError, match="remove_accidental_hits"):
        loss(*_sampled_inputs(), num_sampled=5, remove_accidental_hits="False")


@pytest.mark.parametrize("name", ["nce_loss", "sampled_softmax_loss"])
def test_an_unknown_sampler_is_refused_even_with_sampled_values(name):
    example = la.get(name).make_example(dtype=torch.float32)  # its kwargs hold sampled_values
    assert "sampled_values" in example.kwargs
    with pytest.raises(ValueError, match="sampler"):
        la.get(name).function(*example.args, **example.kwargs, sampler="bogus")


def test_gradient_penalty_checks_its_generator():
    critic = torch.nn.Linear(3, 1)
    with pytest.raises(TypeError, match="generator"):
        la.gradient_penalty(critic, torch.randn(4, 3), torch.randn(4, 3), generator=7)


@pytest.mark.parametrize("penalty", ["gradient_penalty", "r1_penalty"])
def test_gan_penalties_under_inference_mode_say_they_need_autograd(penalty):
    critic = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    real, fake = torch.randn(4, 3), torch.randn(4, 3)
    args = (critic, real, fake) if penalty == "gradient_penalty" else (critic, real)
    with torch.inference_mode(), pytest.raises(RuntimeError, match="penalty needs autograd"):
        getattr(la, penalty)(*args)
    with torch.no_grad():  # no_grad is fine: the penalty turns gradients on for its own graph
        assert torch.isfinite(getattr(la, penalty)(*args))
