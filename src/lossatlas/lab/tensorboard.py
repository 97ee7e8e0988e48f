"""The live view of ``lossatlas compare``: TensorBoard event files, chart layouts and a server.

Every (loss, seed) run writes its own TensorBoard run under ``OUT/tb/<task>/<loss>/seed<k>``:

* ``train/loss/total`` and ``train/loss/<part>`` (composite losses) -- the epoch mean;
* ``val/<metric>`` -- each of the task's metrics on the validation data after every epoch;
* ``test/<metric>`` -- the final metrics, at the last epoch;
* one HParams summary (the loss, its catalog name, its setting, the seed) whose metrics are the
  ``test/`` tags, so TensorBoard's HParams table lines the candidates up.

``OUT/tb/<task>`` also holds a custom-scalars layout: one chart per metric (and one for the
training loss) with the curves of every candidate and seed, so the Custom Scalars tab compares
them on one set of axes. :func:`serve` runs TensorBoard in this process (its Python API, no
shell-out), bound to ``127.0.0.1`` unless told otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from lossatlas._optional import require

__all__ = [
    "RunWriter",
    "ServeError",
    "TensorBoardServer",
    "read_scalars",
    "run_dir",
    "serve",
    "task_dir",
    "write_layout",
]

_PURPOSE = "compare's TensorBoard view"


def _safe(name: str) -> str:
    """A path component from a candidate key (``quantile_0.5`` stays, ``a/b`` does not)."""
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", name) or "_"


def _plain(label: str) -> str:
    return label[5:] if label.startswith("test ") else label


def task_dir(root: str | Path, task: str) -> Path:
    """``root/<task>``: the runs of one task, and its chart layout."""
    return Path(root) / _safe(task)


def run_dir(root: str | Path, task: str, loss: str, seed: int) -> Path:
    """``root/<task>/<loss>/seed<k>``: where one run's events go.

    Example:
        >>> from lossatlas.lab.tensorboard import run_dir
        >>> run_dir("out/tb", "regression-outliers", "quantile_0.5", 2).as_posix()
        'out/tb/regression-outliers/quantile_0.5/seed2'
    """
    return task_dir(root, task) / _safe(loss) / f"seed{seed}"


def _summary_writer(log_dir: Path) -> Any:
    require("tensorboard", "lab", purpose=_PURPOSE)
    tensorboard = require("torch.utils.tensorboard", "lab", purpose=_PURPOSE)
    return tensorboard.SummaryWriter(log_dir=str(log_dir), flush_secs=5)


class RunWriter:
    """The TensorBoard run of one (loss, seed): epochs as they finish, then the HParams summary.

    Args:
        root: The TensorBoard root (``OUT/tb``).
        task: The task's name.
        loss: The candidate's key.
        seed: The seed.
    """

    def __init__(self, root: str | Path, task: str, loss: str, seed: int) -> None:
        self.log_dir = run_dir(root, task, loss, seed)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # a run written again (--resume after it was cut short) starts a clean curve
        for old in self.log_dir.glob("events.out.tfevents.*"):
            old.unlink()
        self._writer = _summary_writer(self.log_dir)

    def epoch(
        self,
        step: int,
        total: float,
        parts: Mapping[str, float] | None = None,
        validation: Mapping[str, float] | None = None,
    ) -> None:
        """Write one epoch: the mean training loss (and parts) and the validation metrics."""
        self._writer.add_scalar("train/loss/total", total, step)
        for name, value in (parts or {}).items():
            if not math.isnan(value):
                self._writer.add_scalar(f"train/loss/{name}", value, step)
        for name, value in (validation or {}).items():
            self._writer.add_scalar(f"val/{name}", value, step)
        self._writer.flush()

    def finish(self, step: int, hparams: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
        """Write the final test metrics and the HParams summary, then close the run.

        Args:
            step: The last epoch.
            hparams: The run's settings (numbers, strings and booleans; others become strings).
            metrics: Metric key -> final value (written as ``test/<key>``; these are the HParams
                table's metric columns).
        """
        summary = require("torch.utils.tensorboard.summary", "lab", purpose=_PURPOSE)
        for name, value in metrics.items():
            self._writer.add_scalar(f"test/{name}", value, step)
        clean = {
            k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in hparams.items()
        }
        experiment, start, end = summary.hparams(
            clean, {f"test/{name}": value for name, value in metrics.items()}
        )
        file_writer = self._writer._get_file_writer()
        for item in (experiment, start, end):
            file_writer.add_summary(item)
        self.close()

    def close(self) -> None:
        """Flush and close the event file (a diverged run closes without an HParams summary)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def write_layout(
    root: str | Path, task: str, metrics: Sequence[tuple[str, str]], *, parts: Sequence[str] = ()
) -> Path:
    """Write the custom-scalars layout of a task: each metric's curves of every run on one chart.

    Args:
        root: The TensorBoard root (``OUT/tb``).
        task: The task's name.
        metrics: ``(key, label)`` of each metric, in the task's order.
        parts: Names of loss parts to chart too (composite candidates).

    Returns:
        The directory the layout was written to (``root/<task>``).
    """
    summary = require("torch.utils.tensorboard.summary", "lab", purpose=_PURPOSE)
    directory = task_dir(root, task)
    directory.mkdir(parents=True, exist_ok=True)
    charts: dict[str, list[Any]] = {
        # the task's labels name the test split ("test MAE"); these curves are validation's
        f"{_plain(label)} on the validation split, every loss and seed": [
            "Multiline",
            [f"^val/{re.escape(key)}$"],
        ]
        for key, label in metrics
    }
    charts["training loss (epoch mean), every loss and seed"] = [
        "Multiline",
        [r"^train/loss/total$"],
    ]
    for name in parts:
        charts[f"training loss part {name}"] = ["Multiline", [f"^train/loss/{re.escape(name)}$"]]
    writer = _summary_writer(directory)
    try:
        writer._get_file_writer().add_summary(summary.custom_scalars({task: charts}))
    finally:
        writer.close()
    return directory


def read_scalars(log_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of one run directory: tag -> ``[(step, value), ...]`` (via TensorBoard).

    Raises:
        FileNotFoundError: If ``log_dir`` holds no event file.
    """
    accumulator = require(
        "tensorboard.backend.event_processing.event_accumulator", "lab", purpose=_PURPOSE
    )
    path = Path(log_dir)
    if not any(path.glob("events.out.tfevents.*")):
        raise FileNotFoundError(f"no TensorBoard event file in {str(path)!r}")
    events = accumulator.EventAccumulator(str(path), size_guidance={accumulator.SCALARS: 0})
    events.Reload()
    out: dict[str, list[tuple[int, float]]] = {}
    for tag in events.Tags()["scalars"]:
        out[tag] = [(e.step, e.value) for e in events.Scalars(tag)]
    # torch's writer stores add_scalar as a tensor summary on recent versions
    for tag in events.Tags().get("tensors", []):
        values = [(e.step, _tensor_value(e.tensor_proto)) for e in events.Tensors(tag)]
        out.setdefault(tag, [(s, v) for s, v in values if v is not None])
    return out


def _tensor_value(proto: Any) -> float | None:
    if proto.float_val:
        return float(proto.float_val[0])
    if proto.double_val:
        return float(proto.double_val[0])
    return None


class ServeError(RuntimeError):
    """TensorBoard could not serve (the port is taken, the host cannot be bound)."""


class TensorBoardServer:
    """A TensorBoard web server running in a thread of this process.

    Attributes:
        url: Where it answers (``http://127.0.0.1:PORT/``).
    """

    def __init__(self, server: Any) -> None:
        self._server = server
        self.url: str = server.get_url()
        self._thread = threading.Thread(
            target=server.serve_forever, name="TensorBoard", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and close the socket."""
        with contextlib.suppress(Exception):
            self._server.shutdown()
        self._thread.join(timeout)
        with contextlib.suppress(Exception):
            self._server.server_close()

    def __enter__(self) -> TensorBoardServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    logdir: str | Path, *, host: str = "127.0.0.1", port: int = 0, reload_interval: float = 2.0
) -> TensorBoardServer:
    """Start TensorBoard on ``logdir`` in this process.

    Args:
        logdir: The TensorBoard root (``OUT/tb``); it may still be empty.
        host: The address to bind (loopback unless the user asks for another).
        port: The port; 0 picks a free one.
        reload_interval: Seconds between re-reads of the event files (the live view).

    Returns:
        The running :class:`TensorBoardServer`; call ``stop()`` when done.

    Raises:
        ServeError: If the port is taken or the host cannot be bound (one line saying which).
    """
    program = require("tensorboard.program", "lab", purpose=_PURPOSE)
    # its per-request security notes and werkzeug's access log would bury compare's output
    for name in ("tensorboard", "werkzeug"):
        logging.getLogger(name).setLevel(logging.ERROR)
    board = program.TensorBoard()
    board.configure(
        argv=[
            "tensorboard",
            "--logdir",
            str(logdir),
            "--host",
            host,
            "--port",
            str(port),
            "--reload_interval",
            str(reload_interval),
            # the pure-Python reader: no data-server subprocess to start and stop
            "--load_fast",
            "false",
        ]
    )
    try:
        # TensorBoard's public launch() keeps no handle to stop its server; build it the same
        # way and run it in our own thread so that stop() can shut it down
        server = board._make_server()
    except program.TensorBoardServerException as error:
        raise ServeError(str(getattr(error, "msg", error))) from None
    except OSError as error:
        raise ServeError(f"TensorBoard could not bind to {host}:{port}: {error.strerror}") from None
    Path(logdir).mkdir(parents=True, exist_ok=True)
    return TensorBoardServer(server)


@contextlib.contextmanager
def serving(logdir: str | Path, **options: Any) -> Iterator[TensorBoardServer]:
    """:func:`serve` as a context manager (stopped on exit)."""
    server = serve(logdir, **options)
    try:
        yield server
    finally:
        server.stop()
