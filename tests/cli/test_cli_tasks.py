"""The CLI for the tasks whose prediction output differs (a number, a label set, entity spans): train with
`--task` and `--col`, then predict. A tiny model keeps it fast; the real model's run per task, which must
beat the baseline by a stated margin, is the browser test (tests/ui/test_browser.py)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from toy_data import toy_frames

from core.runs import events as ev
from core.tasks import get_task
from core.train.render import event_line, outcome_lines, started_lines, step_stats

# task, --col flags, predict inputs
CASES = {
    "regression": (["--col", "text=text", "--col", "target=score"], ["good good item"]),
    "multi_label": (["--col", "labels=genres"], ["good and bad 3"]),
    "token_classification": ([], ["John met Mary in Paris"]),
}


def run_cli(*args, runs):
    return subprocess.run([sys.executable, "-m", "core", "--runs", str(runs), *args], capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize("task", list(CASES))
def test_cli_trains_and_predicts_each_output_kind(task, tmp_path, tiny_model_dir):
    flags, inputs = CASES[task]
    data = tmp_path / f"{task}.csv"
    toy_frames()[task].to_csv(data, index=False)
    result = run_cli("train", "--data", str(data), "--task", task, "--base-model", str(tiny_model_dir), "--epochs",
                     "1", "--max-length", "32", "--precision", "fp32", *flags, runs=tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    run_dir = next((tmp_path / "runs").iterdir())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["task"] == task and metrics["primary_metric"] in metrics and metrics["baseline"]

    predicted = run_cli("predict", "--run", str(run_dir), *inputs, runs=tmp_path / "runs")
    assert predicted.returncode == 0, predicted.stderr
    first = predicted.stdout.strip().splitlines()[-1].split("\t")[0]
    if task == "token_classification":
        assert all({"entity", "start", "end", "text"} <= set(span) for span in json.loads(first)), first
    elif task == "regression":
        float(first)
    else:
        assert set(filter(None, first.split("|"))) <= set(json.loads((run_dir / "data.json").read_text())["label_names"])


def test_render_turns_events_into_the_lines_the_cli_prints():
    task = get_task("classification")
    started = ev.Started("runs/r1", 10, 8, 2, ["a", "b"], "fp32", 0.0, ["few rows"], 1, 2, schedule="1 epoch")
    assert started_lines(started) == ["run folder: runs/r1  precision: fp32", "schedule: 1 epoch", "warning: few rows"]
    assert step_stats(ev.Step(3, 10, 0.3, 0.12345, 1e-4, 12.34, 5.0)) == {"loss": "0.1235", "samples_s": "12.3"}
    scores = {"macro_f1": 0.5, "accuracy": 0.6}
    assert event_line(task, ev.Evaluation(5, 0.5, 0.25, scores, "macro_f1", True)) == (
        f"eval step 5: loss 0.2500  {task.headline(scores)}  (best)")
    assert event_line(task, ev.Status("saving")) == "saving"
    assert event_line(task, ev.Baselines(None, None)) is None and event_line(task, started) is None
    assert outcome_lines(task, ev.Failed("out of memory")) == ["error: out of memory"]

    classical = {"name": "TF-IDF", "seconds": 1.0, **{key: 0.9 for key in scores}}
    metrics = {"val_loss": 0.25, **scores, "classical": classical, "train_seconds": 3.0, "samples_per_s": None}
    lines = outcome_lines(task, ev.Finished("runs/r1", metrics, 3.0, 0.0))
    assert lines[0] == f"validation loss 0.2500  {task.headline(scores)}"
    assert lines[1].startswith("classical baseline (TF-IDF, 1.0 s): ") and lines[2].startswith("warning: A classical")
    assert lines[3:] == ["train time 3.0 s  samples/s 0.0", "run folder: runs/r1"]
