"""Faults: cancel at every phase, SIGKILL then resume, unwritable runs folder, absurd sizes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.common.errors import ConfigError
from core.data.tables import read_table
from core.deploy.predict import Predictor
from core.runs import events as ev
from core.runs.config import TrainConfig
from core.runs.store import RunStore
from core.tasks import prepare_data
from core.train.engine import TrainingJob
from core.train.evaluation import EvalContext

ROOT = Path(__file__).resolve().parents[2]


def tiny_config(model_dir, **overrides) -> TrainConfig:
    base = dict(base_model=str(model_dir), epochs=4, batch_size=8, max_length=32, learning_rate=1e-3,
                eval_every_steps=4, early_stopping_patience=0, precision="fp32", seed=7)
    return TrainConfig(**{**base, **overrides})


def cancel_when(job: TrainingJob, predicate) -> None:
    def on_event(event):
        if predicate(event):
            job.cancel()
    job.events.subscribe(on_event)


PHASES = {
    "model load": lambda e: isinstance(e, ev.Status) and "Loading" in e.message,
    "first step": lambda e: isinstance(e, ev.Step) and e.step == 1,
    "mid epoch": lambda e: isinstance(e, ev.Step) and e.step == 6,
    "after evaluation": lambda e: isinstance(e, ev.Evaluation),
}


@pytest.mark.parametrize("phase", list(PHASES))
def test_cancel_at_any_phase_leaves_a_consistent_run(tiny_model_dir, toy_csv, phase):
    job = TrainingJob(tiny_config(tiny_model_dir), prepare_data("classification", read_table(toy_csv)), RunStore(), data_name="toy")
    cancel_when(job, PHASES[phase])
    job.run()
    last = job.events.since(0)[-1]
    assert isinstance(last, ev.Cancelled), last
    info = RunStore().list()[0]
    assert info.status == "cancelled"
    if info.has_model:
        assert Predictor(info.path).predict(["great product"])[0].label in {"pos", "neg"}
    if phase == "after evaluation":
        assert info.has_model and "macro_f1" in info.metrics


def test_cancel_during_evaluation(tiny_model_dir, toy_csv, monkeypatch):
    job = TrainingJob(tiny_config(tiny_model_dir), prepare_data("classification", read_table(toy_csv)), RunStore(), data_name="toy")
    original = EvalContext.forward_validation

    def cancel_inside(self):
        job.cancel()
        return original(self)

    monkeypatch.setattr(EvalContext, "forward_validation", cancel_inside)
    job.run()
    assert isinstance(job.events.since(0)[-1], ev.Cancelled)
    assert RunStore().list()[0].has_model  # the current weights are kept when no evaluation finished


def losses(history: Path) -> dict[int, float]:
    rows = [json.loads(x) for x in history.read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if r["event"] == "step"}


def test_sigkill_then_resume_matches_an_uninterrupted_run(tiny_model_dir, toy_csv, tmp_path):
    config = tiny_config(tiny_model_dir, epochs=6)
    reference = TrainingJob(config, prepare_data("classification", read_table(toy_csv)), RunStore(tmp_path / "ref"), data_name="toy")
    reference.run()
    assert isinstance(reference.events.since(0)[-1], ev.Finished)

    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "core", "--runs", str(runs), "train", "--data", str(toy_csv)]
    for key, value in config.__dict__.items():
        flag = f"--{key.replace('_', '-')}"
        cmd += ([flag if value else f"--no-{flag[2:]}"] if isinstance(value, bool) else [flag, str(value)])
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        histories = list(runs.glob("*/history.jsonl"))
        if histories and max(losses(histories[0]) or [0]) >= 10:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = RunStore(runs)
    info = store.list()[0]
    assert info.status == "interrupted"
    assert not (info.path / ".resume-tmp").exists() or (info.path / "resume" / "state.pt").exists()

    result = subprocess.run([sys.executable, "-m", "core", "--runs", str(runs), "resume", "--run", info.run_id],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert store.list()[0].status == "finished"
    resumed, expected = losses(info.path / "history.jsonl"), losses(reference.run_dir / "history.jsonl")
    assert max(resumed) == max(expected)
    for step in expected:
        assert resumed[step] == pytest.approx(expected[step], abs=1e-4), step
    ref_metrics = json.loads((reference.run_dir / "metrics.json").read_text())
    assert json.loads((info.path / "metrics.json").read_text())["macro_f1"] == pytest.approx(ref_metrics["macro_f1"], abs=1e-6)


def test_unwritable_runs_folder_gives_a_message(tiny_model_dir, toy_csv, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the runs folder should be")
    job = TrainingJob(tiny_config(tiny_model_dir), prepare_data("classification", read_table(toy_csv)), RunStore(blocker / "runs"))
    job.run()
    last = job.events.since(0)[-1]
    assert isinstance(last, ev.Failed) and "Could not write to the runs folder" in last.message


def test_absurd_sizes_are_refused_before_training(tiny_model_dir, tmp_path):
    import pandas as pd

    long_texts = tmp_path / "long.csv"
    pd.DataFrame({"text": [" ".join(["word"] * 600) + f" {i}" for i in range(40)], "label": ["a", "b"] * 20}).to_csv(long_texts)
    job = TrainingJob(tiny_config(tiny_model_dir, batch_size=4096, max_length=4096), prepare_data("classification", read_table(long_texts), {"text": "text", "label": "label"}),
                      RunStore(tmp_path / "runs"))
    job.run()
    last = job.events.since(0)[-1]
    assert isinstance(last, ev.Failed) and "memory" in last.message
    with pytest.raises(ConfigError, match="batch size"):
        TrainConfig(batch_size=100_000).validate()
    with pytest.raises(ConfigError, match="max length"):
        TrainConfig(max_length=1_000_000).validate()
