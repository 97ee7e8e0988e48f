r"""Losses for very many classes: NCE, sampled softmax (TensorFlow's semantics) and word2vec SGNS.

With a vocabulary of a million words the full softmax costs a ``(N, V)`` matrix product per
step. The sampled losses score the true classes and one shared sample of ``num_sampled``
candidate classes (see :mod:`lossatlas.language.samplers`) instead, as
``tf.nn.nce_loss`` and ``tf.nn.sampled_softmax_loss`` do:

1. draw ``S`` candidates once per batch with their expected counts ``Q``;
2. logits ``x = h \cdot w_k + b_k`` for the ``T = num_true`` true classes and the ``S``
   candidates, minus ``log Q(k)`` (the log-Q correction: ``subtract_log_q`` in TensorFlow);
3. with ``remove_accidental_hits``, a candidate equal to one of the row's true classes gets a
   very negative logit (the most negative finite number of the compute dtype, TensorFlow's
   ``-FLT_MAX``; finite, so gradients stay finite, and its gradient is exactly 0);
4. NCE: a sigmoid cross-entropy per logit, target ``1 / T`` on the true ones and 0 on the
   sampled ones, summed per example; sampled softmax: a softmax cross-entropy over the
   ``T + S`` logits with target ``1 / T`` on each true class.

``negative_sampling_loss`` is the word2vec skip-gram objective on embeddings the caller has
already gathered (Mikolov et al. 2013).
"""

# Args that several losses share are written once, in the Family (lossatlas._docs fills them
# into each __doc__ and fails the declaration of an undocumented parameter).
# ruff: noqa: D417

from __future__ import annotations

import math
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family, TargetKind
from lossatlas._module import LossModule
from lossatlas._options import Check, PositiveInt
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_class_indices,
    check_floating,
    check_integer,
    check_same_device,
    check_same_shape,
    check_shape,
    describe,
)
from lossatlas.language.samplers import (
    CandidateSampler,
    SampledCandidates,
    check_sampler_name,
    log_uniform,
    resolve_sampler,
)

__all__ = ["nce_loss", "negative_sampling_loss", "sampled_softmax_loss"]

#: A sampler by name (``"log_uniform"``, ``"uniform"``).
SamplerName = Annotated[str, Check(check_sampler_name, invalid=("bogus", "unigram"))]

_VOCAB, _DIM, _NUM_TRUE, _NUM_SAMPLED = 12, 4, 2, 5


def _sampled_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    # The sample is drawn once here and passed as sampled_values, so every call the harness
    # makes with this example scores the same candidates (deterministic, compilable).
    weight = ex.normal(generator, _VOCAB, _DIM, dtype=dtype)
    bias = ex.normal(generator, _VOCAB, dtype=dtype)
    hidden = ex.normal(generator, batch, _DIM, dtype=dtype, scale=scale)
    labels = ex.class_indices(generator, batch, _NUM_TRUE, num_classes=_VOCAB)
    sample = log_uniform(_VOCAB)(labels, _NUM_SAMPLED, generator=generator)
    return Example((weight, bias, hidden, labels), {"sampled_values": sample}, grad_args=(0, 1, 2))


def _sgns_example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    center = ex.normal(generator, batch, _DIM, dtype=dtype, scale=scale)
    context = ex.normal(generator, batch, _DIM, dtype=dtype)
    negatives = ex.normal(generator, batch, 3, _DIM, dtype=dtype)
    return Example((center, context, negatives), grad_args=(0, 1, 2))


_SAMPLED = Family(
    tasks=("language",),
    input_kind="hidden activations with output embeddings",
    target_kind="class indices (N, num_true)",
    target_type=TargetKind.CLASS_INDICES,
    properties={"non_negative"},
    examples=_sampled_example,
    twice_differentiable=True,
    args={
        "weight": "Output embeddings ``(V, H)``, one row per class.",
        "hidden": "Input activations ``(N, H)``.",
        "bias": "Class biases ``(V,)``, or ``None``.",
        "labels": (
            "True classes ``(N, T)`` (or ``(N,)`` for ``T = 1``), ``torch.long`` in ``[0, V)``."
        ),
        "num_sampled": (
            "Number of classes ``S`` sampled per batch (NCE's noise classes; required unless "
            "``sampled_values`` is given)."
        ),
        "sampler": (
            '``"log_uniform"`` (TensorFlow\'s default: ids sorted by decreasing frequency), '
            '``"uniform"``, or a :class:`~lossatlas.language.samplers.CandidateSampler` over '
            "``[0, V)`` such as ``unigram(counts)``."
        ),
        "unique": "Draw distinct classes (needs ``num_sampled`` at most the support).",
        "sampled_values": (
            "A ready sample ``sampler(labels, S, ...)`` instead of drawing one (TensorFlow's "
            "``sampled_values``): to score several losses on one sample, or to reproduce a draw "
            "under ``torch.compile``, which cannot trace a ``generator`` (without one it draws "
            "from the global RNG, as eager does). When given, ``sampler``, ``unique`` and "
            "``generator`` are not used."
        ),
        "generator": "Random generator for the draw (on ``labels``'s device).",
        "reduction": '``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` divides by ``N``.',
    },
    returns='Per-example losses ``(N,)`` for ``"none"``, else a scalar; float32 for half inputs.',
)


# --------------------------------------------------------------------------- shared core


def _check_sampled_inputs(
    weight: Tensor, bias: Tensor | None, hidden: Tensor, labels: Tensor
) -> Tensor:
    """Validate shapes and dtypes; return ``labels`` as ``(N, num_true)``."""
    check_floating("weight", weight)
    check_floating("hidden", hidden)
    check_same_device(("weight", weight), ("bias", bias), ("hidden", hidden), ("labels", labels))
    check_shape("weight", weight, (None, None), "(num_classes, embedding_dim)")
    num_classes, dim = weight.shape
    if num_classes == 0:
        raise ValueError(
            f"weight must have at least one row (one per class), got shape {tuple(weight.shape)}"
        )
    if bias is not None:
        check_floating("bias", bias)
        check_shape("bias", bias, (num_classes,), "(one bias per row of weight)")
    check_shape("hidden", hidden, (None, dim), "(batch, embedding_dim) matching weight")
    check_integer("labels", labels)
    if labels.dim() == 1:
        labels = labels.unsqueeze(1)
    check_shape("labels", labels, (hidden.shape[0], None), "(batch,) or (batch, num_true)")
    if labels.shape[1] == 0:
        raise ValueError("labels must hold at least one true class per example (num_true >= 1)")
    check_class_indices("labels", labels, num_classes)
    return labels


def _resolve_sample(
    labels: Tensor,
    num_classes: int,
    *,
    num_sampled: int | None,
    sampler: str | CandidateSampler,
    unique: bool,
    generator: torch.Generator | None,
    sampled_values: SampledCandidates | tuple[Tensor, ...] | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The sampled ids and the expected counts of the true and sampled ids."""
    if sampled_values is None:
        if num_sampled is None:
            raise ValueError("num_sampled is required (unless sampled_values is given)")
        resolved = resolve_sampler(sampler, num_classes)
        resolved.check_num_sampled(num_sampled, unique=unique)
        # labels were checked by the caller: draw without checking (syncing) them again.
        drawn = resolved.sample(labels, num_sampled, unique=unique, generator=generator)
        return drawn.sampled, drawn.true_expected_count, drawn.sampled_expected_count
    if not isinstance(sampled_values, tuple) or len(sampled_values) not in (3, 4):
        raise TypeError(
            "sampled_values must be a SampledCandidates (or a tuple (sampled, "
            f"true_expected_count, sampled_expected_count)), got {describe(sampled_values)}"
        )
    sampled, true_count, sampled_count = sampled_values[:3]
    check_integer("sampled_values.sampled", sampled)
    if sampled.dim() != 1:
        raise ValueError(
            f"sampled_values.sampled must have shape (num_sampled,), got {tuple(sampled.shape)}"
        )
    if num_sampled is not None and sampled.shape[0] != num_sampled:
        raise ValueError(
            f"num_sampled={num_sampled} but sampled_values holds {sampled.shape[0]} sampled ids"
        )
    check_floating("sampled_values.true_expected_count", true_count)
    check_floating("sampled_values.sampled_expected_count", sampled_count)
    check_shape(
        "sampled_values.true_expected_count",
        true_count,
        tuple(labels.shape),
        "(the shape of labels)",
    )
    check_shape(
        "sampled_values.sampled_expected_count",
        sampled_count,
        tuple(sampled.shape),
        "(one count per sampled id)",
    )
    check_class_indices("sampled_values.sampled", sampled, num_classes)
    return sampled, true_count, sampled_count


def _candidate_logits(
    weight: Tensor,
    bias: Tensor | None,
    hidden: Tensor,
    labels: Tensor,
    *,
    num_sampled: int | None,
    sampler: str | CandidateSampler,
    unique: bool,
    generator: torch.Generator | None,
    sampled_values: SampledCandidates | tuple[Tensor, ...] | None,
    remove_accidental_hits: bool,
) -> tuple[Tensor, Tensor]:
    """Check the inputs, draw (or take) the candidates and return their logits.

    Returns:
        The true logits ``(N, T)`` and the sampled logits ``(N, S)``, log-Q corrected, the
        accidental hits masked when ``remove_accidental_hits``.
    """
    labels = _check_sampled_inputs(weight, bias, hidden, labels)
    sampled, true_count, sampled_count = _resolve_sample(
        labels,
        weight.shape[0],
        num_sampled=num_sampled,
        sampler=sampler,
        unique=unique,
        generator=generator,
        sampled_values=sampled_values,
    )
    dtype = compute_dtype(weight, bias, hidden)
    hidden = upcast(hidden, dtype)
    # One gather of the few rows (as TF's embedding_lookup on all ids: the backward then
    # writes one dense (V, H) gradient, not two), then upcast: never a float32 copy of the
    # whole table.
    num_labels = labels.numel()
    all_ids = torch.cat([labels.reshape(-1), sampled])
    all_w = upcast(weight[all_ids], dtype)
    true_w = all_w[:num_labels].view(*labels.shape, weight.shape[1])  # (N, T, H)
    sampled_w = all_w[num_labels:]  # (S, H)
    true_logits = (hidden.unsqueeze(1) * true_w).sum(-1)
    sampled_logits = hidden @ sampled_w.T
    if bias is not None:
        all_b = upcast(bias[all_ids], dtype)
        true_logits = true_logits + all_b[:num_labels].view(labels.shape)
        sampled_logits = sampled_logits + all_b[num_labels:]
    # log Q; a zero expected count (a true id the sampler never draws) is floored at tiny.
    tiny = torch.finfo(dtype).tiny
    true_logits = true_logits - true_count.to(dtype).clamp_min(tiny).log()
    sampled_logits = sampled_logits - sampled_count.to(dtype).clamp_min(tiny).log()
    if remove_accidental_hits:
        hits = (labels.unsqueeze(2) == sampled.view(1, 1, -1)).any(dim=1)  # (N, S)
        very_negative = torch.tensor(torch.finfo(dtype).min, dtype=dtype, device=hits.device)
        sampled_logits = torch.where(hits, very_negative, sampled_logits)
    return true_logits, sampled_logits


# --------------------------------------------------------------------------- functionals


# The heads own their weight and bias, so their call (hidden, labels) differs from the
# functional's (weight, bias, hidden, labels): the generic module == functional check cannot
# build them from the example, and the declarations name no module. tests/test_sampled.py
# checks NCELoss and SampledSoftmaxLoss against the functionals.
@_SAMPLED.loss(
    formula=r"\sum_t \mathrm{BCE}(z_{y_t}, \tfrac{1}{T}) + \sum_s \log(1 + e^{z_{k_s}}),"
    r"\ z_k = h \cdot w_k + b_k - \log Q(k)",
    use_when="huge vocabularies: train without the full softmax",
    peers={"TensorFlow": "tf.nn.nce_loss: same targets (1/T) and log-Q correction"},
)
def nce_loss(
    weight: Tensor,
    bias: Tensor | None,
    hidden: Tensor,
    labels: Tensor,
    *,
    num_sampled: PositiveInt | None = None,
    sampler: SamplerName | CandidateSampler = "log_uniform",
    remove_accidental_hits: bool = False,
    unique: bool = True,
    generator: torch.Generator | None = None,
    sampled_values: SampledCandidates | tuple[Tensor, ...] | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Noise-contrastive estimation loss over a sampled set of classes (``tf.nn.nce_loss``).

    Each example scores its ``T`` true classes and one batch-wide sample of ``S`` noise
    classes; every logit is corrected by the log of its expected count ``Q`` and fed to a
    sigmoid cross-entropy, target ``1 / T`` for the true classes (TensorFlow's convention:
    the targets of an example sum to 1) and 0 for the noise. Evaluate with the full sigmoid
    loss over the vocabulary, as TensorFlow's docs advise. The default keeps accidental hits
    (a noise sample equal to a true class), as TensorFlow does.

    .. math::
        \ell_n = \sum_{t=1}^{T} \mathrm{BCE}\!\left(x_{n,y_t} - \log Q(y_t), \tfrac{1}{T}\right)
                 + \sum_{s=1}^{S} \log\!\left(1 + e^{x_{n,k_s} - \log Q(k_s)}\right),
        \qquad x_{n,k} = h_n \cdot w_k + b_k

    Args:
        remove_accidental_hits: Give a noise class that equals one of the example's true
            classes a very negative logit (it then contributes 0).

    Raises:
        TypeError: Non-floating ``weight``/``hidden``/``bias``, non-integer ``labels``, a bad
            ``sampler`` or ``sampled_values``.
        ValueError: Shapes that do not fit ``(V, H)``, ``(V,)``, ``(N, H)``, ``(N, T)``; a
            label or sampled id outside ``[0, V)`` (value and position named);
            ``num_sampled`` missing, below 1, or above the vocabulary with ``unique=True``.

    Example:
        A hand-made sample of all 4 classes with every ``Q = 1`` and zero weights: each of the
        1 + 4 logits is 0 and the accidental hit is kept, so the loss is ``5 log 2``.

        >>> import torch
        >>> import lossatlas as la
        >>> weight, bias, hidden = torch.zeros(4, 3), torch.zeros(4), torch.ones(2, 3)
        >>> labels = torch.tensor([[1], [2]])
        >>> sample = (torch.arange(4), torch.ones(2, 1), torch.ones(4))
        >>> la.nce_loss(weight, bias, hidden, labels, sampled_values=sample, reduction="none")
        tensor([3.4657, 3.4657])
        >>> la.nce_loss(weight, bias, hidden, labels, num_sampled=3,
        ...             generator=torch.Generator().manual_seed(0))  # log-uniform draw
        tensor(2.9648)

    References:
        M. Gutmann and A. Hyvärinen, `Noise-contrastive estimation: A new estimation
        principle for unnormalized statistical models
        <https://proceedings.mlr.press/v9/gutmann10a.html>`_, AISTATS 2010.

        TensorFlow, `Candidate Sampling Algorithms Reference
        <https://www.tensorflow.org/extras/candidate_sampling.pdf>`_.

        TensorFlow, tf.nn.nce_loss and tf.nn.sampled_softmax_loss,
        https://www.tensorflow.org/api_docs/python/tf/nn/sampled_softmax_loss
    """
    true_logits, sampled_logits = _candidate_logits(
        weight,
        bias,
        hidden,
        labels,
        num_sampled=num_sampled,
        sampler=sampler,
        unique=unique,
        generator=generator,
        sampled_values=sampled_values,
        remove_accidental_hits=remove_accidental_hits,
    )
    num_true = true_logits.shape[1]
    true_target = torch.full_like(true_logits, 1.0 / num_true)
    true_part = F.binary_cross_entropy_with_logits(true_logits, true_target, reduction="none")
    sampled_part = F.softplus(sampled_logits)  # BCE with target 0
    loss = true_part.sum(1) + sampled_part.sum(1)
    return reduce_loss(loss, reduction)


@_SAMPLED.loss(
    tasks=("language", "multiclass"),
    formula=r"\log\sum_{j \in Y \cup S} e^{z_j} - \frac{1}{T}\sum_{t} z_{y_t},"
    r"\ z_k = h \cdot w_k + b_k - \log Q(k)",
    use_when="huge vocabularies: a sampled estimate of softmax CE",
    peers={"TensorFlow": "tf.nn.sampled_softmax_loss: accidental hits removed as here"},
)
def sampled_softmax_loss(
    weight: Tensor,
    bias: Tensor | None,
    hidden: Tensor,
    labels: Tensor,
    *,
    num_sampled: PositiveInt | None = None,
    sampler: SamplerName | CandidateSampler = "log_uniform",
    remove_accidental_hits: bool = True,
    unique: bool = True,
    generator: torch.Generator | None = None,
    sampled_values: SampledCandidates | tuple[Tensor, ...] | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Softmax cross-entropy over the true classes and one shared sample of classes.

    ``tf.nn.sampled_softmax_loss``: a biased but consistent estimate of the full softmax
    cross-entropy that scores ``T + S`` classes instead of ``V``. Logits are log-Q
    corrected; accidental hits are removed by default. When the sample is the whole
    vocabulary with equal ``Q`` (a uniform sampler, ``num_sampled=V``, ``unique=True``) it
    *is* the full cross-entropy. With ``T > 1`` each true class has target ``1 / T``.

    .. math::
        \ell_n = \log\!\Big(\sum_{t} e^{z_{n,y_t}} + \sum_{s} e^{z_{n,k_s}}\Big)
                 - \frac{1}{T}\sum_{t} z_{n,y_t},
        \qquad z_{n,k} = h_n \cdot w_k + b_k - \log Q(k)

    Args:
        remove_accidental_hits: Give a sampled class that equals one of the example's true
            classes a very negative logit, so the true class is never also a negative.

    Raises:
        TypeError: Non-floating tensors where floats are expected, non-integer ``labels``, a
            bad ``sampler`` or ``sampled_values``.
        ValueError: Shapes that do not fit, ids outside ``[0, V)``, ``num_sampled`` missing,
            below 1, or above the vocabulary with ``unique=True``.

    Example:
        Sampling the whole vocabulary uniformly gives the full cross-entropy:

        >>> import torch
        >>> import lossatlas as la
        >>> from lossatlas.language.samplers import uniform
        >>> weight = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> hidden, labels = torch.tensor([[2.0, 1.0]]), torch.tensor([[0]])
        >>> sample = uniform(3)(labels, 3, generator=torch.Generator().manual_seed(0))
        >>> la.sampled_softmax_loss(weight, None, hidden, labels, sampled_values=sample)
        tensor(1.4076)
        >>> la.cross_entropy(hidden @ weight.T, labels[:, 0])
        tensor(1.4076)

    References:
        S. Jean, K. Cho, R. Memisevic and Y. Bengio, `On Using Very Large Target Vocabulary
        for Neural Machine Translation <https://arxiv.org/abs/1412.2007>`_, ACL 2015.

        TensorFlow, `Candidate Sampling Algorithms Reference
        <https://www.tensorflow.org/extras/candidate_sampling.pdf>`_.

        TensorFlow, tf.nn.nce_loss and tf.nn.sampled_softmax_loss,
        https://www.tensorflow.org/api_docs/python/tf/nn/sampled_softmax_loss
    """
    true_logits, sampled_logits = _candidate_logits(
        weight,
        bias,
        hidden,
        labels,
        num_sampled=num_sampled,
        sampler=sampler,
        unique=unique,
        generator=generator,
        sampled_values=sampled_values,
        remove_accidental_hits=remove_accidental_hits,
    )
    logits = torch.cat([true_logits, sampled_logits], dim=1)
    loss = torch.logsumexp(logits, dim=1) - true_logits.mean(dim=1)
    return reduce_loss(loss, reduction)


@_SAMPLED.loss(
    tasks=("language", "metric-learning"),
    input_kind="embeddings",
    target_kind="context and negative embeddings",
    target_type=TargetKind.EMBEDDINGS,
    formula=r"-\log\sigma(c \cdot o) - \sum_k \log\sigma(-c \cdot n_k)",
    examples=_sgns_example,
    same_shape=(0, 1),
    use_when="word2vec-style embeddings from co-occurrence pairs",
)
def negative_sampling_loss(
    center: Tensor,
    context: Tensor,
    negatives: Tensor,
    *,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Word2vec skip-gram negative-sampling loss (SGNS) on gathered embeddings.

    Pulls the context word's output vector towards the center word's input vector and pushes
    ``K`` negative words' output vectors away. The caller gathers the embeddings (negatives
    are usually drawn from ``unigram(counts, distortion=0.75)``). Computed with
    ``logsigmoid``, so any score is finite.

    .. math::
        \ell_n = -\log \sigma(c_n \cdot o_n) - \sum_{k=1}^{K} \log \sigma(-c_n \cdot n_{n,k})

    Args:
        center: Input (center-word) embeddings ``(N, H)``.
        context: Output embeddings of the true context words ``(N, H)``.
        negatives: Output embeddings of the negative words ``(N, K, H)``.

    Returns:
        ``(N,)`` for ``"none"``, else a scalar; float32 for half inputs.

    Raises:
        TypeError: Non-floating tensors.
        ValueError: ``context`` not shaped like ``center``, ``negatives`` not ``(N, K, H)``.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> center = torch.tensor([[1.0, 0.0]])
        >>> context = torch.tensor([[2.0, 0.0]])
        >>> negatives = torch.tensor([[[0.0, 1.0], [-1.0, 0.0]]])
        >>> la.negative_sampling_loss(center, context, negatives)  # softplus(-2)+log 2+softplus(-1)
        tensor(1.1333)

    References:
        T. Mikolov, I. Sutskever, K. Chen, G. Corrado and J. Dean, `Distributed
        Representations of Words and Phrases and their Compositionality
        <https://arxiv.org/abs/1310.4546>`_, NeurIPS 2013.
    """
    check_floating("center", center)
    check_floating("context", context)
    check_floating("negatives", negatives)
    check_same_device(("center", center), ("context", context), ("negatives", negatives))
    check_shape("center", center, (None, None), "(batch, embedding_dim)")
    check_same_shape("center", center, "context", context)
    check_shape(
        "negatives",
        negatives,
        (center.shape[0], None, center.shape[1]),
        "(batch, num_negatives, embedding_dim) matching center",
    )
    dtype = compute_dtype(center, context, negatives)
    center, context, negatives = (upcast(t, dtype) for t in (center, context, negatives))
    positive = F.logsigmoid((center * context).sum(-1))
    negative = F.logsigmoid(-(negatives * center.unsqueeze(1)).sum(-1)).sum(-1)
    return reduce_loss(-(positive + negative), reduction)


# --------------------------------------------------------------------------- modules


class _SampledHead(LossModule):
    """Shared body of the sampled-loss heads: owns the output embedding and bias."""

    weight: nn.Parameter
    bias: nn.Parameter | None
    sampler: CandidateSampler
    unique: bool

    call_options = ("generator", "sampled_values")  # passed to forward

    def init_state(
        self,
        num_classes: PositiveInt,
        embedding_dim: PositiveInt,
        *,
        num_sampled: PositiveInt,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        """The output embedding ``weight (V, H)`` and ``bias (V,)``; the sampler resolved."""
        resolved = resolve_sampler(self.sampler, num_classes)
        if self.unique and num_sampled > resolved.support_size:
            raise ValueError(
                f"num_sampled={num_sampled} distinct ids cannot be drawn with unique=True from "
                f"{resolved.support_size} ids with a positive probability"
            )
        self.sampler = resolved
        self.num_sampled = num_sampled
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim, **factory))
        self.bias = nn.Parameter(torch.empty(num_classes, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated normal weights with std ``1 / sqrt(H)`` and zero biases (word2vec's)."""
        std = 1.0 / math.sqrt(self.embedding_dim)
        nn.init.trunc_normal_(self.weight, std=std, a=-2 * std, b=2 * std)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(  # type: ignore[override]
        self,
        hidden: Tensor,
        labels: Tensor,
        *,
        generator: torch.Generator | None = None,
        sampled_values: SampledCandidates | None = None,
    ) -> Tensor:
        options = {"num_sampled": self.num_sampled, **self.options()}
        if sampled_values is not None:
            options["sampled_values"] = sampled_values
        return type(self).functional(
            self.weight, self.bias, hidden, labels, generator=generator, **options
        )

    def logits(self, hidden: Tensor) -> Tensor:
        """Full logits ``hidden @ weight.T + bias`` ``(N, V)``, for evaluation."""
        return F.linear(hidden, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, embedding_dim={self.embedding_dim}, "
            f"bias={self.bias is not None}, num_sampled={self.num_sampled}, " + super().extra_repr()
        )


class NCELoss(_SampledHead, functional=nce_loss, catalog=False):
    """An NCE output layer: owns ``weight (V, H)`` and ``bias (V,)``; see :func:`nce_loss`.

    ``forward(hidden, labels, *, generator=None, sampled_values=None)`` returns the NCE loss;
    :meth:`logits` gives the full ``(N, V)`` logits for evaluation.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> head = la.nn.NCELoss(1000, 16, num_sampled=20)
        >>> loss = head(torch.randn(8, 16), torch.randint(0, 1000, (8,)))
        >>> loss.backward()
        >>> head.weight.grad.shape
        torch.Size([1000, 16])
    """


class SampledSoftmaxLoss(_SampledHead, functional=sampled_softmax_loss, catalog=False):
    """A sampled-softmax output layer owning ``weight (V, H)`` and ``bias (V,)``.

    See :func:`sampled_softmax_loss`. ``forward(hidden, labels, *, generator=None,
    sampled_values=None)`` returns the loss; :meth:`logits` gives the full logits, so
    evaluation is ``la.cross_entropy(head.logits(hidden), labels)``.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> head = la.nn.SampledSoftmaxLoss(1000, 16, num_sampled=20)
        >>> head(torch.randn(8, 16), torch.randint(0, 1000, (8,))).shape
        torch.Size([])
    """


class NegativeSamplingLoss(LossModule, functional=negative_sampling_loss):
    """Module form of :func:`lossatlas.negative_sampling_loss`."""


# --------------------------------------------------------------------------- declarations
