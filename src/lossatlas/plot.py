"""Draw catalog losses and their gradients, with parameter sweeps (the seeds' pictures).

Each declaration's ``curve`` field (:data:`lossatlas._catalog.CURVES`) says how a loss becomes a
curve of one variable:

* ``residual`` -- regression losses, ``loss(input=r, target=0)`` against the residual ``r``;
* ``binary-logit`` -- sigmoid losses, ``loss(logit, target=1)`` against ``p = sigmoid(logit)``,
  the predicted probability of the true class;
* ``class-logit`` -- softmax losses on logits ``[z, 0, ..., 0]`` with the true class 0 (two
  classes, or as many as the declared example has), against its probability ``p``;
* ``margin`` -- margin losses, ``loss(score=m, target=+1)`` against the margin ``y f = m``.

The gradient panel shows ``d loss / d input`` (the residual, the logit or the score), the
quantity backpropagation sees.

A loss of many inputs (Dice on masks, IoU on boxes, InfoNCE on embeddings) has no such curve;
:func:`loss_path` and :func:`plot_loss_path` draw it along a path through its declared example
inputs instead: from the example to a perfect prediction where the declaration gives one, else
through the example along its steepest descent. Matplotlib is optional (the ``plot`` extra) and
imported lazily.

The seeds' pictures::

    la.plot_loss(["smooth_l1_loss", "l1_loss", "mse_loss"], path="smooth_l1.png")
    la.plot_loss("huber_loss", params={"delta": [0.5, 1, 2]}, path="huber.png")
    la.plot_loss("binary_focal_loss", params={"gamma": [0, 0.5, 1, 2, 5]}, path="focal.png")
    la.plot_loss(["log_cosh_loss", "mse_loss", "l1_loss"], path="log_cosh.png")
    la.plot_loss("quantile_loss", params={"quantile": [0.1, 0.5, 0.9]}, path="quantile.png")
"""

from __future__ import annotations

import inspect
import itertools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lossatlas._catalog import CURVES, LossSpec, get
from lossatlas._fused import fused
from lossatlas._optional import pyplot

__all__ = ["loss_curve", "loss_path", "plot_activation", "plot_loss", "plot_loss_path"]

PathLike = str | os.PathLike[str]

#: x-axis label for each curve kind.
_X_LABELS = {
    "residual": "residual  r = prediction − target",
    "binary-logit": "p = σ(logit), predicted probability of the true class",
    "class-logit": "p = softmax(z)_y, predicted probability of the true class",
    "margin": "margin  y·f(x)",
}
#: The variable the gradient is taken with respect to.
_GRAD_OF = {
    "residual": "d loss / d prediction",
    "binary-logit": "d loss / d logit",
    "class-logit": "d loss / d z_y (true-class logit)",
    "margin": "d loss / d score",
}


@dataclass
class Curve:
    """A loss and its gradient sampled along one variable.

    Attributes:
        x: The plotted variable (residual, probability or margin).
        loss: The unreduced loss at each ``x``.
        grad: ``d loss / d input`` at each ``x`` (``None`` for a non-differentiable loss).
        label: Legend label (name and swept options).
    """

    x: Tensor
    loss: Tensor
    grad: Tensor | None
    label: str


def _inputs(
    kind: str, points: int, x_range: tuple[float, float] | None, num_classes: int
) -> tuple[Tensor, Tensor]:
    """``(x, input)`` for a curve kind: the plotted variable and the tensor fed to the loss."""
    if kind in ("residual", "margin"):
        low, high = x_range or (-3.0, 3.0)
        x = torch.linspace(low, high, points, dtype=torch.float64)
        return x, x.clone()
    # probabilities of the true class, kept off 0 and 1 so log-losses stay finite
    low, high = x_range or (0.005, 0.995)
    p = torch.linspace(low, high, points, dtype=torch.float64)
    if kind == "class-logit":
        # logits [z, 0, ..., 0] over C classes: softmax(.)_0 = p  <=>  z = logit(p) + log(C - 1)
        return p, torch.logit(p) + math.log(num_classes - 1)
    return p, torch.logit(p)


def _call(
    spec: LossSpec, kind: str, z: Tensor, options: Mapping[str, Any], num_classes: int
) -> Tensor:
    """The unreduced loss at each point, as a 1-D tensor (the input ``z`` carries the grad)."""
    n = z.shape[0]
    if kind == "residual":
        args: tuple[Tensor, ...] = (z, torch.zeros(n, dtype=z.dtype))
    elif kind in ("binary-logit", "margin"):
        args = (z, torch.ones(n, dtype=z.dtype))
    else:  # class-logit: logits [z, 0, ..., 0] with the true class 0
        logits = torch.cat([z[:, None], z.new_zeros(n, num_classes - 1)], dim=1)
        args = (logits, torch.zeros(n, dtype=torch.long))
    if "none" in spec.reductions:
        out = spec.function(*args, **options, reduction="none")
        out = out[0] if isinstance(out, tuple) else out
        return out.reshape(n, -1).sum(dim=1) if out.dim() > 1 else out
    # no elementwise reduction: evaluate each point on its own
    values = []
    for i in range(n):
        out = spec.function(*(a[i : i + 1] for a in args), **options, reduction="sum")
        values.append(out[0] if isinstance(out, tuple) else out)
    return torch.stack(values)


def loss_curve(
    name: str,
    *,
    points: int = 401,
    x_range: tuple[float, float] | None = None,
    **options: Any,
) -> Curve:
    """Sample a catalog loss and its gradient along its declared curve (no matplotlib needed).

    Args:
        name: A catalog name with a ``curve`` declaration.
        points: Number of samples.
        x_range: Range of the plotted variable; default ``(-3, 3)`` for residuals and margins,
            ``(0.005, 0.995)`` for probabilities.
        **options: Options passed to the loss (``delta=2.0``).

    Returns:
        A :class:`Curve` in float64.

    Raises:
        KeyError: If ``name`` is not in the catalog.
        ValueError: If the loss declares no curve.

    Example:
        >>> from lossatlas.plot import loss_curve
        >>> curve = loss_curve("binary_cross_entropy_with_logits", points=3, x_range=(0.25, 0.75))
        >>> curve.x
        tensor([0.2500, 0.5000, 0.7500], dtype=torch.float64)
        >>> curve.loss  # -log p
        tensor([1.3863, 0.6931, 0.2877], dtype=torch.float64)
        >>> curve.grad  # p - 1
        tensor([-0.7500, -0.5000, -0.2500], dtype=torch.float64)
    """
    spec = get(name)
    if spec.curve is None:
        raise ValueError(
            f"{name!r} declares no curve, so it cannot be drawn against one variable "
            f"(curves are declared with curve= one of {', '.join(CURVES)})"
        )
    kind = spec.curve
    required, num_classes = _example_needs(spec)
    merged = {**required, **options}
    x, z = _inputs(kind, points, x_range, num_classes)
    z = z.detach().requires_grad_(spec.differentiable)
    # a few hundred points: compiling a fused kernel would cost far more than it saves
    with fused(False):
        loss = _call(spec, kind, z, merged, num_classes)
        grad = None
        if spec.differentiable:
            (grad,) = torch.autograd.grad(loss.sum(), z)
    label = name + (
        " (" + ", ".join(f"{k}={_fmt(v)}" for k, v in options.items()) + ")" if options else ""
    )
    return Curve(x=x, loss=loss.detach(), grad=grad, label=label)


def _example_needs(spec: LossSpec) -> tuple[dict[str, Any], int]:
    """Options the loss needs that the declaration's example sets, and its class count.

    A loss such as ``class_balanced_loss`` needs ``samples_per_class`` (no default), and
    ``logit_adjusted_cross_entropy`` one of ``class_prior`` or ``samples_per_class`` (both
    default ``None``); they are taken from the declared example, and a class-logit curve then
    uses that example's number of classes (the true class 0 against equal logits for the
    others). Options with a real default keep it, and so does a tensor shaped like one of the
    example's inputs (a per-element ``weight``): it belongs to those inputs, not to the curve.
    """
    if spec.examples is None:
        return {}, 2
    example = spec.make_example(batch=1)
    params = inspect.signature(spec.function).parameters
    shapes = {tuple(a.shape) for a in example.args if isinstance(a, Tensor)}
    required = {
        k: v
        for k, v in example.kwargs.items()
        if k in params
        and (params[k].default is inspect.Parameter.empty or params[k].default is None)
        and not (isinstance(v, Tensor) and v.dim() > 0 and tuple(v.shape) in shapes)
    }
    first = example.args[0] if example.args else None
    classes = int(first.shape[1]) if isinstance(first, Tensor) and first.dim() >= 2 else 2
    return required, max(classes, 2)


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _two_panels(ax: Any) -> tuple[Any, Any, Any]:
    """``(figure, left, right)``: the given pair of axes, or a new 11 x 4.2 in figure."""
    if ax is None:
        fig, (left, right) = pyplot().subplots(
            1, 2, figsize=(11.0, 4.2), dpi=100, layout="constrained"
        )
        return fig, left, right
    left, right = ax
    return left.figure, left, right


def _not_differentiable(ax: Any) -> None:
    ax.text(0.5, 0.5, "not differentiable", ha="center", va="center", transform=ax.transAxes)


def _finish(
    fig: Any,
    xlabel: str,
    panels: tuple[tuple[Any, str, str], ...],
    title: str,
    path: PathLike | None,
    *,
    legend: bool = True,
) -> Any:
    """Label the ``(axes, ylabel, heading)`` panels, title the figure, save it if ``path``.

    With ``legend``, a panel with labelled lines gets a legend.
    """
    for a, ylabel, heading in panels:
        a.set_xlabel(xlabel)
        a.set_ylabel(ylabel)
        a.set_title(heading)
        a.grid(True, alpha=0.3)
        a.axhline(0.0, color="0.6", linewidth=0.8)
        if legend and a.get_legend_handles_labels()[0]:
            a.legend(fontsize="small")
    fig.suptitle(title)
    if path is not None:
        fig.savefig(path)
        pyplot().close(fig)
    return fig


def plot_loss(
    names: str | Sequence[str],
    *,
    params: Mapping[str, Sequence[Any]] | None = None,
    ax: Any = None,
    path: PathLike | None = None,
    points: int = 401,
    x_range: tuple[float, float] | None = None,
    title: str | None = None,
) -> Any:
    """Draw one or more catalog losses and their gradients, sweeping options.

    Every combination of the ``params`` values is drawn for each loss that accepts those
    options; a loss that does not take a swept option is drawn once at its defaults (so
    ``plot_loss(["huber_loss", "l1_loss"], params={"delta": [0.5, 1, 2]})`` shows three Huber
    curves and one L1 curve).

    Args:
        names: A catalog name or several; they must share a curve kind.
        params: Options to sweep, e.g. ``{"gamma": [0, 0.5, 1, 2, 5]}``.
        ax: Two matplotlib ``Axes`` ``(loss_ax, grad_ax)`` to draw into; default a new figure.
        path: Where to save the figure (PNG or any format matplotlib knows by extension).
        points: Samples per curve.
        x_range: Range of the plotted variable (see :func:`loss_curve`).
        title: Figure title; default the names.

    Returns:
        The matplotlib ``Figure``.

    Raises:
        KeyError: For a name not in the catalog (with a suggestion).
        ValueError: For a loss without a curve, mixed curve kinds, a swept option that no loss
            accepts, or an empty sweep.
        ImportError: If matplotlib is not installed (``pip install 'lossatlas[plot]'``).

    Example:
        >>> import lossatlas as la
        >>> fig = la.plot_loss("binary_cross_entropy_with_logits")
        >>> [a.get_xlabel() for a in fig.axes][0]
        'p = σ(logit), predicted probability of the true class'
    """
    name_list = [names] if isinstance(names, str) else list(names)
    if not name_list:
        raise ValueError("plot_loss needs at least one loss name, got none")
    specs = [get(name) for name in name_list]
    for spec in specs:
        if spec.curve is None:
            raise ValueError(
                f"{spec.name!r} declares no curve, so it cannot be drawn against one variable"
            )
    kinds = {spec.curve for spec in specs}
    if len(kinds) > 1:
        described = ", ".join(f"{s.name} ({s.curve})" for s in specs)
        raise ValueError(
            f"losses drawn together must share a curve kind, got {described}; "
            "draw them in separate figures"
        )
    kind = str(specs[0].curve)
    sweep = dict(params or {})
    for key, values in sweep.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"params[{key!r}] must be a non-empty list of values, got {values!r}")
        if not any(key in spec.options for spec in specs):
            raise ValueError(
                f"no loss in {name_list} takes an option {key!r}; their options: "
                + "; ".join(f"{s.name}: {', '.join(s.options) or 'none'}" for s in specs)
            )

    curves: list[Curve] = []
    for spec in specs:
        keys = [k for k in sweep if k in spec.options]
        for combo in itertools.product(*(sweep[k] for k in keys)):
            curves.append(
                loss_curve(
                    spec.name, points=points, x_range=x_range, **dict(zip(keys, combo, strict=True))
                )
            )

    fig, loss_ax, grad_ax = _two_panels(ax)
    for curve in curves:
        if len(specs) == 1 and curve.label != specs[0].name:  # the title names the loss
            curve.label = curve.label[len(specs[0].name) :].strip(" ()")
        (line,) = loss_ax.plot(curve.x, curve.loss, label=curve.label, linewidth=1.6)
        if curve.grad is not None:
            grad_ax.plot(
                curve.x, curve.grad, label=curve.label, color=line.get_color(), linewidth=1.6
            )
    if all(curve.grad is None for curve in curves):
        _not_differentiable(grad_ax)
    panels = ((loss_ax, "loss", "Loss"), (grad_ax, _GRAD_OF[kind], "Gradient"))
    return _finish(fig, _X_LABELS[kind], panels, title or ", ".join(name_list), path)


#: x-axis labels of the two kinds of path (:func:`loss_path`).
_PATH_LABELS = {
    "perfect": "t: declared example (t = 0) → perfect prediction (t = 1)",
    "descent": "s: step from the declared example (s = 0) along its steepest descent",
    "scale": "s: scale of the declared example's predictions",
}


def loss_path(name: str, *, points: int = 101, seed: int = 0) -> Curve:
    """Sample a catalog loss and its derivative along a path through its declared examples.

    Every declaration makes valid example inputs; the path moves the arguments that carry a
    gradient (the predictions, embeddings or boxes):

    * ``"perfect"``: with a declared perfect prediction, ``x(t) = (1 - t) x_example + t
      x_perfect`` for ``t`` in ``[0, 1]``, the other arguments (targets) taken from the perfect
      example, so the path ends at a perfect prediction; the derivative ``d loss / d t`` is
      autograd's;
    * ``"descent"``: otherwise a slice through the example along its steepest descent,
      ``x(s) = x_example + s d`` with ``d`` the negative gradient at the example scaled to
      the inputs' norm, for ``s`` in ``[-0.25, 0.25]`` (narrower where that range leaves the
      inputs' domain, as boxes do); ``d loss / d s`` by autograd;
    * ``"scale"``: where every slice leaves the inputs' domain (log-probabilities), the example
      made at ``scale=s`` for ``s`` in ``[0.05, 3]`` (the declaration's own knob for the size
      of its predictions, which keeps them valid); ``d loss / d s`` by central differences.

    The loss is reduced with ``"mean"`` (or the first reduction the loss accepts).

    Args:
        name: A catalog name with declared examples.
        points: Number of samples along the path.
        seed: Seed of the example inputs (the perfect example uses ``seed + 1``).

    Returns:
        A :class:`Curve` in float64 whose ``x`` is ``t`` or ``s``; its ``label`` is the kind
        of path, ``"perfect"``, ``"descent"`` or ``"scale"``.

    Raises:
        KeyError: If ``name`` is not in the catalog.
        ValueError: If the loss declares no examples.

    Example:
        >>> from lossatlas.plot import loss_path
        >>> path = loss_path("mse_loss", points=3)
        >>> path.label, path.x
        ('perfect', tensor([0.0000, 0.5000, 1.0000], dtype=torch.float64))
        >>> path.loss / path.loss[0]  # (1 - t)^2
        tensor([1.0000, 0.2500, 0.0000], dtype=torch.float64)
    """
    spec = get(name)
    example = spec.make_example(seed=seed)
    reduction = "mean" if "mean" in spec.reductions else spec.reductions[0]
    perfect = None
    if spec.perfect is not None:
        generator = torch.Generator().manual_seed(seed + 1)
        perfect = spec.perfect(generator, batch=4, dtype=torch.float64, scale=1.0)
        if len(perfect.args) != len(example.args) or not all(
            _same_shape(example.args[i], perfect.args[i]) for i in example.grad_args
        ):
            perfect = None

    def value(args: Sequence[Any], kwargs: Mapping[str, Any]) -> Tensor:
        out = spec.function(*args, **kwargs, reduction=reduction)
        return (out[0] if isinstance(out, tuple) else out).to(torch.float64)

    losses: list[Tensor] = []
    grads: list[Tensor] = []
    with fused(False):  # a hundred small calls: compiling a fused kernel would cost more
        if perfect is not None:
            x = torch.linspace(0.0, 1.0, points, dtype=torch.float64)
            kwargs = {**example.kwargs, **perfect.kwargs}
            for point in x:
                t = point.clone().requires_grad_(spec.differentiable)
                args = list(perfect.args)
                for i in example.grad_args:
                    args[i] = (1 - t) * example.args[i].detach() + t * perfect.args[i].detach()
                loss = value(args, kwargs)
                losses.append(loss.detach())
                if spec.differentiable:
                    grads.append(torch.autograd.grad(loss, t)[0])
            kind = "perfect"
        else:
            kind = "scale"
            # the widest slice that stays in the inputs' domain (boxes keep x2 >= x1)
            for width in (0.25, 0.1, 0.025) if spec.differentiable else ():
                x = torch.linspace(-width, width, points, dtype=torch.float64)
                try:
                    losses, grads = _descent_slice(example, value, x)
                except ValueError:
                    continue
                kind = "descent"
                break
            if kind == "scale":  # no slice stays valid (log-probabilities)
                x = torch.linspace(0.05, 3.0, points, dtype=torch.float64)
                losses, grads = _scale_path(spec, seed, value, x)
    grad = torch.stack(grads) if grads else None
    return Curve(x=x, loss=torch.stack(losses), grad=grad, label=kind)


def _descent_slice(
    example: Any, value: Callable[..., Tensor], x: Tensor
) -> tuple[list[Tensor], list[Tensor]]:
    """The loss along ``x_example + s d`` and ``d loss / d s`` (autograd).

    ``d`` is the steepest descent at the example, as long as the inputs (``|d| = |x|``).
    """
    leaves = [example.args[i].detach().clone().requires_grad_(True) for i in example.grad_args]
    args = list(example.args)
    for i, leaf in zip(example.grad_args, leaves, strict=True):
        args[i] = leaf
    grads_at = torch.autograd.grad(value(args, example.kwargs), leaves, allow_unused=True)
    steps = [
        -(g if g is not None else torch.zeros_like(a))
        for g, a in zip(grads_at, leaves, strict=True)
    ]
    norm = torch.cat([d.detach().flatten() for d in steps]).norm()
    size = torch.cat([a.detach().flatten() for a in leaves]).norm()
    scale = size / norm if norm > 0 else torch.zeros(())
    losses, grads = [], []
    for point in x:
        s = point.clone().requires_grad_(True)
        for i, leaf, d in zip(example.grad_args, leaves, steps, strict=True):
            args[i] = leaf.detach() + s * scale * d.detach()
        loss = value(args, example.kwargs)
        losses.append(loss.detach())
        (grad,) = torch.autograd.grad(loss, s, allow_unused=True)
        grads.append(grad if grad is not None else torch.zeros((), dtype=torch.float64))
    return losses, grads


def _scale_path(
    spec: LossSpec, seed: int, value: Callable[..., Tensor], x: Tensor
) -> tuple[list[Tensor], list[Tensor]]:
    """The loss of the example made at ``scale=s``, ``d loss / d s`` by central differences."""

    def at(s: float) -> Tensor:
        made = spec.make_example(seed=seed, scale=s)
        return value(made.args, made.kwargs).detach()

    step = 1e-4
    losses = [at(s) for s in x.tolist()]
    grads = [(at(s + step) - at(s - step)) / (2 * step) for s in x.tolist()]
    return losses, grads


def _same_shape(a: Any, b: Any) -> bool:
    return isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape == b.shape


def plot_loss_path(
    name: str,
    *,
    ax: Any = None,
    path: PathLike | None = None,
    points: int = 101,
    title: str | None = None,
) -> Any:
    """Draw a catalog loss and its derivative along the path of :func:`loss_path`.

    For the losses that declare no one-variable curve (overlap losses on masks, box losses,
    embedding losses); :func:`plot_loss` draws the others.

    Args:
        name: A catalog name with declared examples.
        ax: Two matplotlib ``Axes`` ``(loss_ax, grad_ax)``; default a new figure.
        path: Where to save the figure.
        points: Samples along the path.
        title: Figure title; default the name.

    Returns:
        The matplotlib ``Figure``.

    Raises:
        KeyError: For a name not in the catalog (with a suggestion).
        ValueError: If the loss declares no examples.
        ImportError: If matplotlib is not installed (``pip install 'lossatlas[plot]'``).

    Example:
        >>> import lossatlas as la
        >>> fig = la.plot_loss_path("dice_loss")
        >>> fig.axes[1].get_ylabel()
        'd loss / d t'
    """
    curve = loss_path(name, points=points)
    variable = "t" if curve.label == "perfect" else "s"
    fig, loss_ax, grad_ax = _two_panels(ax)
    (line,) = loss_ax.plot(curve.x, curve.loss, linewidth=1.6)
    if curve.grad is not None:
        grad_ax.plot(curve.x, curve.grad, color=line.get_color(), linewidth=1.6)
    else:
        _not_differentiable(grad_ax)
    panels = (
        (loss_ax, "loss", "Loss"),
        (grad_ax, f"d loss / d {variable}", "Derivative along the path"),
    )
    return _finish(fig, _PATH_LABELS[curve.label], panels, title or name, path, legend=False)


def plot_activation(
    names: str | Sequence[str],
    *,
    ax: Any = None,
    path: PathLike | None = None,
    points: int = 401,
    x_range: tuple[float, float] = (-5.0, 5.0),
    title: str | None = None,
) -> Any:
    """Draw activations (:data:`lossatlas.ACTIVATIONS`) and their derivatives, as the seeds do.

    Args:
        names: One activation name or several (``"relu"``, ``"swish"``, ``"maxout"``...).
        ax: Two matplotlib ``Axes`` ``(value_ax, derivative_ax)``; default a new figure.
        path: Where to save the figure.
        points: Samples per curve.
        x_range: The input range.
        title: Figure title; default the names.

    Returns:
        The matplotlib ``Figure``.

    Raises:
        KeyError: For an unknown name (with a suggestion).
        ImportError: If matplotlib is not installed (``pip install 'lossatlas[plot]'``).

    Example:
        >>> import lossatlas as la
        >>> fig = la.plot_activation(["relu", "swish"])
        >>> [a.get_title() for a in fig.axes]
        ['Activation', 'Derivative']
    """
    from lossatlas.activations import activation

    name_list = [names] if isinstance(names, str) else list(names)
    if not name_list:
        raise ValueError("plot_activation needs at least one activation name, got none")
    functions = [(name, activation(name)) for name in name_list]
    fig, value_ax, grad_ax = _two_panels(ax)
    for name, function in functions:
        x = torch.linspace(*x_range, points, dtype=torch.float64, requires_grad=True)
        y = function(x)
        if y.requires_grad:
            (grad,) = torch.autograd.grad(y.sum(), x)
        else:  # piecewise constant (hardmax): zero derivative almost everywhere
            grad = torch.zeros_like(x)
        (line,) = value_ax.plot(x.detach(), y.detach(), label=name, linewidth=1.6)
        grad_ax.plot(x.detach(), grad, label=name, color=line.get_color(), linewidth=1.6)
    panels = ((value_ax, "f(x)", "Activation"), (grad_ax, "f'(x)", "Derivative"))
    return _finish(fig, "x", panels, title or ", ".join(name_list), path)
