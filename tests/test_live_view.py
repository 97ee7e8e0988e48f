"""The pieces of compare's live view and page: TensorBoard runs, layouts, server; report.html."""

from __future__ import annotations

import base64
import json
import socket
import struct
import time
import urllib.request
import zlib

import pytest

from lossatlas.lab.html import Figure, Page, Table, embed_image, render_page, write_page

pytest.importorskip("tensorboard", reason="the live view needs tensorboard (the lab extra)")

from lossatlas.lab import tensorboard as tb


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    """A valid RGB PNG built by hand (each row: filter byte 0, then black pixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def write_runs(root):
    """Two candidates x two seeds x three epochs with values worked out from the indices."""
    expected = {}
    for loss in ("mse", "huber"):
        for seed in (0, 1):
            writer = tb.RunWriter(root, "regression-outliers", loss, seed)
            for epoch in (1, 2, 3):
                total = 1.0 / epoch + seed
                writer.epoch(epoch, total, {"l1": total / 2}, {"mae": 10.0 / epoch})
            writer.finish(3, {"loss": loss, "seed": seed, "options": {"delta": 1}}, {"mae": 3.5})
            expected[(loss, seed)] = {
                "train/loss/total": [(e, 1.0 / e + seed) for e in (1, 2, 3)],
                "train/loss/l1": [(e, (1.0 / e + seed) / 2) for e in (1, 2, 3)],
                "val/mae": [(e, 10.0 / e) for e in (1, 2, 3)],
                "test/mae": [(3, 3.5)],
            }
    return expected


def test_run_writer_tags_values_and_layout(tmp_path):
    expected = write_runs(tmp_path)
    for (loss, seed), tags in expected.items():
        read = tb.read_scalars(tmp_path / "regression-outliers" / loss / f"seed{seed}")
        assert set(read) == set(tags)
        for tag, points in tags.items():
            assert [s for s, _ in read[tag]] == [s for s, _ in points]
            # event files store float32
            assert [v for _, v in read[tag]] == pytest.approx([v for _, v in points], rel=1e-6)
    directory = tb.write_layout(tmp_path, "regression-outliers", [("mae", "MAE")], parts=["l1"])
    assert directory == tmp_path / "regression-outliers"
    with pytest.raises(FileNotFoundError, match="no TensorBoard event file"):
        tb.read_scalars(tmp_path / "nothing")


def test_run_dir_keeps_keys_readable_and_paths_safe(tmp_path):
    assert tb.run_dir(tmp_path, "t", "quantile_0.5", 0) == tmp_path / "t" / "quantile_0.5" / "seed0"
    assert tb.run_dir(tmp_path, "t", "a/b c", 1) == tmp_path / "t" / "a_b_c" / "seed1"


def get_json(url: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_serve_answers_on_loopback_and_refuses_a_taken_port(tmp_path):
    expected = write_runs(tmp_path)
    tb.write_layout(tmp_path, "regression-outliers", [("mae", "test MAE")])
    with tb.serving(tmp_path) as server:
        assert server.url.startswith("http://127.0.0.1:")
        port = int(server.url.rstrip("/").rsplit(":", 1)[1])
        runs = get_json(server.url + "data/runs")
        assert {f"regression-outliers/{loss}/seed{seed}" for loss, seed in expected} <= set(runs)
        layout = get_json(server.url + "data/plugin/custom_scalars/layout")
        titles = [c["title"] for c in layout["category"][0]["chart"]]
        assert "MAE on the validation split, every loss and seed" in titles
        with pytest.raises(tb.ServeError, match=f"could not bind to port {port}"):
            tb.serve(tmp_path, port=port)
    # stopped: nothing listens there any more, and a server may take the port again (with
    # SO_REUSEADDR, as servers bind: the closed HTTP connections linger in TIME_WAIT)
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def test_embed_png_and_svg_and_refuse_other_files(tmp_path):
    png = tmp_path / "a.png"
    png.write_bytes(tiny_png())
    tag = embed_image(png, 'curves "mse"')
    encoded = tag.split("base64,", 1)[1].split('"', 1)[0]
    assert base64.b64decode(encoded) == png.read_bytes()
    assert 'alt="curves &quot;mse&quot;"' in tag
    svg = tmp_path / "a.svg"
    svg.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg xmlns="http://www.w3.org/2000/svg"/>'
    )
    assert embed_image(svg, "x").startswith('<svg role="img" aria-label="x"')
    text = tmp_path / "a.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="neither a PNG nor an SVG"):
        embed_image(text, "x")


def test_page_has_no_script_escapes_text_and_is_written_whole(tmp_path):
    png = tmp_path / "m.png"
    png.write_bytes(tiny_png())
    page = Page(
        title="lossatlas compare: <t>",
        lead="a task",
        verdict=["huber beats mse (p = 0.008)"],
        table=Table(["loss", "MAE"], [["huber", "1.0"], ["mse", "2.0"]], {(0, 1): "winner"}),
        figures=[Figure(png, "metrics"), Figure(png, "huber")],
        data=["seed 0: 100 rows"],
        notes=["<b>not bold</b>"],
        config={"seeds": [0, 1]},
    )
    text = render_page(page)
    assert "<script" not in text.lower() and "http://" not in text and "https://" not in text
    assert "&lt;t&gt;" in text and "&lt;b&gt;not bold&lt;/b&gt;" in text
    assert text.count("<img ") == 2
    assert '<td class="winner">1.0 ★</td>' in text
    path = write_page(page, tmp_path / "report.html")
    assert path.read_text(encoding="utf-8") == text
    assert not list(tmp_path.glob("*.tmp"))
