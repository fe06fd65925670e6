"""Each new task end to end on the real default model and real data, through the CLI: it must beat its baseline."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.samples import build_sample

pytestmark = pytest.mark.slow

# sample, rows, CLI settings, (metric, minimum gain over the baseline; negative: lower is better), predict inputs
CASES = {
    "regression": ("sentiment_scores", 600, ["--epochs", "2", "--max-length", "64"], ("rmse", -0.3),
                   ["What a wonderful, moving film."]),
    "pair_regression": ("sts_b", 800, ["--epochs", "2", "--max-length", "64"], ("rmse", -0.3),
                        ["A man is playing a guitar.", "A man plays the guitar."]),
    "pairs": ("sts_b_paraphrase", 600, ["--epochs", "1", "--max-length", "64", "--learning-rate", "3e-4"],
              ("accuracy", 0.2), ["A dog runs in the park.", "The stock market fell today."]),
    "multi_label": ("movie_genres", 1200, ["--epochs", "3", "--max-length", "64", "--learning-rate", "3e-4"],
                    ("micro_f1", 0.05), ["A terrifying haunted-house chiller with genuine scares."]),
    "token_classification": ("conll2003", 1000, ["--epochs", "3", "--learning-rate", "3e-4"], ("f1", 0.15),
                             ["Angela Merkel met Emmanuel Macron in Paris on Monday."]),
}


def run_cli(*args, runs):
    return subprocess.run([sys.executable, "-m", "core", "--runs", str(runs), *args], capture_output=True, text=True,
                          timeout=900)


@pytest.mark.parametrize("task", list(CASES))
def test_task_beats_its_baseline_from_the_cli(task, tmp_path, sample_cache):
    sample, rows, flags, (metric, gain), inputs = CASES[task]
    data = tmp_path / f"{sample}.csv"
    build_sample(sample, rows_per_class=rows, seed=1).to_csv(data, index=False)
    result = run_cli("train", "--data", str(data), "--task", task, "--early-stopping-patience", "0", *flags,
                     runs=tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    run_dir = next((tmp_path / "runs").iterdir())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    value, baseline = metrics[metric], metrics["baseline"][metric]
    print(f"\n{task}: {metric} {value:.4f} vs {metrics['baseline']['name']} baseline {baseline:.4f}; "
          f"{metrics['samples_per_s']:.1f} rows/s")
    assert (value <= baseline + gain) if gain < 0 else (value >= baseline + gain), metrics

    predicted = run_cli("predict", "--run", str(run_dir), *inputs, runs=tmp_path / "runs")
    assert predicted.returncode == 0, predicted.stderr
    line = predicted.stdout.strip().splitlines()[-1]
    if task == "token_classification":
        spans = json.loads(line.split("\t")[0])
        assert {"Paris"} <= {s["text"] for s in spans if s["entity"] == "LOC"}, line
    elif task.endswith("regression"):
        float(line.split("\t")[0])
    else:
        assert line.split("\t")[0], line
