"""Laying out a run's output: its recipe, its pyramid, creating or reopening it."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import zarr

from chunkwise import __version__, ops
from chunkwise._ngff import Multiscale, level_shapes, placed, plain, pyramid, resampled
from chunkwise._output import Existing, Found, local_root
from chunkwise._plan import Plan, make_plan
from chunkwise._pyramid import method_for
from chunkwise._resources import physical_memory
from chunkwise._source import Source
from chunkwise._store import (
    ATTRIBUTE,
    Output,
    Status,
    create_image,
    create_output,
    open_output,
)
from chunkwise._verify import layout_mismatch
from chunkwise.errors import ChunkwiseError
from chunkwise.ops import Operation

#: By default, pyramid levels are added until the largest axis is at most this.
SMALLEST_LEVEL = 256


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def make_recipe(
    source: Source, plan: Plan, zarr_format: int, codec: str, levels: int | None
) -> dict[str, Any]:
    output = plan.describe() | {"zarr_format": zarr_format, "codec": codec}
    if levels is not None:
        output |= {"format": "ome-zarr", "levels": levels}
    return _json(
        {"operation": plan.op.to_dict(), "input": source.describe(), "output": output}
    )


def open_output_for(
    store: Any,
    found: Existing,
    recipe: dict[str, Any],
    plan: Plan,
    *,
    resume: bool,
    image: Multiscale | None,
    labels: bool = False,
) -> Output:
    layout = recipe["output"]
    if resume and found.found is Found.CHUNKWISE:
        output = open_output(store, mode="r+")
        if output.provenance.get("recipe") != recipe:
            raise ChunkwiseError("the output changed while this run started; try again")
        problem = layout_mismatch(output.base, layout)
        if problem is None and len(output.levels) != layout.get("levels", 1):
            problem = (
                f"it has {len(output.levels)} levels, its run record "
                f"{layout.get('levels', 1)}"
            )
        if problem:
            raise ChunkwiseError(
                f"cannot resume: {problem}; use overwrite to start again"
            )
        return output
    attributes: dict[str, Any] = {
        "version": __version__,
        "operation": recipe["operation"],
        "input": recipe["input"],
        "recipe": recipe,
        "status": Status.CREATED.value,
        # What the output holds, for readers (napari's layer type); not in the
        # recipe, which says how it is computed.
        "labels": labels,
    }
    zarr_format = layout["zarr_format"]
    replace = found.found is not Found.NOTHING
    if image is None:
        array = create_output(
            store,
            shape=plan.shape,
            dtype=plan.dtype,
            chunks=plan.chunks,
            shards=plan.shards,
            zarr_format=zarr_format,
            codec=layout["codec"],
            attributes=attributes,
            overwrite=replace,
        )
        return Output.of(array)
    # Locally the levels come first and the group's metadata last: a run killed
    # in between leaves levels without chunks, which the next run clears.
    local = local_root(store) is not None
    group = (
        None
        if local
        else create_image(
            store,
            image,
            zarr_format,
            attributes={ATTRIBUTE: attributes},
            overwrite=replace,
        )
    )
    shapes = level_shapes(plan.shape, image.spatial, len(image.levels), 1)
    levels = []
    for level, shape in zip(image.levels, shapes, strict=True):
        first = level is image.levels[0]
        chunks = tuple(min(c, n) for c, n in zip(plan.chunks, shape, strict=True))
        levels.append(
            create_output(
                store,
                name=level.path,
                shape=shape,
                dtype=plan.dtype,
                chunks=plan.chunks if first else chunks,
                shards=plan.shards if first else None,
                zarr_format=zarr_format,
                codec=layout["codec"],
                attributes=None,
                dimension_names=tuple(axis["name"] for axis in image.axes),
            )
        )
    if group is None:
        # zarr made the group (without attributes) with the first level.
        group = zarr.open_group(store=store, mode="r+")
        group.update_attributes(image.attributes(zarr_format) | {ATTRIBUTE: attributes})
    return Output(group, tuple(levels))


def pyramid_plan(plan: Plan, source: Source, n_jobs: int) -> Plan:
    """``plan`` with blocks of whole 2x2x2 groups of chunks, where memory allows.

    A worker then builds level 1's chunks from its block in memory (`InBlock`)
    instead of the pyramid thread reading level 0 back: a conversion's blocks are
    single chunks otherwise. Blocks grow at most 8 times, and the jobs' memory at most
    a quarter of the machine's.
    """
    unit = plan.shards or plan.chunks
    spatial = source.spatial
    block = tuple(
        math.lcm(u, 2 * c) * math.ceil(b / math.lcm(u, 2 * c))
        if axis in spatial and n > c
        else b
        for axis, (b, u, c, n) in enumerate(
            zip(plan.block_shape, unit, plan.chunks, plan.shape, strict=True)
        )
    )
    if block == plan.block_shape:
        return plan
    block = tuple(
        min(b, -(-n // u) * u) for b, n, u in zip(block, plan.shape, unit, strict=True)
    )
    aligned = make_plan(
        source,
        plan.op,
        chunks=plan.chunks,
        shards=plan.shards,
        block=block,
        n_jobs=n_jobs,
    )
    physical = physical_memory() or 0
    growth = aligned.peak_bytes_per_job / max(plan.peak_bytes_per_job, 1)
    fits = aligned.peak_bytes_per_job * n_jobs <= physical / 4
    return aligned if growth <= 8 and fits else plan


def output_image(
    source: Source,
    plan: Plan,
    store: Any,
    *,
    levels: int | None,
    labels: bool,
    placement: tuple[Any, Any] = (None, None),
) -> Multiscale:
    """The NGFF image of the output, with its pyramid.

    It has the input's axes and place (``placement``'s scale and translation where
    given), scaled by the operation.
    """
    if len(source.shape) < 2:
        raise ChunkwiseError(
            "an OME-Zarr image has 2 to 5 axes; write 1D data as a plain Zarr "
            "array (format='zarr')"
        )
    base = placed(source.image or plain(source.shape), *placement)
    image = resampled(base, base.levels[0], plan.op.voxel_scale(len(plan.shape)))
    count = len(level_shapes(plan.shape, image.spatial, levels, SMALLEST_LEVEL))
    root = local_root(store)
    name = base.name or (root.name.split(".")[0] if root is not None else None)
    unchanged = all(isinstance(step, ops.copy) for step in plan.op.steps)
    image = dataclasses.replace(image, labels=labels)
    return pyramid(
        image, count, method=method_for(labels), name=name, keep_omero=unchanged
    )


def is_labels(source: Source, op: Operation) -> bool:
    """Whether the output holds labels or a mask (its levels are reduced by mode)."""
    labels = source.image is not None and source.image.labels
    return op.labels_from(labels or source.dtype == bool)
