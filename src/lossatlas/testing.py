"""The generic contract every catalog loss meets, as reusable checks.

The test suite runs each check over every declaration; a user who registers a loss can run
:func:`check_loss` on it (``pytest`` is not needed). Each check raises ``AssertionError`` with
a message naming the loss.

Examples:
    >>> import lossatlas as la
    >>> from lossatlas.testing import check_loss
    >>> skipped = check_loss(la.get("mse_loss"), compile=False)  # the checks that did not apply
    >>> "check_reference" in skipped  # mse_loss declares torch's F.mse_loss as its oracle
    False
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from lossatlas._catalog import Example, LossSpec, options_of


class NotApplicable(Exception):
    """Raised by a check that does not apply to a declaration; the message says why.

    The test suite turns it into a visible skip with that reason (``pytest -rs`` lists them);
    :func:`check_loss` returns the names and reasons of the checks it skipped.
    """


def _call(spec: LossSpec, example: Example, **options: Any) -> Any:
    return spec.function(*example.args, **{**example.kwargs, **options})


def _as_tensor(output: Any) -> Tensor:
    """The loss tensor of an output (losses that also report parts return ``(total, parts)``)."""
    if isinstance(output, Tensor):
        return output
    if isinstance(output, tuple) and output and isinstance(output[0], Tensor):
        return output[0]
    if hasattr(output, "total"):
        total: Tensor = output.total
        return total
    raise AssertionError(f"a loss returned {type(output).__name__}, not a tensor")


def _with_grad(example: Example) -> Example:
    args = list(example.args)
    for i in example.grad_args:
        args[i] = args[i].detach().clone().requires_grad_(True)
    return Example(tuple(args), dict(example.kwargs), example.grad_args)


def _clone(example: Example) -> Example:
    args = tuple(a.clone() if isinstance(a, Tensor) else a for a in example.args)
    return Example(args, dict(example.kwargs), example.grad_args)


def _close(
    actual: Tensor, expected: Tensor, what: str, *, rtol: float = 1e-6, atol: float = 1e-8
) -> None:
    try:
        torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=False)
    except AssertionError as error:
        raise AssertionError(f"{what}: {error}") from None


# --------------------------------------------------------------------------- checks


def check_signature(spec: LossSpec) -> None:
    """Inputs are positional, options keyword-only, ``reduction`` defaults to the first mean."""
    params = inspect.signature(spec.function).parameters
    names = list(params)
    if spec.reductions:
        assert "reduction" in params, f"{spec.name}: no reduction option"
        reduction = params["reduction"]
        assert reduction.kind is inspect.Parameter.KEYWORD_ONLY, (
            f"{spec.name}: reduction positional"
        )
        expected = "batchmean" if "batchmean" in spec.reductions else "mean"
        assert reduction.default == expected, (
            f"{spec.name}: reduction defaults to {reduction.default}"
        )
    for name, param in params.items():
        if param.default is not inspect.Parameter.empty and param.kind is not (
            inspect.Parameter.KEYWORD_ONLY
        ):
            raise AssertionError(f"{spec.name}: option {name!r} is not keyword-only")
    assert names, f"{spec.name}: takes no inputs"


def check_reductions(spec: LossSpec, example: Example | None = None) -> None:
    """``sum`` (and ``mean`` where declared so) agree with ``none``."""
    if not spec.reductions:
        raise NotApplicable("declares no reductions")
    example = example or spec.make_example()
    if "none" not in spec.reductions:  # e.g. compound losses whose parts differ in shape
        for reduction in spec.reductions:
            value = _as_tensor(_call(spec, example, reduction=reduction))
            assert value.dim() == 0, f"{spec.name}: {reduction} is not a scalar"
        return
    none = _as_tensor(_call(spec, example, reduction="none"))
    total = _as_tensor(_call(spec, example, reduction="sum"))
    _close(total, none.sum(), f"{spec.name}: sum vs none.sum()")
    if "mean" in spec.reductions:
        mean = _as_tensor(_call(spec, example, reduction="mean"))
        assert mean.dim() == 0, f"{spec.name}: mean is not a scalar"
        if spec.mean_of_none:
            _close(mean, none.mean(), f"{spec.name}: mean vs none.mean()")


def check_module(spec: LossSpec, example: Example | None = None) -> None:
    """The module twin built with the example's options gives the functional's value."""
    if spec.module is None:
        raise NotApplicable("has no module twin")
    example = example or spec.make_example()
    module = spec.module(**example.kwargs)
    expected = _as_tensor(_call(spec, example))
    _close(_as_tensor(module(*example.args)), expected, f"{spec.name}: module vs functional")


def check_dtypes(spec: LossSpec) -> None:
    """float64 and float32 are kept; float16/bfloat16 give a finite float32 loss."""
    for dtype, expected in [
        (torch.float64, torch.float64),
        (torch.float32, torch.float32),
        (torch.float16, torch.float32),
        (torch.bfloat16, torch.float32),
    ]:
        example = spec.make_example(dtype=dtype)
        loss = _as_tensor(_call(spec, example))
        assert loss.dtype == expected, f"{spec.name}: {dtype} input gave a {loss.dtype} loss"
        assert torch.isfinite(loss).all(), f"{spec.name}: non-finite loss for {dtype}"


def check_gradcheck(spec: LossSpec, example: Example | None = None) -> None:
    """``torch.autograd.gradcheck`` in float64 on the differentiable inputs."""
    if not spec.differentiable:
        raise NotApplicable("declared non-differentiable (a metric)")
    if not spec.exact_gradient:
        raise NotApplicable("declares a gradient that is not the value's derivative (family tests)")
    example = example or spec.make_example(batch=3)
    positions = example.grad_args

    def fn(*diff: Tensor) -> Tensor:
        args = list(example.args)
        for i, value in zip(positions, diff, strict=False):
            args[i] = value
        out = spec.function(*args, **example.kwargs)
        return _as_tensor(out)

    inputs = tuple(example.args[i].detach().clone().requires_grad_(True) for i in positions)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4), spec.name


def check_compile(
    spec: LossSpec, *, backend: str = "eager", dtype: torch.dtype = torch.float32
) -> None:
    """``torch.compile(fullgraph=True)`` captures the loss and gives the eager value."""
    if not spec.compile:
        raise NotApplicable("declared not capturable by torch.compile(fullgraph=True)")
    torch._dynamo.reset()
    example = spec.make_example(dtype=dtype)
    compiled = torch.compile(spec.function, fullgraph=True, backend=backend)
    expected = _as_tensor(_call(spec, example))
    actual = _as_tensor(compiled(*example.args, **example.kwargs))
    tol = 1e-5 if dtype == torch.float32 else 1e-7
    _close(actual, expected, f"{spec.name}: compiled ({backend}) vs eager", rtol=tol, atol=tol)


def check_shape_mismatch(spec: LossSpec) -> None:
    """Two same-shape inputs that differ by a trailing singleton raise a ``ValueError``."""
    if spec.same_shape is None:
        raise NotApplicable("declares no pair of same-shape inputs")
    example = spec.make_example()
    i, j = spec.same_shape
    args = list(example.args)
    args[j] = args[j].unsqueeze(-1)
    try:
        spec.function(*args, **example.kwargs)
    except ValueError as error:
        assert "shape" in str(error), f"{spec.name}: message does not mention the shape"
        return
    raise AssertionError(
        f"{spec.name}: {tuple(args[i].shape)} vs {tuple(args[j].shape)} did not raise"
    )


def check_extreme(spec: LossSpec, scale: float = 1e4) -> None:
    """Inputs scaled to ``scale`` give a finite loss and finite gradients in float32."""
    if not spec.finite_at_extreme:
        raise NotApplicable("declared to overflow at extreme inputs (true value beyond floats)")
    example = _with_grad(spec.make_example(dtype=torch.float32, scale=scale))
    loss = _as_tensor(_call(spec, example))
    assert torch.isfinite(loss).all(), f"{spec.name}: non-finite loss at scale {scale:g}"
    if spec.differentiable and loss.requires_grad:
        loss.backward()
        for i in example.grad_args:
            grad = example.args[i].grad
            assert grad is None or torch.isfinite(grad).all(), (
                f"{spec.name}: non-finite gradient at scale {scale:g}"
            )


def check_empty(spec: LossSpec) -> None:
    """An empty batch gives 0 for ``mean`` and ``sum``, with a zero gradient, never NaN."""
    if not spec.empty_batch:
        raise NotApplicable("declares no valid empty batch")
    example = _with_grad(spec.make_example(batch=0))
    for reduction in ("mean", "sum"):
        if reduction not in spec.reductions:
            continue
        loss = _as_tensor(_call(spec, example, reduction=reduction))
        assert loss.dim() == 0 and float(loss.detach()) == 0.0, (
            f"{spec.name}: empty {reduction} = {loss}"
        )
        if spec.differentiable and loss.requires_grad:
            grads = torch.autograd.grad(
                loss, [example.args[i] for i in example.grad_args], allow_unused=True
            )
            for grad in grads:
                assert grad is None or not torch.isnan(grad).any(), f"{spec.name}: NaN gradient"


def check_no_mutation(spec: LossSpec) -> None:
    """The loss leaves the caller's tensors untouched."""
    example = spec.make_example()
    before = _clone(example)
    loss = _as_tensor(_call(spec, _with_grad(example)))
    if spec.differentiable and loss.requires_grad:
        loss.backward()
    for a, b in zip(example.args, before.args, strict=False):
        if isinstance(a, Tensor):
            assert torch.equal(a, b), f"{spec.name}: an input was modified"


def check_reference(spec: LossSpec, example: Example | None = None) -> None:
    """Every reduction equals the declared independent reference (float64, rtol 1e-6)."""
    if spec.oracle is None:
        raise NotApplicable("declares no independent reference implementation")
    example = example or spec.make_example()
    for reduction in spec.reductions:
        expected = spec.oracle(*example.args, **example.kwargs, reduction=reduction)
        actual = _as_tensor(_call(spec, example, reduction=reduction))
        _close(actual, expected, f"{spec.name}: {reduction} vs reference")


def check_properties(spec: LossSpec, *, seed: int, batch: int, scale: float) -> None:
    """The claims of the declaration hold on one random example (hypothesis draws many)."""
    example = spec.make_example(seed=seed, batch=batch, scale=scale, dtype=torch.float64)
    if not spec.reductions:
        value = _as_tensor(_call(spec, example))
        assert not torch.isnan(value).any(), f"{spec.name}: NaN for finite input"
        return
    # Losses without "none" (compound losses) are checked on their sum.
    unreduced = "none" if "none" in spec.reductions else "sum"
    none = _as_tensor(_call(spec, example, reduction=unreduced))
    assert not torch.isnan(none).any(), f"{spec.name}: NaN for finite input"
    if "non_negative" in spec.properties:
        assert (none >= -1e-12).all(), f"{spec.name}: negative loss {none.min()}"
    if "zero_at_perfect" in spec.properties and spec.perfect is not None:
        generator = torch.Generator().manual_seed(seed)
        perfect = spec.perfect(generator, batch=batch, dtype=torch.float64, scale=scale)
        value = _as_tensor(_call(spec, perfect, reduction=unreduced))
        assert torch.allclose(value, torch.zeros_like(value), atol=1e-9), (
            f"{spec.name}: {value} at a perfect prediction"
        )
    if "symmetric" in spec.properties and spec.same_shape is not None:
        i, j = spec.same_shape
        args = list(example.args)
        args[i], args[j] = args[j], args[i]
        swapped = _as_tensor(spec.function(*args, **example.kwargs, reduction=unreduced))
        _close(swapped, none, f"{spec.name}: not symmetric")


def check_option_constraints(spec: LossSpec) -> None:
    """Every constrained option rejects values just outside its constraint (and NaN).

    The values come from the option's annotation (:mod:`lossatlas._options`); each must raise a
    ``ValueError`` or ``TypeError`` naming the option, from the functional and from the module
    twin's constructor.
    """
    if not hasattr(spec.function, "__lossatlas_options__"):
        raise NotApplicable("its options are not checked from its signature (a user function)")
    options = options_of(spec.function)
    bad = {name: options.invalid_values(name) for name in options.checks}
    bad = {name: values for name, values in bad.items() if values}
    if not bad:
        raise NotApplicable("has no constrained options")
    example = spec.make_example()
    for name, values in bad.items():
        for value in values:
            kwargs = {**example.kwargs, name: value}
            for where, call in (
                ("functional", lambda kw=kwargs: spec.function(*example.args, **kw)),
                *(
                    [("module", lambda kw=kwargs: spec.module(**kw))]  # type: ignore[misc]
                    if spec.module is not None
                    else []
                ),
            ):
                try:
                    call()
                except (TypeError, ValueError) as error:
                    assert name in str(error), (
                        f"{spec.name} ({where}): {name}={value!r} raised without naming it: {error}"
                    )
                else:
                    raise AssertionError(f"{spec.name} ({where}): {name}={value!r} accepted")


ALL_CHECKS: tuple[Callable[[LossSpec], None], ...] = (
    check_signature,
    check_reductions,
    check_module,
    check_dtypes,
    check_gradcheck,
    check_shape_mismatch,
    check_extreme,
    check_empty,
    check_no_mutation,
    check_reference,
    check_option_constraints,
)


def check_loss(spec: LossSpec, *, compile: bool = True) -> dict[str, str]:
    """Run every generic check on one declaration (compile with the eager backend).

    Returns:
        The checks that did not apply, each with its reason (``{"check_reference": "..."}``).
    """
    skipped: dict[str, str] = {}
    checks = list(ALL_CHECKS) + ([check_compile] if compile else [])
    for check in checks:
        try:
            check(spec)
        except NotApplicable as reason:
            skipped[check.__name__] = str(reason)
    for seed in range(3):
        check_properties(spec, seed=seed, batch=4, scale=1.0)
    return skipped
