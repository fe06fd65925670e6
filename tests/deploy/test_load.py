"""A bounded load test on 127.0.0.1: concurrent prediction clients while a training job runs.

Short by default (LOAD_SECONDS=5 in `make test`); `LOAD_SECONDS=30 pytest tests/deploy/test_load.py -s` is the full one.
"""
from __future__ import annotations

import json
import os
import statistics
import threading
import time

import pytest

CLIENTS = int(os.environ.get("LOAD_CLIENTS", "20"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "5"))


def tiny_config(model_dir, **extra) -> str:
    return json.dumps({"base_model": str(model_dir), "batch_size": 8, "max_length": 32, "learning_rate": 1e-3,
                       "precision": "fp32", **extra})


@pytest.mark.slow
def test_concurrent_predictions_during_training(app, tiny_model_dir, toy_csv):
    from gradio_client import Client, handle_file

    setup = Client(app.url, verbose=False)
    run_id = setup.predict(handle_file(str(toy_csv)), "", "", tiny_config(tiny_model_dir, epochs=2),
                           api_name="/train")["run_id"]
    training = setup.submit(handle_file(str(toy_csv)), "", "",
                            tiny_config(tiny_model_dir, epochs=500, early_stopping_patience=0), api_name="/train")
    time.sleep(1.0)
    clients = [Client(app.url, verbose=False) for _ in range(CLIENTS)]
    latencies, errors, stop = [], [], time.time() + SECONDS

    def hammer(client, n):
        while time.time() < stop:
            start = time.perf_counter()
            try:
                label, message, _ = client.predict(f"this product is great, order {n}", run_id, api_name="/predict")
                assert label["label"] in {"pos", "neg"} and message == "", (label, message)
                latencies.append(time.perf_counter() - start)
            except Exception as exc:  # counted, then asserted to be zero
                errors.append(repr(exc))

    threads = [threading.Thread(target=hammer, args=(c, i)) for i, c in enumerate(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=SECONDS + 120)
    training_still_running = not training.done()
    training.cancel()
    p95 = statistics.quantiles(latencies, n=20)[18] * 1000
    print(f"\nload test: {CLIENTS} clients x {SECONDS:.0f} s, {len(latencies)} requests served, {len(errors)} errors, "
          f"p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {p95:.0f} ms, training still running: {training_still_running}")
    assert training_still_running, "the training job should overlap the whole load test"
    assert not errors, errors[:3]
    assert len(latencies) >= CLIENTS
