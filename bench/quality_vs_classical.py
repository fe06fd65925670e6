"""Fine-tune vs classical vs trivial baseline on every shipped sample of every encoder task, app defaults.

`make bench-quality-vs-classical` (= `python -m bench.quality_vs_classical --seeds 42 1`): each sample is
trained through the CLI as a new user would (`core train --data SAMPLE.csv --task TASK --seed S`, the suggested
base model, every other setting at its default), in a child process, one at a time. The classical and trivial
baselines come from the run's own metrics.json (fitted on the same training split, scored on the same
validation rows). Prints a markdown table: per sample, the mean over seeds of each, and the wall times.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.data.samples import SAMPLES, sample_path
from core.tasks import get_task


def train(sample: str, seed: int, runs: Path, extra: list[str]) -> dict:
    """One CLI run: its metrics.json, base model, planned steps and wall time (start-up and loading included)."""
    before = set(runs.glob("*")) if runs.exists() else set()
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "core", "--runs", str(runs), "train", "--data", str(sample_path(sample)),
                    "--task", SAMPLES[sample].task, "--seed", str(seed), *extra],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    run_dir = next(iter(set(runs.glob("*")) - before))
    events = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    begun = next(e for e in events if e["event"] == "started")
    return {"metrics": json.loads((run_dir / "metrics.json").read_text()), "wall_s": wall,
            "base_model": json.loads((run_dir / "train_config.json").read_text())["base_model"],
            "planned_steps": begun["total_steps"], "steps": max(e["step"] for e in events if e["event"] == "step")}


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1])
    parser.add_argument("--samples", nargs="+", default=[n for n, s in SAMPLES.items() if s.task != "assistant"])
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more CLI flags for every run")
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    runs = Path(tempfile.mkdtemp(prefix="sft-quality-"))
    results = {}
    print("| sample (task) | base model | metric | fine-tune | classical | trivial | beats classical | fine-tune s | "
          "classical s | steps run (of planned) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for sample in args.samples:
        task = get_task(SAMPLES[sample].task)
        key, done = task.primary_metric, []
        for seed in args.seeds:
            done.append(train(sample, seed, runs, args.extra))
            m = done[-1]["metrics"]
            print(f"  {sample} seed {seed}: {key} {m.get(key)} classical {m['classical'].get(key)} "
                  f"trivial {m['baseline'].get(key)} in {done[-1]['wall_s']:.0f} s", file=sys.stderr, flush=True)
        tuned, classical, trivial = (mean([run["metrics"][key] for run in done]),
                                     mean([run["metrics"]["classical"][key] for run in done]),
                                     mean([run["metrics"]["baseline"][key] for run in done]))
        beats = tuned > classical if task.greater_is_better else tuned < classical
        results[sample] = {"task": task.name, "metric": key, "fine_tune": tuned, "classical": classical,
                           "trivial": trivial, "beats": beats, "runs": done}
        steps = "/".join(f"{run['steps']} of {run['planned_steps']}" for run in done)
        print(f"| {sample} ({task.name}) | {done[0]['base_model']} | {task.metric_name(key)} | {tuned:.4f} | "
              f"{classical:.4f} | {trivial:.4f} | {'yes' if beats else '**no**'} | "
              f"{mean([run['wall_s'] for run in done]):.0f} | "
              f"{mean([run['metrics']['classical']['seconds'] for run in done]):.1f} | {steps} |", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
