"""The cases run inside each spawned rank (see ``harness.py``), all in one spawn per world size.

Every rank builds the same full batch from the same seed, so each rank can compute the
single-process reference on the concatenated batch itself. Then it takes its shard (a slice of
the full tensors, so gradients land in the full tensors, as in a model whose parameters are
those tensors), computes the loss with ``process_group``, and the DDP average of the gradients
(all-reduce sum / W) is compared with the single-process gradients. Float64 throughout;
``torch.testing.assert_close(rtol=1e-7, atol=1e-12)`` decides, and the worst relative error is
reported.

The naive alternatives run on the same shards: the local loss (``process_group=None``, i.e.
the mean of per-rank means once DDP averages), and for InfoNCE the popular all-gather without
gradient. Their errors are returned so the parent asserts they are large: the suite can fail.
"""

from __future__ import annotations

import functools
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

import lossatlas as la
from lossatlas import distributed as ld

N = 7
#: Shard sizes per world size: uneven, and with one empty shard.
PARTITIONS = {2: [(4, 3), (7, 0)], 3: [(3, 0, 4), (2, 3, 2)]}
RTOL, ATOL = 1e-7, 1e-12
F64 = torch.float64


@dataclass(frozen=True)
class Case:
    """A loss, how to make a full batch, which inputs take gradients, which are sharded."""

    name: str
    make: Callable[[torch.Generator], tuple[Any, ...]]
    loss: Callable[..., Tensor]
    grad: tuple[int, ...] = (0,)
    #: Inputs that are not split by rank (class weights, shared negatives...).
    whole: tuple[int, ...] = ()
    #: ``reduction="none"`` returns one value per local row, checked against the reference rows.
    rows: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    #: Run with the fused kernels on. Off by default: the focal kernels would be compiled in
    #: each rank (tens of seconds); off, they run op by op through the same autograd functions.
    fused: bool = False
    #: A naive alternative called like the loss plus ``group=`` (default: the local loss).
    naive: Callable[..., Tensor] | None = None


def _generator(name: str) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(name.encode()))


def _rel(actual: Tensor, expected: Tensor) -> float:
    scale = expected.abs().max().item() if expected.numel() else 0.0
    diff = (actual - expected).abs().max().item() if expected.numel() else 0.0
    return diff / scale if scale > 0 else diff


def _close(actual: Tensor, expected: Tensor) -> bool:
    try:
        torch.testing.assert_close(actual, expected, rtol=RTOL, atol=ATOL)
    except AssertionError:
        return False
    return True


def _ddp_average(grads: list[Tensor], group: Any) -> list[Tensor]:
    """What DDP does to parameter gradients: all-reduce sum, divide by the world size."""
    world = dist.get_world_size(group)
    out = []
    for grad in grads:
        grad = grad.clone()
        dist.all_reduce(grad, group=group)
        out.append(grad / world)
    return out


def _grads(value: Tensor, leaves: list[Tensor]) -> list[Tensor]:
    if not value.requires_grad:
        return [torch.zeros_like(leaf) for leaf in leaves]
    grads = torch.autograd.grad(value, leaves, allow_unused=True)
    pairs = zip(grads, leaves, strict=True)
    return [torch.zeros_like(leaf) if g is None else g for g, leaf in pairs]


def run_case(case: Case, rank: int, world: int, group: Any, sizes: tuple[int, ...]) -> dict:
    """One loss on one partition: value and DDP gradients vs one process, and the naive one."""
    full = case.make(_generator(case.name))
    leaves = [
        full[i].detach().clone().requires_grad_() if i in case.grad else full[i]
        for i in range(len(full))
    ]
    grad_leaves = [leaves[i] for i in case.grad]
    start = sum(sizes[:rank])
    stop = start + sizes[rank]

    def shard() -> list[Any]:
        return [
            t if (i in case.whole or not isinstance(t, (Tensor, list))) else t[start:stop]
            for i, t in enumerate(leaves)
        ]

    out: dict[str, Any] = {}
    for reduction in ("mean", "sum"):
        opts = {**case.options, "reduction": reduction}
        reference = case.loss(*leaves, **opts)
        ref_grads = _grads(reference, grad_leaves)
        value = case.loss(*shard(), process_group=group, **opts)
        grads = _ddp_average(_grads(value, grad_leaves), group)
        if case.naive is None:
            naive = case.loss(*shard(), **opts)
        else:
            naive = case.naive(*shard(), group=group, **opts)
        naive_grads = _ddp_average(_grads(naive, grad_leaves), group)
        out[reduction] = {
            "value_ok": _close(value.detach(), reference.detach()),
            "value_err": _rel(value.detach(), reference.detach()),
            "grad_ok": all(_close(g, r) for g, r in zip(grads, ref_grads, strict=True)),
            "grad_err": max(_rel(g, r) for g, r in zip(grads, ref_grads, strict=True)),
            "naive_value_err": _rel(naive.detach(), reference.detach()),
            "naive_grad_err": max(_rel(g, r) for g, r in zip(naive_grads, ref_grads, strict=True)),
        }
    if case.rows:
        opts = {**case.options, "reduction": "none"}
        reference = case.loss(*leaves, **opts).detach()[start:stop]
        value = case.loss(*shard(), process_group=group, **opts).detach()
        out["none"] = {"value_ok": _close(value, reference), "value_err": _rel(value, reference)}
    return out


# --------------------------------------------------------------------------- inputs


def _logits_index(classes: int = 5, *, extra: tuple[int, ...] = (), ignore: float = 0.3):
    def make(g: torch.Generator) -> tuple[Tensor, Tensor]:
        logits = torch.randn(N, classes, *extra, generator=g, dtype=F64) * 2
        target = torch.randint(0, classes, (N, *extra), generator=g)
        if ignore:
            drop = torch.rand(target.shape, generator=g) < ignore
            target = torch.where(drop, torch.full_like(target, -100), target)
        return logits, target

    return make


def _weighted(make_base: Callable, classes: int = 5):
    def make(g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        logits, target = make_base(g)
        return logits, target, torch.rand(classes, generator=g, dtype=F64) + 0.5

    return make


def _with_weight(fn: Callable) -> Callable:
    return lambda x, y, w, **kw: fn(x, y, weight=w, **kw)


def _segmentation(classes: int = 3, side: int = 4, *, ignore: bool = False):
    def make(g: torch.Generator) -> tuple[Tensor, Tensor]:
        logits = torch.randn(N, classes, side, side, generator=g, dtype=F64) * 2
        target = torch.randint(0, classes, (N, side, side), generator=g)
        if ignore:
            drop = torch.rand(target.shape, generator=g) < 0.2
            target = torch.where(drop, torch.full_like(target, 255), target)
        return logits, target

    return make


def _masks(channels: int = 2, side: int = 4):
    def make(g: torch.Generator) -> tuple[Tensor, Tensor]:
        logits = torch.randn(N, channels, side, side, generator=g, dtype=F64) * 2
        return logits, (torch.rand(N, channels, side, side, generator=g) < 0.4).to(F64)

    return make


def _binary(g: torch.Generator) -> tuple[Tensor, Tensor]:
    return torch.randn(N, 3, generator=g, dtype=F64) * 2, torch.rand(N, 3, generator=g, dtype=F64)


def _total(fn: Callable) -> Callable:
    """The total of a composite loss (a ``LossParts`` or, later, a tensor)."""

    def call(*args: Any, **kwargs: Any) -> Tensor:
        out = fn(*args, **kwargs)
        return out if isinstance(out, Tensor) else out.total

    return call


def _per_element(fn: Callable) -> Callable:
    """Any per-element loss made exact through the shared reduction helper."""

    def call(*args: Any, reduction: str, process_group: Any = None, **kw: Any) -> Tensor:
        values = fn(*args, reduction="none", **kw)
        return la.reduce_loss(values, reduction, process_group=process_group)

    return call


def _regression(g: torch.Generator) -> tuple[Tensor, Tensor]:
    return torch.randn(N, 3, generator=g, dtype=F64), torch.randn(N, 3, generator=g, dtype=F64)


def _linear_ce(g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    hidden = torch.randn(N, 6, generator=g, dtype=F64)
    weight = torch.randn(11, 6, generator=g, dtype=F64) * 0.5
    target = torch.randint(0, 11, (N,), generator=g)
    target = torch.where(torch.rand(N, generator=g) < 0.3, -100, target)
    return hidden, weight, target


def _linear_ce_loss(hidden: Tensor, weight: Tensor, target: Tensor, **kw: Any) -> Tensor:
    return la.linear_cross_entropy(hidden, weight, target, chunk_size=4, **kw)


def _embeddings(dim: int = 5, negatives: int = 0):
    def make(g: torch.Generator) -> tuple[Tensor, ...]:
        query = torch.randn(N, dim, generator=g, dtype=F64)
        key = query + 0.7 * torch.randn(N, dim, generator=g, dtype=F64)
        if not negatives:
            return query, key
        return query, key, torch.randn(negatives, dim, generator=g, dtype=F64)

    return make


def _info_nce_with_negatives(q: Tensor, k: Tensor, n: Tensor, **kw: Any) -> Tensor:
    return la.info_nce_loss(q, k, negatives=n, **kw)


def naive_gather_info_nce(
    query: Tensor, key: Tensor, *, group: Any, temperature: float = 0.07, **kw: Any
) -> Tensor:
    """The common DDP InfoNCE: keys all-gathered without gradient, own rows put back."""
    q = torch.nn.functional.normalize(query, dim=1)
    k = torch.nn.functional.normalize(key, dim=1)
    gathered, sizes = ld.gather_rows(k.detach(), group)
    offset = sum(sizes[: dist.get_rank(group)])
    keys = torch.cat([gathered[:offset], k, gathered[offset + k.shape[0] :]])
    logits = q @ keys.T / temperature
    labels = torch.arange(q.shape[0]) + offset
    return la.cross_entropy(logits, labels, **kw)


def _ghm(g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    logits = torch.randn(N, 6, generator=g, dtype=F64) * 3
    target = (torch.rand(N, 6, generator=g) < 0.3).to(F64)
    return logits, target, (torch.rand(N, 6, generator=g) < 0.8).to(F64)


def _ghmc(x: Tensor, t: Tensor, w: Tensor, **kw: Any) -> Tensor:
    return la.ghmc_loss(x, t, label_weight=w, **kw)


def _ghmr_data(g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    pred = torch.randn(N, 4, generator=g, dtype=F64) * 0.3
    target = torch.randn(N, 4, generator=g, dtype=F64) * 0.3
    return pred, target, torch.rand(N, 4, generator=g, dtype=F64) * 0.4  # fractional weights


def _ghmr(x: Tensor, t: Tensor, w: Tensor, **kw: Any) -> Tensor:
    return la.ghmr_loss(x, t, label_weight=w, **kw)


def _ssd(g: torch.Generator) -> tuple[Any, ...]:
    from lossatlas.detection.ssd import _ssd_example

    return _ssd_example(g, batch=N, dtype=F64, scale=1.0).args


def _lovasz_hinge(g: torch.Generator) -> tuple[Tensor, Tensor]:
    logits = torch.randn(N, 4, 4, generator=g, dtype=F64) * 2
    return logits, torch.randint(0, 2, (N, 4, 4), generator=g)


# --------------------------------------------------------------------------- cases


def _lists(g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Ragged lists of 5 slots (one all padding) with grades 0..3, mask as the third input."""
    scores = torch.randn(N, 5, generator=g, dtype=F64) * 2
    relevance = torch.randint(0, 4, (N, 5), generator=g).to(F64)
    lengths = torch.randint(2, 6, (N, 1), generator=g)
    lengths[3] = 0
    return scores, relevance, torch.arange(5) < lengths


def _masked(fn: Callable) -> Callable:
    """A list loss called with its ``mask`` keyword from the third positional input."""

    def call(scores: Tensor, relevance: Tensor, mask: Tensor, **kw: Any) -> Tensor:
        return fn(scores, relevance, mask=mask, **kw)

    return call


def _labelled(views: int = 0):
    """Embeddings ``(N, 5)`` (or ``(N, views, 5)``) with 3 classes, so labels repeat."""

    def make(g: torch.Generator) -> tuple[Tensor, Tensor]:
        shape = (N, 5) if not views else (N, views, 5)
        return torch.randn(*shape, generator=g, dtype=F64), torch.randint(0, 3, (N,), generator=g)

    return make


def _with_proxies(g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    x, labels = _labelled()(g)
    return x, labels, torch.randn(3, 5, generator=g, dtype=F64)


def loss_cases() -> list[Case]:
    token = _logits_index(extra=(6,), ignore=0.4)  # (N, C, T) with many ignored tokens
    return [
        Case("cross_entropy/index", _logits_index(), la.cross_entropy, rows=True),
        Case("cross_entropy/tokens", token, la.cross_entropy, rows=True),
        Case(
            "cross_entropy/weighted",
            _weighted(_logits_index()),
            _with_weight(la.cross_entropy),
            whole=(2,),
        ),
        Case(
            "cross_entropy/smoothing",
            _logits_index(),
            la.cross_entropy,
            options={"label_smoothing": 0.2},
        ),
        Case(
            "nll_loss",
            lambda g: (torch.log_softmax(_logits_index()(g)[0], 1), _logits_index()(g)[1]),
            la.nll_loss,
        ),
        Case(
            "label_smoothing_cross_entropy/weighted",
            _weighted(_logits_index(extra=(3,))),
            _with_weight(la.label_smoothing_cross_entropy),
            whole=(2,),
        ),
        Case(
            "focal_loss/tokens", token, la.focal_loss, options={"alpha": [0.2, 0.3, 0.1, 0.2, 0.2]}
        ),
        Case("binary_focal_loss", _binary, la.binary_focal_loss, rows=True),
        Case("balanced_binary_cross_entropy", _binary, la.balanced_binary_cross_entropy),
        Case("binary_cross_entropy_with_logits", _binary, la.binary_cross_entropy_with_logits),
        Case("mse_loss via reduce_loss", _regression, _per_element(la.mse_loss)),
        Case("huber_loss via reduce_loss", _regression, _per_element(la.huber_loss)),
        Case("poly1_cross_entropy/tokens", token, la.poly1_cross_entropy, rows=True),
        Case(
            "poly1_cross_entropy/weighted",
            _weighted(_logits_index()),
            _with_weight(la.poly1_cross_entropy),
            whole=(2,),
        ),
        # The fused kernel's gradients of hidden and of the (replicated) output projection.
        Case("linear_cross_entropy", _linear_ce, _linear_ce_loss, grad=(0, 1), whole=(1,)),
        Case(
            "linear_cross_entropy/z_loss",
            _linear_ce,
            _linear_ce_loss,
            grad=(0, 1),
            whole=(1,),
            options={"z_loss": 1e-2, "label_smoothing": 0.1},
        ),
        *[
            Case(f"{fn.__name__}/batch", _segmentation(), fn, options={"batch": True})
            for fn in (la.dice_loss, la.jaccard_loss, la.tversky_loss, la.focal_tversky_loss)
        ],
        # The Dice family's fast path (a custom autograd function, not compiled).
        *[
            Case(f"{fn.__name__}/batch,fused", make, fn, options={"batch": True}, fused=True)
            for fn, make in ((la.dice_loss, _segmentation()), (la.binary_dice_loss, _masks()))
        ],
        Case(
            "dice_loss/batch,ignore,squared",
            _segmentation(ignore=True),
            la.dice_loss,
            options={"batch": True, "ignore_index": 255, "squared_pred": True},
        ),
        Case("dice_loss/per-sample", _segmentation(), la.dice_loss, rows=True),
        Case(
            "dice_loss/batch,weighted",
            _segmentation(),
            la.dice_loss,
            options={"batch": True, "weight": torch.tensor([0.2, 1.0, 2.0], dtype=F64)},
        ),
        *[
            Case(f"{fn.__name__}/batch", _masks(), fn, options={"batch": True})
            for fn in (
                la.binary_dice_loss,
                la.binary_jaccard_loss,
                la.binary_tversky_loss,
                la.binary_focal_tversky_loss,
            )
        ],
        Case(
            "dice_ce_loss/batch", _segmentation(), _total(la.dice_ce_loss), options={"batch": True}
        ),
        Case(
            "dice_focal_loss/batch",
            _segmentation(),
            _total(la.dice_focal_loss),
            options={"batch": True},
        ),
        Case(
            "dsc_loss/ignore",
            _segmentation(ignore=True),
            la.dsc_loss,
            options={"ignore_index": 255},
        ),
        Case("binary_dsc_loss", _masks(), la.binary_dsc_loss),
        Case("info_nce_loss", _embeddings(), la.info_nce_loss, grad=(0, 1), rows=True),
        Case(
            "info_nce_loss/gather-without-gradient",
            _embeddings(),
            la.info_nce_loss,
            grad=(0, 1),
            naive=naive_gather_info_nce,
        ),
        Case(
            "info_nce_loss/symmetric",
            _embeddings(),
            la.info_nce_loss,
            grad=(0, 1),
            rows=True,
            options={"symmetric": True, "temperature": 0.5},
        ),
        Case(
            "info_nce_loss/negatives",
            _embeddings(negatives=4),
            _info_nce_with_negatives,
            grad=(0, 1, 2),
            whole=(2,),
        ),
        Case("ghmc_loss", _ghm, _ghmc, whole=(), rows=True),
        Case("ghmr_loss", _ghmr_data, _ghmr, rows=True),
        Case("ssd_loss", _ssd, _total(la.ssd_loss), grad=(0, 1), whole=(2,)),
        Case(
            "lovasz_softmax_loss/batch",
            _segmentation(ignore=True),
            la.lovasz_softmax_loss,
            options={"ignore_index": 255},
        ),
        Case(
            "lovasz_softmax_loss/per_image",
            _segmentation(),
            la.lovasz_softmax_loss,
            rows=True,
            options={"per_image": True, "classes": "all"},
        ),
        Case(
            "lovasz_hinge_loss/batch",
            _lovasz_hinge,
            la.lovasz_hinge_loss,
            options={"per_image": False},
        ),
        # list losses: "mean" divides by a count summed over the ranks (pairs, or lists)
        Case("ranknet_loss", _lists, _masked(la.ranknet_loss), rows=True),
        Case("lambda_loss/k", _lists, _masked(la.lambda_loss), rows=True, options={"k": 3}),
        Case("listnet_loss", _lists, _masked(la.listnet_loss), rows=True),
        # metric losses over (embeddings, labels): every rank's rows gathered with gradient
        Case("supcon_loss/views", _labelled(views=2), la.supcon_loss, rows=True),
        Case(
            "supcon_loss/one", _labelled(views=2), la.supcon_loss, options={"contrast_mode": "one"}
        ),
        Case("multi_similarity_loss", _labelled(), la.multi_similarity_loss, rows=True),
        Case("circle_loss", _labelled(), la.circle_loss, options={"gamma": 8.0}, rows=True),
        *[
            Case(
                f"mined_triplet_loss/{mining}",
                _labelled(),
                la.mined_triplet_loss,
                rows=True,
                options={"mining": mining, "margin": 1.0},
            )
            for mining in ("all", "batch_hard", "batch_semi_hard")
        ],
        Case(
            "mined_triplet_loss/nonzero",
            _labelled(),
            la.mined_triplet_loss,
            options={"mean_over": "nonzero", "margin": 1.0, "mining": "all"},
        ),
        Case("lifted_structure_loss", _labelled(), la.lifted_structure_loss, rows=True),
        Case("npair_loss", _labelled(), la.npair_loss, rows=True),
        *[
            Case(
                f"mined_contrastive_loss/{mining}",
                _labelled(),
                la.mined_contrastive_loss,
                rows=True,
                options={"mining": mining, "neg_margin": 3.0},
            )
            for mining in ("all", "batch_hard")
        ],
        Case(
            "mined_contrastive_loss/nonzero",
            _labelled(),
            la.mined_contrastive_loss,
            options={"mean_over": "nonzero", "neg_margin": 3.0},
        ),
        Case("proxy_nca_loss", _with_proxies, la.proxy_nca_loss, grad=(0, 2), whole=(2,)),
        Case("proxy_anchor_loss", _with_proxies, la.proxy_anchor_loss, grad=(0, 2), whole=(2,)),
    ]


def run_all(rank: int, world: int, group: Any) -> dict[str, Any]:
    """Every case on every partition of this world size."""
    losses: dict[str, Any] = {}
    timings: dict[str, float] = {}
    for sizes in PARTITIONS[world]:
        for case in loss_cases():
            start = time.perf_counter()
            with la.fused(case.fused):
                losses[f"{case.name}@{sizes}"] = run_case(case, rank, world, group, sizes)
            timings[case.name] = timings.get(case.name, 0.0) + time.perf_counter() - start
    special: dict[str, Any] = {}
    for check in (
        check_group_of_one,
        check_mismatched_shards,
        check_ddp_models,
        check_compile,
        check_fallback_collectives,
        check_ghm_running_counts,
        check_example,
    ):
        start = time.perf_counter()
        with la.fused(False):
            special.update(check(rank, world, group))
        timings[check.__name__] = time.perf_counter() - start
    return {"losses": losses, "special": special, "timings": timings}


# --------------------------------------------------------------------------- special checks


def _result(ok: bool, detail: str = "") -> dict[str, Any]:
    return {"ok": bool(ok), "detail": detail}


def _by_name(name: str) -> Case:
    return next(case for case in loss_cases() if case.name == name)


def check_group_of_one(rank: int, world: int, group: Any) -> dict[str, Any]:
    """A group of one process gives exactly the local loss (bit for bit)."""
    solo = dist.new_group([0])  # collective: every rank creates it
    if rank != 0:
        return {"group of one": _result(True)}
    bad = []
    for name in ("cross_entropy/tokens", "dice_loss/batch", "info_nce_loss/symmetric", "ghmc_loss"):
        case = _by_name(name)
        inputs = case.make(_generator(case.name))
        local = case.loss(*inputs, **case.options)
        alone = case.loss(*inputs, process_group=solo, **case.options)
        if not torch.equal(local, alone):
            bad.append(f"{name}: {alone.item()} != {local.item()}")
    return {"group of one": _result(not bad, "; ".join(bad))}


def check_mismatched_shards(rank: int, world: int, group: Any) -> dict[str, Any]:
    """A rank whose class count / feature size differs: the same clear error on every rank."""
    g = torch.Generator().manual_seed(0)
    classes = 6 if rank == 1 else 5
    logits = torch.randn(3, classes, 4, generator=g, dtype=F64)
    target = torch.randint(0, classes, (3, 4), generator=g)
    dim = 6 if rank == 1 else 5
    query, key = torch.randn(3, dim, dtype=F64), torch.randn(3, dim, dtype=F64)
    attempts = {
        "mismatch: cross_entropy classes": lambda: la.cross_entropy(
            logits, target, process_group=group
        ),
        "mismatch: dice_loss batch classes": lambda: la.dice_loss(
            logits.unsqueeze(-1), target.unsqueeze(-1), batch=True, process_group=group
        ),
        "mismatch: info_nce_loss feature size": lambda: la.info_nce_loss(
            query, key, process_group=group
        ),
    }
    out = {}
    for name, attempt in attempts.items():
        try:
            attempt()
        except ValueError as error:
            message = str(error)
            expected = ("differs across the ranks", "rank 1 has shape", "rank 0 has")
            ok = all(part in message for part in expected)
            out[name] = _result(ok, message)
        else:
            out[name] = _result(False, "no error")
    # The ranks are still in step: a collective after the errors sums the ranks.
    probe = torch.ones(1)
    dist.all_reduce(probe, group=group)
    out["mismatch: ranks still in step"] = _result(probe.item() == world, str(probe.item()))
    return out


def _ddp_step(
    model: torch.nn.Module, group: Any, step: Callable[[torch.nn.Module], Tensor]
) -> tuple[float, list[Tensor]]:
    """One forward/backward of ``model`` wrapped in DDP; DDP averages the gradients."""
    from torch.nn.parallel import DistributedDataParallel

    ddp = DistributedDataParallel(model, process_group=group)
    value = step(ddp)
    value.backward()
    return value.item(), [p.grad.clone() for p in model.parameters()]


def check_ddp_models(rank: int, world: int, group: Any) -> dict[str, Any]:
    """A real DistributedDataParallel model: InfoNCE, batch Dice, token-mean cross-entropy."""
    import copy

    out: dict[str, Any] = {}
    g = torch.Generator().manual_seed(1)
    images = torch.randn(N, 2, 4, 4, generator=g, dtype=F64)
    masks = torch.randint(0, 3, (N, 4, 4), generator=g)
    tokens = torch.randn(N, 5, 3, generator=g, dtype=F64)
    labels = torch.randint(0, 4, (N, 5), generator=g)
    labels = torch.where(torch.rand(N, 5, generator=g) < 0.4, -100, labels)
    views = torch.randn(2, N, 6, generator=g, dtype=F64)

    def contrastive(model: torch.nn.Module, x: Tensor, pg: Any) -> Tensor:
        embedded = model(torch.cat([x[0], x[1]]))  # one forward for both views
        query, key = embedded[: x.shape[1]], embedded[x.shape[1] :]
        return la.info_nce_loss(query, key, symmetric=True, temperature=0.2, process_group=pg)

    def dice(model: torch.nn.Module, x: Tensor, y: Tensor, pg: Any) -> Tensor:
        return la.dice_loss(model(x), y, batch=True, process_group=pg)

    def token_ce(model: torch.nn.Module, x: Tensor, y: Tensor, pg: Any) -> Tensor:
        return la.cross_entropy(model(x).transpose(1, 2), y, process_group=pg)

    setups = {
        "ddp: info_nce_loss symmetric": (
            lambda: torch.nn.Sequential(
                torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 4)
            ),
            lambda m, lo, hi, pg: contrastive(m, views[:, lo:hi], pg),
        ),
        "ddp: dice_loss batch": (
            lambda: torch.nn.Conv2d(2, 3, 1),
            lambda m, lo, hi, pg: dice(m, images[lo:hi], masks[lo:hi], pg),
        ),
        "ddp: token-mean cross_entropy": (
            lambda: torch.nn.Linear(3, 4),
            lambda m, lo, hi, pg: token_ce(m, tokens[lo:hi], labels[lo:hi], pg),
        ),
    }
    for sizes in PARTITIONS[world]:
        lo = sum(sizes[:rank])
        hi = lo + sizes[rank]
        for name, (make_model, loss) in setups.items():
            torch.manual_seed(0)
            model = make_model().double()
            reference = copy.deepcopy(model)
            naive_model = copy.deepcopy(model)
            ref_value = loss(reference, 0, N, None)
            ref_value.backward()
            ref_grads = [p.grad for p in reference.parameters()]
            value, grads = _ddp_step(model, group, functools.partial(loss, lo=lo, hi=hi, pg=group))
            _, naive_grads = _ddp_step(
                naive_model, group, functools.partial(loss, lo=lo, hi=hi, pg=None)
            )
            ok = abs(value - ref_value.item()) <= RTOL * abs(ref_value.item()) and all(
                _close(a, b) for a, b in zip(grads, ref_grads, strict=True)
            )
            err = max(_rel(a, b) for a, b in zip(grads, ref_grads, strict=True))
            naive = max(_rel(a, b) for a, b in zip(naive_grads, ref_grads, strict=True))
            key = f"{name}@{sizes}"
            out[key] = _result(ok, f"gradient error {err:.3g}")
            out[f"{key} naive"] = _result(naive > 1e-3, f"naive gradient error {naive:.3g}")
            out[f"{key} naive"]["naive_grad_err"] = naive
    return out


def check_compile(rank: int, world: int, group: Any) -> dict[str, Any]:
    """``torch.compile(fullgraph=True)`` on the all-sum paths; the gather path breaks the graph.

    The aot_eager backend traces forward and backward (collectives included) without spending
    a minute on C++ per rank; inductor's lowering of the same collectives is torch's.
    """
    if world != 2:  # the traced collectives do not depend on the world size; compile once
        return {}
    torch._dynamo.reset()
    out = {}
    sizes = PARTITIONS[world][0]
    lo = sum(sizes[:rank])
    hi = lo + sizes[rank]
    for name in ("cross_entropy/tokens", "dice_loss/batch"):
        case = _by_name(name)
        inputs = case.make(_generator(case.name))
        leaf = inputs[0][lo:hi].clone().requires_grad_()
        rest = [t[lo:hi] for t in inputs[1:]]

        def fn(x: Tensor, *more: Tensor, _case: Case = case) -> Tensor:
            return _case.loss(x, *more, process_group=group, **_case.options)

        try:
            compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
            value = compiled(leaf, *rest)
            (grad,) = torch.autograd.grad(value, leaf)
            eager_leaf = leaf.detach().clone().requires_grad_()
            eager = fn(eager_leaf, *rest)
            (eager_grad,) = torch.autograd.grad(eager, eager_leaf)
            ok = _close(value.detach(), eager.detach()) and _close(grad, eager_grad)
            out[f"compile fullgraph: {name}"] = _result(ok, f"{value.item()} vs {eager.item()}")
        except Exception as error:  # a compile failure is the finding
            out[f"compile fullgraph: {name}"] = _result(False, repr(error)[:400])
    # The gathering losses are declared not capturable whole: fullgraph=True must refuse them.
    segmentation = _segmentation()(_generator("lovasz"))
    refused = {
        "info_nce_loss": (la.info_nce_loss, _embeddings()(_generator("nce")), {}),
        "lovasz_softmax_loss": (la.lovasz_softmax_loss, segmentation, {}),
    }
    assert set(refused) <= set(ld.GRAPH_BREAK_WITH_GROUP)
    for name, (loss, inputs, options) in refused.items():
        shard = [t[lo:hi] for t in inputs]

        def call(*args: Tensor, _loss: Callable = loss, _options: dict = options) -> Tensor:
            return _loss(*args, process_group=group, **_options)

        try:
            torch.compile(call, fullgraph=True, backend="aot_eager")(*shard)
            out[f"compile: {name} fullgraph refused"] = _result(False, "it compiled whole")
        except Exception as error:  # a graph break, not any other failure
            graph_break = isinstance(error, torch._dynamo.exc.Unsupported)
            out[f"compile: {name} fullgraph refused"] = _result(graph_break, repr(error)[:300])
    return out


def check_fallback_collectives(rank: int, world: int, group: Any) -> dict[str, Any]:
    """The ``torch.distributed.nn.functional`` fallback (older torch) gives the same results."""
    import warnings

    out = {}
    previous = ld.USE_FUNCTIONAL_COLLECTIVES
    ld.USE_FUNCTIONAL_COLLECTIVES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch deprecates the fallback in favour of funcol
            for name in ("cross_entropy/tokens", "dice_loss/batch", "info_nce_loss/symmetric"):
                for sizes in PARTITIONS[world]:
                    result = run_case(_by_name(name), rank, world, group, sizes)
                    ok = all(c["value_ok"] and c.get("grad_ok", True) for c in result.values())
                    out[f"fallback: {name}@{sizes}"] = _result(ok, str(result))
    finally:
        ld.USE_FUNCTIONAL_COLLECTIVES = previous
    return out


def check_ghm_running_counts(rank: int, world: int, group: Any) -> dict[str, Any]:
    """GHMCLoss(momentum): three training steps; running counts == one process's, every rank."""
    sizes = PARTITIONS[world][1]
    lo = sum(sizes[:rank])
    hi = lo + sizes[rank]
    shared = la.nn.GHMCLoss(momentum=0.75, process_group=group)
    single = la.nn.GHMCLoss(momentum=0.75)
    g = torch.Generator().manual_seed(3)
    ok, worst = True, 0.0
    for _ in range(3):
        logits, target, weight = _ghm(g)
        value = shared(logits[lo:hi], target[lo:hi], weight[lo:hi])
        reference = single(logits, target, weight)
        ok = ok and _close(value, reference) and _close(shared.acc_sum, single.acc_sum)
        worst = max(worst, _rel(shared.acc_sum, single.acc_sum))
    return {"ghmc module running counts": _result(ok, f"acc_sum error {worst:.3g}")}


def check_example(rank: int, world: int, group: Any) -> dict[str, Any]:
    """``examples/ddp_contrastive.py``'s losses on its uneven shards == one process's."""
    import importlib.util
    from pathlib import Path

    if world != 2:  # the example shards its batch over two processes
        return {}
    path = Path(__file__).resolve().parents[2] / "examples" / "ddp_contrastive.py"
    spec = importlib.util.spec_from_file_location("ddp_contrastive", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    torch.manual_seed(0)
    model = example.Tiny()
    pieces = [example.batch(0, r, world) for r in range(world)]
    whole = (
        torch.cat([p[0] for p in pieces], dim=1),
        torch.cat([p[1] for p in pieces]),
        torch.cat([p[2] for p in pieces]),
    )
    exact = example.losses(model, pieces[rank], group).detach()
    single = example.losses(model, whole, None).detach()
    # float32 model: the sums run in another order than in one process
    ok = torch.allclose(exact, single, rtol=1e-5, atol=1e-6)
    return {"example losses": _result(ok, f"{exact.tolist()} vs {single.tolist()}")}
