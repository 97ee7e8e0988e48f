r"""The catalog: one declaration per loss, read by the CLI, plots, ``compare``, docs and tests.

Each loss is declared once, next to its code, as a :class:`LossSpec`. Nothing about a loss is
typed twice: ``lossatlas list`` / ``show``, the README table, the plots, ``compare`` and the
generic test harness all read the declaration.

A user's own loss joins the catalog with :func:`register`::

    import torch
    import lossatlas as la

    @la.register(tasks=("regression",), input_kind="predictions", target_kind="real values",
                 formula=r"\ell = |\hat y - y|^3")
    def cubic_loss(input, target, *, reduction="mean"):
        return la.reduce_loss((input - target).abs() ** 3, reduction)

Another package's losses join it through the ``lossatlas.losses`` entry points, loaded the
first time the catalog is read (:mod:`lossatlas._plugins`).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import torch
from torch import nn

from lossatlas import _plugins
from lossatlas._docs import DOCTEST_IMPORTS, SharedDocs, fill_docstring
from lossatlas._validation import check_choice, suggest

#: The tasks of the seeds' taxonomy. A loss may carry several.
TASKS: dict[str, str] = {
    "binary": "binary classification",
    "multilabel": "multi-label classification",
    "multiclass": "multi-class classification",
    "imbalanced": "class imbalance and hard examples",
    "language": "large vocabularies (language models, word2vec)",
    "detection": "object detection",
    "segmentation": "semantic segmentation",
    "regression": "regression",
    "distribution": "distributions and divergences",
    "ranking": "ranking and embeddings",
    "metric-learning": "metric learning",
    "sequence": "sequences (CTC)",
    "generative": "generative models (GANs)",
    "image": "image restoration and reconstruction",
}

#: Properties a declaration may claim; the generic tests check each claim.
PROPERTIES: dict[str, str] = {
    "non_negative": "the unreduced loss is >= 0 for every valid input",
    "zero_at_perfect": "the loss is 0 when the prediction equals the target",
    "symmetric": "swapping the two inputs leaves the loss unchanged",
    "bounded": "the loss is bounded above",
}

#: How a loss can be drawn as a curve of one variable (see :mod:`lossatlas.plot`).
#: ``residual``: ``f(input=r, target=0)``; ``binary-logit``: ``f(logit, target=1)`` against
#: ``p = sigmoid(logit)``; ``class-logit``: two-class logits against the true class's
#: probability; ``margin``: ``f(score=m, target=+1)`` against the margin ``y f``.
CURVES = ("residual", "binary-logit", "class-logit", "margin")


class TargetKind(str, enum.Enum):
    """What a loss's target is, for code that must branch on it (``compare``, ``register``)."""

    CLASS_INDICES = "class indices"
    PROBABILITIES = "probabilities in [0, 1]"
    SIGNS = "labels in {-1, +1}"
    REAL = "real values"
    BOXES = "boxes"
    EMBEDDINGS = "embeddings"
    DISTRIBUTION = "a distribution"
    SEQUENCE = "label sequences"
    RELEVANCE = "graded relevance"
    NONE = "none"
    OTHER = "other"


#: Words in a prose ``target_kind`` that say which :class:`TargetKind` it is, tried in order.
_TARGET_WORDS: tuple[tuple[TargetKind, tuple[str, ...]], ...] = (
    (TargetKind.SIGNS, ("{-1, +1}", "{-1, 1}", "sign")),
    (TargetKind.CLASS_INDICES, ("class ind", "class label", "torch.long")),
    (TargetKind.PROBABILITIES, ("probabilit", "binary", "{0, 1}")),
    (TargetKind.REAL, ("real", "regression")),
)


def target_type_of(target_kind: str) -> TargetKind:
    """The :class:`TargetKind` a prose ``target_kind`` names (``OTHER`` when it says none).

    Examples:
        >>> target_type_of("binary labels in {0, 1}")
        <TargetKind.PROBABILITIES: 'probabilities in [0, 1]'>
    """
    if isinstance(target_kind, TargetKind):
        return target_kind
    words = str(target_kind).lower()
    for kind in TargetKind:
        if words == kind.value:
            return kind
    for kind, markers in _TARGET_WORDS:
        if any(marker in words for marker in markers):
            return kind
    return TargetKind.OTHER


#: What a loss wants as its first argument, read from the prose ``input_kind``.
InputForm = Literal["logits", "probabilities", "log-probabilities"]


def input_form(input_kind: str) -> InputForm:
    """Probabilities or log-probabilities when ``input_kind`` says so, else logits (raw values).

    The one place that reads the prose ``input_kind`` of a declaration.

    Examples:
        >>> input_form("log-probabilities over dim 1"), input_form("predictions")
        ('log-probabilities', 'logits')
    """
    wants = input_kind.lower()
    if wants.startswith("log-prob"):
        return "log-probabilities"
    if wants.startswith("prob"):
        return "probabilities"
    return "logits"


@dataclass
class Example:
    """Valid inputs for a loss, made by a declaration's ``examples`` function.

    Attributes:
        args: Positional arguments, in order.
        kwargs: Keyword arguments (hyperparameters the example needs).
        grad_args: Positions in ``args`` of the tensors that carry a gradient.
    """

    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    grad_args: tuple[int, ...] = (0,)


#: ``examples(generator, batch=..., dtype=..., scale=...) -> Example``. ``scale`` multiplies the
#: prediction-like arguments (logits, residuals) so the harness can probe extreme inputs.
ExampleFactory = Callable[..., Example]


@dataclass(frozen=True)
class LossSpec:
    """The declaration of one loss.

    Attributes:
        name: Public functional name (``la.<name>``).
        function: The functional form.
        module: The ``nn.Module`` twin (``la.nn.<Module>``), if any.
        tasks: Keys of :data:`TASKS`.
        input_kind: What the first argument is (``"logits"``, ``"probabilities"``...).
        target_kind: What the target is, in words (``"class indices"``, ``"binary labels"``...).
        target_type: The kind of target as a :class:`TargetKind` (what code branches on).
        formula: The unreduced loss in LaTeX.
        summary: One line for tables (defaults to the docstring's first line).
        references: Papers and docs (authors, title, venue, year, link).
        differentiable: ``False`` for metrics such as the 0-1 loss.
        properties: Keys of :data:`PROPERTIES` that hold.
        examples: Makes valid inputs (see :data:`ExampleFactory`).
        perfect: Makes inputs at a perfect prediction (for ``zero_at_perfect``).
        reductions: The reductions it accepts.
        mean_of_none: Whether ``reduction="mean"`` equals ``reduction="none"`` then ``.mean()``
            for unweighted examples.
        same_shape: Positions of two arguments that must have exactly the same shape.
        oracle: An independent implementation (e.g. ``torch.nn.functional``) with the same
            call signature, checked on the examples by the contract.
        curve: How to draw it (:data:`CURVES`), or ``None``.
        twice_differentiable: Whether second derivatives exist almost everywhere (boosting).
        compile: Whether ``torch.compile(fullgraph=True)`` is expected to capture it.
        empty_batch: Whether ``examples(batch=0)`` makes a valid empty batch (``mean`` -> 0).
        finite_at_extreme: Whether inputs of any finite size (the harness probes scale 1e4) give
            a finite loss; ``False`` only where the true value exceeds every float (e.g.
            ``exp(-y f)``), never to excuse an unstable formula.
        exact_gradient: Whether autograd gives the derivative of the value (checked by
            ``gradcheck``); ``False`` only for losses whose published gradient deliberately
            treats a term as a constant (CIoU's ``alpha``), tested in their family tests.
        custom: ``True`` for user registrations.
        use_when: One short line (at most ~60 characters) on when to reach for this loss, shown
            by ``lossatlas list``/``show``, the README and the docs.
        peers: Peer libraries that have the loss, each with a short note on how their
            semantics differ (``{"MONAI": "DiceLoss(softmax=True); smooth terms differ"}``).
        dynamic_shapes: Whether ``torch.compile(dynamic=True)`` compiles once for every batch
            size; ``False`` only with ``dynamic_shapes_reason`` saying why not.
        dynamic_shapes_reason: Why the loss recompiles per batch size (when it does).
        nan_exempt: Arguments (positions or keywords) whose NaN the loss may legitimately not
            propagate, with the reason in the family tests (e.g. a mask the loss never reads).
    """

    name: str
    function: Callable[..., Any]
    tasks: tuple[str, ...]
    input_kind: str
    target_kind: str
    formula: str
    target_type: TargetKind = field(default_factory=lambda: TargetKind.OTHER)
    examples: ExampleFactory | None = None
    module: type[nn.Module] | None = None
    summary: str = ""
    references: tuple[str, ...] = ()
    differentiable: bool = True
    properties: frozenset[str] = frozenset()
    perfect: ExampleFactory | None = None
    reductions: tuple[str, ...] = ("none", "mean", "sum")
    mean_of_none: bool = True
    same_shape: tuple[int, int] | None = None
    oracle: Callable[..., Any] | None = None
    curve: str | None = None
    twice_differentiable: bool = False
    compile: bool = True
    empty_batch: bool = True
    finite_at_extreme: bool = True
    exact_gradient: bool = True
    custom: bool = False
    use_when: str = ""
    peers: Mapping[str, str] = field(default_factory=dict)
    dynamic_shapes: bool = True
    dynamic_shapes_reason: str = ""
    nan_exempt: tuple[int | str, ...] = ()

    def __post_init__(self) -> None:
        for task in self.tasks:
            check_choice(f"task of {self.name!r}", task, tuple(TASKS))
        for prop in self.properties:
            check_choice(f"property of {self.name!r}", prop, tuple(PROPERTIES))
        if self.curve is not None:
            check_choice(f"curve of {self.name!r}", self.curve, CURVES)
        if "zero_at_perfect" in self.properties and self.perfect is None:
            raise ValueError(f"{self.name!r} claims zero_at_perfect but gives no perfect=")
        if not self.summary:
            doc = inspect.getdoc(self.function) or ""
            object.__setattr__(self, "summary", doc.split("\n", 1)[0].rstrip("."))

    @property
    def options(self) -> dict[str, Any]:
        """Keyword-only options of the functional with their defaults."""
        params = inspect.signature(self.function).parameters.values()
        return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}

    def make_example(
        self,
        *,
        batch: int = 4,
        dtype: torch.dtype = torch.float64,
        scale: float = 1.0,
        seed: int = 0,
    ) -> Example:
        """Valid example inputs from the declaration, deterministic for a seed."""
        if self.examples is None:
            raise ValueError(
                f"{self.name!r} declares no examples and none can be built from its kinds "
                f"(input {self.input_kind!r}, target {self.target_kind!r}): pass examples= "
                "to la.register, a function (generator, *, batch, dtype, scale) -> la.Example"
            )
        generator = torch.Generator().manual_seed(seed)
        return self.examples(generator, batch=batch, dtype=dtype, scale=scale)


_CATALOG: dict[str, LossSpec] = {}


def declare(spec: LossSpec, *, replace: bool = False) -> LossSpec:
    """Add a declaration to the catalog (the library's own losses call this once each).

    A second declaration of the same name from the same loss (a module imported twice, as
    doctest collection can do; a notebook cell run again) replaces the first quietly. A
    different loss under a taken name is an error unless ``replace=True`` (user losses only:
    a built-in loss is never replaced).
    """
    existing = _CATALOG.get(spec.name)
    if existing is not None and not _same_loss(existing, spec):
        if not existing.custom:
            raise ValueError(f"{spec.name!r} is a built-in loss; register yours under another name")
        if not replace:
            raise ValueError(
                f"a loss named {spec.name!r} is already in the catalog (from "
                f"{_origin(existing)}); pass replace=True to replace it, or choose another name"
            )
    _CATALOG[spec.name] = spec
    return spec


def _same_loss(a: LossSpec, b: LossSpec) -> bool:
    """Whether two declarations are of the same loss (the module class when both have one)."""
    if a.custom and b.custom and a.module is not None and b.module is not None:
        return _same_object(a.module, b.module)
    return _same_object(a.function, b.function)


def _same_object(a: Any, b: Any) -> bool:
    """The same object, the same definition run again (module and qualified name), or equal code.

    A second import of a module or a notebook cell run again makes a new function with the same
    module and qualified name; lambdas, which all share one qualified name, count as the same
    only when their code is equal.
    """
    if a is b:
        return True
    module, qualname = getattr(a, "__module__", None), str(getattr(a, "__qualname__", ""))
    same_name = (
        module is not None
        and module == getattr(b, "__module__", None)
        and qualname == getattr(b, "__qualname__", None)
    )
    if same_name and qualname and not qualname.endswith("<lambda>"):
        return True
    code_a, code_b = getattr(a, "__code__", None), getattr(b, "__code__", None)
    return code_a is not None and code_a == code_b


def _origin(spec: LossSpec) -> str:
    obj = spec.module if spec.custom and spec.module is not None else spec.function
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def register(
    name: str | None = None,
    *,
    tasks: Iterable[str],
    input_kind: str,
    target_kind: str,
    formula: str,
    examples: ExampleFactory | None = None,
    references: Iterable[str] = (),
    differentiable: bool = True,
    properties: Iterable[str] = (),
    perfect: ExampleFactory | None = None,
    reductions: Iterable[str] = ("none", "mean", "sum"),
    same_shape: tuple[int, int] | None = None,
    curve: str | None = None,
    replace: bool = False,
    **extra: Any,
) -> Callable[[Any], Any]:
    r"""Decorator that adds a user's loss -- a function or an ``nn.Module`` class -- to the catalog.

    A registered loss appears in ``lossatlas.catalog()``, ``lossatlas list``/``show``,
    ``lossatlas plot`` (with ``curve=``), ``compare --losses`` and the generic checks of
    :mod:`lossatlas.testing`. A module class is wrapped in a functional that builds it with the
    keyword options and calls it.

    Registering the same loss again (a notebook cell run twice: the same module and qualified
    name, or the same code) replaces it quietly; a different loss under a taken name raises a
    ``ValueError`` unless ``replace=True``. Without ``examples=``, valid example inputs are built
    from the kinds (see :func:`lossatlas._examples.examples_for_kinds`) for logits, predictions
    or probabilities against real values, class indices, probabilities / {0, 1} labels or
    {-1, +1} labels, so :func:`lossatlas.testing.check_loss` runs on it as it is.

    Args:
        name: Catalog name; defaults to the function's name, or the class name in snake case.
        tasks: Keys of :data:`TASKS`.
        input_kind: What the first argument is (``"logits"``, ``"predictions"``,
            ``"probabilities"``, ``"log-probabilities"``...).
        target_kind: What the target is, in words; a :class:`TargetKind` value
            (``"real values"``, ``"class indices"``, ``"probabilities in [0, 1]"``,
            ``"labels in {-1, +1}"``) also sets ``target_type``.
        formula: The unreduced loss in LaTeX.
        examples: ``examples(generator, *, batch, dtype, scale) -> Example``; default: built
            from ``input_kind`` and the target type, where they say enough.
        references: Papers or links.
        differentiable: ``False`` for a metric.
        properties: Keys of :data:`PROPERTIES` that hold.
        perfect: Inputs at a perfect prediction (needed with ``zero_at_perfect``; built for
            real-valued targets when not given).
        reductions: The reductions the loss accepts.
        same_shape: Positions of two arguments that must share a shape.
        curve: How to draw it (:data:`CURVES`).
        replace: Replace a different user loss registered under the same name.
        **extra: Further :class:`LossSpec` fields (``target_type=``, ``use_when=``...).

    Returns:
        The decorator; it returns the function or class unchanged.

    Raises:
        ValueError: If the name is taken by a built-in loss, or by a different user loss
            without ``replace=True``.

    Examples:
        >>> import torch
        >>> import lossatlas as la
        >>> @la.register(tasks=("regression",), input_kind="predictions",
        ...              target_kind="real values", formula=r"|\hat y - y|^3")
        ... def cubic_loss(input, target, *, reduction="mean"):
        ...     return la.reduce_loss((input - target).abs() ** 3, reduction)
        >>> la.get("cubic_loss").tasks
        ('regression',)
        >>> la.unregister("cubic_loss")
    """

    def decorator(obj: Any) -> Any:
        module: type[nn.Module] | None = None
        if isinstance(obj, type) and issubclass(obj, nn.Module):
            module = obj
            function = _functional_from_module(obj)
            default_name = _snake_case(obj.__name__)
        elif callable(obj):
            function = obj
            default_name = obj.__name__
        else:
            raise TypeError(f"register expects a function or an nn.Module class, got {obj!r}")
        from lossatlas._examples import examples_for_kinds

        target_type = extra.pop("target_type", None) or target_type_of(target_kind)
        built, built_perfect = examples_for_kinds(input_kind, target_type)
        declare(
            LossSpec(
                name=name or default_name,
                function=function,
                module=module,
                tasks=tuple(tasks),
                input_kind=input_kind,
                target_kind=str(target_kind),
                target_type=target_type,
                formula=formula,
                examples=examples or built,
                references=tuple(references),
                differentiable=differentiable,
                properties=frozenset(properties),
                perfect=perfect or (built_perfect if examples is None else None),
                reductions=tuple(reductions),
                same_shape=same_shape,
                curve=curve,
                custom=True,
                **extra,
            ),
            replace=replace,
        )
        return obj

    return decorator


_REFERENCES = re.compile(r"^References:\s*$")


def parse_references(doc: str | None) -> tuple[str, ...]:
    r"""The entries of a Google-style docstring's ``References:`` section, one per paragraph.

    Each entry becomes one line of text; an RST link ```Title <url>`_`` becomes ``Title, url``.

    Examples:
        >>> doc = "Loss.\n\nReferences:\n    A. Author, `A Title <https://x.org/1>`_, 2020.\n"
        >>> parse_references(doc)
        ('A. Author, A Title, https://x.org/1, 2020.',)
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    start = next((i for i, line in enumerate(lines) if _REFERENCES.match(line)), None)
    if start is None:
        return ()
    entries: list[list[str]] = [[]]
    for line in lines[start + 1 :]:
        if line and not line.startswith(" "):  # the next section
            break
        text = line.strip()
        if not text:
            if entries[-1]:
                entries.append([])
            continue
        entries[-1].append(text)
    joined = (" ".join(entry) for entry in entries if entry)
    return tuple(re.sub(r"`([^`<]+?)\s*<([^>]+)>`_", r"\1, \2", entry) for entry in joined)


def _reductions_of(options: Any) -> tuple[str, ...]:
    """The choices of a loss's ``reduction`` annotation (``()`` without the option)."""
    if "reduction" not in options.defaults:
        return ()
    return tuple(str(c) for c in options.choices("reduction")) or ("none", "mean", "sum")


@dataclass(frozen=True, init=False)
class Family:
    """The declaration fields a family of losses shares, stated once per file.

    Each loss adds only what is its own at its ``def`` with :meth:`loss`; a field given there
    overrides the family's. The name comes from the function, the references from its
    docstring's ``References:`` section, the reductions from its ``reduction`` annotation.

    The docstring text the losses share is stated here too: ``args`` (descriptions of
    parameters, by name), ``returns``, ``raises`` (by exception name), ``example`` (the
    doctest lines every ``Example:`` starts with, after the package's imports, which every
    declared loss's example gets) and ``references`` (entries every loss of the
    family cites, after its own). :meth:`loss` writes them into each loss's
    ``__doc__`` where its docstring leaves them out (:mod:`lossatlas._docs`), so the shared
    text is written once, for the whole family, and every parameter is documented.

    Examples:
        >>> from lossatlas._catalog import Family
        >>> family = Family(tasks=("regression",), input_kind="predictions",
        ...                 target_kind="real values", args={"input": "Predictions."})
        >>> family.fields["tasks"], family.docs.args["input"]
        (('regression',), 'Predictions.')
    """

    fields: Mapping[str, Any]
    docs: SharedDocs

    def __init__(self, **fields: Any) -> None:
        docs, fields = SharedDocs.split(fields)
        unknown = set(fields) - set(LossSpec.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown declaration fields {sorted(unknown)}")
        object.__setattr__(self, "fields", dict(fields))
        object.__setattr__(self, "docs", SharedDocs(**{"imports": DOCTEST_IMPORTS, **docs}))

    def derive(self, **changes: Any) -> Family:
        """A family with some fields changed (a sub-family within one file).

        ``args`` and ``raises`` add to (or replace entries of) the family's; ``returns`` and
        ``example`` replace its text.
        """
        docs, changes = SharedDocs.split(changes)
        derived = Family(**{**self.fields, **changes})
        object.__setattr__(derived, "docs", self.docs.derive(docs))
        return derived

    def loss(self, **fields: Any) -> Callable[[_F], _F]:
        """Decorator at a loss's ``def``: checks its options at every call and declares it."""

        def decorator(function: _F) -> _F:
            from lossatlas._options import validator

            options = validator(function)
            _document(function, self.docs, options)
            checked = _with_option_checks(function, options)
            merged = {**self.fields, **fields}
            merged.setdefault("references", parse_references(function.__doc__))
            merged.setdefault("reductions", _reductions_of(options))
            merged["properties"] = frozenset(merged.get("properties", ()))
            merged["references"] = tuple(merged["references"])
            declare(LossSpec(name=function.__name__, function=checked, **merged))
            return checked

        return decorator


def _document(function: Callable[..., Any], docs: SharedDocs, options: Any) -> None:
    """Write the family's shared docstring text into ``function.__doc__`` where it is missing."""
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    params = inspect.signature(function).parameters.values()
    names = [p.name for p in params if p.kind not in variadic]
    choices = {"reduction": options.choices("reduction")} if "reduction" in names else {}
    function.__doc__ = fill_docstring(
        function.__doc__, names, docs, choices=choices, owner=function.__name__
    )


_F = TypeVar("_F", bound=Callable[..., Any])


def _with_option_checks(function: _F, options: Any) -> _F:
    """``function`` with its keyword options checked against their annotations at every call."""

    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        options(kwargs)
        return function(*args, **kwargs)

    checked.__lossatlas_options__ = options  # type: ignore[attr-defined]
    return checked  # type: ignore[return-value]


def options_of(function: Callable[..., Any]) -> Any:
    """The :class:`lossatlas._options.Validator` of a declared loss (built if not declared)."""
    options = getattr(function, "__lossatlas_options__", None)
    if options is None:
        from lossatlas._options import validator

        options = validator(function)
    return options


def attach_module(function: Callable[..., Any], module: type[nn.Module]) -> None:
    """Record ``module`` as the twin of the declared loss ``function`` (called by the twin)."""
    for name, spec in _CATALOG.items():
        if spec.function is function:
            _CATALOG[name] = dataclasses.replace(spec, module=module)
            return
    raise ValueError(f"{getattr(function, '__name__', function)!r} is not a declared loss")


def unregister(name: str) -> None:
    """Remove a user registration from the catalog (library losses cannot be removed)."""
    spec = get(name)
    if not spec.custom:
        raise ValueError(f"{name!r} is a built-in loss and cannot be unregistered")
    del _CATALOG[name]


def catalog() -> list[LossSpec]:
    """Every declared loss, sorted by name.

    Examples:
        >>> import lossatlas as la
        >>> "cross_entropy" in [spec.name for spec in la.catalog()]
        True
    """
    _plugins.ensure_loaded()
    return [_CATALOG[name] for name in sorted(_CATALOG)]


def get(name: str) -> LossSpec:
    """The declaration of the loss called ``name`` (a ``KeyError`` with a suggestion otherwise).

    Examples:
        >>> import lossatlas as la
        >>> la.get("cross_entropy").input_kind
        'logits'
    """
    _plugins.ensure_loaded()
    try:
        return _CATALOG[name]
    except KeyError:
        raise KeyError(
            f"no loss named {name!r} in the catalog.{suggest(name, list(_CATALOG))}"
        ) from None


def spec_of(loss: LossSpec | str | Callable[..., Any]) -> LossSpec:
    """The declaration of a loss given as a declaration, a catalog name or the loss itself.

    Raises:
        TypeError: If ``loss`` is a function or module class that is not in the catalog (the
            message says how to register it).

    Examples:
        >>> import lossatlas as la
        >>> spec_of(la.mse_loss).name, spec_of("mse_loss").name
        ('mse_loss', 'mse_loss')
    """
    if isinstance(loss, LossSpec):
        return loss
    if isinstance(loss, str):
        return get(loss)
    for spec in catalog():
        if loss is spec.function or (loss is spec.module and spec.module is not None):
            return spec
    name = getattr(loss, "__name__", repr(loss))
    raise TypeError(
        f"{name} is not in the catalog: register it first with @la.register(tasks=..., "
        "input_kind=..., target_kind=..., formula=...), then pass it, its name or "
        f"la.get({_snake_case(name) if isinstance(loss, type) else name!r})"
    )


def for_task(task: str) -> list[LossSpec]:
    """The declarations of the losses that carry ``task`` (a key of :data:`TASKS`).

    Examples:
        >>> import lossatlas as la
        >>> "mse_loss" in [spec.name for spec in la.for_task("regression")]
        True
    """
    check_choice("task", task, tuple(TASKS))
    return [spec for spec in catalog() if task in spec.tasks]


def _snake_case(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _functional_from_module(module_cls: type[nn.Module]) -> Callable[..., Any]:
    """A functional that builds ``module_cls(**options)`` and applies it to the inputs."""

    def functional(*inputs: Any, **options: Any) -> Any:
        return module_cls(**options)(*inputs)

    functional.__name__ = _snake_case(module_cls.__name__)
    functional.__doc__ = module_cls.__doc__
    init = inspect.signature(module_cls.__init__)
    params = [p for p in init.parameters.values() if p.name != "self"]
    functional.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("inputs", inspect.Parameter.VAR_POSITIONAL)]
        + [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for p in params
            if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ]
    )
    return functional


def specs_by_task() -> Mapping[str, list[LossSpec]]:
    """Task -> the losses that carry it, in :data:`TASKS` order (for tables)."""
    return {task: for_task(task) for task in TASKS}
