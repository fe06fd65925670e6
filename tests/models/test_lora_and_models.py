"""LoRA save/load/merge/export, the SmolLM2 GGUF conversion, and the 'pick a model that reads this' hint."""
from __future__ import annotations

import pytest
import torch

from core.data.tables import read_table
from core.deploy.export import export_run
from core.deploy.predict import Predictor
from core.models.language import unknown_token_warning
from core.models.registry import REGISTRY
from core.runs import events as ev
from core.runs.config import TrainConfig
from core.runs.store import RunStore
from core.tasks import prepare_data
from core.train.engine import TrainingJob

SENTENCES = ["this product is great and I love it", "this product is awful and I hate it"]


def test_lora_run_saves_an_adapter_that_loads_merged_and_unmerged(tiny_model_dir, toy_csv, tmp_path):
    config = TrainConfig(base_model=str(tiny_model_dir), epochs=3, batch_size=8, max_length=32, learning_rate=5e-3,
                         precision="fp32", lora=True, lora_rank=4, eval_every_steps=5, early_stopping_patience=0)
    job = TrainingJob(config, prepare_data("classification", read_table(toy_csv)), RunStore(), data_name="toy")
    job.run()
    events = job.events.since(0)
    assert isinstance(events[-1], ev.Finished), events[-1]
    started = next(e for e in events if isinstance(e, ev.Started))
    assert started.trainable_params < 0.2 * started.total_params
    run = job.run_dir
    assert (run / "adapter_model.safetensors").is_file() and not (run / "model.safetensors").exists()
    assert RunStore().list()[0].has_model

    merged, unmerged = Predictor(run, merge=True), Predictor(run, merge=False)
    for a, b in zip(merged.predict(SENTENCES), unmerged.predict(SENTENCES)):
        assert a.label == b.label
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-4)

    exported = export_run(run, tmp_path / "exported")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    plain = AutoModelForSequenceClassification.from_pretrained(exported, use_safetensors=True).eval()
    tok = AutoTokenizer.from_pretrained(exported)
    with torch.inference_mode():
        probs = plain(**tok(SENTENCES[:1], return_tensors="pt")).logits.softmax(-1)[0].tolist()
    expected = merged.predict(SENTENCES[:1])[0].probabilities
    assert probs == pytest.approx([expected[n] for n in merged.label_names], abs=1e-4)


def test_top_layer_lora_keeps_autograd_out_of_the_lower_layers(tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    from core.models.lora import apply_lora

    base = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)
    model = apply_lora(base, TrainConfig(lora=True, lora_rank=4, lora_layers=1), "SEQ_CLS")
    adapters = [n for n, p in model.named_parameters() if p.requires_grad and "lora_" in n]
    assert adapters and all(".layer.1." in n for n in adapters)  # 2 layers: only the top one is adapted
    hidden = model(input_ids=torch.tensor([[101, 2023, 2003, 102]]), output_hidden_states=True).hidden_states
    assert not hidden[1].requires_grad and hidden[2].requires_grad  # no backward pass below the top layer
    everything = apply_lora(AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2),
                            TrainConfig(lora=True, lora_rank=4), "SEQ_CLS")
    assert any(".layer.0." in n for n, p in everything.named_parameters() if p.requires_grad and "lora_" in n)


def test_high_unknown_rate_suggests_a_model_that_reads_chinese():
    warning = unknown_token_warning(0.62, "all-MiniLM-L6-v2", ["这是一个非常好的产品，我非常喜欢它。"] * 5)
    assert "62%" in warning and "SmolLM2-135M-Instruct" in warning
    assert unknown_token_warning(0.01, "all-MiniLM-L6-v2", ["fine"]) is None


@pytest.mark.slow
def test_smollm2_converts_once_and_trains_a_chinese_classifier_with_lora(sample_cache, tmp_path):
    spec = REGISTRY["SmolLM2-135M-Instruct"]
    path = spec.path()
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    assert (path / "tokenizer.json").is_file() and not spec.needs_conversion
    assert not list(path.parent.glob(".*.tmp"))
    mtime = (path / "model.safetensors").stat().st_mtime
    assert spec.path() == path and (path / "model.safetensors").stat().st_mtime == mtime  # reused, not redone

    from core.data.samples import sample_path

    frame = read_table(sample_path("chinese_reviews")).head(64)
    config = TrainConfig(base_model="SmolLM2-135M-Instruct", max_steps=4, batch_size=8, max_length=48,
                         lora=True, eval_every_steps=4, early_stopping_patience=0)
    job = TrainingJob(config, prepare_data("classification", frame, {"text": "text", "label": "label"}), RunStore(tmp_path / "runs"), data_name="zh")
    job.run()
    last = job.events.since(0)[-1]
    assert isinstance(last, ev.Finished), last
    started = next(e for e in job.events.since(0) if isinstance(e, ev.Started))
    assert started.unk_rate == 0  # byte-level BPE reads Chinese
    prediction = Predictor(job.run_dir).predict(["这是一个非常好的产品，我非常喜欢它。"])[0]
    assert prediction.label in {"pos", "neg"}
