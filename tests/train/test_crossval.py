"""k-fold cross-validation: folds that hold out every row exactly once, stratified; one run per fold with the
classical baseline on the same fold; the mean and spread over folds from the CLI."""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from toy_data import toy_frames

from core.common.errors import ConfigError, DataError
from core.runs.config import TrainConfig
from core.tasks import get_task, prepare_data


def test_folds_hold_out_every_row_once_and_keep_the_class_mix():
    data = prepare_data("classification", toy_frames()["classification"])
    task = get_task("classification")
    held_out = []
    for fold in range(4):
        train, val = task.split(data, 0.2, seed=7, folds=4, fold=fold)
        assert len(train) + len(val) == len(data) and not set(train.inputs["text"]) & set(val.inputs["text"])
        shares = pd.Series(val.targets).value_counts(normalize=True)
        overall = pd.Series(data.targets).value_counts(normalize=True)
        assert (shares - overall).abs().max() < 0.15  # stratified
        held_out += val.inputs["text"]
    assert sorted(held_out) == sorted(data.inputs["text"])
    assert task.split(data, 0.2, seed=7, folds=4, fold=1)[1].inputs == task.split(data, 0.2, 7, 4, 1)[1].inputs


def test_unstratified_tasks_fold_too_and_bad_fold_settings_get_a_message():
    regression = prepare_data("regression", toy_frames()["regression"])
    train, val = get_task("regression").split(regression, 0.2, seed=0, folds=5, fold=4)
    assert len(val) in (len(regression) // 5, len(regression) // 5 + 1) and len(train) + len(val) == len(regression)
    with pytest.raises(ConfigError, match="fold must be below folds"):
        TrainConfig(folds=3, fold=3).validate()
    frame = pd.DataFrame({"text": [f"text number {i}" for i in range(12)], "label": ["a"] * 10 + ["b"] * 2})
    with pytest.raises(DataError, match="fewer than the 3 folds"):
        get_task("classification").split(prepare_data("classification", frame), 0.2, 0, folds=3, fold=0)


def test_cli_cross_validates_with_one_run_per_fold(tmp_path, tiny_model_dir):
    data = tmp_path / "toy.csv"
    toy_frames()["classification"].to_csv(data, index=False)
    result = subprocess.run([sys.executable, "-m", "core", "--runs", str(tmp_path / "runs"), "train", "--data",
                             str(data), "--base-model", str(tiny_model_dir), "--epochs", "1", "--max-length", "32",
                             "--precision", "fp32", "--folds", "3"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    summary = next(line for line in result.stdout.splitlines() if "over 3 folds" in line)
    assert summary.startswith("macro-F1 over 3 folds:") and "±" in summary and "classical baseline" in summary
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 3
    configs = [json.loads((run / "train_config.json").read_text()) for run in runs]
    assert sorted(c["fold"] for c in configs) == [0, 1, 2] and {c["folds"] for c in configs} == {3}
    validated = [json.loads((run / "data.json").read_text()) for run in runs]
    assert sum(d["val_rows"] for d in validated) == validated[0]["train_rows"] + validated[0]["val_rows"]
    scores = [json.loads((run / "metrics.json").read_text())["macro_f1"] for run in runs]
    shown = summary.split("(")[1].split(")")[0]
    assert sorted(float(s) for s in shown.split(", ")) == pytest.approx(sorted(scores), abs=1e-3)
    refused = subprocess.run([sys.executable, "-m", "core", "--runs", str(tmp_path / "runs"), "train", "--data",
                              str(data), "--folds", "3", "--fold", "5"], capture_output=True, text=True, timeout=600)
    assert refused.returncode != 0 and "fold must be below folds" in refused.stderr


def test_a_cross_validation_is_one_job_for_the_queue_and_the_train_tab(tmp_path, tiny_model_dir):
    from core.runs import events as ev
    from core.runs.store import RunStore
    from core.train import service
    from core.train.crossval import CrossValidationJob
    from core.train.jobqueue import JobQueue
    from ui.train_tab import latest_run, outcome_html

    plan = service.plan_run(toy_frames()["classification"], {"base_model": str(tiny_model_dir), "epochs": 1,
                                                             "max_length": 32, "precision": "fp32", "folds": 2})
    job = service.make_job(plan, RunStore(tmp_path))
    assert isinstance(job, CrossValidationJob)
    JobQueue().submit(job)
    outcome = service.wait_for_outcome(job, poll_s=0.2)
    assert isinstance(outcome, ev.Finished) and outcome.run_dir == str(job.run_dir)
    found = outcome.metrics["cross_validation"]
    assert found["folds"] == 2 and outcome.metrics["macro_f1"] == pytest.approx(sum(found["scores"]) / 2)
    assert outcome.metrics["classical"]["macro_f1"] == pytest.approx(found["classical"]["mean"])
    folds = [json.loads((tmp_path / run / "metrics.json").read_text()) for run in found["runs"]]
    assert outcome.metrics["accuracy"] == pytest.approx(sum(m["accuracy"] for m in folds) / 2)  # every metric a mean
    assert outcome.metrics["classical"]["accuracy"] == pytest.approx(sum(m["classical"]["accuracy"] for m in folds) / 2)
    events = job.events.since(0)
    assert sum(isinstance(e, ev.Started) for e in events) == 2 and sum(isinstance(e, ev.TERMINAL) for e in events) == 1
    shown = latest_run(events)
    assert isinstance(shown[0], ev.Started) and shown[0] is [e for e in events if isinstance(e, ev.Started)][-1]
    assert "macro-F1 over 2 folds" in outcome_html(shown) and "±" in outcome_html(shown)
    assert {d.name for d in tmp_path.iterdir() if d.is_dir()} >= set(found["runs"])


def test_small_tables_get_the_advice_to_cross_validate():
    from core.train import service
    from core.train.crossval import small_table_hint

    assert small_table_hint(2000, 0.2) is None and "about 119 rows" in small_table_hint(596, 0.2)
    small = service.plan_run(toy_frames()["classification"], {"task": "classification"})
    assert "Cross-validation folds 5" in small.describe()
    folded = service.plan_run(toy_frames()["classification"], {"task": "classification", "folds": 3})
    assert "Cross-validation" not in folded.describe()
