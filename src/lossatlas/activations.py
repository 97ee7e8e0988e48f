"""Activations from the seeds that torch lacks (Maxout, Swish with a learnable beta, hardmax).

torch's own activations (sigmoid, tanh, relu, leaky_relu, PReLU, softmax, softsign, softplus,
SiLU) are used as they are, not rewritten; :data:`ACTIVATIONS` names all of them together as
functions of one variable so ``lossatlas plot --activation NAME`` can draw value and derivative.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossatlas._validation import check_floating, check_number, suggest

__all__ = ["ACTIVATIONS", "Maxout", "Swish", "activation", "hardmax", "maxout", "swish"]


def swish(input: Tensor, *, beta: float | Tensor = 1.0) -> Tensor:
    r"""Swish, the self-gated activation ``x * sigmoid(beta * x)``.

    ``beta = 1`` is SiLU (``torch.nn.functional.silu``); as ``beta -> inf`` it tends to ReLU,
    and ``beta = 0`` gives ``x / 2``. Smooth and non-monotonic, bounded below.

    .. math::
        \operatorname{swish}_\beta(x) = x\,\sigma(\beta x)

    Args:
        input: Any floating tensor.
        beta: A real number or a tensor broadcastable to ``input`` (learnable in :class:`Swish`).

    Returns:
        Same shape and dtype as ``input``.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> la.swish(torch.tensor([-1.0, 0.0, 2.0]), beta=1.0)
        tensor([-0.2689,  0.0000,  1.7616])

    References:
        P. Ramachandran, B. Zoph, Q. V. Le, "Searching for Activation Functions", 2017,
        https://arxiv.org/abs/1710.05941
    """
    check_floating("input", input)
    if not isinstance(beta, Tensor):
        check_number("beta", beta)
    return input * torch.sigmoid(beta * input)


class Swish(nn.Module):
    """Module form of :func:`swish`; ``learnable=True`` makes ``beta`` a trained ``Parameter``.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> act = la.Swish(beta=1.5, learnable=True)
        >>> [name for name, _ in act.named_parameters()]
        ['beta']
    """

    def __init__(self, beta: float = 1.0, *, learnable: bool = False) -> None:
        super().__init__()
        check_number("beta", beta)
        tensor = torch.tensor(float(beta))
        if learnable:
            self.beta: Tensor = nn.Parameter(tensor)
        else:
            self.register_buffer("beta", tensor)
        self.learnable = learnable

    def forward(self, input: Tensor) -> Tensor:
        return swish(input, beta=self.beta.to(input.dtype))

    def extra_repr(self) -> str:
        return f"beta={float(self.beta.detach()):g}, learnable={self.learnable}"


def maxout(input: Tensor, *, pieces: int, dim: int = -1) -> Tensor:
    r"""Maxout over groups of ``pieces`` consecutive features along ``dim``.

    The input's ``dim`` holds ``out * pieces`` values (the outputs of ``pieces`` affine maps per
    unit); the result keeps the largest of each group. ReLU is ``max(x, 0)`` and leaky ReLU
    ``max(x, a x)``: both are maxout units with two pieces.

    .. math::
        h_i(x) = \max_{j \in [1, k]} z_{ij}

    Args:
        input: Floating tensor whose size along ``dim`` is a multiple of ``pieces``.
        pieces: ``k >= 1``, the number of linear pieces per unit.
        dim: The feature dimension.

    Returns:
        ``input`` with ``dim`` divided by ``pieces``.

    Raises:
        ValueError: ``pieces`` < 1 or not dividing the size of ``dim``.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> la.maxout(torch.tensor([[1.0, -2.0, 0.5, 3.0]]), pieces=2)
        tensor([[1., 3.]])

    References:
        I. Goodfellow, D. Warde-Farley, M. Mirza, A. Courville, Y. Bengio, "Maxout Networks",
        ICML 2013, https://arxiv.org/abs/1302.4389
    """
    check_floating("input", input)
    check_number("pieces", pieces, low=1, integer=True)
    dim = dim % input.dim()
    size = input.shape[dim]
    if size % pieces:
        raise ValueError(
            f"input's dimension {dim} has {size} features, not a multiple of pieces={pieces}"
        )
    shape = (*input.shape[:dim], size // pieces, pieces, *input.shape[dim + 1 :])
    return input.reshape(shape).amax(dim=dim + 1)


class Maxout(nn.Module):
    """A maxout layer: ``pieces`` affine maps ``in_features -> out_features``, then their max.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> layer = la.Maxout(4, 3, pieces=2)
        >>> layer(torch.randn(5, 4)).shape
        torch.Size([5, 3])
    """

    def __init__(
        self, in_features: int, out_features: int, *, pieces: int = 2, bias: bool = True
    ) -> None:
        super().__init__()
        check_number("in_features", in_features, low=1, integer=True)
        check_number("out_features", out_features, low=1, integer=True)
        check_number("pieces", pieces, low=1, integer=True)
        self.pieces = pieces
        self.linear = nn.Linear(in_features, out_features * pieces, bias=bias)

    def forward(self, input: Tensor) -> Tensor:
        return maxout(self.linear(input), pieces=self.pieces, dim=-1)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


def hardmax(input: Tensor, *, dim: int = -1) -> Tensor:
    r"""One-hot of the arg-max along ``dim``: the zero-temperature limit of softmax.

    Ties go to the first maximum (``torch.argmax``'s rule). Piecewise constant, so its gradient
    is zero almost everywhere: use it for decisions, not inside a loss you train.

    .. math::
        \operatorname{hardmax}(x)_i = [\, i = \arg\max_j x_j \,]

    Args:
        input: Floating tensor.
        dim: The dimension to take the maximum over.

    Returns:
        Same shape and dtype as ``input``, one 1 per slice along ``dim``.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> la.hardmax(torch.tensor([[0.1, 2.0, 2.0], [3.0, -1.0, 0.0]]))
        tensor([[0., 1., 0.],
                [1., 0., 0.]])

    References:
        I. Goodfellow, Y. Bengio, A. Courville, *Deep Learning*, MIT Press, 2016, section 6.2.2.3.
    """
    check_floating("input", input)
    index = input.argmax(dim=dim, keepdim=True)
    return torch.zeros_like(input).scatter(dim, index, 1.0)


def _pairwise(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """``x -> fn([x, 0])[0]``: a vector activation as a function of one logit against 0."""

    def one_variable(x: Tensor) -> Tensor:
        pair = torch.stack([x, torch.zeros_like(x)], dim=-1)
        return fn(pair)[..., 0]

    return one_variable


#: Activations as functions of one variable, for plots (value and derivative). ``softmax`` and
#: ``hardmax`` are drawn for a logit ``x`` against a second logit fixed at 0; ``maxout`` is the
#: two-piece unit ``max(x, x / 4)``; ``prelu`` uses torch's initial slope 0.25.
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    "prelu": lambda x: F.prelu(x, torch.tensor([0.25], dtype=x.dtype)),
    "softmax": _pairwise(lambda z: torch.softmax(z, dim=-1)),
    "softsign": F.softsign,
    "softplus": F.softplus,
    "silu": F.silu,
    "swish": lambda x: swish(x, beta=1.0),
    "maxout": lambda x: maxout(torch.stack([x, x / 4], dim=-1), pieces=2).squeeze(-1),
    "hardmax": _pairwise(hardmax),
}


def activation(name: str) -> Callable[[Tensor], Tensor]:
    """The one-variable activation called ``name`` in :data:`ACTIVATIONS`.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> la.activation("softmax")(torch.tensor([0.0]))
        tensor([0.5000])
    """
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise KeyError(f"no activation named {name!r}.{suggest(name, list(ACTIVATIONS))}") from None
