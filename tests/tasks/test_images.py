"""Image classification: the converted ImageNet backbone, reading zips and folders, bad images, training against
the pixel baseline, linear probe, resume state, prediction and the ONNX export read by plain onnxruntime."""
from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.common.errors import ConfigError, DataError
from core.data.tables import read_table
from core.tasks import detect_task, get_task

TASK = get_task("image_classification")


def png_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def squares(n: int, bright: bool, seed: int) -> list[np.ndarray]:
    """Greyscale 12x12 images: a bright square on dark, or a dark one on bright (an easy two-class task)."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n):
        image = rng.integers(0, 60, (12, 12)).astype(np.uint8)
        if not bright:
            image = 255 - image
        x, y = rng.integers(0, 6, 2)
        image[y:y + 6, x:x + 6] = 255 - image[y:y + 6, x:x + 6]
        images.append(image)
    return images


def zip_of(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


@pytest.fixture
def class_zip(tmp_path, sample_cache) -> Path:
    files = {f"shapes/{label}/{i}.png": png_bytes(image) for label, bright in (("light", True), ("dark", False))
             for i, image in enumerate(squares(12, bright, seed=int(bright)))}
    return zip_of(tmp_path / "shapes.zip", files)


def test_converted_backbone_knows_imagenet(sample_cache):
    """The shipped state dict, converted, ranks a cat class first for skimage's cat and a cup for its coffee."""
    import torch
    from skimage import data as skdata
    from transformers import AutoModelForImageClassification

    from core.data.pixels import pixel_tensor
    from core.models.registry import REGISTRY
    from core.tasks.image_classification import normaliser

    path = REGISTRY["efficientnet-lite0"].path()
    processor = TASK.load_processor(path)
    model = AutoModelForImageClassification.from_pretrained(path).eval()
    pictures = [png_bytes(skdata.chelsea()), png_bytes(skdata.coffee())]
    with torch.no_grad():
        logits = model(pixel_values=normaliser(processor)(pixel_tensor(pictures, 224), torch.device("cpu"))).logits
    top = logits.argmax(-1).tolist()
    assert top[0] in range(281, 286), top  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert top[1] in (504, 967, 968), top  # coffee mug, espresso, cup


def test_zip_of_class_folders_is_read_as_images_and_labels(class_zip):
    frame = read_table(class_zip)
    assert list(frame.columns) == ["image", "label"] and len(frame) == 24
    assert detect_task(frame) == "image_classification"
    data = TASK.prepare(frame)
    assert data.label_names == ["dark", "light"] and data.class_counts() == {"dark": 12, "light": 12}
    assert read_table(class_zip).equals(frame)  # unpacked once, read again from the cache


def test_folder_and_zipped_table_with_an_image_column(tmp_path, sample_cache):
    folder = tmp_path / "photos"
    (folder / "pics").mkdir(parents=True)
    rows = []
    for i, image in enumerate(squares(6, True, 0) + squares(6, False, 1)):
        Image.fromarray(image).save(folder / "pics" / f"{i}.bmp")
        rows.append({"file": f"pics/{i}.bmp", "kind": "light" if i < 6 else "dark"})
    pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)
    from_folder = TASK.prepare(read_table(folder))
    assert len(from_folder) == 12 and from_folder.columns == {"image": "image", "label": "kind"}
    files = {"labels.csv": (folder / "labels.csv").read_bytes(),
             **{f"pics/{i}.bmp": (folder / "pics" / f"{i}.bmp").read_bytes() for i in range(12)}}
    from_zip = TASK.prepare(read_table(zip_of(tmp_path / "table.zip", files)))
    assert from_zip.class_counts() == from_folder.class_counts()


def bomb_png(side: int) -> bytes:
    """A PNG header claiming side x side pixels (no real pixel data needed to be refused)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_bad_images_are_left_out_with_a_reason(tmp_path, sample_cache):
    good = {f"set/{label}/{i}.png": png_bytes(image) for label, bright in (("a", True), ("b", False))
            for i, image in enumerate(squares(4, bright, 2))}
    rgba = np.zeros((10, 10, 4), dtype=np.uint8)
    bad = {"set/a/empty.png": b"", "set/a/text.jpg": b"not an image at all", "set/b/bomb.png": bomb_png(60_000),
           "set/b/cut.png": png_bytes(squares(1, False, 3)[0])[:40], "set/b/alpha.png": png_bytes(rgba),
           "../escape.png": png_bytes(rgba), "set/__MACOSX/._x.png": b"junk"}
    data = TASK.prepare(read_table(zip_of(tmp_path / "bad.zip", {**good, **bad})))
    assert len(data) == 9  # 8 good + the transparent one; the escape and macOS junk are never unpacked
    assert data.rows_dropped == 4 and "4 of the images could not be used" in data.warnings[0]
    messages = []
    for name in ("empty.png", "text.jpg", "bomb.png"):
        with pytest.raises(DataError) as caught:
            from core.data.pixels import open_header
            open_header(next(p for p in read_table(tmp_path / "bad.zip")["image"] if p.endswith(name)))
        messages.append(caught.value.message)
    assert "empty file" in messages[0] and "cannot be read" in messages[1] and "50 million" in messages[2]


@pytest.mark.parametrize("files, expected", [
    ({"readme.txt": b"no images here"}, "holds no PNG, JPEG"),
    ({"1.png": png_bytes(squares(1, True, 0)[0]), "2.png": png_bytes(squares(1, True, 1)[0])},
     "None of the images has a label"),
    ({"one/cat/1.png": png_bytes(squares(1, True, 0)[0]), "one/cat/2.png": png_bytes(squares(1, True, 1)[0])},
     "at least two classes"),
])
def test_unusable_zips_get_a_plain_message(tmp_path, sample_cache, files, expected):
    with pytest.raises(DataError, match=expected):
        TASK.prepare(read_table(zip_of(tmp_path / "x.zip", files)))


def test_zip_bomb_is_refused_before_unpacking(tmp_path, sample_cache):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("c/a/1.png", b"\0" * 50_000_000)
    with pytest.raises(DataError, match="zip bomb"):
        read_table(path)


def test_text_models_and_lora_are_refused_for_images():
    from core.runs.config import TrainConfig
    from core.tasks import check_config

    with pytest.raises(ConfigError, match="reads texts"):
        check_config(TrainConfig(task="image_classification"))
    with pytest.raises(ConfigError, match="LoRA is not offered"):
        check_config(TrainConfig(task="image_classification", base_model="efficientnet-lite0", lora=True))
    with pytest.raises(ConfigError, match="reads images"):
        check_config(TrainConfig(task="classification", base_model="efficientnet-lite0"))


@pytest.fixture(scope="module")
def faces_run(tmp_path_factory, sample_cache):
    """The LFW faces sample fine-tuned briefly (60 steps at 64 x 64, with random crops)."""
    from core.data.samples import sample_path
    from core.runs.store import RunStore
    from core.train import service

    plan = service.plan_run(sample_path("faces"), {"max_steps": 60, "augment": "crops"})
    job = service.make_job(plan, RunStore(tmp_path_factory.mktemp("image-runs")))
    job.run()
    return job.run_dir


def test_fine_tune_beats_the_baselines_on_held_out_faces(faces_run):
    metrics = json.loads((faces_run / "metrics.json").read_text())
    config = json.loads((faces_run / "config.json").read_text())
    assert config["sft_studio"]["image_size"] == 64 and metrics["precision"] == "fp32"
    assert metrics["classical"]["name"] == "logistic regression on pixels"
    assert metrics["accuracy"] > metrics["baseline"]["accuracy"] + 0.3
    assert metrics["accuracy"] >= metrics["classical"]["accuracy"] - 0.05
    assert (faces_run / "preprocessor_config.json").is_file()


def test_prediction_and_onnx_export_agree_with_plain_onnxruntime(faces_run, tmp_path):
    import onnxruntime
    from transformers import AutoImageProcessor

    from core.deploy.export import export_run
    from core.deploy.predict import Predictor

    frame = pd.read_csv(faces_run / "validation_predictions.csv")
    images = frame["image"].tolist()
    app = Predictor(faces_run).predict({"image": images})
    assert [p.label for p in app] == frame["predicted"].astype(str).tolist()
    out = export_run(faces_run, tmp_path / "onnx", "onnx")
    card = (out / "README.md").read_text()
    assert "AutoImageProcessor" in card and "processor(images," in card and "efficientnet_lite" not in card
    hf_card = (export_run(faces_run, tmp_path / "hf", "hf") / "README.md").read_text()
    assert "import core.models.efficientnet_lite" in hf_card and "AutoImageProcessor.from_pretrained" in hf_card
    session = onnxruntime.InferenceSession(str(out / "model.onnx"))
    processor = AutoImageProcessor.from_pretrained(out)  # the export's own preprocessing, no SFT Studio code
    pixels = processor([Image.open(p).convert("RGB") for p in images], return_tensors="np")["pixel_values"]
    logits = session.run(["logits"], {"pixel_values": pixels.astype(np.float32)})[0]
    names = json.loads((out / "config.json").read_text())["id2label"]
    plain = [names[str(i)] for i in logits.argmax(-1)]
    assert np.mean([a.label == b for a, b in zip(app, plain)]) >= 0.95
    assert Predictor(out).predict({"image": images[:4]})[0].label == app[0].label


def test_linear_probe_trains_only_the_head_and_resume_keeps_batch_norms(sample_cache, tmp_path):
    import torch

    from core.data.samples import sample_path
    from core.runs.store import RunStore
    from core.train import service
    from core.train.model_setup import trainable_state

    plan = service.plan_run(sample_path("faces"), {"max_steps": 20, "linear_probe": True})
    job = service.make_job(plan, RunStore(tmp_path))
    job.run()
    trainable = [n for n, p in job.model.named_parameters() if p.requires_grad]
    assert trainable == ["efficientnet._fc.weight", "efficientnet._fc.bias"]
    metrics = json.loads((job.run_dir / "metrics.json").read_text())
    assert metrics["accuracy"] > metrics["baseline"]["accuracy"]
    state = trainable_state(job.model)  # what a resume checkpoint keeps: batch-norm statistics too
    assert any(name.endswith("running_mean") for name in state)
    from safetensors.torch import load_file

    from core.models.registry import REGISTRY
    pretrained = load_file(REGISTRY["efficientnet-lite0"].path() / "model.safetensors")
    assert torch.equal(state["efficientnet._bn0.running_mean"], pretrained["efficientnet._bn0.running_mean"])


def test_served_model_takes_base64_images_and_refuses_paths(faces_run):
    import base64

    from fastapi.testclient import TestClient

    from core.deploy.predict import Predictor
    from core.deploy.serve import create_app

    client = TestClient(create_app(faces_run))
    images = pd.read_csv(faces_run / "validation_predictions.csv")["image"].tolist()[:3]
    encoded = [base64.b64encode(Path(p).read_bytes()).decode() for p in images]
    answer = client.post("/v1/predict", json={"inputs": encoded})
    assert answer.status_code == 200, answer.text
    expected = [p.label for p in Predictor(faces_run).predict({"image": images})]
    assert [p["label"] for p in answer.json()["predictions"]] == expected
    refused = client.post("/v1/predict", json={"inputs": [images[0]]})  # a server path
    assert refused.status_code == 422 and refused.json()["error"] == ("Input 0 is not a base64-encoded image (PNG, "
                                                                      "JPEG, WebP or BMP).")
    assert "monitor is off" in client.get("/healthz").json()["monitor"]
    assert client.get("/healthz").json()["monitor"].endswith("this model reads images.")


def test_image_predictions_are_explained_by_a_saliency_map_on_the_server(faces_run):
    import base64

    from fastapi.testclient import TestClient

    from core.deploy.predict import Predictor
    from core.deploy.serve import create_app

    image = pd.read_csv(faces_run / "validation_predictions.csv")["image"].tolist()[0]
    client = TestClient(create_app(faces_run, monitor_options=None))
    answer = client.post("/v1/explain", json={"inputs": [base64.b64encode(Path(image).read_bytes()).decode()]})
    assert answer.status_code == 200, answer.text
    found = answer.json()["explanations"][0]
    assert found["label"] == Predictor(faces_run).predict({"image": [image]})[0].label
    heat = Image.open(io.BytesIO(base64.b64decode(found["saliency_png"])))
    assert heat.mode == "L" and heat.size == (64, 64) and np.asarray(heat).max() == 255
    assert client.post("/v1/explain", json={"inputs": [image]}).status_code == 422  # a server path, not an image


def test_a_zip_of_loose_images_is_predicted_to_a_csv(faces_run, tmp_path):
    from core.deploy.predict import Predictor

    images = pd.read_csv(faces_run / "validation_predictions.csv")["image"].tolist()[:3]
    batch = zip_of(tmp_path / "new.zip", {f"{i}.png": Path(p).read_bytes() for i, p in enumerate(images)})
    out = Predictor(faces_run).predict_file(batch, tmp_path / "out.csv")
    written = pd.read_csv(tmp_path / "out.csv")
    assert len(out) == len(written) == 3 and set(written["predicted_label"]) <= {"face", "not_face"}
    assert {"prob_face", "prob_not_face", "confidence"} <= set(written.columns)


def test_a_stopped_image_run_resumes_from_its_checkpoint(sample_cache, tmp_path):
    from core.data.samples import sample_path
    from core.runs import events as ev
    from core.runs.store import RunStore
    from core.train import service
    from core.train.engine import TrainingJob

    store = RunStore(tmp_path)
    job = service.make_job(service.plan_run(sample_path("faces"), {"max_steps": 24, "eval_every_steps": 8}), store)
    job.events.subscribe(lambda e: job.cancel() if isinstance(e, ev.Step) and e.step == 12 else None)
    job.run()
    assert job.folder.has_resume_checkpoint()
    resumed = TrainingJob.resume(job.run_dir, store)
    resumed.run()
    steps = [e.step for e in resumed.events.since(0) if isinstance(e, ev.Step)]
    assert steps[0] == 9 and steps[-1] == 24  # continued after the step-8 checkpoint, to the end
    metrics = json.loads((job.run_dir / "metrics.json").read_text())
    assert metrics["accuracy"] > metrics["baseline"]["accuracy"]
