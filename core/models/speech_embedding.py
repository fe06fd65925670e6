"""Google's speech-embedding CNN (arXiv 2002.01322, as shipped in ``openwakeword`` 0.5.1) as a Hugging Face
``PreTrainedModel`` for audio classification.

The model reads 16 kHz mono waveforms in [-1, 1] (``input_values``, B x samples) and owns its front-end: the
shipped log-mel spectrogram (a 512-point STFT as two convolutions, hop 160, 32 mel bands, dB with an 80 dB floor,
then ``x / 10 + 2``) kept as fixed buffers, so an export needs nothing but the waveform. The 20 convolutions run
over the whole spectrogram at once: their three time pools of stride 2 make every output frame exactly the 96-d
embedding of one 76-frame (0.775 s) window, one every 8 frames (80 ms), the windows openWakeWord slides. A clip's
embeddings are pooled (mean and max over time) into a new linear head.

Licence: the embedding weights are Google's speech_embedding (TF Hub, Apache-2.0, re-implemented by openWakeWord);
the mel graph is a fixed transform. openWakeWord's own wake-word heads (CC BY-NC-SA 4.0) are never read.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import AutoConfig, AutoModelForAudioClassification, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from ..common.errors import ModelError

SAMPLING_RATE = 16_000
N_FFT, HOP, MEL_BANDS = 512, 160, 32
WINDOW_FRAMES, WINDOW_STEP = 76, 8
MIN_SAMPLES = N_FFT + (WINDOW_FRAMES - 1) * HOP  # one embedding window: 12,512 samples (0.78 s)
# (out channels, kernel (time, mel), then a max pool (time, mel) or None), as the shipped graph lays them out
LAYERS = ((24, (3, 3), None), (24, (1, 3), None), (24, (3, 1), (2, 2)),
          (48, (1, 3), None), (48, (3, 1), None), (48, (1, 3), None), (48, (3, 1), (1, 2)),
          (72, (1, 3), None), (72, (3, 1), None), (72, (1, 3), None), (72, (3, 1), (2, 2)),
          (96, (1, 3), None), (96, (3, 1), None), (96, (1, 3), None), (96, (3, 1), (1, 2)),
          (96, (1, 3), None), (96, (3, 1), None), (96, (1, 3), None), (96, (3, 1), (2, 2)),
          (96, (3, 1), None))
FROZEN_BLOCKS = 11  # the convolutions up to the second 2x2 pool: 1.8x faster, same accuracy (bench/RESULTS.md, speech)
FLOOR = -0.4  # every LeakyReLU output is clipped from below at -0.4 (tf.math.maximum in the graph)


class SpeechEmbeddingConfig(PretrainedConfig):
    model_type = "speech_embedding"

    def __init__(self, hidden_size: int = 96, classifier_dropout: float = 0.1, frozen_blocks: int = FROZEN_BLOCKS,
                 **kwargs):
        super().__init__(**kwargs)
        self.hidden_size, self.classifier_dropout = hidden_size, classifier_dropout
        self.frozen_blocks = frozen_blocks  # the lowest blocks kept as pretrained while fine-tuning (input_layers)


class LogMel(nn.Module):
    """Waveforms (B x samples, [-1, 1]) -> openWakeWord-scaled log-mel frames (B x 1 x frames x 32). The 80 dB
    floor is per clip (the shipped graph takes it over the whole batch, which made a clip's features depend on
    its batch mates)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("stft_real", torch.zeros(N_FFT // 2 + 1, 1, N_FFT))
        self.register_buffer("stft_imag", torch.zeros(N_FFT // 2 + 1, 1, N_FFT))
        self.register_buffer("mel_weights", torch.zeros(N_FFT // 2 + 1, MEL_BANDS))

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        x = (waveforms * 32768.0).unsqueeze(1)  # the graph reads int16-scale samples
        real = nn.functional.conv1d(x, self.stft_real, stride=HOP)
        imag = nn.functional.conv1d(x, self.stft_imag, stride=HOP)
        power = (real * real + imag * imag).transpose(1, 2)  # B x frames x 257
        db = 10.0 * torch.log10(torch.clamp(power @ self.mel_weights, min=1e-10))
        db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - 80.0)
        return (db / 10.0 + 2.0).unsqueeze(1)


class Block(nn.Module):
    def __init__(self, channels_in: int, channels: int, kernel: tuple[int, int], pool, bias: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(channels_in, channels, kernel, padding=(0, kernel[1] // 2), bias=bias)
        self.pool = nn.MaxPool2d(pool) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.clamp(nn.functional.leaky_relu(self.conv(x), 0.2), min=FLOOR))


class SpeechEmbeddingForAudioClassification(PreTrainedModel):
    config_class = SpeechEmbeddingConfig
    base_model_prefix = "speech_embedding"
    main_input_name = "input_values"

    def __init__(self, config: SpeechEmbeddingConfig):
        super().__init__(config)
        self.mel = LogMel()
        blocks, channels = [], 1
        for i, (out, kernel, pool) in enumerate(LAYERS):
            last = i == len(LAYERS) - 1
            blocks.append(nn.Conv2d(channels, out, kernel, bias=False) if last else Block(channels, out, kernel, pool))
            channels = out
        self.encoder = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(2 * config.hidden_size, config.num_labels)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if module is getattr(self, "classifier", None):
            nn.init.normal_(module.weight, std=0.01)
            nn.init.zeros_(module.bias)

    def input_layers(self) -> list[nn.Module]:
        """The lowest ``frozen_blocks`` convolutions: generic acoustic features that fine-tuning keeps as they are
        (core.train.model_setup.freeze_input_layers), so no gradient is computed at the full frame rate."""
        return list(self.encoder[:self.config.frozen_blocks])

    def embeddings(self, input_values: torch.Tensor) -> torch.Tensor:
        """B x windows x 96: one embedding per 76-frame window, every 8 frames."""
        return self.encoder(self.mel(input_values)).squeeze(-1).transpose(1, 2)

    def forward(self, input_values: torch.Tensor, labels: torch.Tensor | None = None, **_) -> SequenceClassifierOutput:
        found = self.embeddings(input_values)
        pooled = torch.cat([found.mean(dim=1), found.amax(dim=1)], dim=-1)
        logits = self.classifier(self.dropout(pooled))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


AutoConfig.register(SpeechEmbeddingConfig.model_type, SpeechEmbeddingConfig, exist_ok=True)
AutoModelForAudioClassification.register(SpeechEmbeddingConfig, SpeechEmbeddingForAudioClassification,
                                         exist_ok=True)


def feature_extractor(clip_samples: int | None = None):
    """The preprocessing an export documents: 16 kHz mono floats in [-1, 1], zero-padded to the clip length (the
    log-mel front-end is inside the model)."""
    from transformers import Wav2Vec2FeatureExtractor

    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLING_RATE, padding_value=0.0,
                                         do_normalize=False, return_attention_mask=False)
    extractor.clip_samples = clip_samples or SAMPLING_RATE
    return extractor


def convert_speech_embedding(source: Path, packed_file: str, target: Path) -> None:
    """Rebuild the shipped ONNX graphs (``packed_file``: the embedding model; the mel model lies beside it) as a
    safetensors model folder, checking every layer's shape."""
    import onnx
    from onnx import numpy_helper

    def initialisers(name: str) -> dict[str, np.ndarray]:
        return {i.name: numpy_helper.to_array(i) for i in onnx.load(source / name).graph.initializer}

    mel, graph = initialisers("melspectrogram.onnx"), initialisers(packed_file)
    model = SpeechEmbeddingForAudioClassification(SpeechEmbeddingConfig(num_labels=2))
    state = {"mel.stft_real": mel["0.stft.conv_real.weight"], "mel.stft_imag": mel["0.stft.conv_imag.weight"],
             "mel.mel_weights": mel["1.melW"]}
    for i in range(len(LAYERS)):
        prefix = f"model/conv2d{'' if i == 0 else f'_{i}'}/Conv2D"
        if i == len(LAYERS) - 1:
            state[f"encoder.{i}.weight"] = graph[f"{prefix}/ReadVariableOp:0"]
        else:
            state[f"encoder.{i}.conv.weight"] = graph[f"{prefix}_weights_fused_bn"]
            state[f"encoder.{i}.conv.bias"] = graph[f"{prefix}_bias_fused_bn"]
    own = model.state_dict()
    wrong = [k for k, v in state.items() if k not in own or tuple(own[k].shape) != v.shape]
    if wrong:
        raise ModelError(f"The shipped speech-embedding graph does not match the model: {wrong[:5]}.")
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()}, strict=False)
    model.save_pretrained(target, safe_serialization=True)
    feature_extractor().save_pretrained(target)
