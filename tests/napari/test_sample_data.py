"""The sample: the generated CT-like volume, opened through the manifest."""

from __future__ import annotations

import numpy as np
from napari.layers import Image


def test_sample_opens_through_the_manifest(make_napari_viewer):
    viewer = make_napari_viewer()
    [layer] = viewer.open_sample("chunkwise", "synthetic_ct")
    assert isinstance(layer, Image)
    assert layer.name == "synthetic CT"
    assert layer.data.shape == (256, 256, 256)
    assert layer.data.dtype == np.uint8
    assert tuple(layer.contrast_limits) == (0, 255)
    # Smooth structures plus noise: neither flat nor saturated.
    assert 20 < layer.data.mean() < 200
    assert layer.data.std() > 10
