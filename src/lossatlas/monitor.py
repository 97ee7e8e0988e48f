"""Loss monitoring: record a loss and its parts step by step, then export, plot or log them.

:class:`LossHistory` takes whatever a loss returns -- a scalar tensor, a
:class:`lossatlas.LossParts` (what composite losses such as :func:`lossatlas.combine` or
``dice_ce_loss`` return with ``return_parts=True``), or any ``NamedTuple`` whose first field is
the total -- and keeps ``step``, ``total`` and one column per
part. It writes and reads CSV, draws the curves to PNG with matplotlib (the ``plot`` extra) and
writes scalars to TensorBoard through ``torch.utils.tensorboard`` when ``tensorboard`` is
installed.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from lossatlas._optional import pyplot, require
from lossatlas.compose import LossParts

__all__ = ["LossHistory"]

PathLike = str | os.PathLike[str]


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{name} must be a scalar (one element), got a tensor of shape {tuple(value.shape)}"
            )
        return float(value.detach())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{name} must be a scalar tensor or a number, got {type(value).__name__}")


def split_loss(loss: Any) -> tuple[float, dict[str, float]]:
    """``(total, parts)`` as floats from what a loss returned.

    Accepts a scalar tensor or number (no parts), a :class:`~lossatlas.LossParts`, or a
    ``NamedTuple`` whose first field is the total; its other fields are parts (a mapping field
    contributes each of its entries).
    """
    if isinstance(loss, LossParts):
        return _as_float("total", loss.total), {
            str(name): _as_float(f"part {name!r}", value) for name, value in loss.parts.items()
        }
    if isinstance(loss, tuple) and hasattr(loss, "_fields"):
        fields = loss._fields
        if not fields:
            raise ValueError("a NamedTuple loss needs at least one field (the total)")
        total = _as_float(f"total ({fields[0]})", loss[0])
        parts: dict[str, float] = {}
        for field, value in zip(fields[1:], loss[1:], strict=True):
            if isinstance(value, Mapping):
                parts.update({str(k): _as_float(f"part {k!r}", v) for k, v in value.items()})
            elif value is not None:
                parts[field] = _as_float(f"part {field!r}", value)
        return total, parts
    if isinstance(loss, tuple):
        raise TypeError(
            "a loss given as a tuple must be a NamedTuple whose first field is the total "
            "(e.g. lossatlas.LossParts), got a plain tuple"
        )
    return _as_float("loss", loss), {}


class LossHistory:
    """The history of a loss over training: step, total and named parts.

    Args:
        tensorboard: A log directory or a ``SummaryWriter``; when given, every :meth:`record`
            is also written to TensorBoard as it happens (``<tag>/total``, ``<tag>/<part>``).
        tag: The TensorBoard tag prefix.

    Example:
        >>> import torch
        >>> import lossatlas as la
        >>> history = la.LossHistory()
        >>> loss = la.combine(ce=(la.cross_entropy, 1.0),
        ...                   smooth=(la.label_smoothing_cross_entropy, 0.5), return_parts=True)
        >>> for step in range(3):
        ...     history.record(loss(torch.tensor([[1.0, 2.0 + step]]), torch.tensor([1])))
        >>> history.steps
        [0, 1, 2]
        >>> # total = ce + 0.5 * smoothed ce, with ce = softplus(-1 - step) worked by hand
        >>> [round(t, 4) for t in history.totals]
        [0.4949, 0.2404, 0.1479]
        >>> history.part_names
        ['ce', 'smooth']
    """

    def __init__(self, *, tensorboard: PathLike | Any | None = None, tag: str = "loss") -> None:
        self.steps: list[int] = []
        self.totals: list[float] = []
        self._parts: dict[str, list[float]] = {}
        self.tag = tag
        self._writer: Any = None
        self._owns_writer = False
        self._live: _LiveView | None = None
        if tensorboard is not None:
            if isinstance(tensorboard, (str, os.PathLike)):
                self._writer = _summary_writer(tensorboard)
                self._owns_writer = True
            else:
                self._writer = tensorboard

    # ------------------------------------------------------------------ recording

    def record(self, loss: Any, *, step: int | None = None) -> None:
        """Record one value of the loss.

        Args:
            loss: A scalar tensor or number, a :class:`~lossatlas.LossParts`, or a
                ``NamedTuple`` whose first field is the total.
            step: The step; defaults to one past the last recorded step (0 for the first).

        Raises:
            TypeError: For anything else (e.g. a plain tuple).
            ValueError: For a tensor of more than one element, or a step not after the last.
        """
        total, parts = split_loss(loss)
        if step is None:
            step = self.steps[-1] + 1 if self.steps else 0
        elif not isinstance(step, int) or isinstance(step, bool):
            raise TypeError(f"step must be an int, got {type(step).__name__}")
        if self.steps and step <= self.steps[-1]:
            raise ValueError(f"step must increase: got {step} after {self.steps[-1]}")
        self._append(step, total, parts)
        if self._writer is not None:
            self._write_scalars(self._writer, step, total, parts)
        if self._live is not None:
            self._live.recorded(self)

    def _append(self, step: int, total: float, parts: Mapping[str, float]) -> None:
        for name in parts:
            if name in ("step", "total"):
                raise ValueError(f"a part may not be called {name!r} (a reserved column)")
        index = len(self.steps)
        self.steps.append(step)
        self.totals.append(total)
        for name in parts:
            self._parts.setdefault(name, [math.nan] * index)
        for name, values in self._parts.items():
            values.append(parts.get(name, math.nan))

    # ------------------------------------------------------------------ views

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[dict[str, float]]:
        for i, step in enumerate(self.steps):
            row: dict[str, float] = {"step": step, "total": self.totals[i]}
            row.update({name: values[i] for name, values in self._parts.items()})
            yield row

    def __repr__(self) -> str:
        parts = f", parts={self.part_names}" if self._parts else ""
        return f"LossHistory({len(self)} records{parts})"

    @property
    def part_names(self) -> list[str]:
        """Names of the recorded parts, in the order they first appeared."""
        return list(self._parts)

    def part(self, name: str) -> list[float]:
        """One part's values (``nan`` at steps where it was not recorded)."""
        try:
            return list(self._parts[name])
        except KeyError:
            raise KeyError(f"no part named {name!r}; recorded parts: {self.part_names}") from None

    @property
    def columns(self) -> dict[str, list[float]]:
        """``{"step": ..., "total": ..., <part>: ...}``, each a list with one entry per record."""
        out: dict[str, list[float]] = {"step": [float(s) for s in self.steps], "total": self.totals}
        out.update(self._parts)
        return out

    # ------------------------------------------------------------------ CSV

    def to_csv(self, path: PathLike) -> Path:
        """Write ``step,total,<parts...>`` to ``path`` (missing parts as empty cells)."""
        path = Path(path)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["step", "total", *self._parts])
            for row in self:
                cells = [str(int(row["step"])), repr(row["total"])]
                cells += ["" if math.isnan(row[name]) else repr(row[name]) for name in self._parts]
                writer.writerow(cells)
        return path

    @classmethod
    def from_csv(cls, path: PathLike) -> LossHistory:
        """Read a history written by :meth:`to_csv`.

        Raises:
            FileNotFoundError: If ``path`` does not exist.
            ValueError: If the header does not start with ``step,total`` or a cell is not a number.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no loss history at {str(path)!r}")
        history = cls()
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or header[:2] != ["step", "total"]:
                raise ValueError(
                    f"{str(path)!r} is not a LossHistory CSV: its header must start with "
                    f"'step,total', got {header!r}"
                )
            names = header[2:]
            for line, cells in enumerate(reader, start=2):
                if len(cells) != len(header):
                    raise ValueError(
                        f"{str(path)!r} line {line}: expected {len(header)} cells, got {len(cells)}"
                    )
                try:
                    step = int(cells[0])
                    total = float(cells[1])
                    parts = {
                        n: float(c) if c else math.nan
                        for n, c in zip(names, cells[2:], strict=True)
                    }
                except ValueError as error:
                    raise ValueError(f"{str(path)!r} line {line}: {error}") from None
                history._append(step, total, parts)
            for name in names:  # a part that never had a value still round-trips as a column
                history._parts.setdefault(name, [math.nan] * len(history))
        return history

    # ------------------------------------------------------------------ plots

    def plot(
        self,
        path: PathLike | None = None,
        *,
        ax: Any = None,
        title: str = "Training loss",
        log_y: bool = False,
        label: str | None = None,
    ) -> Any:
        """Draw total and parts against the step (matplotlib; the ``plot`` extra).

        Args:
            path: Where to save a PNG (only when ``ax`` is not given).
            ax: A matplotlib ``Axes`` to draw into instead of a new figure.
            title: The axes title.
            log_y: A logarithmic loss axis.
            label: Legend label of the total (default ``"total"``).

        Returns:
            The matplotlib ``Figure``.
        """
        plt = pyplot()
        if ax is None:
            fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100, layout="constrained")
        else:
            fig = ax.figure
        ax.plot(self.steps, self.totals, label=label or "total", linewidth=2.0)
        for name, values in self._parts.items():
            ax.plot(self.steps, values, label=name, linewidth=1.2, linestyle="--")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(title)
        if log_y:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
        if path is not None:
            fig.savefig(path)
            plt.close(fig)
        return fig

    def show(self, *, every: int = 1, **plot_options: Any) -> Any:
        """In a Jupyter notebook, show the curves now and redraw them in place as records arrive.

        The plot is the one :meth:`plot` draws, shown as a PNG in one output cell that every
        ``every``-th :meth:`record` replaces. Outside a notebook (a script, a terminal IPython,
        no IPython at all) this does nothing and returns ``None``, so a training script can call
        it unconditionally.

        Args:
            every: Redraw after every ``every``-th record (drawing costs a few milliseconds).
            plot_options: Passed to :meth:`plot` (``title``, ``log_y``, ``label``).

        Returns:
            The ``IPython.display.DisplayHandle`` of the output cell, or ``None`` outside a
            notebook.

        Raises:
            ValueError: If ``every`` is not a positive integer.

        Example:
            >>> import lossatlas as la
            >>> print(la.LossHistory().show())  # not in a notebook: nothing shown
            None
        """
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        display = _notebook_display()
        if display is None:
            return None
        self._live = _LiveView(display, every, plot_options)
        self._live.draw(self)
        return self._live.handle

    # ------------------------------------------------------------------ TensorBoard

    def to_tensorboard(self, log_dir_or_writer: PathLike | Any) -> None:
        """Write every record to TensorBoard (``<tag>/total``, ``<tag>/<part>``).

        Args:
            log_dir_or_writer: A log directory, or an open ``SummaryWriter``.

        Raises:
            ImportError: If ``tensorboard`` is not installed, saying how to install it.
        """
        owns = isinstance(log_dir_or_writer, (str, os.PathLike))
        writer: Any = _summary_writer(log_dir_or_writer) if owns else log_dir_or_writer
        try:
            for row in self:
                parts = {k: v for k, v in row.items() if k not in ("step", "total")}
                self._write_scalars(writer, int(row["step"]), row["total"], parts)
            writer.flush()
        finally:
            if owns:
                writer.close()

    def _write_scalars(
        self, writer: Any, step: int, total: float, parts: Mapping[str, float]
    ) -> None:
        writer.add_scalar(f"{self.tag}/total", total, step)
        for name, value in parts.items():
            if not math.isnan(value):
                writer.add_scalar(f"{self.tag}/{name}", value, step)

    def close(self) -> None:
        """Flush and close a TensorBoard writer this history opened itself."""
        if self._writer is not None and self._owns_writer:
            self._writer.close()
            self._writer = None


def _summary_writer(log_dir: PathLike) -> Any:
    require("tensorboard", "lab", purpose="LossHistory's TensorBoard logging")
    tensorboard = require("torch.utils.tensorboard", "lab", purpose="TensorBoard logging")
    return tensorboard.SummaryWriter(log_dir=str(log_dir))


def _notebook_display() -> Any:
    """``IPython.display`` when running in a Jupyter kernel, else ``None``."""
    import sys

    if "IPython" not in sys.modules:  # a notebook kernel always has it imported
        return None
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):  # a terminal IPython has no kernel
        return None
    import IPython.display

    return IPython.display


class _LiveView:
    """One notebook output cell showing a history's plot, replaced as records arrive."""

    def __init__(self, display: Any, every: int, plot_options: dict[str, Any]) -> None:
        self._display = display
        self._every = every
        self._options = plot_options
        self._since = 0
        self.handle: Any = None

    def _png(self, history: LossHistory) -> bytes:
        import io

        # a figure outside pyplot, so the notebook's inline backend does not show it a second time
        figure_module = require("matplotlib.figure", "plot", purpose="LossHistory.show")
        figure = figure_module.Figure(figsize=(6.4, 4.0), dpi=100, layout="constrained")
        history.plot(ax=figure.add_subplot(), **self._options)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()

    def draw(self, history: LossHistory) -> None:
        image = self._display.Image(data=self._png(history), format="png")
        if self.handle is None:
            self.handle = self._display.display(image, display_id=True)
        else:
            self.handle.update(image)

    def recorded(self, history: LossHistory) -> None:
        self._since += 1
        if self._since >= self._every:
            self._since = 0
            self.draw(history)
