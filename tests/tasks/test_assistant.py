"""Generative SFT: response-only loss masking, a tiny Llama trained end to end and exported, and the chat endpoint
(the real SmolLM2 + LoRA run is the browser test)."""
from __future__ import annotations

import json
import time

import pytest

from core.common.errors import DataError
from core.data.tables import read_table
from core.deploy.chat import ChatModel
from core.models.registry import DEFAULT_CHAT_MODEL, load_tokenizer
from core.runs import events as ev
from core.runs.config import TrainConfig
from core.runs.store import RunStore
from core.tasks import prepare_data
from core.tasks.assistant import encode_pair
from core.train.engine import TrainingJob

SMOLLM = DEFAULT_CHAT_MODEL


def test_prompt_tokens_are_masked_in_the_labels(smollm_dir):
    tok = load_tokenizer(str(smollm_dir))
    ids, labels = encode_pair(tok, "What is the capital of France?", "Paris.", max_length=256)
    masked = [i for i, label in enumerate(labels) if label == -100]
    assert masked == list(range(len(masked))) and len(masked) > 5  # a prefix: system + user turn + assistant header
    assert all(labels[i] == ids[i] for i in range(len(masked), len(ids)))
    response = tok.decode([ids[i] for i in range(len(masked), len(ids))], skip_special_tokens=True)
    assert response.strip() == "Paris."
    prompt_text = tok.decode(ids[:len(masked)])
    assert "What is the capital of France?" in prompt_text and "Paris" not in prompt_text


def test_response_only_loss_equals_the_models_own(tiny_llama_dir, qa_csv):
    """The assistant computes its training loss with the LM head on response positions only: the same number."""
    import torch
    from transformers import AutoModelForCausalLM

    from core.tasks import get_task

    task, tokenizer = get_task("assistant"), load_tokenizer(str(tiny_llama_dir))
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    encoded = task.encode(tokenizer, prepare_data("assistant", read_table(qa_csv).head(6)), 64, {})
    batch = encoded.batch(list(range(6)), tokenizer, torch.device("cpu"))
    assert task.loss(model, batch).item() == pytest.approx(model(**batch).loss.item(), rel=1e-5)


def test_pairs_need_two_columns_and_rows(tmp_path):
    import pandas as pd

    with pytest.raises(DataError, match="only 1 column.*prompt, response"):
        prepare_data("assistant", pd.DataFrame({"question": ["a"] * 5}))
    with pytest.raises(DataError, match="Fewer than 4"):
        prepare_data("assistant", pd.DataFrame({"question": ["a", "b"], "answer": ["c", ""]}))
    data = prepare_data("assistant", pd.DataFrame({"id": ["1"] * 4, "answer": list("abcd"), "question": list("wxyz")}))
    assert data.columns == {"prompt": "question", "response": "answer"}


def test_tiny_llama_learns_the_responses(tiny_llama_dir, qa_csv, tmp_path):
    data = prepare_data("assistant", read_table(qa_csv).head(48))
    config = TrainConfig(task="assistant", base_model=str(tiny_llama_dir), epochs=6, batch_size=8, max_length=64,
                         learning_rate=3e-3, precision="fp32", eval_every_steps=10, early_stopping_patience=0)
    job = TrainingJob(config, data, RunStore(tmp_path / "runs"), data_name="qa")
    job.run()
    events = job.events.since(0)
    assert isinstance(events[-1], ev.Finished), events[-1]
    steps = [e.loss for e in events if isinstance(e, ev.Step)]
    assert sum(steps[-3:]) / 3 < sum(steps[:3]) / 3 - 1.0
    evals = [e for e in events if isinstance(e, ev.Evaluation)]
    samples = evals[-1].metrics["samples"]
    assert evals and len(samples) == 3 and {"prompt", "generated", "reference"} <= set(samples[0])
    assert events[-1].metrics["perplexity"] == pytest.approx(2.718281828 ** events[-1].metrics["val_loss"], rel=1e-6)
    answer = ChatModel(job.run_dir).reply([{"role": "user", "content": "Hello"}], max_new_tokens=8)
    assert isinstance(answer, str)

    # export writes a causal LM (it used to write a sequence classifier with a random head for assistant runs)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.deploy.export import export_run

    exported = export_run(job.run_dir, tmp_path / "exported")
    plain, tokenizer = AutoModelForCausalLM.from_pretrained(exported), AutoTokenizer.from_pretrained(exported)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "Hello"}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)
    out = plain.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True) == answer


@pytest.mark.slow
def test_gguf_q8_0_export_loads_back_and_generates_like_the_model(smollm_dir, tiny_llama_dir, qa_csv, tmp_path):
    """The real SmolLM2 written as GGUF q8_0, loaded back by transformers' GGUF loader: the same greedy answers
    (and the same vocabulary and chat template in the file); an assistant run exports through export_run."""
    import gguf
    import torch
    from transformers import AutoModelForCausalLM

    from core.deploy.export import export_run
    from core.deploy.gguf_export import GGUF_FILE, write_gguf

    model = AutoModelForCausalLM.from_pretrained(smollm_dir, dtype=torch.float32).eval()
    tokenizer = load_tokenizer(str(smollm_dir))
    write_gguf(model, tokenizer, SMOLLM, tmp_path / GGUF_FILE)
    assert (tmp_path / GGUF_FILE).stat().st_size < 0.3 * 4 * sum(p.numel() for p in model.parameters())
    fields = gguf.GGUFReader(tmp_path / GGUF_FILE).fields  # the vocabulary as llama.cpp will read it
    assert fields["tokenizer.ggml.tokens"].contents() == tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    assert fields["tokenizer.chat_template"].contents() == tokenizer.chat_template
    back = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=GGUF_FILE, dtype=torch.float32).eval()
    for question in ("What is the capital of France?", "你好，你是谁？", "Write a haiku about rain."):
        ids = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
        expected = model.generate(**ids, max_new_tokens=16, do_sample=False)
        assert torch.equal(back.generate(**ids, max_new_tokens=16, do_sample=False), expected), question

    data = prepare_data("assistant", read_table(qa_csv).head(24))
    config = TrainConfig(task="assistant", base_model=str(tiny_llama_dir), max_steps=2, batch_size=8, max_length=64,
                         precision="fp32")
    job = TrainingJob(config, data, RunStore(tmp_path / "runs"), data_name="qa")
    job.run()
    exported = export_run(job.run_dir, tmp_path / "gguf-export", "gguf-q8_0")
    reader = gguf.GGUFReader(exported / GGUF_FILE)
    assert reader.fields["general.architecture"].contents() == "llama" and len(reader.tensors) == 2 * 9 + 2
    assert "gguf_file=" in (exported / "README.md").read_text()
    assert "ollama create" in (exported / "README.md").read_text()
    card = (exported / "Modelfile").read_text()
    assert card.startswith(f"FROM ./{GGUF_FILE}") and 'PARAMETER stop "<|im_end|>"' in card


def render_chatml(messages: list[dict], system: str) -> str:
    """What core.deploy.ollama's CHATML_TEMPLATE renders in Ollama for ``messages`` with the Modelfile's SYSTEM (Ollama puts
    a conversation's own system message in .System), written out by hand."""
    system = next((m["content"] for m in messages if m["role"] == "system"), system)
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages if m["role"] != "system")
    return (f"<|im_start|>system\n{system}<|im_end|>\n" if system else "") + turns + "<|im_start|>assistant\n"


def test_ollama_template_renders_conversations_as_the_models_own_chat_template(smollm_dir):
    from core.deploy.ollama import CHATML_TEMPLATE, default_system, modelfile

    tokenizer = load_tokenizer(str(smollm_dir))
    system = default_system(tokenizer)
    assert system.startswith("You are a helpful AI assistant") and f'SYSTEM """{system}"""' in modelfile(tokenizer, "m.gguf")
    assert f'TEMPLATE """{CHATML_TEMPLATE}"""' in modelfile(tokenizer, "m.gguf")
    conversations = ([{"role": "user", "content": "Hi"}],
                     [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Hi"}],
                     [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                      {"role": "user", "content": "你好？"}])
    for messages in conversations:
        assert render_chatml(messages, system) == tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False), messages


def test_chat_endpoint(app, tiny_llama_dir, qa_csv, tmp_path):
    from gradio_client import Client, handle_file

    small = tmp_path / "qa.csv"
    read_table(qa_csv).head(48).to_csv(small, index=False)
    client = Client(app.url, verbose=False)
    config = json.dumps({"task": "assistant", "base_model": str(tiny_llama_dir), "epochs": 1, "batch_size": 8,
                         "max_length": 48, "precision": "fp32"})
    result = client.predict(handle_file(str(small)), "", "", config, api_name="/train")
    assert result["status"] == "finished" and "perplexity" in result["metrics"]
    from ui.chat_tab import text_of

    tuned, base, message, _ = client.predict("Hello there", [], [], result["run_id"], 0.0, 8, False, api_name="/chat")
    assert message == "" and text_of(tuned[-2]["content"]) == "Hello there" and tuned[-1]["role"] == "assistant"
    assert base == []
    again, *_ = client.predict("And again?", tuned, [], result["run_id"], 0.0, 8, False, api_name="/chat")
    assert len(again) == 4  # the earlier turn is kept and fed back through the chat template


def test_openai_client_streams_a_chat_completion_from_a_served_run(tiny_llama_dir, qa_csv, tmp_path):
    """`python -m core serve` on an assistant run speaks OpenAI's API: the official client lists the model, gets a
    whole answer and the same answer streamed, and bad requests get 4xx errors with a message."""
    import threading

    import openai
    import uvicorn

    from bench.browser_app import free_port
    from core.deploy.serve import create_app

    config = TrainConfig(task="assistant", base_model=str(tiny_llama_dir), epochs=1, batch_size=8, max_length=48,
                         precision="fp32")
    data = prepare_data("assistant", read_table(qa_csv).head(16))
    job = TrainingJob(config, data, RunStore(tmp_path), data_name="qa")
    job.run()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(job.run_dir, token="s3cret"), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="s3cret", max_retries=0)
        assert [m.id for m in client.models.list()] == [job.run_dir.name]
        hello = [{"role": "user", "content": "Hello, who are you?"}]
        greedy = client.chat.completions.create(model=job.run_dir.name, messages=hello, max_tokens=12, temperature=0)
        assert greedy.choices[0].message.content == ChatModel(job.run_dir).reply(hello, max_new_tokens=12)
        assert greedy.usage.completion_tokens <= 12 and greedy.usage.prompt_tokens > 5
        sampled = dict(model=job.run_dir.name, messages=hello, max_tokens=12, temperature=1.0, seed=7)
        whole = client.chat.completions.create(**sampled).choices[0]  # the nearly untrained model: random words
        chunks = list(client.chat.completions.create(**sampled, stream=True))
        assert whole.message.content.strip() and len(chunks) > 3
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole.message.content
        assert chunks[-1].choices[0].finish_reason == whole.finish_reason

        with pytest.raises(openai.AuthenticationError, match="Bearer"):
            openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="wrong", max_retries=0).models.list()
        with pytest.raises(openai.UnprocessableEntityError, match="max_tokens can be at most 512"):
            client.chat.completions.create(model=job.run_dir.name, messages=hello, max_tokens=100_000)
        with pytest.raises(openai.NotFoundError, match="serves the model"):
            client.chat.completions.create(model="gpt-4o", messages=hello)
        with pytest.raises(openai.UnprocessableEntityError, match="Bad request body at messages"):
            client.chat.completions.create(model=job.run_dir.name, messages=[{"role": "robot", "content": "hi"}])
    finally:
        server.should_exit = True
        thread.join(10)
