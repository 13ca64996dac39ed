"""Every operation says what it does to labels (`ops.LabelEffect`), and does it.

KEEPS: every output value is one of the input's values (labels stay labels); MAKES:
the output is a mask; DROPS: values are blended.
"""

from __future__ import annotations

import numpy as np
import pytest

import chunkwise
from catalogue import EXAMPLES
from chunkwise import ops

KEEPS, MAKES, DROPS = ops.LabelEffect

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

OPERATIONS = [*EXAMPLES.values(), *VARIANTS]

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
    assert set(EXAMPLES) == set(ops.CATALOGUE)
    for op in OPERATIONS:
        assert isinstance(op.labels, ops.LabelEffect), key(op)


@pytest.mark.parametrize("op", OPERATIONS, ids=key)
def test_label_safety_is_what_the_values_do(op):
    volume = labels_volume()
    result = chunkwise.process(volume, op, chunks=(8, 8, 8), n_jobs=2)[:]
    found = set(np.unique(result).tolist())
    if op.name == "threshold":
        assert op.labels is MAKES and op.labels_from(False)
        assert found <= {0, 1}
    elif key(op) in SAFE:
        assert op.labels is KEEPS and op.labels_from(True)
        assert found <= set(np.unique(volume).tolist()), key(op)
        # Exactly as if the values were the same IDs in another dtype.
        as_int32 = chunkwise.process(volume.astype(np.int32), op, n_jobs=1)[:]
        np.testing.assert_array_equal(result.astype(np.int64), as_int32)
    else:
        assert op.labels is DROPS and not op.labels_from(True), key(op)


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


def test_chains_fold_label_effects_step_by_step():
    assert chunkwise.chain(ops.median(3), ops.downsample(2, "mode")).labels is KEEPS
    assert chunkwise.chain(ops.median(3), ops.downsample(2, "mode")).labels_from(True)
    assert not chunkwise.chain(ops.median(3), ops.gaussian(1)).labels_from(True)
    # A mask is made by the threshold, and a step keeping labels keeps it a mask.
    assert chunkwise.chain(ops.gaussian(1), ops.threshold(3)).labels is MAKES
    assert chunkwise.chain(ops.threshold(3), ops.median(3)).labels_from(False)
    assert not chunkwise.chain(ops.threshold(3), ops.gaussian(1)).labels_from(False)
    assert chunkwise.chain(ops.median(3), ops.gaussian(1)).labels is DROPS


@pytest.mark.parametrize("first", list(ops.LabelEffect), ids=str)
@pytest.mark.parametrize("second", list(ops.LabelEffect), ids=str)
def test_a_chains_effect_is_its_steps_applied_in_turn(first, second):
    # The last step that does not keep labels decides, whatever came before.
    combined = first.then(second)
    for labels in (False, True):
        assert combined.of(labels) == second.of(first.of(labels))
    assert combined is (first if second is KEEPS else second)


def test_on_axes_keeps_the_effect_of_its_operation():
    assert ops.on_axes(ops.median(3), (0, 1)).labels is KEEPS
    assert ops.on_axes(ops.threshold(1), (0, 1)).labels is MAKES
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
