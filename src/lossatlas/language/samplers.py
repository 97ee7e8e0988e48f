r"""Candidate samplers for sampled losses (NCE, sampled softmax), with TensorFlow's semantics.

A sampler draws one shared set of ``num_sampled`` candidate ids from ``[0, range_max)`` for a
whole batch and reports, for the true ids and for the drawn ones, their *expected count*
``Q(y)``: how many times the id is expected to appear in a sample. Sampled losses subtract
``log Q`` from the logits (the log-Q correction), which makes sampled softmax a consistent
estimate of the full softmax.

Three base distributions, as TensorFlow's candidate samplers:

* :func:`log_uniform` -- Zipfian over ids sorted by decreasing frequency,
  ``P(k) = (log(k + 2) - log(k + 1)) / log(range_max + 1)``
  (``tf.random.log_uniform_candidate_sampler``);
* :func:`uniform` -- ``P(k) = 1 / range_max`` (``tf.random.uniform_candidate_sampler``);
* :func:`unigram` -- ``P(k)`` proportional to ``counts[k] ** distortion``
  (``tf.random.fixed_unigram_candidate_sampler``; ``distortion=0.75`` is word2vec's).

**The protocol.** Every sampler is a :class:`CandidateSampler` (an ``nn.Module`` without
parameters or buffers, so a loss module can hold one as a submodule). Calling it,
``sampler(true_classes, num_sampled, *, unique=True, generator=None)``, returns
:class:`SampledCandidates` ``(sampled, true_expected_count, sampled_expected_count,
num_tries)``. A new sampler subclasses :class:`CandidateSampler` and implements
:meth:`~CandidateSampler.probabilities`; it may override
:meth:`~CandidateSampler.draw_with_replacement` with a faster closed form.

**Expected counts** (TensorFlow's ``ExpectedCountHelper``). With ``unique=False`` the ids are
drawn with replacement and ``Q(y) = num_sampled * p(y)``. With ``unique=True`` TensorFlow
draws with replacement until ``num_sampled`` *distinct* ids have come up, which took
``num_tries`` draws, and reports ``Q(y) = 1 - (1 - p(y)) ** num_tries`` -- except when no draw
was rejected (``num_tries == num_sampled``), where it keeps ``num_sampled * p(y)``. Both are
reproduced exactly.

**How unique sampling is done.** TensorFlow's rejection loop has data-dependent length. Here
the same distribution is drawn in closed form, without a loop: the distinct ids in the order
they first appear are a successive sampling without replacement proportional to ``p``, drawn
with exponential keys (``argtopk log p - log E``, ``E ~ Exp(1)``, the Gumbel-top-k trick);
and given that order, the number of rejected draws before the ``j``-th new id is geometric
with success probability ``1 - (mass of the ids already drawn)``, independently of which id
comes next. So ``num_tries = num_sampled + sum_j Geometric_j`` has exactly the law of the
rejection loop's count. The cost is ``O(range_max)`` random numbers per call (one key per id)
instead of ``O(num_tries)``.

Reproducibility: pass a ``torch.Generator`` on the device of ``true_classes``, or seed the
global RNG. ``torch.compile(fullgraph=True)`` cannot trace a ``torch.Generator`` argument: in
a compiled region draw from the global RNG (``generator=None``), or draw outside it and hand
the sample to the loss as ``sampled_values=``.
"""

from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod
from typing import NamedTuple

import torch
from torch import Tensor, nn

from lossatlas._validation import (
    check_choice,
    check_class_indices,
    check_integer,
    check_number,
    describe,
    value_checks_enabled,
)

__all__ = [
    "CandidateSampler",
    "LogUniformSampler",
    "SampledCandidates",
    "UniformSampler",
    "UnigramSampler",
    "expected_count",
    "log_uniform",
    "uniform",
    "unigram",
]


class SampledCandidates(NamedTuple):
    """One shared sample of candidate ids and the expected counts of the true and drawn ids.

    Attributes:
        sampled: Drawn ids ``(num_sampled,)``, ``torch.long``.
        true_expected_count: ``Q`` of each true id, the shape of ``true_classes``, float64.
        sampled_expected_count: ``Q`` of each drawn id ``(num_sampled,)``, float64.
        num_tries: Number of draws it took (``num_sampled`` when ``unique=False``), a 0-dim
            ``torch.long`` tensor.
    """

    sampled: Tensor
    true_expected_count: Tensor
    sampled_expected_count: Tensor
    num_tries: Tensor


def expected_count(probability: Tensor, num_sampled: int, num_tries: Tensor) -> Tensor:
    r"""TensorFlow's expected count of an id with base probability ``p`` in a sample.

    .. math::
        Q = \begin{cases} n\,p & \text{if } T = n \text{ (always when unique=False)} \\
            1 - (1 - p)^{T} & \text{otherwise} \end{cases}

    where ``n`` is ``num_sampled`` and ``T`` the number of draws it took. The second form is
    computed as ``-expm1(T * log1p(-p))``.

    Args:
        probability: Base probabilities, any shape.
        num_sampled: Size of the sample ``n``.
        num_tries: Number of draws ``T`` (a 0-dim tensor).

    Returns:
        The expected counts, shape and dtype of ``probability``.

    Example:
        >>> import torch
        >>> p = torch.tensor([0.1, 0.5], dtype=torch.float64)
        >>> expected_count(p, 2, torch.tensor(2))  # no rejection: n * p
        tensor([0.2000, 1.0000], dtype=torch.float64)
        >>> expected_count(p, 2, torch.tensor(3))  # 1 - (1 - p) ** 3
        tensor([0.2710, 0.8750], dtype=torch.float64)
    """
    tries = num_tries.to(device=probability.device, dtype=probability.dtype)
    unique_form = -torch.expm1(tries * torch.log1p(-probability))
    return torch.where(tries == num_sampled, probability * num_sampled, unique_form)


class CandidateSampler(nn.Module, metaclass=ABCMeta):
    """Base of the candidate samplers: a distribution over ``[0, range_max)`` that draws samples.

    Subclasses implement :meth:`probabilities` (float64, on a device) and may override
    :meth:`probability` and :meth:`draw_with_replacement` with closed forms. Everything else
    -- unique sampling, ``num_tries``, expected counts, validation -- is shared.

    Args:
        range_max: Number of ids ``V``; ids are ``0 .. V-1``.
    """

    def __init__(self, range_max: int) -> None:
        super().__init__()
        check_number("range_max", range_max, low=1, integer=True)
        self.range_max = range_max

    # -- the distribution (subclasses) ---------------------------------------------------

    @abstractmethod
    def probabilities(self, device: torch.device | str | None = None) -> Tensor:
        """``P(k)`` for every id, ``(range_max,)`` float64."""

    def probability(self, ids: Tensor) -> Tensor:
        """``P(id)`` of each id, float64, the shape of ``ids`` (ids must be in range)."""
        return self.probabilities(ids.device)[ids]

    @property
    def support_size(self) -> int:
        """Number of ids with a positive probability (the most ``unique=True`` can draw)."""
        return self.range_max

    def draw_with_replacement(
        self, num_sampled: int, *, generator: torch.Generator | None, device: torch.device
    ) -> Tensor:
        """``num_sampled`` independent draws, ``torch.long``."""
        return torch.multinomial(
            self.probabilities(device), num_sampled, replacement=True, generator=generator
        )

    # -- shared machinery -------------------------------------------------------------------

    def draw_unique(
        self, num_sampled: int, *, generator: torch.Generator | None, device: torch.device
    ) -> tuple[Tensor, Tensor]:
        """Distinct ids in order of first appearance and the number of draws it took.

        Same law as TensorFlow's loop "draw with replacement, reject repeats, until
        ``num_sampled`` distinct ids" (see the module docstring).
        """
        probs = self.probabilities(device)
        u = torch.rand(probs.shape, generator=generator, dtype=torch.float64, device=device)
        exponential = -torch.log1p(-u)  # Exp(1) draws
        keys = torch.where(probs > 0, probs.log() - exponential.log(), -math.inf)
        ids = keys.topk(num_sampled).indices
        picked = probs[ids]
        # Mass of the ids already drawn before the j-th new one (0 before the first).
        before = (picked.cumsum(0) - picked).clamp(0.0, 1.0 - torch.finfo(torch.float64).eps)
        v = 1.0 - torch.rand(num_sampled, generator=generator, dtype=torch.float64, device=device)
        # Rejected draws before the j-th new id: Geometric(1 - before) failures, by inversion.
        rejected = torch.floor(v.log() / before.log())
        num_tries = num_sampled + rejected.sum()
        return ids, num_tries.to(torch.long)

    def forward(
        self,
        true_classes: Tensor,
        num_sampled: int,
        *,
        unique: bool = True,
        generator: torch.Generator | None = None,
    ) -> SampledCandidates:
        """Draw one shared sample and the expected counts of ``true_classes`` and the sample.

        Args:
            true_classes: True ids, any shape (``(N, num_true)`` for the losses), in
                ``[0, range_max)``.
            num_sampled: Number of ids to draw, at least 1 (at most :attr:`support_size`
                with ``unique=True``).
            unique: Draw distinct ids (TensorFlow's default for the losses).
            generator: Random generator on ``true_classes``'s device, for reproducibility.

        Returns:
            :class:`SampledCandidates`.

        Raises:
            TypeError: Non-integer ``true_classes``, a non-int ``num_sampled``.
            ValueError: Ids out of range, ``num_sampled`` below 1 or above the support with
                ``unique=True``.
        """
        check_integer("true_classes", true_classes)
        self.check_num_sampled(num_sampled, unique=unique)
        check_class_indices("true_classes", true_classes, self.range_max)
        return self.sample(true_classes, num_sampled, unique=unique, generator=generator)

    def check_num_sampled(self, num_sampled: int, *, unique: bool) -> None:
        """Raise unless ``num_sampled`` is an int >= 1 that can be drawn (``unique``)."""
        check_number("num_sampled", num_sampled, low=1, integer=True)
        if unique and num_sampled > self.support_size:
            raise ValueError(
                f"num_sampled={num_sampled} distinct ids cannot be drawn with unique=True: the "
                f"sampler has only {self.support_size} ids with a positive probability "
                f"(range_max={self.range_max}); lower num_sampled or pass unique=False"
            )

    def sample(
        self,
        true_classes: Tensor,
        num_sampled: int,
        *,
        unique: bool,
        generator: torch.Generator | None,
    ) -> SampledCandidates:
        """The draw behind :meth:`forward`, for callers that validated the inputs already."""
        device = true_classes.device
        if unique:
            sampled, num_tries = self.draw_unique(num_sampled, generator=generator, device=device)
        else:
            sampled = self.draw_with_replacement(num_sampled, generator=generator, device=device)
            num_tries = torch.tensor(num_sampled, device=device)
        return SampledCandidates(
            sampled=sampled,
            true_expected_count=expected_count(
                self.probability(true_classes), num_sampled, num_tries
            ),
            sampled_expected_count=expected_count(
                self.probability(sampled), num_sampled, num_tries
            ),
            num_tries=num_tries,
        )

    def extra_repr(self) -> str:
        return f"range_max={self.range_max}"


class LogUniformSampler(CandidateSampler):
    r"""Zipfian base distribution over ids sorted by decreasing frequency (TensorFlow's).

    .. math::
        P(k) = \frac{\log(k + 2) - \log(k + 1)}{\log(V + 1)}

    Use it only when id 0 is the most frequent, id 1 the next, and so on.
    """

    def probabilities(self, device: torch.device | str | None = None) -> Tensor:
        ids = torch.arange(self.range_max, dtype=torch.float64, device=device)
        return self._closed_form(ids)

    def probability(self, ids: Tensor) -> Tensor:
        return self._closed_form(ids.to(torch.float64))

    def _closed_form(self, ids: Tensor) -> Tensor:
        return torch.log1p(1.0 / (ids + 1.0)) / math.log1p(self.range_max)

    def draw_with_replacement(
        self, num_sampled: int, *, generator: torch.Generator | None, device: torch.device
    ) -> Tensor:
        # Inversion, as TensorFlow: floor(exp(U * log(V + 1))) - 1 is k with probability P(k).
        u = torch.rand(num_sampled, generator=generator, dtype=torch.float64, device=device)
        ids = torch.floor(torch.exp(u * math.log1p(self.range_max))).to(torch.long) - 1
        return ids.clamp(0, self.range_max - 1)


class UniformSampler(CandidateSampler):
    """Uniform base distribution, ``P(k) = 1 / V``."""

    def probabilities(self, device: torch.device | str | None = None) -> Tensor:
        return torch.full(
            (self.range_max,), 1.0 / self.range_max, dtype=torch.float64, device=device
        )

    def probability(self, ids: Tensor) -> Tensor:
        return torch.full(ids.shape, 1.0 / self.range_max, dtype=torch.float64, device=ids.device)

    def draw_with_replacement(
        self, num_sampled: int, *, generator: torch.Generator | None, device: torch.device
    ) -> Tensor:
        return torch.randint(0, self.range_max, (num_sampled,), generator=generator, device=device)


class UnigramSampler(CandidateSampler):
    r"""Base distribution proportional to ``counts ** distortion`` (word2vec's noise).

    .. math::
        P(k) = \frac{c_k^{\alpha}}{\sum_j c_j^{\alpha}}

    ``distortion=1`` is the unigram distribution, ``0`` is uniform over all ids (``0 ** 0``
    is 1, as in TensorFlow), ``0.75`` is word2vec's choice. The probabilities are kept in
    float64 (a module's ``.to(dtype)`` does not round them) and copied once to each device
    they are used on.

    Args:
        counts: Non-negative id frequencies ``(V,)``, floating or integer.
        distortion: The exponent ``alpha >= 0``.

    Raises:
        TypeError: ``counts`` not a tensor.
        ValueError: ``counts`` not 1-D, negative, non-finite or all zero; ``distortion < 0``.
    """

    def __init__(self, counts: Tensor, *, distortion: float = 0.75) -> None:
        if not isinstance(counts, Tensor):
            raise TypeError(
                f"counts must be a torch.Tensor of id frequencies, got {describe(counts)}"
            )
        if counts.dim() != 1 or counts.numel() == 0:
            raise ValueError(f"counts must have shape (V,) with V >= 1, got {tuple(counts.shape)}")
        check_number("distortion", distortion, low=0.0)
        super().__init__(counts.numel())
        self.distortion = distortion
        weights = counts.detach().to(torch.float64)
        if value_checks_enabled() and (
            not bool(torch.isfinite(weights).all()) or bool((weights < 0).any())
        ):
            raise ValueError("counts must be finite and non-negative")
        weights = weights.pow(distortion)
        total = weights.sum()
        if float(total) <= 0.0:
            raise ValueError("counts must have at least one positive entry")
        self._probs = weights / total
        self._on_device: dict[torch.device, Tensor] = {}
        self._support_size = int((self._probs > 0).sum())

    @property
    def probs(self) -> Tensor:
        """``P(k)`` for every id, float64, on the device of ``counts``."""
        return self._probs

    @property
    def support_size(self) -> int:
        return self._support_size

    def probabilities(self, device: torch.device | str | None = None) -> Tensor:
        if device is None or torch.device(device) == self._probs.device:
            return self._probs
        device = torch.device(device)
        if device not in self._on_device:
            self._on_device[device] = self._probs.to(device)
        return self._on_device[device]

    def extra_repr(self) -> str:
        return f"range_max={self.range_max}, distortion={self.distortion}"


def log_uniform(range_max: int) -> LogUniformSampler:
    """A log-uniform (Zipfian) sampler over ``[0, range_max)``; see :class:`LogUniformSampler`.

    Example:
        >>> import torch
        >>> sampler = log_uniform(10)
        >>> sampler.probability(torch.tensor([0, 9]))  # (log 2 - log 1) / log 11, ...
        tensor([0.2891, 0.0397], dtype=torch.float64)
        >>> out = sampler(torch.tensor([[0], [3]]), 4, generator=torch.Generator().manual_seed(0))
        >>> out.sampled.shape, out.true_expected_count.shape
        (torch.Size([4]), torch.Size([2, 1]))
    """
    return LogUniformSampler(range_max)


def uniform(range_max: int) -> UniformSampler:
    """A uniform sampler over ``[0, range_max)``; see :class:`UniformSampler`.

    Example:
        >>> import torch
        >>> out = uniform(5)(torch.tensor([[1]]), 5, generator=torch.Generator().manual_seed(0))
        >>> sorted(out.sampled.tolist())  # unique=True: every id once
        [0, 1, 2, 3, 4]
    """
    return UniformSampler(range_max)


def unigram(counts: Tensor, *, distortion: float = 0.75) -> UnigramSampler:
    """A sampler proportional to ``counts ** distortion``; see :class:`UnigramSampler`.

    Example:
        >>> import torch
        >>> unigram(torch.tensor([16.0, 1.0, 0.0]), distortion=0.5).probs
        tensor([0.8000, 0.2000, 0.0000], dtype=torch.float64)
    """
    return UnigramSampler(counts, distortion=distortion)


def check_sampler_name(name: str, value: str) -> None:
    """Raise unless ``value`` names a sampler that needs nothing but the vocabulary size."""
    if value == "unigram":
        raise ValueError(
            f"{name}='unigram' needs the id counts: pass "
            "lossatlas.language.samplers.unigram(counts) instead of the name"
        )
    check_choice(name, value, ("log_uniform", "uniform"))


def resolve_sampler(sampler: str | CandidateSampler, num_classes: int) -> CandidateSampler:
    """A sampler object from a name (``"log_uniform"``, ``"uniform"``) or a sampler."""
    if isinstance(sampler, CandidateSampler):
        if sampler.range_max != num_classes:
            raise ValueError(
                f"sampler draws ids in [0, {sampler.range_max}) but the vocabulary has "
                f"{num_classes} classes (weight has {num_classes} rows)"
            )
        return sampler
    if sampler == "log_uniform":
        return LogUniformSampler(num_classes)
    if sampler == "uniform":
        return UniformSampler(num_classes)
    if isinstance(sampler, str):
        check_sampler_name("sampler", sampler)
    raise TypeError(
        "sampler must be 'log_uniform', 'uniform' or a "
        f"lossatlas.language.samplers.CandidateSampler, got {describe(sampler)}"
    )
