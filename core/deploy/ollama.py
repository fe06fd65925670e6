"""An Ollama Modelfile for a GGUF export: FROM the file, the chat template in Ollama's Go-template form for ChatML
models (SmolLM2 and most small instruct models), the model's default system prompt, and its stop tokens. Other
templates are left to Ollama, which reads ``tokenizer.chat_template`` from the GGUF file."""
from __future__ import annotations

START, END = "<|im_start|>", "<|im_end|>"
CHATML_TEMPLATE = (
    "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{- range .Messages }}{{- if ne .Role \"system\" }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "{{- end }}<|im_start|>assistant\n")
MODELFILE = "Modelfile"


def is_chatml(tokenizer) -> bool:
    template = tokenizer.chat_template or ""
    return START in template and END in template


def default_system(tokenizer) -> str:
    """The system prompt the chat template adds when a conversation has none ('' if it adds none)."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
    head = f"{START}system\n"
    return text[len(head):text.index(END)] if text.startswith(head) else ""


def modelfile(tokenizer, weights: str) -> str:
    lines = [f"FROM ./{weights}"]
    stops = [tokenizer.eos_token] if tokenizer.eos_token else []
    if is_chatml(tokenizer):
        lines.append(f'TEMPLATE """{CHATML_TEMPLATE}"""')
        if system := default_system(tokenizer):
            lines.append(f'SYSTEM """{system}"""')
        if END not in stops:
            stops.append(END)
    else:
        lines.append("# TEMPLATE: Ollama reads the chat template stored in the GGUF file")
    lines += [f'PARAMETER stop "{stop}"' for stop in stops]
    return "\n".join(lines) + "\n"
