r"""Perceptual (feature reconstruction) loss over a feature extractor the caller supplies.

Johnson et al.'s loss compares images in the feature space of a network (usually a frozen
VGG) instead of pixel space. lossatlas downloads nothing: pass any extractor -- an
``nn.Module`` or callable returning a tensor, a list/tuple of maps, or a dict of named maps
(e.g. a ``torchvision.models.feature_extraction.create_feature_extractor`` model) -- and pick
the maps with ``layers``. Freeze it and put it in eval mode yourself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

import torch
from torch import Tensor

from lossatlas import _examples as ex
from lossatlas._catalog import Example, Family
from lossatlas._module import LossModule
from lossatlas._options import Check, NonNegative
from lossatlas._reduction import Reduction, compute_dtype, reduce_loss, upcast
from lossatlas._validation import (
    check_dim,
    check_floating,
    check_same_shape,
    describe,
    suggest,
)

__all__ = ["perceptual_loss"]

#: How two feature maps are compared: mean absolute or mean squared difference.
PerceptualDistance = Literal["l1", "l2"]

Features = Callable[[Tensor], Any]


def _check_layer_keys(name: str, layers: Sequence[Any]) -> None:
    if not len(layers):
        raise ValueError(f"{name} must be a non-empty sequence of map keys, got {layers!r}")


#: ``None`` (every map) or a non-empty sequence of list positions / dict keys.
Layers = (
    Annotated[
        Sequence[Any],
        Check(_check_layer_keys, invalid=((),), description="a non-empty sequence of map keys"),
    ]
    | None
)


def _feature_maps(output: Any, what: str) -> dict[Any, Tensor]:
    """The extractor's output as ``{key: map}`` (list positions or dict keys)."""
    if isinstance(output, Tensor):
        maps: dict[Any, Any] = {0: output}
    elif isinstance(output, Mapping):
        maps = dict(output)
    elif isinstance(output, (list, tuple)):
        maps = dict(enumerate(output))
    else:
        raise TypeError(
            "features must return a tensor, a list/tuple of tensors or a dict of tensors, got "
            f"{describe(output)} for {what}"
        )
    for key, value in maps.items():
        if not isinstance(value, Tensor) or not value.is_floating_point():
            raise TypeError(
                f"features returned {describe(value)} for map {key!r} of {what}; expected a "
                "floating-point tensor"
            )
    return maps


def _check_weights_per_layer(layers: Sequence[Any] | None, weights: Sequence[float] | None) -> None:
    if weights is not None and layers is not None and len(weights) != len(layers):
        raise ValueError(
            f"weights must have one entry per layer ({len(layers)}), got {len(weights)}"
        )


def _select(maps: dict[Any, Tensor], layers: Sequence[Any] | None) -> list[Any]:
    if layers is None:
        return list(maps)
    keys = list(maps)
    for layer in layers:
        if layer not in maps:
            hint = suggest(layer, [str(k) for k in keys]) if isinstance(layer, str) else ""
            raise ValueError(
                f"layers names {layer!r}, but the features have the maps {keys!r}.{hint}"
            )
    return list(layers)


def _example_features(x: Tensor) -> list[Tensor]:
    """A fixed three-map extractor for the catalog example (works in every dtype)."""
    return [x, torch.tanh(x), x.mean(dim=1, keepdim=True)]


def _example(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    x = ex.normal(generator, batch, 2, 3, 3, dtype=dtype, scale=scale)
    y = ex.normal(generator, batch, 2, 3, 3, dtype=dtype)
    return Example(
        (x, y), {"features": _example_features, "weights": [1.0, 0.5, 2.0]}, grad_args=(0, 1)
    )


def _perfect(
    generator: torch.Generator, *, batch: int, dtype: torch.dtype, scale: float
) -> Example:
    x = ex.normal(generator, batch, 2, 3, 3, dtype=dtype, scale=scale)
    return Example((x, x.clone()), {"features": _example_features})


_PERCEPTUAL = Family(
    tasks=("generative", "regression", "image"),
    input_kind="images (or any samples)",
    target_kind="images of the same shape",
)


@_PERCEPTUAL.loss(
    formula=r"\sum_l w_l \frac{1}{C_l H_l W_l}\lVert \phi_l(x) - \phi_l(y) \rVert_p^p",
    properties={"non_negative", "zero_at_perfect", "symmetric"},
    examples=_example,
    perfect=_perfect,
    same_shape=(0, 1),
)
def perceptual_loss(
    input: Tensor,
    target: Tensor,
    *,
    features: Features,
    layers: Layers = None,
    weights: Sequence[NonNegative] | None = None,
    distance: PerceptualDistance = "l1",
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Distance between the feature maps of ``input`` and ``target`` under an extractor.

    For each selected map ``l`` the per-sample distance is the mean over the map's elements of
    ``|phi_l(x) - phi_l(y)|`` (``"l1"``) or its square (``"l2"``, Johnson et al.'s
    normalised squared Euclidean distance); the sample's loss is the weighted sum over maps.
    With an identity extractor it is :func:`torch.nn.functional.l1_loss` /
    :func:`~torch.nn.functional.mse_loss` on the inputs (``"mean"``).

    .. math::
        \ell_n = \sum_{l} w_l \frac{1}{C_l H_l W_l}
                 \big\lVert \phi_l(x_n) - \phi_l(y_n) \big\rVert_p^p,\quad p \in \{1, 2\}

    Args:
        input: Predictions ``(N, ...)``, e.g. images ``(N, C, H, W)``.
        target: Same shape.
        features: The extractor: an ``nn.Module`` or callable returning a tensor, a
            list/tuple of maps or a dict of maps, each ``(N, ...)``. Gradients flow through it
            to ``input`` (freeze its parameters if they should not train).
        layers: The maps to compare: list positions or dict keys; ``None`` takes all.
        weights: One non-negative weight per selected map (``None``: 1 each).
        distance: ``"l1"`` | ``"l2"`` (mean squared difference).
        reduction: ``"none"`` | ``"mean"`` | ``"sum"`` over the batch; ``"mean"`` divides by
            ``N``.

    Returns:
        ``(N,)`` for ``"none"``, else a scalar; float32 for half-precision maps.

    Raises:
        TypeError: Non-floating inputs, a non-callable ``features`` or one that returns
            something else than tensors, non-numeric weights.
        ValueError: Shapes that differ, an unknown layer key (with a suggestion), a map
            without the batch dimension, ``weights`` of the wrong length or negative, a bad
            ``distance``.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> x, y = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]])
        >>> la.perceptual_loss(x, y, features=torch.nn.Identity())  # mean |x - y|
        tensor(1.5000)
        >>> two_maps = lambda t: [t, 2 * t]  # 2.5 + 0.5 * mean(4, 16)
        >>> la.perceptual_loss(x, y, features=two_maps, weights=[1.0, 0.5], distance="l2")
        tensor(7.5000)

    References:
        J. Johnson, A. Alahi and L. Fei-Fei, Perceptual Losses for Real-Time Style Transfer and
        Super-Resolution, ECCV 2016, https://arxiv.org/abs/1603.08155
    """
    _check_weights_per_layer(layers, weights)
    check_floating("input", input)
    check_floating("target", target)
    check_dim("input", input, min_dim=1, what="(a batch dimension first)")
    check_same_shape("input", input, "target", target)
    maps_x = _feature_maps(features(input), "input")
    maps_y = _feature_maps(features(target), "target")
    keys = _select(maps_x, layers)
    if weights is not None and layers is None and len(weights) != len(keys):
        raise ValueError(
            f"weights must have one entry per feature map ({len(keys)}), got {len(weights)}"
        )
    batch = input.shape[0]
    dtype = compute_dtype(input, target, *maps_x.values(), *maps_y.values())
    total = torch.zeros(batch, dtype=dtype, device=input.device)
    for i, key in enumerate(keys):
        fx, fy = maps_x[key], maps_y[key]
        if fx.dim() == 0 or fx.shape[0] != batch:
            raise ValueError(
                f"feature map {key!r} must have the batch size {batch} first, got shape "
                f"{tuple(fx.shape)}"
            )
        check_same_shape(f"feature map {key!r} of input", fx, f"feature map {key!r} of target", fy)
        diff = upcast(fx, dtype) - upcast(fy, dtype)
        per_element = diff.abs() if distance == "l1" else diff.square()
        if fx.shape[1:].numel() == 0:  # an empty map contributes nothing (not 0/0)
            continue
        per_sample = per_element.flatten(1).mean(1)
        weight = 1.0 if weights is None else float(weights[i])
        total = total + weight * per_sample
    return reduce_loss(total, reduction)


class PerceptualLoss(LossModule, functional=perceptual_loss):
    """Module form of :func:`lossatlas.perceptual_loss`; holds the extractor as a submodule.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> loss = la.nn.PerceptualLoss(features=torch.nn.Identity(), distance="l2")
        >>> loss(torch.ones(2, 3), torch.zeros(2, 3))
        tensor(1.)
    """
