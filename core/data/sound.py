"""Sound clips to waveforms: any WAV, FLAC, OGG or MP3 (soundfile's libsndfile), any rate and channel count, read
within a length limit, mixed to mono and resampled to 16 kHz (soxr); cut or padded to one clip length per run
(keeping the loudest stretch); then, per batch, scaled to [-1, 1] and, for training, randomly changed in gain,
time, speed and noise."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..common.errors import DataError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3"}
RATE = 16_000
MAX_READ_SECONDS = 600  # a longer recording is read up to here (a 10-hour file never fills the memory)
CLIP_SECONDS = (1.0, 10.0)  # bounds of a run's clip length (the 95th percentile of its clips' durations)
SILENCE = 1e-4  # peak amplitude under which a clip counts as silent


def shown_name(source) -> str:
    return Path(source).name if isinstance(source, (str, Path)) else "the clip"


def _open(source):
    import soundfile

    name = shown_name(source)
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise DataError(f"The clip '{name}' does not exist.")
    try:
        return soundfile.SoundFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (soundfile.LibsndfileError, RuntimeError, OSError, ValueError, TypeError) as exc:
        empty = isinstance(source, (str, Path)) and Path(source).is_file() and Path(source).stat().st_size == 0
        raise DataError(f"The clip '{name}' " + ("is an empty file." if empty else
                        f"cannot be read as sound (WAV, FLAC, OGG or MP3; {exc}).")) from None


def duration(source) -> float:
    """Seconds of a clip, read from its header; a DataError names a file that is not sound or has no samples."""
    with _open(source) as clip:
        frames, rate = clip.frames, clip.samplerate
    if frames <= 0 or rate <= 0:
        raise DataError(f"The clip '{shown_name(source)}' holds no samples.")
    return frames / rate


def mono(source) -> tuple[np.ndarray, int]:
    """A clip's samples mixed to mono float32 in [-1, 1] at its own rate (at most MAX_READ_SECONDS of it), and the
    rate."""
    with _open(source) as clip:
        rate = clip.samplerate
        try:
            samples = clip.read(frames=min(clip.frames, MAX_READ_SECONDS * rate), dtype="float32", always_2d=True)
        except (RuntimeError, ValueError) as exc:  # soundfile's errors mid-file (truncated data)
            raise DataError(f"The clip '{shown_name(source)}' is damaged ({exc}).") from None
    if not len(samples):
        raise DataError(f"The clip '{shown_name(source)}' holds no samples.")
    return samples.mean(axis=1), rate


def waveform(source) -> np.ndarray:
    """A clip as 16 kHz mono float32 in [-1, 1] (at most MAX_READ_SECONDS of it)."""
    import soxr

    samples, rate = mono(source)
    return (soxr.resample(samples, rate, RATE) if rate != RATE else samples).astype(np.float32)


def loudest(samples: np.ndarray, length: int) -> np.ndarray:
    """``length`` samples: the stretch of the clip with the most energy (10 ms steps), or the clip zero-padded at
    the end (as transformers' feature extractors pad, so an export's documented preprocessing gives the same)."""
    if len(samples) <= length:
        return np.pad(samples, (0, length - len(samples)))
    energy = np.concatenate([[0.0], np.cumsum(samples.astype(np.float64) ** 2)])
    starts = np.arange(0, len(samples) - length + 1, RATE // 100)
    best = starts[np.argmax(energy[starts + length] - energy[starts])]
    return samples[best:best + length]


def is_silent(source) -> bool:
    """Whether a clip's peak is under SILENCE (read at its own rate: no resampling needed to know)."""
    return float(np.abs(mono(source)[0]).max(initial=0.0)) < SILENCE


def clip_length(durations: list[float]) -> int:
    """Samples per clip for a run: the 95th percentile of the clips' durations, within CLIP_SECONDS."""
    seconds = float(np.percentile(durations, 95)) if durations else CLIP_SECONDS[0]
    return int(round(min(max(seconds, CLIP_SECONDS[0]), CLIP_SECONDS[1]) * RATE))


def waveform_tensor(sources: list, length: int) -> torch.Tensor:
    """N x length int16 samples of many clips (half the memory of floats; scaled per batch)."""
    out = torch.empty((len(sources), length), dtype=torch.int16)
    for i, source in enumerate(sources):
        out[i] = torch.from_numpy(np.round(np.clip(loudest(waveform(source), length), -1, 1) * 32767).astype(np.int16))
    return out


@dataclass(frozen=True)
class Waveforms:
    """int16 samples -> floats in [-1, 1]; with ``augment="sound"`` while training, each clip of a batch gets a
    random gain (+-6 dB), time shift (+-10%), noise (20-40 dB under the clip) and the batch one speed (0.9-1.1x)."""

    augment: str = "off"

    def __call__(self, samples: torch.Tensor, device: torch.device, training: bool = False) -> torch.Tensor:
        x = samples.to(device).float().div_(32768)
        if not (training and self.augment == "sound"):
            return x
        n, length = x.shape
        speed = float(torch.empty(1).uniform_(0.9, 1.1))
        x = torch.nn.functional.interpolate(x[:, None], scale_factor=speed, mode="linear")[:, 0]
        x = torch.nn.functional.pad(x, (0, max(length - x.shape[1], 0)))[:, :length]
        shifts = (torch.empty(n, 1, device=device).uniform_(-0.1, 0.1) * length).long()
        x = x.gather(1, (torch.arange(length, device=device)[None] - shifts) % length)
        x = x * 10 ** (torch.empty(n, 1, device=device).uniform_(-6, 6) / 20)
        rms = x.pow(2).mean(dim=1, keepdim=True).sqrt()
        noise = torch.randn_like(x) * rms * 10 ** (-torch.empty(n, 1, device=device).uniform_(20, 40) / 20)
        return (x + noise).clamp_(-1, 1)


def mel_filters(bands: int = 40, n_fft: int = 400) -> np.ndarray:
    """(n_fft // 2 + 1) x bands triangular mel filters from 20 Hz to 8 kHz (HTK mel scale)."""
    mel = np.linspace(*(2595 * np.log10(1 + np.array([20.0, RATE / 2]) / 700)), bands + 2)
    edges = 700 * (10 ** (mel / 2595) - 1)
    freqs = np.linspace(0, RATE / 2, n_fft // 2 + 1)
    rising = (freqs[:, None] - edges[None, :-2]) / (edges[1:-1] - edges[:-2])
    falling = (edges[None, 2:] - freqs[:, None]) / (edges[2:] - edges[1:-1])
    return np.maximum(0, np.minimum(rising, falling))


def logmel_statistics(waves: np.ndarray, bands: int = 40) -> np.ndarray:
    """N x (4 * bands) features of N clips (floats in [-1, 1]): each log-mel band's mean and spread over time,
    and the mean size and spread of its frame-to-frame change (25 ms frames, 10 ms hop)."""
    n_fft, hop = 400, 160
    frames = np.lib.stride_tricks.sliding_window_view(waves, n_fft, axis=1)[:, ::hop] * np.hanning(n_fft)
    mels = np.log(np.abs(np.fft.rfft(frames, axis=-1)) ** 2 @ mel_filters(bands, n_fft) + 1e-8)
    deltas = np.diff(mels, axis=1)
    return np.concatenate([mels.mean(1), mels.std(1), np.abs(deltas).mean(1), deltas.std(1)], axis=1)
