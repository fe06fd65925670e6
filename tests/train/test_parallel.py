"""Data-parallel training in 2 CPU processes (accelerate launch, gloo): the same run as one process with the same
global batch, Stop, and SIGKILL of one process then resume."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import training_processes

from core.data.tables import read_table
from core.runs import events as ev
from core.runs.config import TrainConfig
from core.runs.store import RunStore
from core.tasks import prepare_data
from core.train.engine import TrainingJob


def history(run_dir: Path, kind: str) -> list[dict]:
    path = run_dir / "history.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [e for e in map(json.loads, lines) if e["event"] == kind]


def step_losses(run_dir: Path) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in history(run_dir, "step")}


def deterministic(model: str, **overrides) -> TrainConfig:
    """fp32 and no dropout: N processes must then reproduce one process's losses up to float rounding."""
    base = dict(base_model=model, max_steps=12, batch_size=16, max_length=32, learning_rate=1e-3, eval_every_steps=4,
                early_stopping_patience=0, precision="fp32", hidden_dropout=0.0, seed=7)
    return TrainConfig(**{**base, **overrides})


@pytest.mark.slow
def test_two_processes_from_the_cli_match_one_process_with_the_same_global_batch(tiny_model_dir, toy_csv, tmp_path):
    one = TrainingJob(deterministic(str(tiny_model_dir)), prepare_data("classification", read_table(toy_csv)),
                      RunStore(tmp_path / "one"), data_name="toy")
    one.run()
    assert isinstance(one.events.since(0)[-1], ev.Finished)

    runs = tmp_path / "two"  # given relative to a working folder outside the repository, as a user would
    assert toy_csv.parent == tmp_path
    cmd = [sys.executable, "-m", "core", "--runs", "two", "train", "--data", toy_csv.name, "--processes", "2",
           "--base-model", str(tiny_model_dir), "--batch-size", "8", "--max-steps", "12", "--max-length", "32",
           "--learning-rate", "1e-3", "--eval-every-steps", "4", "--early-stopping-patience", "0", "--precision", "fp32",
           "--hidden-dropout", "0", "--seed", "7"]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "global batch 16 = 8 per process x 2" in result.stdout + result.stderr
    two = RunStore(runs).list()[0]
    assert two.status == "finished"

    expected, got = step_losses(one.run_dir), step_losses(two.path)
    assert sorted(got) == sorted(expected) == list(range(1, 13))
    for step in expected:
        assert got[step] == pytest.approx(expected[step], abs=2e-3), step
    for a, b in zip(history(one.run_dir, "evaluation"), history(two.path, "evaluation")):
        assert b["loss"] == pytest.approx(a["loss"], abs=2e-3)
    metrics = [json.loads((path / "metrics.json").read_text()) for path in (one.run_dir, two.path)]
    assert metrics[1]["accuracy"] == metrics[0]["accuracy"]
    assert not training_processes(two.path)


def test_stop_ends_every_process_and_keeps_a_model(tiny_model_dir, toy_csv, tmp_path):
    job = TrainingJob(deterministic(str(tiny_model_dir), batch_size=8, processes=2, max_steps=400),
                      prepare_data("classification", read_table(toy_csv)), RunStore(tmp_path), data_name="toy")
    job.events.subscribe(lambda e: isinstance(e, ev.Step) and e.step == 3 and job.cancel())
    job.start()
    job.join(180)
    last = job.events.since(0)[-1]
    assert isinstance(last, ev.Cancelled), last
    assert max(step_losses(job.run_dir)) < 400
    assert RunStore(tmp_path).list()[0].status == "cancelled"
    assert (job.run_dir / "model.safetensors").is_file() and (job.run_dir / "metrics.json").is_file()
    assert not training_processes(job.run_dir)


@pytest.mark.slow
def test_sigkill_of_one_process_leaves_it_interrupted_and_resume_matches_one_process(tiny_model_dir, toy_csv, tmp_path):
    data = prepare_data("classification", read_table(toy_csv))
    reference = TrainingJob(deterministic(str(tiny_model_dir)), data, RunStore(tmp_path / "ref"), data_name="toy")
    reference.run()

    job = TrainingJob(deterministic(str(tiny_model_dir), batch_size=8, processes=2), data, RunStore(tmp_path / "runs"),
                      data_name="toy").start()
    deadline = time.time() + 120
    while time.time() < deadline and not (job.run_dir and job.run_dir.exists()
                                          and max(step_losses(job.run_dir) or [0]) >= 6):
        time.sleep(0.05)
    status = json.loads((job.run_dir / "status.json").read_text())
    victim = next(p for p in training_processes(job.run_dir) if p.pid != status["pid"])  # not process 0
    victim.kill()
    job.join(120)
    last = job.events.since(0)[-1]
    assert isinstance(last, ev.Failed) and "interrupted" in last.message, last
    store = RunStore(tmp_path / "runs")
    assert store.list()[0].status == "interrupted"
    assert not training_processes(job.run_dir) and not training_processes(job.run_dir, launcher=True)

    resumed = TrainingJob.resume(job.run_dir, store)
    resumed.run()
    assert isinstance(resumed.events.since(0)[-1], ev.Finished), resumed.events.since(0)[-1]
    assert store.list()[0].status == "finished"
    expected, got = step_losses(reference.run_dir), step_losses(job.run_dir)
    assert max(got) == 12
    for step in expected:
        assert got[step] == pytest.approx(expected[step], abs=2e-3), step
