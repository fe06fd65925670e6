"""Engine behaviour with a tiny random BERT: event order, cancel, reproducibility, store, config."""
from __future__ import annotations

import json
import threading

import pytest
import torch

from core.common.errors import ConfigError
from core.data.tables import read_table
from core.data.tokens import tokenize_truncated
from core.deploy.predict import Predictor
from core.runs import events as ev
from core.runs.config import TrainConfig
from core.runs.store import RunStore
from core.tasks import prepare_data
from core.train.dropout import FastDropout, use_fast_dropout
from core.train.engine import TrainingJob
from core.train.model_setup import freeze_input_layers, length_grouped_batches, training_overrides


def tiny_config(model_dir, **overrides) -> TrainConfig:
    base = dict(base_model=str(model_dir), epochs=2, batch_size=8, max_length=32, learning_rate=1e-3,
                eval_every_steps=4, early_stopping_patience=0, precision="fp32")
    return TrainConfig(**{**base, **overrides})


def run_job(config, csv_path) -> TrainingJob:
    job = TrainingJob(config, prepare_data("classification", read_table(csv_path)), RunStore(), data_name="toy")
    job.run()
    return job


def kinds(job):
    return [e.kind for e in job.events.since(0)]


def test_config_round_trip_and_validation(tmp_path):
    config = TrainConfig(learning_rate=3e-5, epochs=2.5, precision="bf16", seed=7)
    assert TrainConfig.from_json(config.to_json()) == config
    config.save(tmp_path / "c.json")
    assert TrainConfig.load(tmp_path / "c.json") == config
    with pytest.raises(ConfigError, match="batch size"):
        TrainConfig(batch_size=0).validate()
    with pytest.raises(ConfigError, match="Unknown settings"):
        TrainConfig.from_dict({"learning_rat": 1})


def test_event_order_and_run_folder(tiny_model_dir, toy_csv):
    job = run_job(tiny_config(tiny_model_dir), toy_csv)
    names = kinds(job)
    assert names[0] == "status" and names[-1] == "finished"
    assert names.index("started") < names.index("step") < names.index("evaluation")
    steps = [e for e in job.events.since(0) if isinstance(e, ev.Step)]
    assert [s.step for s in steps] == list(range(1, steps[-1].total_steps + 1))
    assert all(s.eta_s >= 0 and s.samples_per_s > 0 for s in steps)
    run = job.run_dir
    for name in ("model.safetensors", "config.json", "tokenizer.json", "train_config.json", "metrics.json",
                 "history.jsonl", "data.json", "validation_predictions.csv"):
        assert (run / name).is_file(), name
    history = [json.loads(line)["event"] for line in (run / "history.jsonl").read_text().splitlines()]
    assert history == names
    config = json.loads((run / "config.json").read_text())
    assert set(config["id2label"].values()) == {"neg", "pos"}
    info = RunStore().list()[0]
    assert info.status == "finished" and info.metrics["macro_f1"] >= 0


def test_full_fine_tuning_freezes_the_token_embeddings_unless_told_not_to(tiny_model_dir, toy_csv):
    started = lambda job: next(e for e in job.events.since(0) if isinstance(e, ev.Started))
    frozen = started(run_job(tiny_config(tiny_model_dir, epochs=0.2), toy_csv))
    trained = started(run_job(tiny_config(tiny_model_dir, epochs=0.2, freeze_embeddings=False), toy_csv))
    assert trained.trainable_params == trained.total_params
    assert frozen.trainable_params == trained.total_params - 30522 * 32


def test_dropout_settings_and_the_cpu_attention_kernel_reach_the_model(tiny_model_dir, toy_csv, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    job = run_job(tiny_config(tiny_model_dir, epochs=0.2, attention_dropout=0.25, hidden_dropout=0.3), toy_csv)
    bert = job.model
    assert bert.config._attn_implementation == "eager"  # faster to train than fused SDPA on the CPU
    assert bert.bert.encoder.layer[0].attention.self.dropout.p == 0.25
    assert bert.bert.encoder.layer[0].output.dropout.p == 0.3 and bert.dropout.p == 0.3
    saved = json.loads((job.run_dir / "config.json").read_text())
    assert (saved["attention_probs_dropout_prob"], saved["hidden_dropout_prob"]) == (0.25, 0.3)

    LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=2)).save_pretrained(tmp_path / "llama")
    overrides = training_overrides(tmp_path / "llama", TrainConfig(attention_dropout=0.2), torch.device("cpu"))
    assert overrides == {"attention_dropout": 0.2, "attn_implementation": "eager"}  # Llama has no hidden dropout
    with pytest.raises(ConfigError, match="attention dropout"):
        TrainConfig(attention_dropout=1.5).validate()


def test_fast_dropout_matches_dropout_in_distribution_scaling_and_gradient():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.3), torch.nn.Dropout(0.0))
    assert use_fast_dropout(model) == 1 and isinstance(model[1], FastDropout) and type(model[2]) is torch.nn.Dropout
    x = torch.ones(1000, 1000, requires_grad=True)
    y = model[1](x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.3) < 0.003 and abs(y.mean().item() - 1) < 0.01
    assert torch.allclose(y[y != 0], torch.tensor(1 / 0.7))
    y.sum().backward()
    assert torch.equal(x.grad == 0, y == 0)  # the gradient flows through kept entries only
    torch.manual_seed(1)
    a = model[1](torch.ones(64, 33, dtype=torch.bfloat16))
    torch.manual_seed(1)
    assert torch.equal(a, model[1](torch.ones(64, 33, dtype=torch.bfloat16)))  # seeded, odd sizes, bf16
    model.eval()
    assert torch.equal(model[1](x), x)


def test_a_tied_lm_head_keeps_its_embeddings_trainable():
    from transformers import LlamaConfig, LlamaForCausalLM

    lm = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True))
    freeze_input_layers(lm)
    assert lm.get_input_embeddings().weight.requires_grad


def test_seeded_runs_are_reproducible(tiny_model_dir, toy_csv):
    a = run_job(tiny_config(tiny_model_dir, epochs=1), toy_csv)
    b = run_job(tiny_config(tiny_model_dir, epochs=1), toy_csv)
    losses = lambda job: [e.loss for e in job.events.since(0) if isinstance(e, ev.Step)]
    assert losses(a) == pytest.approx(losses(b), abs=1e-6)
    c = run_job(tiny_config(tiny_model_dir, epochs=1, seed=3), toy_csv)
    assert losses(c) != pytest.approx(losses(a), abs=1e-6)


def test_cancel_stops_within_one_batch_and_keeps_a_loadable_model(tiny_model_dir, toy_csv):
    job = TrainingJob(tiny_config(tiny_model_dir, epochs=50, eval_every_steps=5),
                      prepare_data("classification", read_table(toy_csv)), RunStore(), data_name="toy")
    cancelled_at = {}
    evaluated = threading.Event()

    def on_event(event):
        if isinstance(event, ev.Evaluation):
            evaluated.set()
        if isinstance(event, ev.Step) and evaluated.is_set() and not cancelled_at:
            cancelled_at["step"] = event.step
            job.cancel()

    job.events.subscribe(on_event)
    job.start()
    job.join(timeout=120)
    events = job.events.since(0)
    assert isinstance(events[-1], ev.Cancelled)
    last_step = max(e.step for e in events if isinstance(e, ev.Step))
    assert last_step <= cancelled_at["step"] + 1
    assert RunStore().list()[0].status == "cancelled"
    predictions = Predictor(job.run_dir).predict(["this product is great", "this product is awful"])
    assert all(p.label in {"pos", "neg"} for p in predictions)
    assert events[-1].metrics["macro_f1"] >= 0


def test_early_stopping_ends_before_the_budget(tiny_model_dir, toy_csv):
    job = run_job(tiny_config(tiny_model_dir, epochs=30, eval_every_steps=1, early_stopping_patience=2,
                              learning_rate=1e-9), toy_csv)
    steps = [e for e in job.events.since(0) if isinstance(e, ev.Step)]
    assert isinstance(job.events.since(0)[-1], ev.Finished)
    assert steps[-1].step < steps[0].total_steps


def test_missing_base_model_fails_with_a_message(toy_csv, tmp_path):
    job = run_job(tiny_config(tmp_path / "no-such-model"), toy_csv)
    last = job.events.since(0)[-1]
    assert isinstance(last, ev.Failed) and "neither a known base model" in last.message


def test_pickle_only_model_is_refused(toy_csv, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    (tmp_path / "m" / "pytorch_model.bin").write_bytes(b"not really")
    last = run_job(tiny_config(tmp_path / "m"), toy_csv).events.since(0)[-1]
    assert isinstance(last, ev.Failed) and "safetensors" in last.message


def test_length_grouped_batches_cover_every_row_once():
    import torch

    lengths = [i % 17 for i in range(203)]
    batches = length_grouped_batches(lengths, 8, torch.Generator().manual_seed(0))
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(203))
    assert all(len(b) <= 8 for b in batches)
    spread = lambda bs: sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in bs) / len(bs)
    mixed = length_grouped_batches(lengths, 8, torch.Generator().manual_seed(0), group=False)
    assert sorted(i for b in mixed for i in b) == list(range(203))
    assert spread(batches) < 2 < 10 < spread(mixed)  # grouped batches hold similar lengths, plain ones do not


@pytest.mark.parametrize("model", ["all-MiniLM-L6-v2", "SmolLM2-135M-Instruct"])
def test_fast_tokenising_equals_tokenising_whole_texts(model, sample_cache):
    from core.data.samples import build_sample
    from core.models.registry import load_tokenizer

    texts = build_sample("bbc_news", rows_per_class=20).text.tolist() + [
        "https://example.com/" + "x" * 3000,  # one 'word' far longer than the cut
        "word " * 50 + "y" * 2000,  # the cut falls inside a long last word
        "这是一个非常好的产品，我非常喜欢它。" * 120,  # no spaces at all
        "short text", "a " * 600, "tab\tseparated " * 300,
    ]
    tokenizer = load_tokenizer(model)
    for max_length in (16, 128):
        whole = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
        assert tokenize_truncated(tokenizer, texts, max_length) == whole


def test_store_export_and_delete(tiny_model_dir, toy_csv, tmp_path):
    import zipfile

    job = run_job(tiny_config(tiny_model_dir, epochs=1), toy_csv)
    store = RunStore()
    run_id = job.run_dir.name
    archive = store.export_zip(run_id, tmp_path)
    assert "model.safetensors" in zipfile.ZipFile(archive).namelist()
    store.delete(run_id)
    assert store.list() == []
    with pytest.raises(Exception, match="no run called"):
        store.delete("../etc")


def test_pruned_run_keeps_the_bottom_layers_and_predicts(tiny_model_dir, toy_csv, tmp_path):
    from safetensors import safe_open

    data = prepare_data("classification", read_table(toy_csv))
    job = TrainingJob(tiny_config(tiny_model_dir, keep_layers=1, max_steps=4), data, RunStore(tmp_path / "runs"))
    job.run()
    assert json.loads((job.run_dir / "config.json").read_text())["num_hidden_layers"] == 1
    with safe_open(str(job.run_dir / "model.safetensors"), "pt") as weights:
        layers = {k.split("layer.")[1].split(".")[0] for k in weights.keys() if "encoder.layer." in k}
    assert layers == {"0"}
    assert Predictor(job.run_dir).predict(["this product is great"])[0].label in {"pos", "neg"}
