"""Activations torch lacks: values and gradients against hand-written references, gradcheck."""

import pytest
import torch
import torch.nn.functional as F

import lossatlas as la

F64 = torch.float64


class TestSwish:
    def test_values_match_hand_formula(self):
        x = torch.linspace(-5, 5, 11, dtype=F64)
        for beta in (0.0, 0.5, 1.0, 3.0):
            expected = x / (1 + torch.exp(-beta * x))  # x * sigmoid(beta x), written out
            torch.testing.assert_close(la.swish(x, beta=beta), expected)

    def test_beta_one_is_silu(self):
        x = torch.randn(20, dtype=F64)
        torch.testing.assert_close(la.swish(x, beta=1.0), F.silu(x))

    def test_gradient_matches_hand_derivative(self):
        # d/dx x s(bx) = s(bx) + b x s(bx) (1 - s(bx)); d/db = x^2 s(bx) (1 - s(bx)).
        x = torch.randn(10, dtype=F64, requires_grad=True)
        beta = torch.tensor(1.7, dtype=F64, requires_grad=True)
        la.swish(x, beta=beta).sum().backward()
        s = torch.sigmoid(beta.detach() * x.detach())
        torch.testing.assert_close(x.grad, s + beta.detach() * x.detach() * s * (1 - s))
        torch.testing.assert_close(beta.grad, (x.detach() ** 2 * s * (1 - s)).sum())

    def test_learnable_beta_trains(self):
        act = la.Swish(beta=1.0, learnable=True)
        x = torch.randn(64, generator=torch.Generator().manual_seed(0)) * 3
        target = la.swish(x, beta=2.0)
        optimizer = torch.optim.Adam(act.parameters(), lr=0.05)
        for _ in range(400):
            optimizer.zero_grad()
            F.mse_loss(act(x), target).backward()
            optimizer.step()
        assert abs(float(act.beta.detach()) - 2.0) < 0.05

    def test_fixed_beta_is_a_buffer(self):
        act = la.Swish(beta=2.0)
        assert list(act.parameters()) == [] and "beta" in act.state_dict()

    def test_gradcheck(self):
        x = torch.randn(6, dtype=F64, requires_grad=True)
        beta = torch.tensor(0.7, dtype=F64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda a, b: la.swish(a, beta=b), (x, beta))


class TestMaxout:
    def test_values(self):
        x = torch.tensor([[1.0, -2.0, 0.5, 3.0, -1.0, -4.0]])
        torch.testing.assert_close(la.maxout(x, pieces=2), torch.tensor([[1.0, 3.0, -1.0]]))
        torch.testing.assert_close(la.maxout(x, pieces=3), torch.tensor([[1.0, 3.0]]))

    def test_relu_is_a_two_piece_maxout(self):
        x = torch.randn(50, dtype=F64)
        pairs = torch.stack([x, torch.zeros_like(x)], dim=-1).reshape(50 * 2)
        torch.testing.assert_close(la.maxout(pairs, pieces=2), F.relu(x))

    def test_other_dim(self):
        x = torch.randn(2, 6, 3)
        expected = x.reshape(2, 3, 2, 3).amax(dim=2)
        torch.testing.assert_close(la.maxout(x, pieces=2, dim=1), expected)

    def test_gradient_goes_to_the_max(self):
        x = torch.tensor([1.0, -2.0, 0.5, 3.0], requires_grad=True)
        la.maxout(x, pieces=2).sum().backward()
        torch.testing.assert_close(x.grad, torch.tensor([1.0, 0.0, 0.0, 1.0]))

    def test_layer_and_gradcheck(self):
        layer = la.Maxout(4, 3, pieces=3).double()
        x = torch.randn(5, 4, dtype=F64, requires_grad=True)
        assert layer(x).shape == (5, 3)
        z = layer.linear(x).reshape(5, 3, 3)
        torch.testing.assert_close(layer(x), z.amax(dim=-1))
        assert torch.autograd.gradcheck(layer, (x,))

    def test_bad_pieces(self):
        with pytest.raises(ValueError, match="not a multiple of pieces=4"):
            la.maxout(torch.randn(2, 6), pieces=4)
        with pytest.raises(ValueError, match=r"pieces must be in \[1, inf\]"):
            la.Maxout(3, 2, pieces=0)


class TestHardmax:
    def test_values_and_ties(self):
        x = torch.tensor([[0.1, 2.0, 2.0], [3.0, -1.0, 0.0]])
        expected = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
        torch.testing.assert_close(la.hardmax(x), expected)
        torch.testing.assert_close(la.hardmax(x.T, dim=0), expected.T)

    def test_is_the_zero_temperature_softmax(self):
        x = torch.randn(4, 5, dtype=F64)
        torch.testing.assert_close(la.hardmax(x), torch.softmax(x / 1e-6, dim=-1))

    def test_no_gradient_flows(self):
        # Piecewise constant: like argmax, the output is not connected to the graph.
        assert not la.hardmax(torch.randn(3, 4, requires_grad=True)).requires_grad


def test_every_activation_is_plottable_as_one_variable():
    x = torch.linspace(-3, 3, 13, dtype=F64, requires_grad=True)
    for name, fn in la.ACTIVATIONS.items():
        y = fn(x)
        assert y.shape == x.shape, name
        if y.requires_grad:  # hardmax is piecewise constant and not in the graph
            (grad,) = torch.autograd.grad(y.sum(), x)
            assert torch.isfinite(grad).all(), name
    with pytest.raises(KeyError, match="Did you mean 'softmax'"):
        la.activation("sofmax")
