"""Sound classification: reading clips of any format, the speech encoder against its shipped graphs, bad clips, and
a real fine-tune on the synthesised spoken commands that beats its baselines, exports and serves."""
from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from core.common.errors import ConfigError, DataError
from core.data import sound
from core.data.tables import read_table
from core.tasks import detect_task, get_task

RATE = 16_000


def tone(seconds: float, hz: float, rate: int = RATE, channels: int = 1, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = (level * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


def clip_bytes(samples: np.ndarray, rate: int = RATE, kind: str = "WAV", subtype: str = "PCM_16") -> bytes:
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format=kind, subtype=subtype)
    return out.getvalue()


def zip_of(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def test_speech_encoder_matches_the_shipped_onnx_graphs(sample_cache):
    """The converted model's embeddings equal openWakeWord's ONNX pipeline (mel graph, x/10+2, 76-frame windows
    every 8 frames, embedding graph) run by onnxruntime."""
    import onnxruntime
    import torch
    from transformers import AutoModelForAudioClassification

    from core.models.registry import REGISTRY, resolve_model_path

    graphs = REGISTRY["speech-embedding"].package_dir()
    model = AutoModelForAudioClassification.from_pretrained(resolve_model_path("speech-embedding")).eval()
    rng = np.random.default_rng(0)
    t = np.arange(2 * RATE) / RATE
    wave = (0.3 * np.sin(2 * np.pi * (200 * t + 900 * t ** 2)) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
    mel = onnxruntime.InferenceSession(str(graphs / "melspectrogram.onnx")).run(None, {"input": wave[None] * 32768})[0]
    frames = mel.squeeze() / 10 + 2
    windows = np.stack([frames[i:i + 76] for i in range(0, len(frames) - 75, 8)])[..., None].astype(np.float32)
    expected = onnxruntime.InferenceSession(str(graphs / "embedding_model.onnx")).run(None, {"input_1": windows})[0]
    with torch.no_grad():
        found = model.embeddings(torch.from_numpy(wave)[None])[0].numpy()
    assert found.shape == (16, 96) and expected.squeeze().shape == (16, 96)
    assert np.abs(found - expected.squeeze()).max() < 1e-3 * np.abs(expected).max()


def test_clips_of_any_format_rate_and_channels_become_16k_mono(tmp_path, sample_cache):
    files = {
        "yes/a.wav": clip_bytes(tone(1.0, 440, 44_100, channels=2), 44_100),
        "yes/b.flac": clip_bytes(tone(1.5, 440, 8_000), 8_000, "FLAC"),
        "no/c.ogg": clip_bytes(tone(0.5, 880, 22_050), 22_050, "OGG", "VORBIS"),
        "no/d.mp3": clip_bytes(tone(1.2, 880), RATE, "MP3", "MPEG_LAYER_III"),
    }
    frame = read_table(zip_of(tmp_path / "clips.zip", files))
    assert list(frame.columns) == ["audio", "label"] and detect_task(frame) == "audio_classification"
    lengths = {Path(p).name: len(sound.waveform(p)) for p in frame["audio"]}
    assert lengths["a.wav"] == RATE and lengths["b.flac"] == int(1.5 * RATE)
    assert abs(lengths["c.ogg"] - RATE // 2) < 50 and abs(lengths["d.mp3"] - 1.2 * RATE) < 2000  # MP3 frame padding
    data = get_task("audio_classification").prepare(frame)
    assert len(data) == 4 and data.label_names == ["no", "yes"] and not data.warnings
    clip = get_task("audio_classification").fit(data)["clip_samples"]
    assert clip == pytest.approx(np.percentile([1.0, 1.5, 0.5, 1.2], 95) * RATE, abs=1)  # the 95th percentile


def test_the_clip_length_and_the_loudest_stretch(tmp_path):
    assert sound.clip_length([0.3, 0.4]) == RATE  # at least 1 s
    assert sound.clip_length([30.0] * 20) == 10 * RATE  # at most 10 s
    quiet, loud = tone(2.0, 300, level=0.01), tone(0.5, 300, level=0.8)
    recording = np.concatenate([quiet, loud, quiet])
    kept = sound.loudest(recording, RATE // 2)
    assert np.abs(kept).max() > 0.7 and np.abs(kept).mean() > 0.4  # the loud half-second, not the quiet start
    short = sound.loudest(loud, RATE)
    assert len(short) == RATE and np.all(short[len(loud):] == 0)  # padded at the end, as feature extractors pad


def test_a_long_recording_is_read_only_up_to_the_limit(tmp_path, monkeypatch):
    path = tmp_path / "long.wav"
    soundfile.write(path, tone(5.0, 440), RATE)
    monkeypatch.setattr(sound, "MAX_READ_SECONDS", 2)
    assert len(sound.waveform(path)) == 2 * RATE
    assert sound.duration(path) == pytest.approx(5.0)


def test_bad_clips_are_left_out_with_a_reason(tmp_path, sample_cache):
    good = {f"{label}/{i}.wav": clip_bytes(tone(1.0, hz + 20 * i)) for label, hz in (("low", 300), ("high", 900))
            for i in range(3)}
    whole = clip_bytes(tone(1.0, 500))
    bad = {"low/empty.wav": b"", "low/text.wav": b"this is not a sound file at all",
           "high/cut.wav": whole[:40], "high/silent.wav": clip_bytes(np.zeros(RATE, dtype=np.float32))}
    frame = read_table(zip_of(tmp_path / "mixed.zip", good | bad))
    data = get_task("audio_classification").prepare(frame)
    assert len(data) == 6 and data.rows_dropped == 4
    assert "4 of the sound clips could not be used" in data.warnings[0]
    reasons = {name: get_task("audio_classification").check_file(p) for p in frame["audio"]
               if (name := Path(p).name) in {"empty.wav", "text.wav", "silent.wav"}}
    assert "empty file" in reasons["empty.wav"] and "cannot be read as sound" in reasons["text.wav"]
    assert "silent" in reasons["silent.wav"]
    assert "does not exist" in get_task("audio_classification").check_file(str(tmp_path / "gone.wav"))


@pytest.mark.parametrize("files, expected", [
    ({"readme.txt": b"no sound here"}, "holds no PNG"),
    ({"yes/1.wav": clip_bytes(tone(1, 400)), "yes/2.wav": clip_bytes(tone(1, 410))}, "same label"),
    ({"1.wav": clip_bytes(tone(1, 400)), "2.wav": clip_bytes(tone(1, 500))}, "None of the sound clips has a label"),
])
def test_unusable_zips_of_clips_get_a_plain_message(tmp_path, sample_cache, files, expected):
    with pytest.raises(DataError, match=expected):
        get_task("audio_classification").prepare(read_table(zip_of(tmp_path / "bad.zip", files)))


def test_sound_augmentation_changes_training_batches_only():
    import torch

    clips = torch.from_numpy(np.round(np.stack([tone(1.0, 300), tone(1.0, 600)]) * 32767).astype(np.int16))
    plain, augmented = sound.Waveforms("off"), sound.Waveforms("sound")
    assert torch.equal(plain(clips, torch.device("cpu"), training=True), augmented(clips, torch.device("cpu")))
    changed = augmented(clips, torch.device("cpu"), training=True)
    assert changed.shape == clips.shape and changed.abs().max() <= 1
    assert not torch.allclose(changed, plain(clips, torch.device("cpu")), atol=1e-3)


def test_text_models_are_refused_for_sounds_and_the_speech_model_for_texts():
    from core.runs.config import TrainConfig
    from core.tasks import check_config

    with pytest.raises(ConfigError, match="reads texts"):
        check_config(TrainConfig(task="audio_classification"))
    with pytest.raises(ConfigError, match="reads sound clips"):
        check_config(TrainConfig(task="classification", base_model="speech-embedding"))
    with pytest.raises(ConfigError, match="does not fit"):
        check_config(TrainConfig(task="audio_classification", base_model="speech-embedding", augment="crops"))


@pytest.fixture(scope="module")
def commands_run(tmp_path_factory, sample_cache):
    """The spoken-commands sample (espeak-ng) fine-tuned with the app's defaults, 160 steps, sound augmentation."""
    from core.data.samples import sample_path
    from core.runs.store import RunStore
    from core.train import service

    plan = service.plan_run(sample_path("spoken_commands"), {"max_steps": 160, "augment": "sound"})
    job = service.make_job(plan, RunStore(tmp_path_factory.mktemp("audio-runs")))
    job.run()
    return job.run_dir


@pytest.mark.slow
def test_fine_tune_beats_the_log_mel_baseline_on_held_out_commands(commands_run):
    metrics = json.loads((commands_run / "metrics.json").read_text())
    config = json.loads((commands_run / "train_config.json").read_text())
    assert config["base_model"] == "speech-embedding" and metrics["precision"] == "fp32"
    assert metrics["classical"]["name"] == "logistic regression on log-mel statistics"
    assert metrics["macro_f1"] > metrics["baseline"]["macro_f1"] + 0.5
    assert metrics["macro_f1"] > metrics["classical"]["macro_f1"] + 0.1
    assert json.loads((commands_run / "preprocessor_config.json").read_text())["clip_samples"] >= RATE


@pytest.mark.slow
def test_the_lowest_convolutions_stay_as_pretrained_and_the_rest_learns(commands_run):
    from safetensors.torch import load_file

    from core.models.registry import resolve_model_path
    from core.models.speech_embedding import FROZEN_BLOCKS

    base = load_file(resolve_model_path("speech-embedding") / "model.safetensors")
    tuned = load_file(commands_run / "model.safetensors")
    frozen = f"encoder.{FROZEN_BLOCKS - 1}.conv.weight"
    assert FROZEN_BLOCKS > 0 and (base[frozen] == tuned[frozen]).all()
    assert not (base[f"encoder.{FROZEN_BLOCKS}.conv.weight"] == tuned[f"encoder.{FROZEN_BLOCKS}.conv.weight"]).all()


@pytest.mark.slow
def test_onnx_export_with_the_documented_preprocessing_agrees_with_the_app(commands_run, tmp_path):
    """Plain onnxruntime + soundfile + soxr + the export's feature extractor, as the model card says."""
    import onnxruntime
    import soxr
    from transformers import AutoFeatureExtractor

    from core.deploy.export import export_run
    from core.deploy.predict import Predictor

    frame = pd.read_csv(commands_run / "validation_predictions.csv")
    clips = frame["audio"].tolist()
    app = Predictor(commands_run).predict({"audio": clips})
    assert [p.label for p in app] == frame["predicted"].astype(str).tolist()
    out = export_run(commands_run, tmp_path / "onnx", "onnx")
    card = (out / "README.md").read_text()
    assert "AutoFeatureExtractor" in card and "max_length=processor.clip_samples" in card
    hf_card = (export_run(commands_run, tmp_path / "hf", "hf") / "README.md").read_text()
    assert "import core.models.speech_embedding" in hf_card
    processor = AutoFeatureExtractor.from_pretrained(out)
    waveforms = []
    for path in clips:
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
        waveforms.append(soxr.resample(samples.mean(axis=1), rate, 16000))
    features = processor(waveforms, sampling_rate=16000, padding="max_length", max_length=processor.clip_samples,
                         truncation=True, return_tensors="np")
    logits = onnxruntime.InferenceSession(str(out / "model.onnx")).run(["logits"], dict(features))[0]
    names = json.loads((out / "config.json").read_text())["id2label"]
    plain = [names[str(i)] for i in logits.argmax(-1)]
    assert np.mean([a.label == b for a, b in zip(app, plain)]) >= 0.95


@pytest.mark.slow
def test_served_model_takes_base64_clips_and_a_zip_is_predicted_to_a_csv(commands_run, tmp_path):
    from fastapi.testclient import TestClient

    from core.deploy.predict import Predictor
    from core.deploy.serve import create_app

    clips = pd.read_csv(commands_run / "validation_predictions.csv")["audio"].tolist()[:3]
    client = TestClient(create_app(commands_run))
    answer = client.post("/v1/predict", json={"inputs": [base64.b64encode(Path(p).read_bytes()).decode()
                                                         for p in clips]})
    assert answer.status_code == 200, answer.text
    expected = [p.label for p in Predictor(commands_run).predict({"audio": clips})]
    assert [p["label"] for p in answer.json()["predictions"]] == expected
    refused = client.post("/v1/predict", json={"inputs": [clips[0]]})  # a server path
    assert refused.status_code == 422 and "not a base64-encoded sound file" in refused.json()["error"]
    batch = zip_of(tmp_path / "new.zip", {f"{i}{Path(p).suffix}": Path(p).read_bytes() for i, p in enumerate(clips)})
    Predictor(commands_run).predict_file(batch, tmp_path / "out.csv")
    written = pd.read_csv(tmp_path / "out.csv")
    assert written["predicted_label"].tolist() == expected and "prob_yes" in written.columns
