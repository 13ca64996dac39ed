"""Every operation says whether it is safe on labels, and the label-safe ones are.

Label-safe: every output value is one of the input's values (labels stay labels).
"""

from __future__ import annotations

import numpy as np
import pytest

import chunkwise
from chunkwise import ops

#: Required parameters, to build each operation of the catalogue.
REQUIRED = {
    "clip": {"lo": 5, "hi": 900},
    "threshold": {"value": 8},
    "rescale": {"in_range": (0, 1300)},
    "astype": {"dtype": "int32"},
    "gamma": {"gamma": 0.5},
    "rank_filter": {"rank": 2},
    "percentile_filter": {"percentile": 30},
    "correlate": {"kernel": [[[1, 2, 1]]]},
    "convolve": {"kernel": [[[1, 2, 1]]]},
}

#: Variants whose label safety depends on a parameter.
VARIANTS = [
    *(ops.downsample(2, method=m) for m in ops.DOWNSAMPLE_METHODS),
    ops.upsample(2, order=0),
    ops.upsample(2, order=1),
    ops.astype("float32"),
    ops.median(4),
    ops.rank_filter(-3, footprint="ball:2"),
    ops.percentile_filter(85, footprint=[[[0, 1, 0], [1, 1, 1], [0, 1, 1]]]),
]

OPERATIONS = [
    ops.CATALOGUE[name](**REQUIRED.get(name, {})) for name in ops.CATALOGUE
] + VARIANTS

SAFE = {
    "copy",
    "threshold",
    "median",
    "minimum",
    "maximum",
    "rank_filter",
    "percentile_filter",
    "downsample-mode",
    "downsample-nearest",
    "downsample-min",
    "downsample-max",
    "upsample-0",
    "astype-int32",
}


def key(op: ops.Operation) -> str:
    extra = {"downsample": "method", "upsample": "order", "astype": "dtype"}
    field = extra.get(op.name)
    return op.name if field is None else f"{op.name}-{getattr(op, field)}"


def labels_volume() -> np.ndarray:
    """Cells with far-apart IDs on background 0: a blend makes values between."""
    volume = np.zeros((20, 22, 24), np.uint16)
    rng = np.random.default_rng(5)
    for label in (7, 300, 1201, 40):
        z, y, x = rng.integers(0, 16, 3)
        volume[z : z + 6, y : y + 7, x : x + 8] = label
    return volume


def test_every_operation_of_the_catalogue_declares_it():
    for name, cls in ops.CATALOGUE.items():
        declared = any(
            "label_safe" in vars(k) for k in cls.__mro__[:-1] if k is not ops.Operation
        )
        assert declared, name
        op = cls(**REQUIRED.get(name, {}))
        assert isinstance(op.label_safe, bool), name


@pytest.mark.parametrize("op", OPERATIONS, ids=key)
def test_label_safety_is_what_the_values_do(op):
    volume = labels_volume()
    result = chunkwise.process(volume, op, chunks=(8, 8, 8), n_jobs=2)[:]
    found = set(np.unique(result).tolist())
    if op.name == "threshold":
        assert op.label_safe and op.labels_from(False)
        assert found <= {0, 1}
    elif key(op) in SAFE:
        assert op.label_safe and op.labels_from(True)
        assert found <= set(np.unique(volume).tolist()), key(op)
        # Exactly as if the values were the same IDs in another dtype.
        as_int32 = chunkwise.process(volume.astype(np.int32), op, n_jobs=1)[:]
        np.testing.assert_array_equal(result.astype(np.int64), as_int32)
    else:
        assert not op.label_safe and not op.labels_from(True), key(op)


@pytest.mark.parametrize(
    "op",
    [ops.gaussian(1), ops.uniform(3), ops.downsample(2), ops.upsample(2, order=1)],
    ids=key,
)
def test_unsafe_operations_do_blend_labels(op):
    # The flag is not over-cautious: these do make values that are no label.
    volume = labels_volume()
    result = chunkwise.process(volume, op, n_jobs=1)[:]
    assert not set(np.unique(result).tolist()) <= set(np.unique(volume).tolist())


def test_chains_fold_label_safety_step_by_step():
    assert chunkwise.chain(ops.median(3), ops.downsample(2, "mode")).labels_from(True)
    assert not chunkwise.chain(ops.median(3), ops.gaussian(1)).labels_from(True)
    # A mask is made by the threshold, and a label-safe step keeps it a mask.
    assert chunkwise.chain(ops.gaussian(1), ops.threshold(3)).labels_from(False)
    assert chunkwise.chain(ops.threshold(3), ops.median(3)).labels_from(False)
    assert not chunkwise.chain(ops.threshold(3), ops.gaussian(1)).labels_from(False)
    assert not chunkwise.chain(ops.median(3), ops.gaussian(1)).label_safe


def test_on_axes_keeps_the_safety_of_its_operation():
    assert ops.on_axes(ops.median(3), (0, 1)).label_safe
    assert not ops.on_axes(ops.gaussian(1), (0, 1)).labels_from(True)


@pytest.mark.parametrize(
    ("op", "labels"),
    [(ops.median(3), True), (ops.maximum(3), True), (ops.gaussian(1), False)],
    ids=str,
)
def test_a_run_records_whether_it_holds_labels(tmp_path, op, labels):
    mask = labels_volume() > 0  # booleans are a mask: labels
    out = chunkwise.process(mask, op, tmp_path / "out.zarr", n_jobs=1)
    assert out.attrs["chunkwise"]["labels"] is labels
    image = chunkwise.process(labels_volume(), op, tmp_path / "im.zarr", n_jobs=1)
    assert image.attrs["chunkwise"]["labels"] is False
