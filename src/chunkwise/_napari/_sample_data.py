"""Sample data: the generated CT-like volume, made on the spot (no downloads)."""

from __future__ import annotations

from typing import Any

from chunkwise._sample import synthetic_ct

__all__ = ["make_sample"]

SHAPE = (256, 256, 256)


def make_sample() -> list[tuple[Any, dict[str, Any], str]]:
    """The synthetic CT volume (256³ uint8) as an image layer (napari sample hook).

    Returns
    -------
    list of tuple
        One ``(data, meta, "image")`` layer, the same every time.
    """
    meta = {"name": "synthetic CT", "contrast_limits": (0, 255), "colormap": "gray"}
    return [(synthetic_ct(SHAPE), meta, "image")]
