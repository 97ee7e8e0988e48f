"""LossHistory: recording every kind of loss value, CSV round trip, PNG plots, TensorBoard."""

from __future__ import annotations

import math
import struct
import sys
from typing import NamedTuple

import pytest
import torch

import lossatlas as la
from lossatlas.monitor import split_loss


class SSDParts(NamedTuple):  # the ssd_loss style: total first, then named parts
    total: torch.Tensor
    loc: torch.Tensor
    conf: torch.Tensor


class WithMapping(NamedTuple):
    loss: torch.Tensor
    parts: dict[str, torch.Tensor]
    extra: None = None


def png_size(path) -> tuple[int, int]:
    """Width and height from the PNG signature and IHDR chunk (PNG spec, section 11.2.2)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_records_tensor_loss_parts_namedtuple_and_numbers():
    history = la.LossHistory()
    history.record(torch.tensor(2.5))
    history.record(la.LossParts(torch.tensor(1.5), {"dice": torch.tensor(0.5)}))
    history.record(SSDParts(torch.tensor(3.0), torch.tensor(1.0), torch.tensor(2.0)))
    history.record(0.25, step=10)
    assert history.steps == [0, 1, 2, 10]
    assert history.totals == [2.5, 1.5, 3.0, 0.25]
    assert history.part_names == ["dice", "loc", "conf"]
    dice = history.part("dice")
    assert math.isnan(dice[0]) and dice[1] == 0.5 and math.isnan(dice[2])
    assert history.part("loc")[2] == 1.0
    assert len(history) == 4
    assert "4 records" in repr(history)


def test_combined_loss_parts_are_the_unweighted_terms():
    loss = la.combine(
        ce=(la.cross_entropy, 1.0),
        smooth=(la.label_smoothing_cross_entropy, 0.5),
        return_parts=True,
    )
    logits, target = torch.tensor([[1.0, 2.0]]), torch.tensor([1])
    history = la.LossHistory()
    history.record(loss(logits, target))
    ce = float(torch.nn.functional.cross_entropy(logits, target))
    smooth = float(torch.nn.functional.cross_entropy(logits, target, label_smoothing=0.1))
    assert history.part("ce") == [pytest.approx(ce)]
    assert history.part("smooth") == [pytest.approx(smooth)]
    assert history.totals == [pytest.approx(ce + 0.5 * smooth)]


def test_namedtuple_with_a_mapping_field_contributes_its_entries():
    total, parts = split_loss(WithMapping(torch.tensor(1.0), {"a": torch.tensor(0.25)}))
    assert total == 1.0 and parts == {"a": 0.25}


def test_bad_values_are_rejected_with_messages():
    history = la.LossHistory()
    with pytest.raises(TypeError, match="NamedTuple whose first field is the total"):
        history.record((torch.tensor(1.0), torch.tensor(2.0)))
    with pytest.raises(ValueError, match=r"must be a scalar .* shape \(3,\)"):
        history.record(torch.ones(3))
    with pytest.raises(TypeError, match="scalar tensor or a number"):
        history.record("1.0")
    history.record(1.0, step=5)
    with pytest.raises(ValueError, match="step must increase: got 5 after 5"):
        history.record(1.0, step=5)
    with pytest.raises(ValueError, match="may not be called 'total'"):
        history.record(la.LossParts(torch.tensor(1.0), {"total": torch.tensor(1.0)}))
    assert len(history) == 1  # the rejected records left no trace
    with pytest.raises(KeyError, match="no part named 'x'"):
        history.part("x")


def test_csv_round_trip_keeps_values_and_missing_parts(tmp_path):
    history = la.LossHistory()
    history.record(torch.tensor(1 / 3))
    history.record(
        la.LossParts(torch.tensor(0.1), {"a": torch.tensor(0.2), "b": torch.tensor(2.0)})
    )
    history.record(la.LossParts(torch.tensor(1e-8), {"b": torch.tensor(-0.5)}), step=7)
    path = history.to_csv(tmp_path / "loss.csv")
    assert path.read_text().splitlines()[0] == "step,total,a,b"
    back = la.LossHistory.from_csv(path)
    assert back.steps == history.steps
    assert back.totals == history.totals  # floats written with repr: exact
    assert back.part_names == ["a", "b"]
    for name in ("a", "b"):
        for x, y in zip(back.part(name), history.part(name), strict=True):
            assert (math.isnan(x) and math.isnan(y)) or x == y


def test_from_csv_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no loss history"):
        la.LossHistory.from_csv(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("epoch,value\n1,2\n")
    with pytest.raises(ValueError, match="header must start with 'step,total'"):
        la.LossHistory.from_csv(bad)
    bad.write_text("step,total\n1,abc\n")
    with pytest.raises(ValueError, match="line 2"):
        la.LossHistory.from_csv(bad)


def test_plot_writes_a_png_of_the_expected_size(tmp_path):
    history = la.LossHistory()
    for step in range(20):
        history.record(la.LossParts(torch.tensor(1.0 / (step + 1)), {"ce": torch.tensor(0.5)}))
    fig = history.plot(tmp_path / "loss.png", title="my run")
    # figsize (6.4, 4.0) inches at 100 dpi
    assert png_size(tmp_path / "loss.png") == (640, 400)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "loss" and ax.get_title() == "my run"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["total", "ce"]


def test_plot_into_given_axes():
    plt = pytest.importorskip("matplotlib.pyplot", reason="plots need matplotlib")
    fig, ax = plt.subplots()
    history = la.LossHistory()
    history.record(1.0)
    history.record(0.5)
    assert history.plot(ax=ax, log_y=True) is fig
    assert ax.get_yscale() == "log"
    plt.close(fig)


def _scalars(log_dir, tag):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator", reason="needs tensorboard"
    )
    acc = event_accumulator.EventAccumulator(str(log_dir))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_tensorboard_export_and_live_logging(tmp_path):
    pytest.importorskip("tensorboard", reason="TensorBoard logging needs tensorboard")
    history = la.LossHistory()
    history.record(la.LossParts(torch.tensor(2.0), {"dice": torch.tensor(0.5)}))
    history.record(la.LossParts(torch.tensor(1.0), {"dice": torch.tensor(0.25)}))
    history.to_tensorboard(tmp_path / "export")
    assert _scalars(tmp_path / "export", "loss/total") == [(0, 2.0), (1, 1.0)]
    assert _scalars(tmp_path / "export", "loss/dice") == [(0, 0.5), (1, 0.25)]

    live = la.LossHistory(tensorboard=tmp_path / "live", tag="train")
    live.record(torch.tensor(3.0))
    live.record(torch.tensor(1.5))
    live.close()
    assert _scalars(tmp_path / "live", "train/total") == [(0, 3.0), (1, 1.5)]


def test_missing_optional_packages_say_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ImportError, match=r"pip install 'lossatlas\[lab\]'"):
        la.LossHistory(tensorboard=tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    history = la.LossHistory()
    history.record(1.0)
    with pytest.raises(ImportError, match=r"needs 'matplotlib'.*pip install 'lossatlas\[plot\]'"):
        history.plot(tmp_path / "x.png")


def test_records_the_library_composite_losses():
    # dice_ce_loss returns its total; with return_parts=True its parts through LossParts, which
    # the history keeps by name. It records either.
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, generator=generator)
    target = torch.randint(0, 3, (2, 4, 4), generator=generator)
    out = la.dice_ce_loss(logits, target, return_parts=True)
    history = la.LossHistory()
    history.record(out)
    assert history.totals == [float(out.total)]
    assert {name: history.part(name)[0] for name in history.part_names} == {
        name: float(value) for name, value in out.parts.items()
    }
    history.record(la.dice_ce_loss(logits, target))
    assert history.totals == [float(out.total)] * 2
    assert all(math.isnan(history.part(name)[1]) for name in history.part_names)
