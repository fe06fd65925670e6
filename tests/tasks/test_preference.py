"""Preference tuning: table detection and cleaning, the DPO/ORPO losses against a full-logits computation, tiny
Llamas tuned with each loss (on top of a LoRA assistant run too), and the run's chat model."""
from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from core.common.errors import ConfigError, DataError
from core.data.samples import sample_path
from core.data.tables import read_table
from core.deploy.chat import ChatModel
from core.models.registry import load_tokenizer
from core.runs import events as ev
from core.runs.config import TrainConfig
from core.runs.store import RunStore
from core.tasks import detect_task, get_task, prepare_data
from core.tasks.preference import score_pairs
from core.train.engine import TrainingJob


@pytest.fixture(scope="module")
def shouted(qa_csv) -> pd.DataFrame:
    """Each question's answer (chosen) against the same answer in capitals (rejected): a preference a tiny
    model can learn and that holds on questions it never saw."""
    qa = read_table(qa_csv).head(120)
    frame = pd.DataFrame({"question": qa["prompt"], "better_answer": qa["response"],
                          "worse_answer": qa["response"].str.upper()})
    return frame[frame["better_answer"] != frame["worse_answer"]]


def test_a_prompt_chosen_rejected_table_is_detected_and_cleaned(shouted, sample_cache):
    assert detect_task(shouted) == "preference"
    assert detect_task(read_table(sample_path("chatterbot_preferences"))) == "preference"
    assert detect_task(read_table(sample_path("chatterbot_qa"))) == "assistant"
    same = shouted.head(6).copy()
    same.loc[same.index[0], "worse_answer"] = same.loc[same.index[0], "better_answer"]
    data = prepare_data("preference", same)
    assert data.columns == {"prompt": "question", "chosen": "better_answer", "rejected": "worse_answer"}
    assert len(data) == 5 and data.rows_dropped == 1 and "same chosen and rejected" in data.warnings[0]
    assert get_task("preference").to_frame(data).columns.tolist() == ["prompt", "chosen", "rejected"]
    with pytest.raises(DataError, match="Fewer than 4 rows"):
        prepare_data("preference", shouted.head(3))
    with pytest.raises(ConfigError, match="preference loss must be one of dpo, orpo"):
        TrainConfig(task="preference", preference_loss="kto").validate()


def full_logit_logps(model, batch) -> torch.Tensor:
    """Each sequence's summed response-token log-probability from the model's logits at every position."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    picked = torch.gather(logits.log_softmax(-1), 2, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(1), mask.sum(1)


def test_dpo_and_orpo_losses_match_a_full_logits_computation(tiny_llama_dir, shouted):
    from transformers import AutoModelForCausalLM

    task, tokenizer = get_task("preference"), load_tokenizer(str(tiny_llama_dir))
    policy, reference = (AutoModelForCausalLM.from_pretrained(tiny_llama_dir) for _ in range(2))
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn_like(p) * 0.02)  # the policy has moved away from the reference
    data = prepare_data("preference", shouted.head(6))
    encoded = task.encode(tokenizer, data, 64, {"method": "dpo", "beta": 0.1})
    batch = encoded.batch(list(range(6)), tokenizer, torch.device("cpu"))
    with torch.no_grad():
        ref_sums, _ = full_logit_logps(reference, batch)
        sums, counts = full_logit_logps(policy, batch)
        batch["reference"] = ref_sums
        dpo = score_pairs(policy, batch, "dpo", 0.1)
        orpo = score_pairs(policy, batch, "orpo", 0.1)
    ratio = (sums[:6] - ref_sums[:6]) - (sums[6:] - ref_sums[6:])
    # differences of fp32 sums of log-probabilities: an absolute error near 1e-5 is rounding (BLAS kernels differ per CPU)
    assert dpo.loss == pytest.approx(-F.logsigmoid(0.1 * ratio), rel=1e-4, abs=1e-5)
    assert dpo.chosen == pytest.approx(0.1 * (sums[:6] - ref_sums[:6]), rel=1e-4, abs=1e-5)
    means = sums / counts
    odds = lambda m: m - torch.log1p(-torch.exp(m))  # noqa: E731  log(p / (1 - p))
    expected = -sums[:6].sum() / counts[:6].sum() - 0.1 * F.logsigmoid(odds(means[:6]) - odds(means[6:])).mean()
    assert float(orpo.mean_loss) == pytest.approx(float(expected), rel=1e-4)


def train(config: TrainConfig, data, tmp_path, name="prefs") -> tuple[TrainingJob, list]:
    job = TrainingJob(config, data, RunStore(tmp_path / "runs"), data_name=name)
    job.run()
    events = job.events.since(0)
    assert isinstance(events[-1], ev.Finished), events[-1]
    return job, events


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["dpo", "orpo"])
def test_tiny_llama_learns_to_prefer_the_chosen_answers(tiny_llama_dir, shouted, tmp_path, loss):
    config = TrainConfig(task="preference", base_model=str(tiny_llama_dir), epochs=4, batch_size=8, max_length=64,
                         learning_rate=3e-3, precision="fp32", eval_every_steps=12, early_stopping_patience=0,
                         preference_loss=loss)
    job, events = train(config, prepare_data("preference", shouted), tmp_path)
    evals = [e for e in events if isinstance(e, ev.Evaluation)]
    metrics = events[-1].metrics
    assert metrics["reward_accuracy"] >= 0.8, metrics  # validation pairs: questions the model never saw
    assert metrics["reward_margin"] > 0 and evals[-1].loss < evals[0].loss
    assert metrics["task_state"] == {"method": loss, "beta": 0.1}
    if loss == "dpo":  # every reward starts at 0: loss log 2, margins a coin toss
        assert metrics["baseline"] == {"name": "the starting model", "val_loss": pytest.approx(math.log(2)),
                                       "reward_accuracy": 0.5}
        assert metrics["val_loss"] < math.log(2) - 0.1
    assert isinstance(ChatModel(job.run_dir).reply([{"role": "user", "content": "Hello"}], max_new_tokens=4), str)


@pytest.mark.slow
def test_preference_tuning_continues_a_lora_assistant_run(tiny_llama_dir, qa_csv, shouted, tmp_path):
    """SFT with LoRA, then DPO with LoRA on top of that run: the chain loads back as one chat model."""
    sft = TrainConfig(task="assistant", base_model=str(tiny_llama_dir), max_steps=6, batch_size=8, max_length=64,
                      learning_rate=3e-3, precision="fp32", lora=True)
    sft_job, _ = train(sft, prepare_data("assistant", read_table(qa_csv).head(40)), tmp_path, "qa")
    dpo = TrainConfig(task="preference", base_model=str(sft_job.run_dir), epochs=3, batch_size=8, max_length=64,
                      learning_rate=3e-3, precision="fp32", lora=True, early_stopping_patience=0)
    job, events = train(dpo, prepare_data("preference", shouted), tmp_path)
    assert events[-1].metrics["reward_accuracy"] > 0.5
    answer = ChatModel(job.run_dir).reply([{"role": "user", "content": "Hello"}], max_new_tokens=4)
    assert isinstance(answer, str)


def test_chat_feedback_becomes_a_preference_table(tmp_path):
    from core.deploy.chat_feedback import feedback_table, record_preference

    with pytest.raises(DataError, match="the same"):
        record_preference(tmp_path, "Hi", "Hello!", "Hello!")
    with pytest.raises(DataError, match="needs the prompt"):
        record_preference(tmp_path, "Hi", "", "Go away.")
    for i in range(3):
        assert record_preference(tmp_path, f"Question {i}, with a comma", f"Answer {i}", "No idea.") == i + 1
    with pytest.raises(DataError, match="has 3 preference"):
        feedback_table(tmp_path)
    record_preference(tmp_path, "你好", "你好！有什么可以帮你？", "走开。")
    data = prepare_data("preference", read_table(feedback_table(tmp_path)))
    assert len(data) == 4 and data.inputs["prompt"][0] == "Question 0, with a comma" and data.targets[3] == "你好！有什么可以帮你？"
