"""compare's grid: TensorBoard events, --jobs, --engine ray, --resume, Ctrl-C, --serve, bad input.

The comparisons are small (two losses x two seeds x three epochs of the default task) but real:
every check reads what the command wrote (report.json, TensorBoard's event files, its HTTP
endpoints), and the reference is always a run of the same comparison in another way.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from lossatlas.cli import main

pytest.importorskip("tensorboard", reason="compare's live view needs tensorboard (the lab extra)")
pytest.importorskip("sklearn", reason="compare needs scikit-learn (the lab extra)")

from lossatlas.lab.tensorboard import read_scalars

SMALL = ["--task", "regression-outliers", "--losses", "mse,huber", "--seeds", "2", "--epochs", "3"]
# what a run computes, as opposed to how long it took
SAME = ("candidate", "loss", "seed", "status", "metrics", "epoch_loss", "epoch_parts", "block")


def command(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "lossatlas", "compare", *SMALL, "--out", str(out), *args]


def compare(out: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(command(out, *args), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def runs(out: Path) -> dict:
    report = json.loads((out / "report.json").read_text())
    return {(r["candidate"], r["seed"]): {k: r[k] for k in SAME} for r in report["runs"]}


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The reference: --jobs 1, with TensorBoard events."""
    out = tmp_path_factory.mktemp("serial") / "R"
    compare(out, "--jobs", "1")
    return out


@pytest.mark.slow
def test_tensorboard_events_hold_every_candidates_loss_and_metrics(serial):
    report = json.loads((serial / "report.json").read_text())
    assert report["complete"] is True
    metrics = [m["key"] for m in report["task"]["metrics"]]
    assert {r["candidate"] for r in report["runs"]} == {"mse", "huber"}
    for run in report["runs"]:
        scalars = read_scalars(
            serial / "tb" / "regression-outliers" / run["candidate"] / f"seed{run['seed']}"
        )
        total = scalars["train/loss/total"]
        assert [s for s, _ in total] == [1, 2, 3]
        assert [v for _, v in total] == pytest.approx(run["epoch_loss"], rel=1e-6)  # float32
        for metric in metrics:
            assert [s for s, _ in scalars[f"val/{metric}"]] == [1, 2, 3]
            assert scalars[f"test/{metric}"][-1][1] == pytest.approx(
                run["metrics"][metric], rel=1e-6
            )
    # the layout: one chart per metric over every run
    assert list((serial / "tb" / "regression-outliers").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_jobs_2_gives_the_same_runs_as_jobs_1(serial, tmp_path):
    out = tmp_path / "R"
    compare(out, "--jobs", "2", "--no-tensorboard")
    assert runs(out) == runs(serial)
    assert not (out / "tb").exists()


@pytest.mark.slow
def test_ray_gives_the_same_runs_as_the_local_engine(serial, tmp_path):
    pytest.importorskip("ray", reason="--engine ray needs ray (pip install 'lossatlas[ray]')")
    out = tmp_path / "R"
    done = subprocess.run(
        command(out, "--engine", "ray", "--jobs", "2", "--no-tensorboard"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0 and "could not start a local Ray instance" in done.stdout + done.stderr:
        pytest.skip(
            f"Ray cannot start here: {(done.stdout + done.stderr).strip().splitlines()[-1]}"
        )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert runs(out) == runs(serial)


def _wait_for_runs(out: Path, process: subprocess.Popen, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "compare ended before it could be interrupted"
        try:
            if len(json.loads((out / "report.json").read_text())["runs"]) >= count:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"no {count} finished runs within {timeout} s")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_resume_after_a_killed_run_finishes_only_the_missing_runs(serial, tmp_path):
    out = tmp_path / "R"
    # eight seeds (16 runs) so that the kill lands mid-way however fast the machine is
    process = subprocess.Popen(
        command(out, "--jobs", "1", "--seeds", "8"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_runs(out, process, 1, timeout=300)
        process.kill()  # no chance to clean up: what was saved is what there is
    finally:
        process.wait(30)
    partial = json.loads((out / "report.json").read_text())
    assert partial["complete"] is False
    kept = {(r["candidate"], r["seed"]): r["seconds"] for r in partial["runs"]}
    assert 1 <= len(kept) < 16
    done = compare(out, "--jobs", "1", "--seeds", "8", "--resume")
    assert f"resuming: {len(kept)} runs kept" in done.stdout
    final = json.loads((out / "report.json").read_text())
    assert final["complete"] is True
    resumed = runs(out)
    assert len(resumed) == 16
    # a seed is a block: seeds 0 and 1 are the serial reference's runs, whoever trained them
    assert {key: run for key, run in resumed.items() if key[1] < 2} == runs(serial)
    for run in final["runs"]:  # the kept runs were not trained again
        if (run["candidate"], run["seed"]) in kept:
            assert run["seconds"] == kept[(run["candidate"], run["seed"])]


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_and_keeps_the_finished_runs(tmp_path):
    out = tmp_path / "R"
    process = subprocess.Popen(
        command(out, "--jobs", "2", "--seeds", "4", "--no-tensorboard"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_runs(out, process, 1, timeout=300)
        workers = _children(process.pid)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    said = " ".join(stdout.split())  # rich wraps at 80 columns without a terminal
    assert said.count("interrupted") == 1 and "with --resume runs the rest" in said
    report = json.loads((out / "report.json").read_text())
    assert report["complete"] is False and 1 <= len(report["runs"]) < 8
    assert not (out / "report.html").exists() and not (out / "report.md").exists()
    # the workers (and multiprocessing's resource tracker) are gone within a few seconds
    deadline = time.monotonic() + 15
    while [pid for pid in workers if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert workers and not [pid for pid in workers if _alive(pid)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_serve_prints_a_url_that_answers_and_stops_on_ctrl_c(tmp_path):
    out = tmp_path / "R"
    process = subprocess.Popen(
        command(out, "--jobs", "1", "--seeds", "1", "--serve"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line, "compare ended without printing the TensorBoard URL"
            if line.startswith("TensorBoard: "):
                url = line.split()[1]
            assert not re.search(r"\d+/\d+ epochs", line)  # the URL comes before the first run
        assert url is not None and url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "data/runs", timeout=30) as response:
            assert response.status == 200
        for line in process.stdout:  # the comparison ends; TensorBoard keeps serving
            if "still serving" in line:
                break
        # TensorBoard re-reads the event files every 2 s (--reload_interval): poll, bounded
        served: list[str] = []
        deadline = time.monotonic() + 60
        while "regression-outliers/mse/seed0" not in served and time.monotonic() < deadline:
            with urllib.request.urlopen(url + "data/runs", timeout=30) as response:
                served = json.loads(response.read())
            time.sleep(0.5)
        assert "regression-outliers/mse/seed0" in served
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_bad_input_is_one_line_and_leaves_nothing(tmp_path):
    runner = CliRunner()
    out = tmp_path / "R"

    def one_line(args: list[str], message: str) -> None:
        result = runner.invoke(main, ["compare", *SMALL, *args])
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines

    one_line(["--out", str(out), "--jobs", "0"], "--jobs must be at least 1, got 0")
    port = _free_port()  # nothing listens there
    import importlib.util

    # Without ray installed the same command fails earlier, with the install hint (one line).
    ray_message = (
        f"at 127.0.0.1:{port}"
        if importlib.util.find_spec("ray") is not None
        else "pip install 'lossatlas[ray]'"
    )
    one_line(["--out", str(out), "--engine", "ray", "--address", f"127.0.0.1:{port}"], ray_message)
    one_line(["--out", str(out), "--address", "127.0.0.1:6379"], "add --engine ray")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        one_line(["--out", str(out), "--serve", "--port", str(busy)], f"port {busy}")
    one_line(["--out", str(out), "--resume"], "there is no")
    assert not out.exists()  # none of these wrote anything
    file = tmp_path / "a-file"
    file.write_text("x")
    one_line(["--out", str(file)], "is a file")
    assert file.read_text() == "x"


def test_resume_refuses_a_report_of_another_comparison(tmp_path):
    out = tmp_path / "R"
    out.mkdir()
    (out / "report.json").write_text(
        json.dumps({"config": {"task": "segmentation", "epochs": 3}, "runs": []})
    )
    result = CliRunner().invoke(main, ["compare", *SMALL, "--out", str(out), "--resume"])
    assert result.exit_code == 1
    assert "compares 'segmentation', not 'regression-outliers'" in result.output
    (out / "report.json").write_text("{not json")
    result = CliRunner().invoke(main, ["compare", *SMALL, "--out", str(out), "--resume"])
    assert "is not a lossatlas compare report" in result.output


def test_engine_arguments_and_resume_bookkeeping():
    from lossatlas.lab.engine import RunSpec, default_jobs, pending_specs, run_grid

    specs = [RunSpec("mse", 0, 2), RunSpec("mse", 1, 2), RunSpec("huber", 0, 2)]
    assert pending_specs(specs, [("mse", 1)]) == [specs[0], specs[2]]
    assert default_jobs() == len(os.sched_getaffinity(0))
    with pytest.raises(ValueError, match="jobs must be a positive number of processes, got 0"):
        run_grid(lambda spec, tick: {}, specs, jobs=0)
    with pytest.raises(ValueError, match="engine must be one of local, ray"):
        run_grid(lambda spec, tick: {}, specs, engine="dask")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="address names a Ray cluster"):
        run_grid(lambda spec, tick: {}, specs, address="127.0.0.1:6379")
    ticks: list[int] = []

    def run(spec, tick):
        for _ in range(spec.epochs):
            tick()
        return {"key": spec.key}

    outcome = run_grid(run, specs, on_tick=ticks.append)
    assert list(outcome.results) == [s.key for s in specs] and not outcome.interrupted
    assert sum(ticks) == 6
