"""The CLI for the tasks whose prediction output differs (a number, a label set, entity spans): train with
`--task` and `--col`, then predict. A tiny model keeps it fast; the real model's run per task, which must
beat the baseline by a stated margin, is the browser test (tests/test_browser.py)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_tasks import toy_frames

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
