"""Image saliency (occlusion): on a tiny CNN whose class is decided by a visible white square, the map's heat sits on
the square, and greying the top 10% of patches drops the probability more than greying a random 10% (the deletion
test of bench/explain_images.py)."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

SIDE, SQUARE = 32, 8


def pictures(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
    """Grey noise; class 1 has a white square on the grid of patches, class 0 a black one (N x 3 x SIDE x SIDE in
    [0, 1])."""
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.uniform(0.3, 0.7, (n, 1, SIDE, SIDE)), dtype=torch.float32).repeat(1, 3, 1, 1)
    y = torch.tensor(rng.integers(0, 2, n))
    corners = [tuple(4 * rng.integers(0, (SIDE - SQUARE) // 4 + 1, 2)) for _ in range(n)]
    for i, (r, c) in enumerate(corners):
        x[i, :, r:r + SQUARE, c:c + SQUARE] = float(y[i])
    return x, y, corners


@pytest.fixture(scope="module")
def square_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1),
                                torch.nn.ReLU(), torch.nn.AdaptiveMaxPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 2))
    x, y, _ = pictures(128, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval()
    test_x, test_y, _ = pictures(64, seed=1)
    with torch.no_grad():
        assert (model(test_x).argmax(-1) == test_y).float().mean() >= 0.95
    return model


def test_the_heat_sits_on_the_deciding_square_and_beats_random_deletion(square_model):
    from bench.explain_images import deletion
    from core.deploy import saliency
    from core.deploy.saliency import PATCHES, occlusion

    def probabilities(x: torch.Tensor) -> torch.Tensor:
        return square_model(x).softmax(-1)

    def log_odds(x: torch.Tensor) -> torch.Tensor:  # what the maps are made of (core.deploy.saliency)
        return saliency.log_odds(square_model(x))

    x, _, corners = pictures(10, seed=2)
    rng, top, random = np.random.default_rng(0), [], []
    with torch.no_grad():
        targets = square_model(x).argmax(-1).tolist()
    for picture, target, (r, c) in zip(x, targets, corners):
        heat = occlusion(log_odds, picture[None], target, SIDE // PATCHES)
        assert heat.shape == (SIDE, SIDE) and heat.max() == pytest.approx(1.0)
        hottest = np.unravel_index(heat.argmax(), heat.shape)
        assert r - 2 <= hottest[0] < r + SQUARE + 2 and c - 2 <= hottest[1] < c + SQUARE + 2
        drops = deletion(probabilities, picture, heat, target, rng)
        top.append(drops[0])
        random.append(drops[1])
    print(f"deletion test: top 10% drop {np.mean(top):.3f}, random 10% drop {np.mean(random):.3f}")
    assert np.mean(top) > np.mean(random) + 0.3, (np.mean(top), np.mean(random))


def test_a_saliency_map_is_a_grey_png_and_a_red_overlay(tmp_path):
    from core.deploy.saliency import SHOWN_SIDE, Saliency

    heat = np.zeros((16, 16))
    heat[:8, :8] = 1.0
    found = Saliency("cat", heat)
    png = Image.open(io.BytesIO(base64.b64decode(found.to_dict()["saliency_png"])))
    assert png.mode == "L" and png.size == (16, 16) and np.asarray(png)[0, 0] == 255 and np.asarray(png)[-1, -1] == 0
    path = tmp_path / "grey.png"
    Image.new("RGB", (40, 40), (100, 100, 100)).save(path)
    shown = found.overlay(str(path))
    assert shown.shape == (SHOWN_SIDE, SHOWN_SIDE, 3)
    assert shown[10, 10, 0] > 150 > shown[10, 10, 1] and tuple(shown[-10, -10]) == (100, 100, 100)
