"""Are the image saliency maps faithful? A deletion test: for validation images of a briefly trained run, grey the
top 10% of the 8 x 8 grid of patches by saliency (core.deploy.saliency) and, separately, a random 10%; a faithful
map lowers the predicted class's probability more.

    python -m bench.explain_images [--samples digits faces] [--images 40] [--steps 60]
"""
from __future__ import annotations

import argparse
import tempfile
from typing import Callable

import numpy as np
import torch

from core.data.samples import sample_path
from core.deploy.predict import Predictor
from core.deploy.saliency import GREY, PATCHES, class_scores, model_pixels, saliency
from core.runs.run_folder import RunFolder
from core.runs.store import RunStore
from core.train import service

SHARE = 0.1  # of the patches greyed


def patch_heat(heat: np.ndarray, patches: int = PATCHES) -> np.ndarray:
    """The mean heat of each patch of a patches x patches grid, row by row."""
    side = heat.shape[0] // patches
    return heat[:side * patches, :side * patches].reshape(patches, side, patches, side).mean((1, 3)).ravel()


def greyed(picture: torch.Tensor, cells, patches: int = PATCHES) -> torch.Tensor:
    """A copy of one picture (3 x side x side) with the grid's ``cells`` greyed."""
    out, side = picture.clone(), picture.shape[-1] // patches
    for cell in cells:
        row, column = divmod(int(cell), patches)
        out[:, row * side:(row + 1) * side, column * side:(column + 1) * side] = GREY
    return out


def deletion(probabilities: Callable[[torch.Tensor], torch.Tensor], picture: torch.Tensor, heat: np.ndarray,
             target: int, rng: np.random.Generator) -> tuple[float, float]:
    """The drop in ``target``'s probability when the top SHARE of patches by ``heat`` are greyed, and when a random
    SHARE are."""
    count = max(1, round(SHARE * PATCHES * PATCHES))
    top = np.argsort(-patch_heat(heat))[:count]
    chosen = rng.choice(PATCHES * PATCHES, count, replace=False)
    with torch.inference_mode():
        p = probabilities(torch.stack([picture, greyed(picture, top), greyed(picture, chosen)]))[:, target]
    return float(p[0] - p[1]), float(p[0] - p[2])


def measure(sample: str, images: int, steps: int, seed: int = 0) -> dict:
    with tempfile.TemporaryDirectory() as runs:
        plan = service.plan_run(sample_path(sample), {"seed": seed, "max_steps": steps})
        job, outcome = service.train(plan, RunStore(runs))
        predictor = Predictor(job.run_dir)
        files = RunFolder(job.run_dir).predictions()["image"].head(images).tolist()
        maps, pictures = saliency(predictor, files), model_pixels(predictor, files)
        probabilities, rng = class_scores(predictor, lambda logits: logits.softmax(-1)), np.random.default_rng(seed)

        drops = np.array([deletion(probabilities, picture, found.heat, predictor.label_names.index(found.label), rng)
                          for picture, found in zip(pictures, maps)])
        return {"sample": sample, "accuracy": outcome.metrics["accuracy"], "images": len(maps),
                "top_drop": float(drops[:, 0].mean()), "random_drop": float(drops[:, 1].mean()),
                "wins": float((drops[:, 0] > drops[:, 1]).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", nargs="+", default=["digits", "faces"])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    for sample in args.samples:
        r = measure(sample, args.images, args.steps)
        print(f"{sample} (accuracy {r['accuracy']:.3f}, {r['images']} validation images): greying the top 10% of "
              f"patches drops the probability by {r['top_drop']:.3f} vs {r['random_drop']:.3f} for a random 10%; "
              f"top beats random on {r['wins']:.0%} of the images")


if __name__ == "__main__":
    main()
