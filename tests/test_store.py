"""Outputs: formats, codecs, shards, default chunks, and where chunkwise won't write."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pytest
import zarr
from zarr.storage import LocalStore, MemoryStore

import chunkwise
from chunkwise import ops
from chunkwise._geometry import Box
from chunkwise._store import ChunkWriter, Ledger, create_output, parse_codec

if TYPE_CHECKING:
    from pathlib import Path

SHAPE = (20, 24, 28)


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 60000, SHAPE, dtype=np.uint16)


@pytest.fixture
def stored(volume, tmp_path) -> Path:
    path = tmp_path / "in.zarr"
    zarr.create_array(path, data=volume, chunks=(8, 8, 8))
    return path


def _metadata(path: Path) -> dict:
    name = "zarr.json" if (path / "zarr.json").exists() else ".zarray"
    return json.loads((path / name).read_text())


# (codec, expected v2 compressor, expected v3 compressor codecs)
CODEC_CASES = [
    ("zstd", {"id": "zstd", "level": 1}, [("zstd", {"level": 1})]),
    ("zstd:5", {"id": "zstd", "level": 5}, [("zstd", {"level": 5})]),
    ("lz4", {"id": "blosc", "cname": "lz4"}, [("blosc", {"cname": "lz4"})]),
    ("blosc-zstd", {"id": "blosc", "cname": "zstd"}, [("blosc", {"cname": "zstd"})]),
    ("gzip", {"id": "gzip", "level": 5}, [("gzip", {"level": 5})]),
    ("none", None, []),
]


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize(
    ("codec", "v2", "v3"), CODEC_CASES, ids=[c[0] for c in CODEC_CASES]
)
def test_formats_and_codecs(volume, tmp_path, zarr_format, codec, v2, v3):
    out = tmp_path / "out.zarr"
    result = chunkwise.process(
        volume, ops.invert(), out, zarr_format=zarr_format, codec=codec, n_jobs=1
    )
    np.testing.assert_array_equal(zarr.open_array(out, mode="r")[:], ~volume)
    assert result.metadata.zarr_format == zarr_format
    metadata = _metadata(out)
    if zarr_format == 2:
        compressor = metadata["compressor"]
        if v2 is None:
            assert compressor is None
        else:
            assert compressor.items() >= v2.items()
    else:
        # Everything after the bytes serializer compresses.
        names = [c["name"] for c in metadata["codecs"]]
        assert names[0] == "bytes"
        compressors = metadata["codecs"][1:]
        assert [c["name"] for c in compressors] == [name for name, _ in v3]
        for found, (_, config) in zip(compressors, v3, strict=True):
            assert found["configuration"].items() >= config.items()
    assert result.attrs["chunkwise"]["recipe"]["output"]["codec"] == codec


def test_codec_text_is_validated():
    for bad in ("brotli", "zstd:fast", "zstd:99", "gzip:10", "lz4:-1"):
        with pytest.raises(chunkwise.ChunkwiseError, match=r"codec|level"):
            parse_codec(bad, 3)
    assert parse_codec(" ZSTD:7 ", 3)[0].level == 7


def test_sharded_output_blocks_cover_whole_shards(volume, tmp_path):
    out = tmp_path / "out.zarr"
    kwargs = {"chunks": (4, 4, 4), "shards": (8, 8, 16), "n_jobs": 2}
    plan = chunkwise.plan(volume, ops.gaussian(1), **kwargs)
    assert plan.block_shape[0] % 8 == 0 and plan.block_shape[2] % 16 == 0
    for block in plan:
        assert all(a % s == 0 for a, s in zip(block.box.start, (8, 8, 16), strict=True))
        assert all(
            b % s == 0 or b == n
            for b, s, n in zip(block.box.stop, (8, 8, 16), SHAPE, strict=True)
        )
    result = chunkwise.process(volume, ops.gaussian(1), out, **kwargs)
    assert result.chunks == (4, 4, 4)
    assert result.shards == (8, 8, 16)
    assert _metadata(out)["codecs"][0]["name"] == "sharding_indexed"
    np.testing.assert_array_equal(
        zarr.open_array(out, mode="r")[:], ops.gaussian(1)(volume)
    )


def test_shards_must_be_multiples_of_chunks(volume, tmp_path):
    with pytest.raises(chunkwise.ChunkwiseError, match=r"shards .* multiples"):
        chunkwise.process(volume, ops.invert(), chunks=(4, 4, 4), shards=(6, 8, 8))
    with pytest.raises(chunkwise.ChunkwiseError, match="sharding needs zarr_format=3"):
        chunkwise.process(
            volume,
            ops.invert(),
            tmp_path / "o.zarr",
            chunks=(4, 4, 4),
            shards=(8, 8, 8),
            zarr_format=2,
        )
    assert not (tmp_path / "o.zarr").exists()


def test_default_chunks_are_the_inputs(stored):
    result = chunkwise.process(stored, ops.gaussian(1), n_jobs=1)
    assert result.chunks == (8, 8, 8)
    assert result.shape == SHAPE


def test_chunks_may_be_given_per_spatial_axis(tmp_path):
    data = np.zeros((2, 10, 12, 14), np.uint8)
    result = chunkwise.process(data, ops.invert(), chunks=(4, 4, 4), n_jobs=1)
    assert result.chunks == (1, 4, 4, 4)
    np.testing.assert_array_equal(result[:], ~data)


def test_no_output_means_memory(volume):
    result = chunkwise.process(volume, ops.invert(), n_jobs=1)
    assert isinstance(result.store, MemoryStore)
    np.testing.assert_array_equal(result[:], ~volume)


def test_output_in_a_given_store(volume):
    store = MemoryStore()
    result = chunkwise.process(volume, ops.invert(), store, n_jobs=1)
    assert result.store is store
    assert len(Ledger.of(result).done(10**6).nonzero()[0]) > 0


def test_output_equal_to_or_inside_the_input_is_refused(stored):
    before = sorted(p.name for p in stored.rglob("*"))
    for out in (stored, stored / "inside.zarr", stored / "c" / "deeper"):
        with pytest.raises(chunkwise.ChunkwiseError, match="input or inside it"):
            chunkwise.process(stored, ops.invert(), out)
    with pytest.raises(chunkwise.ChunkwiseError, match="contains the input"):
        chunkwise.process(stored, ops.invert(), stored.parent)
    assert sorted(p.name for p in stored.rglob("*")) == before


def test_zip_output_is_refused(volume, tmp_path):
    with pytest.raises(chunkwise.ChunkwiseError, match="zip"):
        chunkwise.process(volume, ops.invert(), tmp_path / "out.zip")


def test_existing_output_is_refused_then_replaced(volume, stored, tmp_path):
    out = tmp_path / "out.zarr"
    chunkwise.process(stored, ops.gaussian(1), out, n_jobs=1)
    with pytest.raises(chunkwise.ChunkwiseError, match="already exists"):
        chunkwise.process(stored, ops.invert(), out, n_jobs=1)
    assert zarr.open_array(out).attrs["chunkwise"]["operation"]["op"] == "gaussian"
    result = chunkwise.process(
        stored, ops.downsample(2), out, n_jobs=1, overwrite=True, zarr_format=2
    )
    reopened = zarr.open_array(out, mode="r")
    assert reopened.shape == result.shape == (10, 12, 14)
    assert reopened.metadata.zarr_format == 2
    assert not (out / "zarr.json").exists()
    np.testing.assert_array_equal(reopened[:], ops.downsample(2)(volume))
    assert reopened.attrs["chunkwise"]["operation"]["op"] == "downsample"


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ({"op": ops.gaussian(2)}, "operation"),
        ({"op": ops.gaussian(1, mode="nearest")}, "operation"),
        ({"source": "other"}, "input"),
        ({"chunks": (4, 4, 4)}, "output"),
    ],
    ids=["op-param", "op-mode", "input", "layout"],
)
def test_resume_with_another_recipe_is_refused(volume, stored, tmp_path, change, what):
    other = tmp_path / "other.zarr"
    zarr.create_array(other, data=volume[:, :, ::-1].copy(), chunks=(8, 8, 8))
    out = tmp_path / "out.zarr"
    chunkwise.process(stored, ops.gaussian(1), out, n_jobs=1)
    source = other if change.get("source") else stored
    op = change.get("op", ops.gaussian(1))
    chunks = change.get("chunks")
    with pytest.raises(chunkwise.ChunkwiseError, match=f"different {what}"):
        chunkwise.process(source, op, out, n_jobs=1, chunks=chunks, resume=True)
    # The refused resume left the finished output alone.
    np.testing.assert_array_equal(
        zarr.open_array(out, mode="r")[:], ops.gaussian(1)(volume)
    )


def test_resume_of_a_complete_output_does_nothing(stored, tmp_path):
    out = tmp_path / "out.zarr"
    chunkwise.process(stored, ops.gaussian(1), out, n_jobs=1)
    run = chunkwise.iter_process(stored, ops.gaussian(1), out, n_jobs=2, resume=True)
    assert run.done_at_start == len(run.plan)
    assert list(run) == []
    assert run.output.attrs["chunkwise"]["status"] == "complete"


def test_loky_cannot_write_to_memory(volume):
    with pytest.raises(chunkwise.ChunkwiseError, match=r"loky backend .* in-memory"):
        chunkwise.process(volume, ops.invert(), backend="loky")


def test_a_group_at_the_output_is_refused(volume, tmp_path):
    out = tmp_path / "group.zarr"
    zarr.open_group(out, mode="w")
    with pytest.raises(chunkwise.ChunkwiseError, match="Zarr group, not an image"):
        chunkwise.process(volume, ops.invert(), out, overwrite=True)


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("codec", ["zstd", "gzip", "none", "lz4"])
@pytest.mark.parametrize("dtype", ["uint8", "<u2", "float32"])
def test_chunks_written_to_their_files_read_back_as_zarr_writes_them(
    tmp_path, zarr_format, codec, dtype
):
    shape, chunks = (20, 13, 9), (8, 8, 8)
    data = np.random.default_rng(3).integers(1, 200, shape).astype(dtype)
    data[:8, :8, :8] = 0  # a chunk of fill value: never stored
    stores = {}
    for name in ("direct", "zarr"):
        stores[name] = create_output(
            LocalStore(tmp_path / f"{name}.zarr"),
            shape=shape,
            dtype=np.dtype(dtype),
            chunks=chunks,
            shards=None,
            zarr_format=zarr_format,
            codec=codec,
            attributes={},
        )
    writer = ChunkWriter.of(stores["direct"])
    assert (writer is None) == (codec == "lz4")  # Blosc goes through zarr
    if writer is None:
        return
    stores["zarr"][:] = data
    full = Box.full(shape)
    writer.write(full, np.ones(shape, dtype))  # then overwritten, fill chunk deleted
    writer.write(full, data)
    np.testing.assert_array_equal(stores["direct"][:], data)
    np.testing.assert_array_equal(stores["direct"][:], stores["zarr"][:])

    def keys(name: str) -> set[str]:
        root = tmp_path / f"{name}.zarr"
        return {
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.is_file() and not p.name.startswith((".z", "zarr.json"))
        }

    assert keys("direct") == keys("zarr")


def test_sharded_and_in_memory_outputs_are_written_by_zarr():
    sharded = zarr.create_array(
        MemoryStore(), shape=(16, 16), chunks=(4, 4), shards=(8, 8), dtype="u1"
    )
    assert ChunkWriter.of(sharded) is None
