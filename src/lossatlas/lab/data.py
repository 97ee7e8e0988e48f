"""Data for ``lossatlas compare``: the embedded data sets and a user's CSV file.

Nothing is downloaded. The embedded sets are built from scikit-learn's bundled ``load_digits``
and ``load_diabetes`` (the ``lab`` extra) or generated:

* :func:`binary_imbalanced_digits` -- "is it an 8?" with the positives subsampled to ~2 % (an
  8 is confused with 1, 3 and 9; "is it a 0?" is so easy that every loss scores AP 1.0);
* :func:`longtail_digits` -- ten digits with training counts decaying geometrically to an
  imbalance ratio of 50, and a balanced test set (the usual long-tail protocol);
* :func:`outlier_diabetes` -- diabetes progression with 10 % of the training (and validation)
  targets shifted up by 4 to 8 standard deviations, and a clean test set;
* :func:`synthetic_segmentation` -- discs (class 1) and squares (class 2) of equal brightness
  on Gaussian noise, a few percent of the pixels each;
* :func:`metric_digits` -- digits for embeddings, recall@1 judged on held-out samples.

Every builder takes a ``seed``: the split (and any subsampling or corruption) is a function of
the seed, so all losses compared under one seed see exactly the same data.

A CSV file (:func:`load_csv`) must hold numeric feature columns and one target column. Rows
with an empty or NaN cell are **dropped with a warning** (the count is reported); every other
problem -- no file, no such column, a non-numeric feature, a target with one class, nothing
left -- raises :class:`DataError` with a message that says what to fix.
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

import numpy as np
import torch
from torch import Tensor

from lossatlas._optional import require
from lossatlas._validation import suggest

__all__ = [
    "DataError",
    "Dataset",
    "Split",
    "TabularData",
    "binary_imbalanced_digits",
    "load_csv",
    "longtail_digits",
    "metric_digits",
    "outlier_diabetes",
    "split_tabular",
    "synthetic_segmentation",
]

Kind = Literal["binary", "multiclass", "regression"]


class DataError(ValueError):
    """A data file that ``compare`` cannot use; the message says what is wrong and what to do."""


@dataclass
class Split:
    """Inputs and targets of one split (float32 inputs; long class targets or float values)."""

    x: Tensor
    y: Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass
class Dataset:
    """A train / validation / test split ready for training.

    Attributes:
        name: Short name for the report.
        description: One line on what it is.
        train: Training split (regression targets are standardised, see ``target_center``).
        val: Validation split (for thresholds; never used for training).
        test: Test split, on which the report's metrics are computed.
        num_classes: Number of classes (``None`` for regression).
        class_names: Name of each class index, if known.
        target_center: Regression targets are trained as ``(y - center) / scale``; metrics are
            reported in the original units.
        target_scale: See ``target_center``.
        notes: What was done to the data (dropped rows, inferred task...).
    """

    name: str
    description: str
    train: Split
    val: Split
    test: Split
    num_classes: int | None = None
    class_names: list[str] | None = None
    target_center: float = 0.0
    target_scale: float = 1.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """Sizes and class counts, for the report."""
        out: dict[str, object] = {
            "name": self.name,
            "description": self.description,
            "train": len(self.train),
            "val": len(self.val),
            "test": len(self.test),
        }
        if self.num_classes is not None:
            labels = self.train.y.flatten().long()
            out["train_class_counts"] = torch.bincount(labels, minlength=self.num_classes).tolist()
        return out


def _sklearn_datasets() -> Any:
    return require("sklearn.datasets", "lab", purpose="lossatlas compare's embedded data")


def _stratified_indices(
    labels: np.ndarray,
    fractions: tuple[float, float, float],
    rng: np.random.Generator,
    class_names: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/val/test indices with each class split in the given fractions (val, test >= 1)."""
    parts: list[list[int]] = [[], [], []]
    for value in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == value))
        n = len(idx)
        n_val = max(1, round(fractions[1] * n))
        n_test = max(1, round(fractions[2] * n))
        n_train = n - n_val - n_test
        if n_train < 1:
            name = class_names[int(value)] if class_names else str(value)
            raise DataError(
                f"class {name!r} has only {n} row{'s' if n > 1 else ''}; each class needs at "
                "least 3 (one each for training, validation and test)"
            )
        parts[0] += idx[:n_train].tolist()
        parts[1] += idx[n_train : n_train + n_val].tolist()
        parts[2] += idx[n_train + n_val :].tolist()
    return tuple(rng.permutation(np.asarray(p, dtype=np.int64)) for p in parts)  # type: ignore[return-value]


def _random_indices(
    n: int, fractions: tuple[float, float, float], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    idx = rng.permutation(n)
    n_val = max(1, round(fractions[1] * n))
    n_test = max(1, round(fractions[2] * n))
    return idx[: n - n_val - n_test], idx[n - n_val - n_test : n - n_test], idx[n - n_test :]


def _standardise(x: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Feature mean and std from the training rows (std 1 for constant columns)."""
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std[std == 0] = 1.0
    return mean, std


def _split(x: np.ndarray, y: np.ndarray, idx: np.ndarray, y_dtype: torch.dtype) -> Split:
    return Split(
        torch.as_tensor(x[idx], dtype=torch.float32), torch.as_tensor(y[idx], dtype=y_dtype)
    )


class _Splits(TypedDict):
    train: Split
    val: Split
    test: Split


def _splits(
    x: np.ndarray,
    y: np.ndarray,
    indices: tuple[np.ndarray, np.ndarray, np.ndarray],
    y_dtype: torch.dtype,
) -> _Splits:
    """The ``train``, ``val`` and ``test`` splits of ``(x, y)`` at ``indices``, in that order."""
    train, val, test = (_split(x, y, idx, y_dtype) for idx in indices)
    return _Splits(train=train, val=val, test=test)


# --------------------------------------------------------------------------- embedded sets


def binary_imbalanced_digits(
    seed: int, *, digit: int = 8, positive_fraction: float = 0.02
) -> Dataset:
    """Digits as "is it a ``digit``?", positives subsampled to ``positive_fraction`` of the rows.

    The 8x8 images (pixel values 0..16) are scaled to [0, 1]. Split 40/20/40, stratified (a
    large test split, so average precision rests on more than a handful of positives).
    """
    digits = _sklearn_datasets().load_digits()
    rng = np.random.default_rng(seed)
    x = digits.data / 16.0
    positive = digits.target == digit
    negatives = np.flatnonzero(~positive)
    n_pos = max(6, round(positive_fraction / (1 - positive_fraction) * len(negatives)))
    keep = np.concatenate([rng.choice(np.flatnonzero(positive), n_pos, replace=False), negatives])
    x, y = x[keep], positive[keep].astype(np.float32)
    train, val, test = _stratified_indices(y, (0.4, 0.2, 0.4), rng)
    return Dataset(
        name=f"digits-{digit}-vs-rest",
        description=(
            f"scikit-learn digits, 'is it {'an' if digit == 8 else 'a'} {digit}?', positives "
            f"subsampled to {y.mean():.1%} "
            f"({int(y.sum())} of {len(y)})"
        ),
        **_splits(x, y, (train, val, test), torch.float32),
        num_classes=2,
        class_names=[f"not {digit}", str(digit)],
    )


def longtail_digits(seed: int, *, imbalance_ratio: float = 50.0) -> Dataset:
    """Digits made long-tailed: class ``c`` keeps ``round(n_head * ratio^(-c/9))`` training images.

    ``n_head = ratio * n_tail`` with ``n_tail`` as large as the split allows, so the head
    (class 0) has exactly ``ratio`` times the images of the tail (class 9).

    Validation and test are balanced (10 % and 20 % of each class before the subsampling).
    Class 0 is the head and class 9 the rarest.
    """
    digits = _sklearn_datasets().load_digits()
    rng = np.random.default_rng(seed)
    x, y = digits.data / 16.0, digits.target.astype(np.int64)
    train, val, test = _stratified_indices(y, (0.7, 0.1, 0.2), rng)
    available = min(int(np.sum(y[train] == c)) for c in range(10))
    n_tail = max(1, math.floor(available / imbalance_ratio))
    n_head = round(n_tail * imbalance_ratio)
    kept = []
    for c in range(10):
        n_c = max(1, round(n_head * imbalance_ratio ** (-c / 9)))
        kept.append(train[y[train] == c][:n_c])
    train = rng.permutation(np.concatenate(kept))
    return Dataset(
        name="digits-longtail",
        description=(
            f"scikit-learn digits, long-tailed training set (imbalance ratio {imbalance_ratio:g}: "
            f"{len(kept[0])} images of class 0 down to {len(kept[-1])} of class 9), balanced test"
        ),
        **_splits(x, y, (train, val, test), torch.long),
        num_classes=10,
        class_names=[str(c) for c in range(10)],
    )


def outlier_diabetes(seed: int, *, outlier_fraction: float = 0.1) -> Dataset:
    """Diabetes progression with ``outlier_fraction`` of the training targets corrupted.

    Corrupted targets are shifted up by 4 to 8 standard deviations of the clean targets (a
    one-sided gross error, like a unit slip in data entry); the validation split is corrupted
    the same way, the test split is clean. Split 60/20/20. Targets are trained standardised by
    the training median and IQR / 1.349 (robust, so the outliers do not set the scale), and the
    metrics are in the original units.
    """
    diabetes = _sklearn_datasets().load_diabetes()
    rng = np.random.default_rng(seed)
    x, y = diabetes.data.astype(np.float64), diabetes.target.astype(np.float64)
    train, val, test = _random_indices(len(y), (0.6, 0.2, 0.2), rng)
    mean, std = _standardise(x, train)
    x = (x - mean) / std
    noisy = y.copy()
    for idx in (train, val):
        n_out = round(outlier_fraction * len(idx))
        hit = rng.choice(idx, n_out, replace=False)
        noisy[hit] += rng.uniform(4.0, 8.0, n_out) * y.std()
    center = float(np.median(noisy[train]))
    q75, q25 = np.percentile(noisy[train], [75, 25])
    scale = float((q75 - q25) / 1.349)
    return Dataset(
        name="diabetes-outliers",
        description=(
            f"scikit-learn diabetes, {outlier_fraction:.0%} of training targets shifted up by "
            "4-8 standard deviations, clean test set"
        ),
        train=_split(x, noisy, train, torch.float32),
        val=_split(x, noisy, val, torch.float32),
        test=_split(x, y, test, torch.float32),
        target_center=center,
        target_scale=scale,
    )


def synthetic_segmentation(
    seed: int, *, size: int = 32, n_train: int = 128, n_test: int = 96
) -> Dataset:
    """Images of discs (class 1) and squares (class 2) on Gaussian noise, background 0.

    Each image holds 0 to 2 shapes of each kind with radius/half-side 2 to 4 pixels, at the same
    brightness (1.0), plus noise of standard deviation 0.6, so the net must tell the classes
    apart by shape. The foreground is a few percent of the pixels.
    """
    generator = torch.Generator().manual_seed(seed)
    n_total = n_train + n_test + n_test // 2
    images = torch.randn(n_total, 1, size, size, generator=generator) * 0.6
    masks = torch.zeros(n_total, size, size, dtype=torch.long)
    rows = torch.arange(size).view(-1, 1).float()
    cols = torch.arange(size).view(1, -1).float()
    for i in range(n_total):
        counts = torch.randint(0, 3, (2,), generator=generator).tolist()
        for cls, count in zip((1, 2), counts, strict=True):
            for _ in range(count):
                r = float(torch.randint(2, 5, (1,), generator=generator))
                cy, cx = (torch.rand(2, generator=generator) * (size - 2 * r) + r).tolist()
                if cls == 1:
                    inside = (rows - cy) ** 2 + (cols - cx) ** 2 <= r**2
                else:
                    inside = ((rows - cy).abs() <= r) & ((cols - cx).abs() <= r)
                masks[i][inside] = cls
    images += (masks > 0).float().unsqueeze(1)
    n_val = n_test // 2
    train = Split(images[:n_train], masks[:n_train])
    val = Split(images[n_train : n_train + n_val], masks[n_train : n_train + n_val])
    test = Split(images[n_train + n_val :], masks[n_train + n_val :])
    fractions = (
        torch.bincount(masks[:n_train].flatten(), minlength=3).float() / masks[:n_train].numel()
    )
    return Dataset(
        name="synthetic-shapes",
        description=(
            f"{n_train} {size}x{size} noisy images of discs and squares "
            f"(foreground {fractions[1]:.1%} discs, {fractions[2]:.1%} squares)"
        ),
        train=train,
        val=val,
        test=test,
        num_classes=3,
        class_names=["background", "disc", "square"],
    )


def metric_digits(seed: int) -> Dataset:
    """Digits for embeddings: 60/10/30 stratified split; recall@1 on the held-out 30 %."""
    digits = _sklearn_datasets().load_digits()
    rng = np.random.default_rng(seed)
    x, y = digits.data / 16.0, digits.target.astype(np.int64)
    train, val, test = _stratified_indices(y, (0.6, 0.1, 0.3), rng)
    return Dataset(
        name="digits-embedding",
        description="scikit-learn digits; embeddings judged by recall@1 on held-out samples",
        **_splits(x, y, (train, val, test), torch.long),
        num_classes=10,
        class_names=[str(c) for c in range(10)],
    )


# --------------------------------------------------------------------------- CSV


@dataclass
class TabularData:
    """A CSV file read for ``compare``: numeric features, a target, and what it looks like.

    Attributes:
        features: ``(rows, columns)`` float64.
        target: Class indices (int64) for classification, values (float64) for regression.
        feature_names: Column names of ``features``.
        target_name: The target column.
        kind: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        class_names: The original target value of each class index (classification).
        source: The file.
        notes: What was done (dropped rows, dropped index columns, the inferred kind).
        kind_reason: Why the target is of that kind ("integer target with 3 values").
        rows_read: Data rows in the file (before dropping rows with empty cells).
        dropped_columns: Columns dropped as row indices.
    """

    features: np.ndarray
    target: np.ndarray
    feature_names: list[str]
    target_name: str
    kind: Kind
    class_names: list[str] | None
    source: str
    notes: list[str] = field(default_factory=list)
    kind_reason: str = ""
    rows_read: int = 0
    dropped_columns: list[str] = field(default_factory=list)


_MISSING = {"", "nan", "na", "n/a", "null", "none"}


def _is_missing(cell: str) -> bool:
    return cell.strip().lower() in _MISSING


def _to_float(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def load_csv(path: str | os.PathLike[str], target: str, *, kind: Kind | None = None) -> TabularData:
    """Read a CSV file with a header row: numeric features and one target column.

    The kind of problem is inferred from the target unless given: text values or exactly two
    distinct values make a classification (two values: binary), integers with at most 10
    distinct values make a multi-class problem, anything else is a regression. Rows with an
    empty or NaN cell are dropped with a ``UserWarning`` saying how many.

    Args:
        path: The CSV file.
        target: The target column's name.
        kind: ``"binary"``, ``"multiclass"`` or ``"regression"`` to override the inference.

    Returns:
        The :class:`TabularData`.

    Raises:
        DataError: No such file; not a CSV with a header and rows; no such target column; no
            feature column; a non-numeric feature; no rows left after dropping NaN rows; a target
            with one class (or one value); a non-numeric target for a regression; a binary
            ``kind`` for a target with more than two classes.
    """
    file = Path(path)
    if not file.is_file():
        raise DataError(f"data file {str(file)!r} does not exist")
    with file.open(newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle) if row and any(c.strip() for c in row)]
    if len(rows) < 2:
        raise DataError(f"{str(file)!r} needs a header row and at least one data row")
    header = [name.strip() for name in rows[0]]
    body = rows[1:]
    if target not in header:
        raise DataError(
            f"target column {target!r} is not in {file.name}; its columns are: "
            f"{', '.join(header)}.{suggest(target, header)}"
        )
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(
                f"{file.name} line {line} has {len(row)} cells, the header has {len(header)}"
            )
    t_col = header.index(target)
    notes = []
    index_cols = [i for i in range(len(header)) if i != t_col and _is_row_index(header[i], body, i)]
    for i in index_cols:
        name = header[i] or "(unnamed)"
        why = (
            "an empty header, as pandas writes its index"
            if not header[i].strip() or header[i].startswith("Unnamed: ")
            else f"its values are the row numbers {body[0][i].strip()}..{body[-1][i].strip()}"
        )
        notes.append(
            f"dropped column {name!r} of {file.name}: a row index ({why}), not a feature "
            "(on sorted data it would give the label away)"
        )
    f_cols = [i for i in range(len(header)) if i != t_col and i not in index_cols]
    if not f_cols:
        raise DataError(f"{file.name} has no feature columns besides the target {target!r}")

    body = [[c for j, c in enumerate(row) if j not in index_cols] for row in body]
    kept = [i for i in range(len(header)) if i not in index_cols]
    header_kept = [header[i] for i in kept]
    t_col = header_kept.index(target)
    f_cols = [j for j in range(len(header_kept)) if j != t_col]
    dropped_names = [header[i] or "(unnamed)" for i in index_cols]
    header = header_kept
    complete = [row for row in body if not any(_is_missing(cell) for cell in row)]
    dropped = len(body) - len(complete)
    if dropped:
        message = f"dropped {dropped} of {len(body)} rows of {file.name} with an empty or NaN cell"
        warnings.warn(message, UserWarning, stacklevel=2)
        notes.append(message)
    if not complete:
        raise DataError(f"no rows of {file.name} are left after dropping rows with NaN cells")

    features = np.empty((len(complete), len(f_cols)), dtype=np.float64)
    for j, col in enumerate(f_cols):
        for i, row in enumerate(complete):
            value = _to_float(row[col])
            if value is None or math.isinf(value):
                raise DataError(
                    f"feature column {header[col]!r} is not numeric (value {row[col]!r} in data "
                    f"row {i + 1}); compare takes numeric features only: encode categories "
                    "(e.g. one-hot) or drop the column first"
                )
            features[i, j] = value

    raw = [row[t_col].strip() for row in complete]
    numbers = [_to_float(cell) for cell in raw]
    numeric = all(v is not None and math.isfinite(v) for v in numbers)
    distinct = sorted(set(raw), key=lambda c: (_to_float(c) is None, _to_float(c) or 0.0, c))
    if len(distinct) < 2:
        raise DataError(
            f"target column {target!r} has a single value ({distinct[0]!r}) in every row; "
            "there is nothing to learn"
        )
    integers = numeric and all(float(v).is_integer() for v in numbers if v is not None)
    shown = ", ".join(repr(c) for c in distinct[:4]) + (", ..." if len(distinct) > 4 else "")
    if not numeric:
        reason = f"text target with {len(distinct)} values ({shown})"
    elif len(distinct) == 2:
        reason = f"numeric target with 2 values ({shown})"
    elif integers and len(distinct) <= 10:
        reason = f"integer target with {len(distinct)} values ({shown}), at most 10"
    else:
        what = "integer" if integers else "numeric"
        reason = f"{what} target with {len(distinct)} distinct values"
    if kind is None:
        if not numeric or len(distinct) == 2:
            kind = "binary" if len(distinct) == 2 else "multiclass"
        elif integers and len(distinct) <= 10:
            kind = "multiclass"
        else:
            kind = "regression"
        reason += f" -> {kind}"
        notes.append(f"task inferred from the target {target!r}: {kind} ({reason})")
    else:
        reason += f"; {kind} as asked (--task)"
    extra = {"kind_reason": reason, "rows_read": len(body), "dropped_columns": dropped_names}
    if kind == "regression":
        if not numeric:
            bad = next(
                c for c, v in zip(raw, numbers, strict=True) if v is None or not math.isfinite(v)
            )
            raise DataError(
                f"target column {target!r} is not numeric (value {bad!r}), so it cannot be "
                "regressed; choose a classification task"
            )
        values = np.asarray(numbers, dtype=np.float64)
        return TabularData(
            features,
            values,
            [header[i] for i in f_cols],
            target,
            kind,
            None,
            str(file),
            notes,
            **extra,  # type: ignore[arg-type]
        )
    if kind == "binary" and len(distinct) != 2:
        raise DataError(
            f"a binary task needs a target with exactly two classes; {target!r} has "
            f"{len(distinct)}: {', '.join(distinct[:8])}{'...' if len(distinct) > 8 else ''}"
        )
    index = {value: i for i, value in enumerate(distinct)}
    labels = np.asarray([index[cell] for cell in raw], dtype=np.int64)
    if kind == "binary":
        notes.append(f"positive class: {target} = {distinct[1]!r}")
    return TabularData(
        features,
        labels,
        [header[i] for i in f_cols],
        target,
        kind,
        distinct,
        str(file),
        notes,
        **extra,  # type: ignore[arg-type]
    )


def _is_row_index(name: str, body: list[list[str]], col: int) -> bool:
    """An empty header (pandas' index) or the values ``0..n-1`` / ``1..n`` in order."""
    if not name.strip() or name.startswith("Unnamed: "):
        return True
    values = [_to_float(row[col]) for row in body]
    if any(v is None or not float(v).is_integer() for v in values) or len(values) < 3:
        return False
    start = values[0]
    return start in (0.0, 1.0) and all(v == start + i for i, v in enumerate(values))


def split_tabular(table: TabularData, seed: int) -> Dataset:
    """Split a :class:`TabularData` 60/20/20 (stratified for classes), standardising features."""
    rng = np.random.default_rng(seed)
    if table.kind == "regression":
        if len(table.target) < 5:
            raise DataError(f"{table.source} has {len(table.target)} rows; a regression needs 5+")
        train, val, test = _random_indices(len(table.target), (0.6, 0.2, 0.2), rng)
    else:
        train, val, test = _stratified_indices(
            table.target, (0.6, 0.2, 0.2), rng, table.class_names
        )
    mean, std = _standardise(table.features, train)
    x = (table.features - mean) / std
    y = table.target
    name = Path(table.source).name
    if table.kind == "regression":
        center = float(np.median(y[train]))
        q75, q25 = np.percentile(y[train], [75, 25])
        scale = float((q75 - q25) / 1.349) or float(y[train].std()) or 1.0
        return Dataset(
            name=name,
            description=f"{name}: {len(y)} rows, {x.shape[1]} features, target {table.target_name}",
            **_splits(x, y, (train, val, test), torch.float32),
            target_center=center,
            target_scale=scale,
            notes=list(table.notes),
        )
    y_dtype = torch.float32 if table.kind == "binary" else torch.long
    return Dataset(
        name=name,
        description=(
            f"{name}: {len(y)} rows, {x.shape[1]} features, target {table.target_name} "
            f"({len(table.class_names or [])} classes)"
        ),
        **_splits(x, y, (train, val, test), y_dtype),
        num_classes=len(table.class_names or []),
        class_names=table.class_names,
        notes=list(table.notes),
    )
