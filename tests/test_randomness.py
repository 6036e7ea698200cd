"""The pure checks of scenarios/randomness.py: what makes an augmented image a flip, a crop, a contrast change.

Offline: numpy only, images built by hand, so each expectation follows from the definition of the operation.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.worker.scenario import Context, discover
from scenarios.randomness import IMAGE_SHAPE, contrast_factor, crop_offset, flip_kind, image_batch, seeded


def _image() -> np.ndarray:
    return np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)


def test_the_image_batch_has_distinct_pixels_inside_the_unclipped_range():
    images = image_batch()
    assert images.shape == IMAGE_SHAPE
    assert np.unique(images).size == images.size  # every flip and every crop offset is recognisable
    # a ±30 % contrast change around each image's channel means stays inside [0, 255]: no layer clips it
    for image in images:
        mean = image.mean(axis=(0, 1))
        assert (mean - 1.3 * (mean - image.min(axis=(0, 1))) >= 0).all()
        assert (mean + 1.3 * (image.max(axis=(0, 1)) - mean) <= 255).all()


@pytest.mark.parametrize(
    ("transform", "expected"),
    [
        (lambda x: x, "none"),
        (lambda x: x[:, ::-1], "horizontal"),
        (lambda x: x[::-1, :], "vertical"),
        (lambda x: x[::-1, ::-1], "both"),
        (lambda x: np.rot90(x, 2).copy() + 1, "other"),
        (lambda x: x.transpose(1, 0, 2)[:4, :5], "other"),
    ],
)
def test_flip_kind_names_the_flip(transform, expected):
    image = _image()
    assert flip_kind(image, transform(image)) == expected


def test_flip_kind_tells_a_half_turn_from_nothing():
    image = _image()
    assert flip_kind(image, np.rot90(image, 2)) == "both"  # a half turn is both flips at once


def test_crop_offset_finds_the_window_and_refuses_a_changed_one():
    image = _image()
    assert crop_offset(image, image[1:3, 2:5]) == (1, 2)
    assert crop_offset(image, image) == (0, 0)
    changed = image[1:3, 2:5].copy()
    changed[0, 0, 0] += 0.5
    assert crop_offset(image, changed) is None
    assert crop_offset(image, image[1:3, 2:5][:, ::-1]) is None  # a flipped window is no window


def test_contrast_factor_recovers_the_per_channel_affine_factor():
    image = _image() + 10.0
    mean = image.mean(axis=(0, 1), keepdims=True)
    assert contrast_factor(image, (image - mean) * 1.25 + mean) == pytest.approx(1.25)
    assert contrast_factor(image, image) == pytest.approx(1.0)
    # around the mean of all channels together (not each channel's own): no single per-channel factor fits
    assert contrast_factor(image, (image - image.mean()) * 1.25 + image.mean()) is None
    assert contrast_factor(image, image * 1.25) is None  # scaling around zero is not a contrast change


def test_seeded_appends_to_the_cells_seeding_after_the_reset():
    ctx = Context("randomness.x")
    ctx.seeding = ["random.seed(1337)"]
    seeded(ctx, "torch.Generator().manual_seed(3)")
    assert ctx.seeding == ["random.seed(1337)", "torch.Generator().manual_seed(3)"]


def test_every_randomness_scenario_names_the_change_it_catches_and_its_framework():
    found = {s.id: s for s in discover().values() if s.area == "randomness"}
    assert {
        "randomness.keras_augmentation",
        "randomness.keras_random_ops",
        "randomness.tf_random_stateful",
        "randomness.tf_random_stateless",
        "randomness.tf_random_generator",
        "randomness.torch_sampling_ops",
        "randomness.torch_nn_init",
        "randomness.torch_dataloader_generator",
        "randomness.torch_dataloader_workers",
    } <= set(found)
    for entry in found.values():
        assert "Catches" in entry.doc, entry.id
        framework = entry.id.split(".", 1)[1].split("_", 1)[0]
        wanted = {"keras": "keras", "tf": "tensorflow", "torch": "torch"}[framework]
        assert any(r.startswith(wanted) for r in entry.requires), entry.id  # skips with the reason elsewhere
    assert found["randomness.keras_random_ops"].requires == ("keras>=3",)
    assert found["randomness.torch_dataloader_workers"].timeout is not None  # bounded in time
