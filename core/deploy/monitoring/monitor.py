"""The monitor of one served model: gives each prediction an id, logs it, takes feedback, reports drift as JSON
and as Prometheus metrics."""
from __future__ import annotations

import time
import uuid
from dataclasses import asdict
from pathlib import Path

from ...runs.run_folder import RunFolder
from ...tasks.types import Prediction
from .log import Logged, RequestLog
from .observe import observe
from .reference import reference_for
from .report import WINDOW, LogView, report


class Monitor:
    """Request log + validation reference of the model ``predictor`` serves from ``folder``."""

    def __init__(self, predictor, folder: Path, database: str | None = None, run_dir: Path | None = None,
                 log_inputs: bool = False, max_rows: int = 100_000):
        from transformers import AutoTokenizer

        self.predictor, self.output, self.log_inputs = predictor, predictor.task.output, log_inputs
        self.reference = reference_for(predictor, Path(folder), run_dir)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)  # the writer thread's own copy
        self.meta = {"folder": str(Path(folder).resolve()), "run": str(Path(run_dir or folder).resolve()),
                     "task": predictor.task.name, "output": self.output.name, "inputs": list(predictor.inputs),
                     "labels": predictor.label_names, "inputs_logged": log_inputs}
        self.log = RequestLog(database or Path(run_dir or folder) / RunFolder.MONITOR_DB,
                              lambda rows, predictions: observe(tokenizer, self.output, rows, predictions),
                              self.meta, max_rows)
        self.metrics = PrometheusMetrics(self)

    def record(self, rows: dict[str, list[str]], predictions: list[Prediction], responses: list[dict],
               latency_ms: float) -> list[str]:
        """Queue one request's predictions; returns their ids."""
        now, ids = time.time(), []
        for n, (prediction, response) in enumerate(zip(predictions, responses)):
            ids.append(uuid.uuid4().hex)
            self.log.add(Logged(ids[-1], now, latency_ms, {r: texts[n] for r, texts in rows.items()}, prediction,
                                response, self.log_inputs))
        self.metrics.observe_request(len(predictions), latency_ms)
        return ids

    def feedback(self, prediction_id: str, truth) -> None:
        """Queue the true answer for a prediction; refuses answers that do not fit the task."""
        self.log.add((prediction_id, time.time(), self.output.checked_truth(truth, self.predictor.label_names)))

    def view(self) -> LogView:
        """The request log as ``open_log`` reads it offline (for the review queue)."""
        return LogView(self.log.engine, self.meta, self.reference)

    def report(self, last: int | None = WINDOW, since: float | None = None) -> dict:
        found = report(self.log.engine, self.reference, last, since)
        return {**found, "log": {"database": self.log.engine.url.render_as_string(hide_password=True),
                                 **asdict(self.log.stats), "inputs_logged": self.log_inputs}}


class PrometheusMetrics:
    """Counters kept as requests come, drift gauges computed when Prometheus scrapes."""

    def __init__(self, monitor: Monitor):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.monitor, self.registry = monitor, CollectorRegistry()
        self.predictions = Counter("sft_predictions", "Predictions served", registry=self.registry)
        self.latency = Histogram("sft_request_latency_seconds", "Time to answer a prediction request",
                                 registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.registry.register(self)

    def observe_request(self, count: int, latency_ms: float) -> None:
        self.predictions.inc(count)
        self.latency.observe(latency_ms / 1000)

    def describe(self):  # no metrics are known before the first scrape; prometheus-client asks at register time
        return []

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        try:
            found = self.monitor.report()
        except Exception:  # a locked or lost database: the scrape still answers, and says so
            yield GaugeMetricFamily("sft_monitor_up", "1 if the request log could be read", value=0)
            return
        yield GaugeMetricFamily("sft_monitor_up", "1 if the request log could be read", value=1)
        psi = GaugeMetricFamily("sft_drift_psi", "Population stability index of a feature, window vs validation",
                                labels=["feature"])
        p_value = GaugeMetricFamily("sft_drift_p_value", "Test p-value of a feature, window vs validation",
                                    labels=["feature"])
        drifted = GaugeMetricFamily("sft_drift_detected", "1 if the feature drifted", labels=["feature"])
        for check in found["checks"]:
            psi.add_metric([check["feature"]], check["psi"])
            p_value.add_metric([check["feature"]], check["p_value"])
            drifted.add_metric([check["feature"]], float(check["drifted"]))
        yield from (psi, p_value, drifted)
        yield GaugeMetricFamily("sft_monitor_window", "Predictions in the drift window", value=found["window"])
        yield GaugeMetricFamily("sft_monitor_log_failed", "Predictions the log could not write",
                                value=found["log"]["failed"] + found["log"]["dropped"])
        if found["feedback"]["value"] is not None:
            yield GaugeMetricFamily("sft_feedback_score", f"{found['feedback']['metric']} on predictions with feedback",
                                    value=found["feedback"]["value"])

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
