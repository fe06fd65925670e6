"""Data-parallel training: one process vs N processes with the same global batch, over several seeds.

    python -m bench.parallel_speed [--processes N] [--seeds 1,2,3] [--rows-per-class 200] [--out bench/out/parallel.json]

MiniLM on real tweets (3 sentiments) with the app's defaults (bf16 where fast, dropout on), so runs differ by
more than float rounding: the held-out accuracy and macro-F1 of each seed, the training rows/s on the engine's
own clock (evaluations included, model load not), the wall time of the whole run (start-up included) and the
scaling efficiency = rows/s with N / (N x rows/s with one). N defaults to the GPUs found, else the CPU cores.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from core.data.samples import build_sample
from core.runs import events as ev
from core.runs.config import TrainConfig
from core.runs.store import RunStore
from core.tasks import prepare_data
from core.train import service
from core.train.parallel.launch import max_processes


def run(data, processes: int, seed: int, global_batch: int, epochs: float) -> dict:
    config = TrainConfig(batch_size=global_batch // processes, processes=processes, seed=seed, epochs=epochs,
                         max_length=64, learning_rate=1e-4, early_stopping_patience=0)
    started = time.time()
    _, last = service.train(service.RunPlan(config, data, "tweets"), RunStore(tempfile.mkdtemp(prefix="bench-parallel-")))
    assert isinstance(last, ev.Finished), last
    return {"processes": processes, "seed": seed, "accuracy": last.metrics["accuracy"],
            "macro_f1": last.metrics["macro_f1"], "rows_per_s": last.samples_per_s, "wall_s": time.time() - started}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=max(2, max_processes()))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--rows-per-class", type=int, default=200)
    parser.add_argument("--global-batch", type=int, default=16)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--out", default="bench/out/parallel.json")
    args = parser.parse_args(argv)
    data = prepare_data("classification", build_sample("tweet_sentiment", rows_per_class=args.rows_per_class, seed=1),
                        {"text": "text", "label": "label"})
    results = [run(data, n, int(seed), args.global_batch, args.epochs)
               for seed in args.seeds.split(",") for n in (1, args.processes)]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"global_batch": args.global_batch, "results": results}, indent=2))
    print("| processes | seed | accuracy | macro-F1 | rows/s | wall s |\n|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['processes']} | {r['seed']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['rows_per_s']:.1f} | "
              f"{r['wall_s']:.0f} |")
    for n in (1, args.processes):
        mine = [r for r in results if r["processes"] == n]
        print(f"\n{n} process(es): accuracy {statistics.mean(r['accuracy'] for r in mine):.4f} "
              f"(sd {statistics.pstdev(r['accuracy'] for r in mine):.4f}), "
              f"{statistics.mean(r['rows_per_s'] for r in mine):.1f} rows/s", end="")
    one, many = ([r["rows_per_s"] for r in results if r["processes"] == n] for n in (1, args.processes))
    efficiency = statistics.mean(many) / (args.processes * statistics.mean(one))
    print(f"\nscaling efficiency with {args.processes}: {efficiency:.2f} "
          f"(speed-up {statistics.mean(many) / statistics.mean(one):.2f}x); global batch {args.global_batch}")


if __name__ == "__main__":
    main()
