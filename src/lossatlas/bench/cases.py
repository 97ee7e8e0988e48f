"""The built-in benchmark cases of ``lossatlas bench``.

Each factory takes ``quick`` (small sizes for a smoke run) and returns a
:class:`~lossatlas.bench.engine.Case`: lossatlas's implementation, the alternatives a user would
otherwise reach for, and a floor (the cheapest thing that does comparable work). Alternatives
that cannot run here -- an optional peer library (kornia, MONAI) not installed, a torch without
``F.linear_cross_entropy``, a lossatlas loss not in this version -- are listed as skipped with
the reason. In ``quick`` mode the ``torch.compile`` variants are skipped too: compiling takes
longer than the whole smoke run.

The snippets from the seed articles are reproduced as published (the maths, with only what is
needed to run on these inputs); the torchvision formula is written out with ordinary ops, since
torchvision is not a dependency (``torchvision.ops.sigmoid_focal_loss``, v0.15).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import lossatlas as la
from lossatlas.bench.engine import Case, Variant

_QUICK_COMPILE = "--quick skips torch.compile variants (compiling outlasts the smoke run)"


def _generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _peer(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _fresh(*tensors: Tensor, grads: int = 1) -> Callable[[], tuple[Tensor, ...]]:
    """A case's ``inputs()``: fresh leaf copies of the first ``grads`` tensors, then the rest."""

    def inputs() -> tuple[Tensor, ...]:
        return (*(t.clone().requires_grad_(True) for t in tensors[:grads]), *tensors[grads:])

    return inputs


#: The floors: the plain torch loss the variants' times are divided by.
_BCE = Variant("F.binary_cross_entropy_with_logits", loss=F.binary_cross_entropy_with_logits)
_CE = Variant("F.cross_entropy", loss=F.cross_entropy)


def _sparse_binary(*shape: int) -> Callable[[], tuple[Tensor, ...]]:
    """Logits ``2 N(0, 1)`` and 0/1 targets with about 10 % ones, both of ``shape``."""
    gen = _generator()
    logits = torch.randn(*shape, generator=gen) * 2
    target = (torch.rand(*shape, generator=gen) < 0.1).float()
    return _fresh(logits, target)


def _class_logits(n: int, c: int) -> Callable[[], tuple[Tensor, ...]]:
    """``(n, c)`` logits ``2 N(0, 1)`` and ``n`` uniform class indices."""
    gen = _generator()
    logits = torch.randn(n, c, generator=gen) * 2
    target = torch.randint(0, c, (n,), generator=gen)
    return _fresh(logits, target)


def _fused_off(name: str, fn: Callable[..., Tensor]) -> Variant:
    """``fn`` with lossatlas's compiled fused kernels switched off (the same kernel op by op)."""

    def run(*inputs: Tensor) -> Tensor:
        with la.fused(False):
            return fn(*inputs)

    return Variant(f"{name} (fused off)", loss=run, note="la.fused(False): kernel op by op")


class _Variants:
    """The variants of a case as they are gathered, and those that cannot run here (skipped).

    The first variant is the floor.
    """

    def __init__(self, floor: Variant, *variants: Variant) -> None:
        self.variants = [floor, *variants]
        self.skipped: list[tuple[str, str]] = []

    def add(self, *variants: Variant) -> None:
        self.variants.extend(variants)

    def skip(self, name: str, reason: str) -> None:
        self.skipped.append((name, reason))

    def ours(
        self,
        name: str,
        *,
        fused_off: bool = False,
        ours: bool = True,
        call: Callable[[Callable[..., Tensor]], Callable[..., Tensor]] | None = None,
    ) -> Callable[..., Tensor] | None:
        """Add ``la.<name>`` (through ``call`` if given); ``None`` when this version lacks it."""
        function = getattr(la, name, None)
        if not callable(function):
            self.skip(f"lossatlas {name}", f"la.{name} is not in this version of lossatlas")
            return None
        loss = function if call is None else call(function)
        self.add(Variant(f"lossatlas {name}", loss=loss, ours=ours))
        if fused_off:
            self.add(_fused_off(f"lossatlas {name}", function))
        return function

    def peer(self, module: str, name: str, loss: Callable[[Any], Callable[..., Tensor]]) -> None:
        """Add ``loss(module)`` as ``name`` when the optional peer ``module`` is installed."""
        found = _peer(module)
        if found is None:
            self.skip(name, f"{module.split('.')[0]} is not installed")
        else:
            self.add(Variant(name, loss=loss(found)))

    def compiled(self, fn: Callable[..., Tensor], name: str, quick: bool) -> None:
        if quick:
            self.skip(name, _QUICK_COMPILE)
        else:
            self.add(Variant(name, loss=torch.compile(fn)))

    def case(self, name: str, description: str, inputs: Callable[[], tuple[Tensor, ...]]) -> Case:
        floor = self.variants[0].name
        return Case(name, description, inputs, self.variants, floor=floor, skipped=self.skipped)


# --------------------------------------------------------------------------- focal (sigmoid)


def torchvision_sigmoid_focal(
    x: Tensor, t: Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> Tensor:
    """``torchvision.ops.sigmoid_focal_loss`` (v0.15) with ``reduction="mean"``, op by op."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** gamma)
    alpha_t = alpha * t + (1 - alpha) * (1 - t)
    return (alpha_t * loss).mean()


def seed_yolo_focal(pred: Tensor, label: Tensor, gamma: float = 2.0, alpha: float = 0.25) -> Tensor:
    """``seeds/002_*`` ``FocalLoss.forward`` (the YOLO / TF-addons form), mean reduction."""
    loss = F.binary_cross_entropy_with_logits(pred, label, reduction="none")
    pred_prob = pred.sigmoid()
    p_t = label * pred_prob + (1 - label) * (1 - pred_prob)
    modulating_factor = (1.0 - p_t) ** gamma
    loss *= modulating_factor
    if alpha > 0:
        alpha_factor = label * alpha + (1 - label) * (1 - alpha)
        loss *= alpha_factor
    return loss.mean()


def seed_probability_focal(
    logits: Tensor, labels: Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> Tensor:
    """``seeds/002_*`` ``Focal_Loss.forward`` on ``sigmoid(logits)`` (eps=1e-7 inside logs)."""
    preds = torch.sigmoid(logits)
    eps = 1e-7
    loss_1 = -1 * alpha * torch.pow((1 - preds), gamma) * torch.log(preds + eps) * labels
    loss_0 = -1 * (1 - alpha) * torch.pow(preds, gamma) * torch.log(1 - preds + eps) * (1 - labels)
    return torch.mean(loss_0 + loss_1)


def binary_focal(quick: bool) -> Case:
    """Sigmoid focal loss: lossatlas, torchvision-style, the seeds, kornia, compiled; BCE floor."""
    rows = 8192 if quick else 1 << 20  # x 4 columns: 32k or 4M logits
    found = _Variants(_BCE)
    found.ours("binary_focal_loss", fused_off=True)
    found.add(
        Variant("torchvision-style eager focal", loss=torchvision_sigmoid_focal),
        Variant("seeds/002 YOLO FocalLoss", loss=seed_yolo_focal),
        Variant(
            "seeds/002 Focal_Loss (probabilities)",
            loss=seed_probability_focal,
            note="log(p + 1e-7): not the same maths for confident predictions",
        ),
    )
    found.peer(
        "kornia.losses",
        "kornia binary_focal_loss_with_logits",
        lambda kornia: (
            lambda x, t: kornia.binary_focal_loss_with_logits(
                x, t, alpha=0.25, gamma=2.0, reduction="mean"
            )
        ),
    )
    found.compiled(torchvision_sigmoid_focal, "torch.compile(torchvision-style)", quick)
    return found.case(
        "binary_focal",
        f"sigmoid focal loss (alpha=0.25, gamma=2), {rows * 4:,} logits, float32, forward+backward",
        _sparse_binary(rows, 4),
    )


# --------------------------------------------------------------------------- focal (softmax)


def eager_softmax_focal(x: Tensor, y: Tensor, gamma: float = 2.0) -> Tensor:
    """Per-sample softmax focal loss with ordinary ops (Lin et al. 2017, no alpha)."""
    log_p = F.log_softmax(x, dim=1).gather(1, y.unsqueeze(1)).squeeze(1)
    return (-((1 - log_p.exp()) ** gamma) * log_p).mean()


def seed_multiclass_focal(preds: Tensor, labels: Tensor, gamma: float = 2.0) -> Tensor:
    """``seeds/002_*`` multi-class ``FocalLoss.forward`` (alpha=0.25 -> [0.25, 0.75, ...])."""
    alpha = torch.full((preds.shape[1],), 0.75, dtype=preds.dtype)
    alpha[0] = 0.25
    log_soft = F.log_softmax(preds, dim=1)
    soft = torch.exp(log_soft).gather(1, labels.view(-1, 1))
    nulloss = F.nll_loss(log_soft, labels, weight=alpha, reduction="none").view(-1, 1)
    loss = torch.mul((1 - soft) ** gamma, nulloss)
    return loss.mean()


def softmax_focal(quick: bool) -> Case:
    """Softmax focal loss: lossatlas, eager per-sample, the seeds, compiled; CE floor."""
    n, c = (8192, 8) if quick else (500_000, 8)
    found = _Variants(_CE)
    found.ours("focal_loss", fused_off=True)
    found.add(
        Variant("eager per-sample focal", loss=eager_softmax_focal),
        Variant(
            "seeds/002 multi-class FocalLoss",
            loss=seed_multiclass_focal,
            note="the seed's per-class alpha [0.25, 0.75, ...] (NLL weights)",
        ),
    )
    found.compiled(eager_softmax_focal, "torch.compile(eager focal)", quick)
    return found.case(
        "softmax_focal",
        f"softmax focal loss (gamma=2), N={n:,}, C={c}, float32, forward+backward",
        _class_logits(n, c),
    )


# --------------------------------------------------------------------------- Dice


def seed_multiclass_dice(inputs: Tensor, targets: Tensor) -> Tensor:
    """``seeds/000_*`` ``DiceLoss.forward`` without weights (foreground classes 1..C-1).

    The seed sums ``dim=(2, 3)`` of the ``(N, H, W)`` class slices, which raises; summing the
    spatial dims ``(1, 2)`` is the evident intent and is what runs here.
    """
    num_classes = inputs.size(1)
    inputs_soft = F.softmax(inputs, dim=1)
    dice = inputs.new_zeros(())
    for i in range(1, num_classes):
        input_i = inputs_soft[:, i]
        target_i = (targets == i).float()
        intersection = (input_i * target_i).sum(dim=(1, 2))
        union = input_i.sum(dim=(1, 2)) + target_i.sum(dim=(1, 2))
        dice = dice + (2.0 * intersection / (union + 1e-7)).mean()
    return 1 - dice / float(num_classes - 1)


def seed_binary_dice(inputs: Tensor, targets: Tensor, smooth: float = 1.0) -> Tensor:
    """``seeds/002_*`` ``DiceLoss.forward``: sigmoid, flatten, ``smooth=1``."""
    inputs = torch.sigmoid(inputs).reshape(-1)
    targets = targets.reshape(-1)
    intersection = (inputs * targets).sum()
    dice = (2.0 * intersection + smooth) / (inputs.sum() + targets.sum() + smooth)
    return 1 - dice


def dice(quick: bool) -> Case:
    """Softmax Dice on class indices: lossatlas, MONAI, the seeds; CE floor."""
    n, c, side = (2, 4, 64) if quick else (8, 4, 256)
    gen = _generator()
    logits = torch.randn(n, c, side, side, generator=gen)
    labels = torch.randint(0, c, (n, side, side), generator=gen)

    def monai_softmax_dice(monai: Any) -> Callable[..., Tensor]:
        monai_dice = monai.DiceLoss(softmax=True, to_onehot_y=True)
        return lambda x, y: monai_dice(x, y.unsqueeze(1))

    found = _Variants(_CE)
    found.ours("dice_loss", fused_off=True)
    found.peer("monai.losses", "MONAI DiceLoss(softmax=True)", monai_softmax_dice)
    found.add(
        Variant(
            "seeds/000 multi-class Dice",
            loss=seed_multiclass_dice,
            note="foreground classes only, its own smoothing",
        )
    )
    return found.case(
        "dice",
        f"softmax Dice, class indices, N={n}, C={c}, {side}x{side}, float32",
        _fresh(logits, labels),
    )


def binary_dice(quick: bool) -> Case:
    """Sigmoid global Dice: lossatlas, MONAI, the seeds; BCE floor."""
    n, side = (2, 64) if quick else (8, 512)
    gen = _generator()
    logits = torch.randn(n, 1, side, side, generator=gen)
    masks = (torch.rand(n, 1, side, side, generator=gen) > 0.7).float()

    found = _Variants(_BCE)
    found.ours(
        "binary_dice_loss",
        call=lambda ours: lambda x, t: ours(x, t, batch=True, smooth_nr=1.0, smooth_dr=1.0),
    )
    found.peer(
        "monai.losses",
        "MONAI DiceLoss(sigmoid=True)",
        lambda monai: monai.DiceLoss(sigmoid=True, batch=True, smooth_nr=1.0, smooth_dr=1.0),
    )
    found.add(Variant("seeds/002 binary Dice", loss=seed_binary_dice))
    return found.case(
        "binary_dice",
        f"sigmoid Dice (global over the batch, smooth=1), N={n}, 1x{side}x{side}, float32",
        _fresh(logits, masks),
    )


# --------------------------------------------------------------------------- BCE family


def bce_family(quick: bool) -> Case:
    """The BCE family on logits against ``F.binary_cross_entropy_with_logits``."""
    n = 32_768 if quick else 4_194_304
    found = _Variants(
        _BCE,
        Variant(
            "F.binary_cross_entropy(sigmoid(x))",
            loss=lambda x, t: F.binary_cross_entropy(torch.sigmoid(x), t),
        ),
    )
    first = True
    for name in ("binary_cross_entropy_with_logits", "balanced_binary_cross_entropy", "ghmc_loss"):
        if found.ours(name, ours=first) is not None:
            first = False
    return found.case(
        "bce",
        f"the BCE family on logits, {n:,} elements, float32, forward+backward",
        _sparse_binary(n),
    )


# --------------------------------------------------------------------------- LM head


def _three_gemms(inputs: Any) -> None:
    """The three matrix products of forward+backward: ``hW^T``, ``G W``, ``G^T h``."""
    hidden, weight = inputs[0], inputs[1]
    with torch.no_grad():
        grad = hidden @ weight.T
        grad @ weight
        grad.T @ hidden


def eager_linear_cross_entropy(input: Tensor, linear_weight: Tensor, target: Tensor) -> Tensor:
    """``F.cross_entropy(F.linear(input, linear_weight), target)``: the unfused head."""
    return F.cross_entropy(F.linear(input, linear_weight), target)


def _lm_head(vocab: int, quick: bool) -> Case:
    n, h, v = (256, 64, vocab // 16) if quick else (2048, 1024, vocab)
    gen = _generator()
    hidden = torch.randn(n, h, generator=gen)
    weight = torch.randn(v, h, generator=gen) * h**-0.5
    target = torch.randint(0, v, (n,), generator=gen)

    found = _Variants(
        Variant(
            "bare GEMMs (3 matmuls)",
            step=_three_gemms,
            note="h W^T, G W and G^T h with no loss at all: the floor",
        )
    )
    ours = found.ours("linear_cross_entropy")
    if ours is not None:
        # torch's names: linear_weight is the projection, weight= the per-class weights.
        class_weight = torch.rand(v, generator=gen) + 0.5
        found.add(
            Variant(
                "lossatlas linear_cross_entropy (class weights)",
                loss=lambda x, w, y: ours(x, w, y, weight=class_weight),
                note="weight=(V,) class weights, as F.linear_cross_entropy names them",
            )
        )
    found.add(Variant("eager F.linear + F.cross_entropy", loss=eager_linear_cross_entropy))
    torch_lce = getattr(F, "linear_cross_entropy", None)
    options_cls = getattr(torch.nn, "LinearCrossEntropyOptions", None)
    chunked = "torch F.linear_cross_entropy (chunked, auto)"
    if torch_lce is None or options_cls is None:
        found.skip(chunked, f"torch {torch.__version__} has no chunked F.linear_cross_entropy")
    elif quick:
        found.skip(chunked, "--quick skips it: seconds of fixed cost per call even at smoke sizes")
    else:
        found.add(Variant(chunked, loss=lambda x, w, y: torch_lce(x, w, y, options=options_cls())))
    found.compiled(eager_linear_cross_entropy, "torch.compile(F.linear + F.cross_entropy)", quick)
    return found.case(
        f"linear_cross_entropy_{vocab // 1024}k",
        f"LM head: N={n}, H={h}, V={v:,}, float32, forward+backward",
        _fresh(hidden, weight, target, grads=2),
    )


def linear_cross_entropy_32k(quick: bool) -> Case:
    """LM head with V=32768 (quick: V=2048, N=256, H=64)."""
    return _lm_head(32768, quick)


def linear_cross_entropy_16k(quick: bool) -> Case:
    """LM head with V=16384 (quick: V=1024, N=256, H=64)."""
    return _lm_head(16384, quick)


# --------------------------------------------------------------------------- fused heads


def eager_distillation(sh: Tensor, sw: Tensor, th: Tensor, tw: Tensor, y: Tensor) -> Tensor:
    """``la.distillation_loss`` on the full ``N x V`` logits of both heads: the unfused path."""
    return la.distillation_loss(sh @ sw.T, th @ tw.T, y, temperature=2.0, alpha=0.5)


def eager_sequence_log_probs(hidden: Tensor, weight: Tensor, labels: Tensor) -> Tensor:
    """``la.sequence_log_probs`` on the full ``B x T x V`` logits, summed to a scalar."""
    return la.sequence_log_probs(hidden @ weight.T, labels).sum()


def _head_sizes(quick: bool) -> tuple[int, int, int]:
    return (128, 32, 1024) if quick else (1024, 512, 16384)


def linear_distillation(quick: bool) -> Case:
    """Student and frozen teacher heads (quick: N=128, H=32, V=1024)."""
    n, h, v = _head_sizes(quick)
    gen = _generator()
    student = torch.randn(n, h, generator=gen)
    student_w = torch.randn(v, h, generator=gen) * h**-0.5
    teacher = torch.randn(n, h, generator=gen)
    teacher_w = torch.randn(v, h, generator=gen) * h**-0.5
    target = torch.randint(0, v, (n,), generator=gen)
    eager = "eager distillation_loss on hW^T (unfused)"
    found = _Variants(Variant(eager, loss=eager_distillation))
    ours = found.ours(
        "linear_distillation_loss",
        call=lambda f: lambda *a: f(*a, temperature=2.0, alpha=0.5),
    )
    if ours is not None:
        found.add(
            Variant(
                "lossatlas linear_distillation_loss (chunk_size=256)",
                loss=lambda *a: ours(*a, temperature=2.0, alpha=0.5, chunk_size=256),
                note="the automatic chunk (64 MiB of logits) covers all N here: one chunk",
            )
        )
    return found.case(
        "linear_distillation",
        f"distillation heads: N={n}, H={h}, V={v:,}, T=2, alpha=0.5, teacher frozen, "
        "float32, forward+backward",
        _fresh(student, student_w, teacher, teacher_w, target, grads=2),
    )


def linear_sequence_log_probs(quick: bool) -> Case:
    """Per-sequence log-probs from the LM head (quick: B*T=128, H=32, V=1024)."""
    n, h, v = _head_sizes(quick)
    gen = _generator()
    hidden = torch.randn(4, n // 4, h, generator=gen)
    weight = torch.randn(v, h, generator=gen) * h**-0.5
    labels = torch.randint(0, v, (4, n // 4), generator=gen)
    labels[:, : n // 16] = -100  # the prompt
    eager = "eager sequence_log_probs on hW^T (unfused)"
    found = _Variants(Variant(eager, loss=eager_sequence_log_probs))
    ours = found.ours("linear_sequence_log_probs", call=lambda f: lambda *a: f(*a).sum())
    if ours is not None:
        found.add(
            Variant(
                "lossatlas linear_sequence_log_probs (chunk_size=256)",
                loss=lambda *a: ours(*a, chunk_size=256).sum(),
                note="the automatic chunk (64 MiB of logits) covers all B*T here: one chunk",
            )
        )
    return found.case(
        "linear_sequence_log_probs",
        f"sequence log-probs: B=4, T={n // 4}, H={h}, V={v:,}, float32, forward+backward",
        _fresh(hidden, weight, labels, grads=2),
    )


# --------------------------------------------------------------------------- InfoNCE


def unchunked_info_nce(query: Tensor, key: Tensor, temperature: float = 0.07) -> Tensor:
    """``F.cross_entropy`` over the full ``N x N`` cosine logits (the usual implementation)."""
    q = F.normalize(query, dim=1)
    k = F.normalize(key, dim=1)
    logits = q @ k.T / temperature
    return F.cross_entropy(logits, torch.arange(q.shape[0], device=q.device))


def info_nce(quick: bool) -> Case:
    """InfoNCE with in-batch negatives: lossatlas (chunked over keys) vs the full logits."""
    n, d = (1024, 64) if quick else (8192, 256)
    gen = _generator()
    query = torch.randn(n, d, generator=gen)
    key = torch.randn(n, d, generator=gen)

    found = _Variants(
        Variant(
            "unchunked (F.cross_entropy on N x N logits)",
            loss=unchunked_info_nce,
            note=f"the full logits alone are {n * n * 4 / 2**20:.0f} MB in float32",
        )
    )
    found.ours("info_nce_loss")
    return found.case(
        "info_nce",
        f"InfoNCE, in-batch negatives, N={n:,}, D={d}, float32, forward+backward",
        _fresh(query, key, grads=2),
    )


# --------------------------------------------------------------------------- first call


def _forced_compile(name: str, fn: Callable[..., Tensor]) -> Variant:
    """``fn`` with its fused kernel compiled whatever the input size (what the default avoids)."""

    def run(*inputs: Tensor) -> Tensor:
        with la.fused(True, min_numel=0):
            return fn(*inputs)

    return Variant(
        f"{name} (compiled kernel forced)",
        loss=run,
        note="la.fused(True, min_numel=0): the compile the default path skips on small inputs",
    )


def _first_call_case(
    name: str, floor: Variant, loss: str, inputs: Callable[[], tuple[Tensor, ...]], quick: bool
) -> Case:
    found = _Variants(floor)
    ours = found.ours(loss)
    if ours is not None and quick:
        found.skip(f"lossatlas {loss} (compiled kernel forced)", _QUICK_COMPILE)
    elif ours is not None:
        found.add(_forced_compile(f"lossatlas {loss}", ours))
    shape = " x ".join(str(size) for size in inputs()[0].shape)
    description = f"first call of {loss}: fresh process, empty compile cache, {shape} float32"
    return dataclasses.replace(found.case(name, description, inputs), first_call=True)


def first_call_binary_focal(quick: bool) -> Case:
    """First-call latency of ``binary_focal_loss`` against BCE with logits (64 x 4)."""
    inputs = _sparse_binary(64, 4)
    return _first_call_case("first_call_binary_focal", _BCE, "binary_focal_loss", inputs, quick)


def first_call_focal(quick: bool) -> Case:
    """First-call latency of ``focal_loss`` (softmax) against ``F.cross_entropy`` (64 x 10)."""
    return _first_call_case("first_call_focal", _CE, "focal_loss", _class_logits(64, 10), quick)


#: Case name -> factory(quick). ``lossatlas bench`` runs them in this order.
CASES: dict[str, Callable[[bool], Case]] = {
    "binary_focal": binary_focal,
    "softmax_focal": softmax_focal,
    "dice": dice,
    "binary_dice": binary_dice,
    "bce": bce_family,
    "linear_cross_entropy_16k": linear_cross_entropy_16k,
    "linear_cross_entropy_32k": linear_cross_entropy_32k,
    "linear_distillation": linear_distillation,
    "linear_sequence_log_probs": linear_sequence_log_probs,
    "info_nce": info_nce,
    "first_call_binary_focal": first_call_binary_focal,
    "first_call_focal": first_call_focal,
}
