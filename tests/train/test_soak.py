"""Soak: one app process trains 20 small runs back to back through the API and does not keep their models."""
from __future__ import annotations

import json
import shutil
import time

import psutil
import pytest

RUNS = 20


@pytest.fixture(scope="module")
def small_bert(tmp_path_factory):
    """A 2-layer BERT of 256 hidden units with MiniLM's tokenizer (about 40 MB of weights: a kept model shows)."""
    from transformers import BertConfig, BertForSequenceClassification

    from core.models.registry import DEFAULT_MODEL, REGISTRY

    out = tmp_path_factory.mktemp("small-bert")
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (REGISTRY[DEFAULT_MODEL].path() / name).exists():
            shutil.copy(REGISTRY[DEFAULT_MODEL].path() / name, out / name)
    BertForSequenceClassification(BertConfig(hidden_size=256, num_hidden_layers=2, num_attention_heads=4,
                                             intermediate_size=512)).save_pretrained(out, safe_serialization=True)
    return out


@pytest.mark.slow
def test_twenty_runs_back_to_back_keep_memory_flat(app, toy_csv, small_bert):
    from gradio_client import Client, handle_file

    client = Client(app.url, verbose=False)
    settings = json.dumps({"base_model": str(small_bert), "max_steps": 4, "eval_every_steps": 4, "batch_size": 8,
                           "max_length": 32, "precision": "fp32"})
    process, resident = psutil.Process(app.pid), {}
    for run in range(1, RUNS + 1):
        result = client.predict(handle_file(str(toy_csv)), "", "", settings, api_name="/train")
        assert result["status"] == "finished", result
        if run in (3, RUNS):
            time.sleep(2)  # the queue frees a job's model just after its final event
            resident[run] = process.memory_info().rss
    growth = resident[RUNS] / resident[3] - 1
    print(f"resident memory after run 3: {resident[3] / 2**20:.0f} MB, after run {RUNS}: "
          f"{resident[RUNS] / 2**20:.0f} MB ({growth:+.1%})")
    assert growth < 0.15
