"""A search of N trials vs the default run vs the classical baseline, on shipped samples.

`make bench-search` (= `python -m bench.search_vs_default`): for each sample, a study of ``--trials`` trials
(learning rate 1e-5..1e-3 log, epochs 1..20; median pruner; seed 42) within ``--minutes``, as `python -m core
tune` runs it. Trial 0 is the app's default settings (derived epochs), so "default" is the run a new user gets
with the same split; the classical baseline comes from the runs' own metrics.json. Prints a markdown table with
wall times.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from core.data.samples import SAMPLES, sample_path
from core.runs.store import RunStore
from core.search import space as search_space
from core.search import study as search


def run(sample: str, trials: int, minutes: float, runs: Path) -> dict:
    settings = search_space.SearchSettings(space={"learning_rate": (), "epochs": ()}, trials=trials, timeout_s=minutes * 60,
                                     study=f"bench-{sample}")
    record, study = search.create_study(sample_path(sample), {"task": SAMPLES[sample].task}, {}, settings, runs)
    started = time.perf_counter()
    search.optimize(record, study, RunStore(runs))
    wall = time.perf_counter() - started
    results, best = search.results(study), search.best(study)
    default = next((r for r in results if r.number == 0 and r.state == "complete"), None)
    metrics = RunStore(runs).info(runs / best.run_id).metrics
    classical = (metrics.get("classical") or {}).get(record.metric)
    return {"sample": sample, "metric": record.metric, "default": default.value if default else None,
            "default_s": default.seconds if default else None, "best": best.value,
            "best_params": search_space.shown_params(best.params), "classical": classical, "wall_s": wall,
            "trials": len(results), "pruned": sum(r.state == "pruned" for r in results),
            "higher": record.greater_is_better}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", nargs="+", default=["bbc_news", "sentiment_scores"])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()
    runs = Path(tempfile.mkdtemp(prefix="sft-search-bench-"))
    print("| sample | metric | default run (trial 0) | best of search | best settings | classical | trials (pruned) | "
          "default s | search wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for sample in args.samples:
        r = run(sample, args.trials, args.minutes, runs)
        shown = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        print(f"| {r['sample']} | {r['metric']} ({'higher' if r['higher'] else 'lower'} is better) | {shown(r['default'])} | "
              f"{shown(r['best'])} | {r['best_params']} | {shown(r['classical'])} | {r['trials']} ({r['pruned']}) | "
              f"{r['default_s'] or 0:.0f} | {r['wall_s']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
