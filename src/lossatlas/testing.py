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

from lossatlas._catalog import Example, LossSpec, options_of, spec_of


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
        raise NotApplicable("a user registration: its options are not read from its signature")
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


def check_loss(
    loss: LossSpec | str | Callable[..., Any], *, compile: bool = True
) -> dict[str, str]:
    """Run every generic check on one catalog loss (compile with the eager backend).

    Args:
        loss: Its declaration (``la.get(name)``), its catalog name, or the registered function
            or module class itself.
        compile: Also check ``torch.compile(fullgraph=True)`` (eager backend).

    Returns:
        The checks that did not apply, each with its reason (``{"check_reference": "..."}``).

    Raises:
        AssertionError: On the first check that fails, naming the loss.
        TypeError: For a function that is not registered (the message says how to).
    """
    spec = spec_of(loss)
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


# --------------------------------------------------------------------------- reliability checks
# Each one below attacks a way a loss can fail inside a real training loop rather than on one
# tidy example: changing batch sizes under compile, NaN from a diverged model, a tensor left on
# another device, autocast, a miscompiled value.

#: The batch sizes the dynamic-shape compile check runs: not 0 or 1 (dynamo specialises them),
#: and primes no example dimension equals (equal sizes would be "duck-sized" into one symbol).
DYNAMIC_BATCHES: tuple[int, ...] = (11, 13, 17)


def _tensor_slots(example: Example) -> list[tuple[int | str, Tensor]]:
    """``(position or keyword, tensor)`` for every tensor argument of an example."""
    slots: list[tuple[int | str, Tensor]] = [
        (i, a) for i, a in enumerate(example.args) if isinstance(a, Tensor)
    ]
    slots += [(k, v) for k, v in example.kwargs.items() if isinstance(v, Tensor)]
    return slots


def _replace(example: Example, slot: int | str, value: Any) -> Example:
    args = list(example.args)
    kwargs = dict(example.kwargs)
    if isinstance(slot, int):
        args[slot] = value
    else:
        kwargs[slot] = value
    return Example(tuple(args), kwargs, example.grad_args)


def _slot_name(spec: LossSpec, slot: int | str) -> str:
    if isinstance(slot, str):
        return slot
    names = [
        p.name
        for p in inspect.signature(spec.function).parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    return names[slot] if slot < len(names) else f"argument {slot}"


def check_dynamic_compile(
    spec: LossSpec,
    *,
    backend: str = "eager",
    batches: tuple[int, ...] = DYNAMIC_BATCHES,
) -> None:
    """``torch.compile(fullgraph=True, dynamic=True)`` compiles once for several batch sizes.

    A loss that bakes the batch size into its graph (``torch.as_tensor(x.numel())``, a Python
    ``int`` of a size) recompiles for every new size and fails at the recompile limit in a loop
    with a ragged last batch. Each compiled value is compared with the eager one.
    """
    if not spec.compile:
        raise NotApplicable("declared not capturable by torch.compile(fullgraph=True)")
    if not spec.dynamic_shapes:
        raise NotApplicable(f"declared to recompile per batch size: {spec.dynamic_shapes_reason}")
    from torch._dynamo.testing import CompileCounterWithBackend

    torch._dynamo.reset()
    counter = CompileCounterWithBackend(backend)
    compiled = torch.compile(spec.function, fullgraph=True, dynamic=True, backend=counter)
    tol = 1e-5
    first = 0
    for i, batch in enumerate(batches):
        example = spec.make_example(dtype=torch.float32, batch=batch, seed=batch)
        expected = _as_tensor(_call(spec, example))
        actual = _as_tensor(compiled(*example.args, **example.kwargs))
        _close(actual, expected, f"{spec.name}: compiled at batch {batch} vs eager", rtol=tol)
        if i == 0:
            # the first compile may call the backend more than once (dynamo restarts its
            # analysis when inductor specialises a Python float); what matters is that no
            # later batch size compiles again
            first = counter.frame_count
    again = counter.frame_count - first
    assert again == 0, (
        f"{spec.name}: {again} recompilations for batch sizes {batches[1:]} after the first "
        f"({batches[0]}) under dynamic=True (expected 0)"
    )


def check_compiled_value(spec: LossSpec, *, backend: str = "aot_eager") -> None:
    """The compiled unreduced value and its gradient equal the eager ones (AOT autograd trace).

    ``aot_eager`` runs the graph through AOT autograd's decompositions (what inductor sees)
    without generating code, so a decomposition that computes a different value shows here in
    a fraction of inductor's time: torch 2.13's compiled ``F.multilabel_margin_loss`` gives
    2.05 instead of 0.85 on ``[[.1, .2, .4, .8]]``, ``[[3, 0, -1, 1]]``, while graph capture
    alone (the ``eager`` backend) runs torch's own kernel and agrees.
    """
    if not spec.compile:
        raise NotApplicable("declared not capturable by torch.compile(fullgraph=True)")
    torch._dynamo.reset()
    compiled = torch.compile(spec.function, fullgraph=True, backend=backend)
    # The unreduced values, where a wrong decomposition shows; the reductions of them are
    # checked against "none" by check_reductions.
    reduction = "none" if "none" in spec.reductions else None
    options = {} if reduction is None else {"reduction": reduction}
    example = _with_grad(spec.make_example(dtype=torch.float64, batch=3))
    twin = _with_grad(_clone(example))
    expected = _as_tensor(_call(spec, example, **options))
    actual = _as_tensor(compiled(*twin.args, **{**twin.kwargs, **options}))
    what = f"{spec.name}: compiled ({backend}) vs eager"
    _close(actual, expected, what, rtol=1e-7, atol=1e-9)
    if spec.differentiable and expected.requires_grad:
        expected.sum().backward()
        actual.sum().backward()
        for i in example.grad_args:
            _close(twin.args[i].grad, example.args[i].grad, f"{what}: gradient {i}")


def _nan_outcome(spec: LossSpec, example: Example) -> str | None:
    """``None`` when the loss propagated the NaN (or refused it with a ``ValueError``)."""
    try:
        value = _as_tensor(_call(spec, example))
    except ValueError:  # a value check refusing a NaN (e.g. probabilities out of [0, 1])
        return None
    if torch.isnan(value).any():
        return None
    return f"gave {value.detach().flatten()[:4].tolist()}"


def check_nan_propagation(spec: LossSpec) -> None:
    """A NaN in any floating tensor argument gives a NaN loss (or a ``ValueError``).

    Two probes per argument: one NaN at the first element of a prediction (every element of a
    prediction is used by the examples), and the whole tensor NaN for the other floating
    arguments (targets, weights, masks -- some of their elements may legitimately be unused,
    e.g. the weight of a class no target names). A diverged run must never log a good loss.
    """
    example = spec.make_example(dtype=torch.float64)
    probes = 0
    failures = []
    for slot, tensor in _tensor_slots(example):
        if not tensor.is_floating_point() or tensor.numel() == 0:
            continue
        if slot in spec.nan_exempt:
            continue
        probes += 1
        if isinstance(slot, int) and slot in example.grad_args:
            poisoned = tensor.detach().clone()
            poisoned.view(-1)[0] = float("nan")
            how = "one NaN"
        else:
            poisoned = torch.full_like(tensor, float("nan"))
            how = "all NaN"
        outcome = _nan_outcome(spec, _replace(example, slot, poisoned))
        if outcome is not None:
            failures.append(f"{_slot_name(spec, slot)} {how}: {outcome}")
    if not probes:
        raise NotApplicable("takes no floating-point tensor argument")
    assert not failures, f"{spec.name}: NaN input, non-NaN loss: " + "; ".join(failures)


def check_devices(spec: LossSpec) -> None:
    """Tensors on two devices raise a ``ValueError`` that names the argument and both devices.

    The probe moves one argument at a time to the ``meta`` device (available on every build),
    so the check runs on a CPU-only machine.
    """
    example = spec.make_example(dtype=torch.float32)
    slots = [(s, t) for s, t in _tensor_slots(example) if t.dim() > 0]
    if len(slots) < 2:
        raise NotApplicable("takes fewer than two tensor arguments")
    failures = []
    for slot, tensor in slots[1:]:
        moved = _replace(example, slot, tensor.to("meta"))
        name = _slot_name(spec, slot)
        try:
            _call(spec, moved)
        except ValueError as error:
            message = str(error)
            if name not in message or "meta" not in message or "cpu" not in message:
                failures.append(
                    f"{name}: message {message!r} names not both the argument and devices"
                )
            continue
        except Exception as error:
            failures.append(f"{name}: {type(error).__name__}: {str(error)[:120]}")
            continue
        failures.append(f"{name} on meta: no error")
    assert not failures, f"{spec.name}: device mix: " + "; ".join(failures)


def check_autocast_dtype(spec: LossSpec) -> None:
    """Under ``autocast(cpu, bfloat16)`` float32 inputs give a float32 loss (never bfloat16)."""
    example = spec.make_example(dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = _as_tensor(_call(spec, example))
    assert value.dtype == torch.float32, f"{spec.name}: {value.dtype} loss under autocast"


def check_promoted_dtype(spec: LossSpec) -> None:
    """A float64 argument among float32 ones gives a float64 loss (the promoted dtype).

    Each floating argument after the first is raised to float64 in turn; demoting the result to
    the prediction's dtype would throw away the precision the caller asked for.
    """
    example = spec.make_example(dtype=torch.float32)
    if any(isinstance(a, torch.nn.Module) for a in (*example.args, *example.kwargs.values())):
        raise NotApplicable("its inputs go through the caller's module, in the module's dtype")
    slots = [(s, t) for s, t in _tensor_slots(example) if t.is_floating_point()]
    if len(slots) < 2:
        raise NotApplicable("takes fewer than two floating-point tensor arguments")
    failures = []
    for slot, tensor in slots[1:]:
        value = _as_tensor(_call(spec, _replace(example, slot, tensor.double())))
        if value.dtype != torch.float64:
            failures.append(f"{_slot_name(spec, slot)} float64 gave {value.dtype}")
    assert not failures, f"{spec.name}: " + "; ".join(failures)
