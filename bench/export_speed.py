"""Deployment formats compared in one run: size, latency, throughput and held-out accuracy, then the server.

    python -m bench.export_speed [--samples bbc_news tweet_sentiment chinese_reviews] [--load-seconds 20]

For each sample: fine-tune the registered model that reads it (MiniLM for English, multilingual-e5-small for
Chinese) with the app's defaults, export it as ONNX fp32 and ONNX int8, and measure the PyTorch run in fp32
and bf16 (autocast) and both exports through the same ``Predictor``: size on disk, one sentence p50/p95
(100 calls), batch rows/s over the held-out rows, and held-out accuracy. Then ``python -m core serve`` on the
int8 export of the first sample: 50 concurrent clients offering 100 requests/s in all (p50/p95, errors),
and its saturation throughput (the same clients sending as fast as answers come back).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.browser_app import free_port
from core.data.samples import sample_path
from core.data.tables import read_table
from core.deploy.export import export_run
from core.deploy.predict import Predictor
from core.runs.config import TrainConfig
from core.runs.store import RunStore
from core.runs.weights import weights_file
from core.tasks import get_task
from core.train import service


def train(sample: str, runs: Path):
    task = get_task("classification")
    data = task.prepare(read_table(sample_path(sample)))
    config = TrainConfig(base_model=task.modality.suggest(task, data).model)
    job, _ = service.train(service.RunPlan(config, data, sample), RunStore(runs))
    _, val = task.split(data, config.val_fraction, config.seed)
    return job.run_dir, config.base_model, val


def measure(predictor: Predictor, val, autocast: bool = False) -> dict:
    context = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    sentences = [text.split(". ")[0][:300] for text in val.texts]
    with context:
        for text in sentences[:5]:
            predictor.predict([text])
        latencies = []
        for i in range(100):
            started = time.perf_counter()
            predictor.predict([sentences[i % len(sentences)]])
            latencies.append(time.perf_counter() - started)
        started = time.perf_counter()
        predicted = predictor.predict(val.texts)
        batch_s = time.perf_counter() - started
    accuracy = float(np.mean([p.label == val.label_names[y] for p, y in zip(predicted, val.labels)]))
    return {"p50_ms": 1000 * float(np.percentile(latencies, 50)), "p95_ms": 1000 * float(np.percentile(latencies, 95)),
            "batch_rows_s": len(val) / batch_s, "accuracy": accuracy}


async def post_json(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, body: bytes) -> int:
    """One POST /v1/predict over a kept-alive connection; the status code. (A bare HTTP/1.1 client: the load
    generator shares the 2 cores with the server, so it must cost little.)"""
    writer.write(b"POST /v1/predict HTTP/1.1\r\nHost: " + host.encode() + b"\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    await reader.readexactly(length)
    return int(head.split(b" ", 2)[1])


async def offer_load(port: int, texts: list[str], clients: int, rate: float | None, seconds: float) -> dict:
    """``clients`` concurrent clients; each sends every clients/rate seconds (open loop) or back to back (None)."""
    latencies, errors = [], 0
    deadline = time.perf_counter() + seconds
    bodies = [json.dumps({"inputs": [text]}).encode() for text in texts]

    async def client(n: int):
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        interval = clients / rate if rate else 0.0
        next_at = time.perf_counter() + n * interval / clients
        while time.perf_counter() < deadline:
            if interval:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                next_at += interval
            started = time.perf_counter()
            try:
                errors += await post_json(reader, writer, f"127.0.0.1:{port}", bodies[len(latencies) % len(bodies)]) != 200
            except (OSError, asyncio.IncompleteReadError):
                errors += 1
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            latencies.append(time.perf_counter() - started)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    wall = time.perf_counter() - started
    return {"requests": len(latencies), "errors": errors, "req_s": len(latencies) / wall,
            "p50_ms": 1000 * float(np.percentile(latencies, 50)), "p95_ms": 1000 * float(np.percentile(latencies, 95))}


def serve_and_load(folder: Path, texts: list[str], seconds: float, options: tuple[str, ...] = ()) -> dict:
    """``python -m core serve`` (with ``options``) on ``folder``: 100 req/s offered, then saturated."""
    import httpx

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "core", "serve", "--run", str(folder), "--port", str(port),
                               *options])
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        asyncio.run(offer_load(port, texts, 50, None, 3))  # warm-up
        offered = asyncio.run(offer_load(port, texts, 50, 100.0, seconds))
        saturated = asyncio.run(offer_load(port, texts, 50, None, seconds / 2))
    finally:
        server.terminate()
        server.wait(10)
    return {"offered_100_per_s": offered, "saturation": saturated}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", nargs="+", default=["bbc_news", "tweet_sentiment", "chinese_reviews"])
    parser.add_argument("--load-seconds", type=float, default=20.0)
    parser.add_argument("--out", default="bench/out/export")
    parser.add_argument("--serve-only", default=None, help="an export folder: skip the formats, load-test its server")
    args = parser.parse_args(argv)
    texts = [t.split(". ")[0][:300] for t in read_table(sample_path(args.samples[0]))["text"].astype(str)]
    if args.serve_only:
        print(json.dumps(serve_and_load(Path(args.serve_only), texts, args.load_seconds), indent=1))
        return
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results, first_int8 = {}, None
    for sample in args.samples:
        run_dir, model, val = train(sample, out / "runs")
        torch_predictor = Predictor(run_dir)
        rows = {"model": model, "val_rows": len(val)}
        rows["fp32"] = {"mb": weights_file(run_dir).stat().st_size / 2**20, **measure(torch_predictor, val)}
        rows["bf16"] = {"mb": rows["fp32"]["mb"], **measure(torch_predictor, val, autocast=True)}
        for fmt in ("onnx", "onnx-int8"):
            folder = out / "exports" / f"{run_dir.name}-{fmt}"
            if not folder.exists():
                export_run(run_dir, folder, fmt)
            rows[fmt] = {"mb": (folder / "model.onnx").stat().st_size / 2**20, **measure(Predictor(folder), val)}
            first_int8 = first_int8 or (folder if fmt == "onnx-int8" else None)
        results[sample] = rows
        print(sample, json.dumps(rows, indent=1), flush=True)
    results["server"] = serve_and_load(first_int8, texts, args.load_seconds)
    print(json.dumps(results["server"], indent=1))
    (out / "result.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
