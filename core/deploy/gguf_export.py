"""GGUF (q8_0) for llama-architecture assistant runs, for llama.cpp, Ollama and LM Studio; written with the
``gguf`` package the way llama.cpp's convert_hf_to_gguf.py writes a Llama model (Q/K rows permuted for its
rotary layout, norms in f32, every matrix in q8_0), and readable by transformers' GGUF loader."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..common.errors import DataError
from ..models.registry import REGISTRY

GGUF_FILE = "model-q8_0.gguf"


def permute_rotary(weights: np.ndarray, heads: int) -> np.ndarray:
    """HF's rotate-half Q/K rows into llama.cpp's interleaved order (the inverse of transformers' GGUF loader)."""
    return (weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def tokenizer_pre(base_model: str) -> str:
    """The pre-tokenizer name llama.cpp knows the base model's tokenizer by (from its own GGUF if it shipped as
    one), else llama.cpp's default."""
    import gguf

    spec = REGISTRY.get(base_model)
    if spec and spec.packed_file.endswith(".gguf"):
        field = gguf.GGUFReader(spec.package_dir() / spec.packed_file).fields.get("tokenizer.ggml.pre")
        if field is not None:
            return field.contents()
    return "default"


def write_gguf(model, tokenizer, base_model: str, path: Path) -> None:
    """Write a merged causal LM (llama architecture, byte-level BPE tokenizer) as one q8_0 GGUF file."""
    import gguf

    config = model.config
    if config.model_type != "llama":
        raise DataError(f"GGUF export covers llama-architecture models; this one is '{config.model_type}'.")
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    if spec["model"]["type"] != "BPE":
        raise DataError("GGUF export needs a byte-level BPE tokenizer (as SmolLM2's).")
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(Path(str(getattr(config, "_name_or_path", "")) or "model").name)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(float(config.rope_parameters["rope_theta"]) if getattr(config, "rope_parameters", None)
                              else float(config.rope_theta))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    add_tokenizer(writer, tokenizer, spec, base_model, config.vocab_size)
    add_tensors(writer, model, config)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def add_tokenizer(writer, tokenizer, spec: dict, base_model: str, vocab_size: int) -> None:
    import gguf

    special = set(tokenizer.all_special_ids) | {t["id"] for t in spec.get("added_tokens", []) if t.get("special")}
    tokens = tokenizer.convert_ids_to_tokens(list(range(vocab_size)))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(tokenizer_pre(base_model))
    writer.add_token_list([t if t is not None else f"[PAD{i}]" for i, t in enumerate(tokens)])
    writer.add_token_types([gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL
                            for i in range(vocab_size)])
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]])
    for setter, token_id in ((writer.add_bos_token_id, tokenizer.bos_token_id), (writer.add_eos_token_id,
                             tokenizer.eos_token_id), (writer.add_unk_token_id, tokenizer.unk_token_id),
                             (writer.add_pad_token_id, tokenizer.pad_token_id)):
        if token_id is not None:
            setter(token_id)
    writer.add_add_bos_token(False)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


def add_tensors(writer, model, config) -> None:
    import gguf

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        target = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise DataError(f"GGUF export does not know the weight '{name}'.")
        data = tensor.float().numpy()
        if name.endswith("q_proj.weight"):
            data = permute_rotary(data, config.num_attention_heads)
        elif name.endswith("k_proj.weight"):
            data = permute_rotary(data, config.num_key_value_heads)
        if data.ndim == 2 and data.shape[1] % 32 == 0:
            writer.add_tensor(target, gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0),
                              raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(target, data.astype(np.float32))
