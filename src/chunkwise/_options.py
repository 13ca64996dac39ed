"""How a run goes: one frozen value with one validation.

`RunOptions` holds everything `chunkwise.process` takes besides its input,
operation and output. The API, the CLI and the napari widget each build one and
hand it on, instead of relaying the same keywords through every signature.
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chunkwise._checks import FORMATS, check_flags, check_layout
from chunkwise._executors import BACKENDS
from chunkwise._remote import DEFAULT_TIMEOUT, check_storage_options, check_timeout
from chunkwise.errors import ChunkwiseError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["RunOptions"]


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """Everything about a run besides its input, operation and output.

    Made once and checked once; `chunkwise.process` and `chunkwise.iter_process`
    take one, or its fields as keywords (``process(src, op, out, n_jobs=4)``).
    `replace` makes a changed copy, checked again.

    Parameters
    ----------
    n_jobs : int, optional
        Blocks computed at once. With ``threading`` and ``loky``: threads or
        processes, default all cores, a negative count counting back from all
        cores. With ``dask``: the worker processes of ``scheduler="local"``
        (default all cores); on an existing cluster, the blocks running at once
        (default every worker thread it has when the run starts). Blocks are
        sized for it.
    backend : {"threading", "loky", "dask"}
        Where blocks run. ``threading``: threads of this process, right for
        scipy.ndimage, which releases the GIL. ``loky``: processes on this
        machine, for functions that hold the GIL. ``dask``: the workers of a
        dask.distributed cluster (see ``scheduler``); they read the input and write
        the output themselves, so both must be where every worker reaches them (a
        shared file system, or an object store URL).
    scheduler : str or distributed.Client, optional
        With ``backend="dask"``: a scheduler address (``"tcp://host:8786"``),
        ``"local"`` for a ``LocalCluster`` of ``n_jobs`` single-threaded worker
        processes on this machine (closed when the run ends), or a connected
        ``distributed.Client`` (left open). Default: dask's ``scheduler-address``
        setting (``DASK_SCHEDULER_ADDRESS``), else ``"local"``.
    chunks : sequence of int, optional
        Output chunk shape (per axis, or per spatial axis). Default: the input's.
    shards : sequence of int, optional
        Zarr v3 shard shape, a multiple of ``chunks``; each job writes whole shards.
    block : sequence of int, optional
        Work block shape in output voxels, whole chunks (or shards) per axis.
        Default: chosen from the chunk shape and the number of jobs.
    zarr_format : {2, 3}, optional
        Output format; default 3 (on resume: the existing output's).
    codec : str, optional
        ``zstd``, ``lz4``, ``blosc-zstd``, ``gzip`` or ``none``, optionally with a
        level as in ``zstd:5``; default ``zstd`` at level 1 (on resume: the existing
        output's).
    overwrite : bool
        Replace an existing output that chunkwise made. The old output is renamed
        aside and deleted once the new run has written a block; a run killed
        meanwhile leaves it as ``.NAME.chunkwise-trash-ID`` beside the output,
        deleted by the next run there.
    resume : bool
        Finish an interrupted run into the existing output, computing only the
        blocks it has not recorded as complete, on any backend. The input,
        operation and layout must be the same, and the input's files unchanged
        (names, sizes and modification times). Every chunk of the blocks it
        trusts is decoded first; a damaged one is computed again.
    force : bool
        With ``overwrite``, also replace a Zarr array that chunkwise did not make.
    cache_bytes : int, optional
        Budget for the cache of decoded input chunks, per process. Default: 32 MiB,
        or enough for the chunks a few blocks touch when chunks are large; it does
        not grow with the volume.
    missing : {"fill", "error"}, optional
        An input chunk that was never written reads as the fill value (Zarr's rule,
        right for sparse data), or, with ``"error"``, stops the run naming the chunk.
        Default: ``"error"`` for URLs, ``"fill"`` otherwise. Either way, a chunk
        that existed when the run started and is gone later fails the run.
    nice : int
        Run the job threads (or processes) this much below the caller's CPU
        priority, 0 to 19 (Linux; ignored elsewhere), so that a viewer or other
        interactive program on the same cores stays responsive. The napari plugin
        uses it. Ignored on an existing dask cluster, whose workers outlive the
        run.
    timeout : float or None
        Seconds an HTTP(S) input may send nothing before the read fails, naming
        what timed out (None: wait for ever).
    check_space : bool
        Refuse a local output that would not fit on its disk (its size estimated
        from the input's compression ratio) or blocks that would not fit in memory.
    format : {"zarr", "ome-zarr"}, optional
        ``zarr``: one array. ``ome-zarr``: an OME-Zarr image (NGFF 0.5 on Zarr v3,
        0.4 on v2) whose pyramid is built during the run, each coarser chunk as
        soon as the chunks it reduces are written (mean of 2 per axis, as
        ``downsample(2)``; mode for labels and masks). Its axes, scale and
        translation come from the input's NGFF metadata, composed with the
        operation's voxel size. Default: ``ome-zarr`` when the output ends in
        ``.ome.zarr``.
    levels : int, optional
        With ``ome-zarr``: the number of levels, full resolution included.
        Default: levels are added until the largest axis is at most 256.
    level : int, optional
        With an OME-Zarr input: the level to process (default 0, the full
        resolution; a coarser one for a quick draft of the whole volume).
    region : Box, tuple of slice or str, optional
        Process only the output chunks over this region of the input (in input
        voxels, as ``"z0:z1,y0:y1,x0:x1"`` or slices). The rest stays the fill
        value and is not done: the run ends ``partial``, and a later resume, with
        another region or none, completes it.
    scale, translation : sequence of float, optional
        With ``ome-zarr``: the size of the input's voxels and the world position
        of its first voxel's centre, one number per axis, for an input whose own
        metadata lacks them or is wrong (a plain array shown with a scale in a
        viewer). They replace the input's NGFF values and are composed with the
        operation's voxel size, as those are. Default: the input's metadata, or
        unit voxels at the origin.
    axes : str, optional
        One letter per input axis: ``t`` (time), ``c`` (channel), ``z``, ``y``,
        ``x`` (space), as ``"czyx"``, ``"cyx"`` or ``"yxc"`` (an RGB image).
        Operations act on the space axes only, on each channel and time point
        apart. Default: the input's OME-Zarr axes, else the last 3 axes (2 for
        2D data) are space and the axes before them are not.
    storage_options : dict, optional
        fsspec's options for the file system of a URL input and output (both,
        where both are URLs given as text), such as ``{"endpoint_url":
        "http://...", "key": ..., "secret": ...}`` or ``{"anon": True}`` for
        ``s3://``. The environment (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``,
        ``AWS_ACCESS_KEY_ID``...) applies as well. They are never recorded, and
        never shown (they are not in the ``repr``). For other settings on each
        side, open the input yourself (``zarr.open_array(url, mode="r",
        storage_options=...)``): these then apply to the output only.

    Examples
    --------
    >>> options = RunOptions(n_jobs=2, codec="zstd:3")
    >>> options.replace(resume=True).resume
    True
    >>> RunOptions(n_job=2)
    Traceback (most recent call last):
    ...
    TypeError: RunOptions.__init__() got an unexpected keyword argument 'n_job'
    >>> RunOptions.of(None, n_job=2)
    Traceback (most recent call last):
    ...
    chunkwise.errors.ChunkwiseError: unknown option 'n_job' (did you mean 'n_jobs'?)
    """

    n_jobs: int | None = None
    backend: str = "threading"
    scheduler: Any = None
    chunks: Sequence[int] | None = None
    shards: Sequence[int] | None = None
    block: Sequence[int] | None = None
    zarr_format: int | None = None
    codec: str | None = None
    overwrite: bool = False
    resume: bool = False
    force: bool = False
    cache_bytes: int | None = None
    missing: str | None = None
    nice: int = 0
    timeout: float | None = DEFAULT_TIMEOUT
    check_space: bool = True
    format: str | None = None
    levels: int | None = None
    level: int | None = None
    region: Any = None
    scale: Sequence[float] | None = None
    translation: Sequence[float] | None = None
    axes: str | None = None
    # Their values may be secrets: never in a repr.
    storage_options: dict[str, Any] | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_flags(
            self.codec, overwrite=self.overwrite, resume=self.resume, force=self.force
        )
        n_jobs = self.n_jobs
        if n_jobs is not None and (
            isinstance(n_jobs, bool)
            or not isinstance(n_jobs, numbers.Integral)
            or n_jobs == 0
        ):
            raise ChunkwiseError(
                f"n_jobs must be a whole number of jobs other than 0, or None (all), "
                f"got {n_jobs!r}"
            )
        if self.backend not in BACKENDS:
            raise ChunkwiseError(
                f"backend must be one of {', '.join(BACKENDS)}; got {self.backend!r}"
            )
        if self.scheduler is not None and self.backend != "dask":
            raise ChunkwiseError(
                f"a scheduler is for the dask backend; the {self.backend} backend "
                "runs here"
            )
        nice = self.nice
        if isinstance(nice, bool) or not isinstance(nice, int) or not 0 <= nice <= 19:
            raise ChunkwiseError(
                f"nice must be a whole number from 0 to 19, got {nice!r}"
            )
        if self.format is not None and self.format not in FORMATS:
            raise ChunkwiseError(
                f"format must be one of {', '.join(FORMATS)}; got {self.format!r}"
            )
        levels = self.levels
        if levels is not None and (
            isinstance(levels, bool) or not isinstance(levels, int) or levels < 1
        ):
            raise ChunkwiseError(
                f"levels must be a whole number >= 1 (1: no pyramid), got {levels!r}"
            )
        if levels is not None and self.format == "zarr":
            raise ChunkwiseError("levels needs format='ome-zarr' (--format ome-zarr)")
        if self.missing not in (None, "fill", "error"):
            raise ChunkwiseError(
                f"missing must be 'fill' or 'error', got {self.missing!r}"
            )
        check_layout(
            shapes={"chunks": self.chunks, "shards": self.shards, "block": self.block},
            zarr_format=self.zarr_format,
            codec=self.codec,
            level=self.level,
            axes=self.axes,
            region=self.region,
            placement={"scale": self.scale, "translation": self.translation},
        )
        object.__setattr__(self, "timeout", check_timeout(self.timeout))
        object.__setattr__(
            self, "storage_options", check_storage_options(self.storage_options)
        )

    @classmethod
    def of(cls, options: RunOptions | None = None, /, **settings: Any) -> RunOptions:
        """``options`` (default: all defaults) with ``settings`` changed, checked.

        An unknown setting is a one-line `ChunkwiseError` naming the nearest one.
        """
        if options is not None and not isinstance(options, RunOptions):
            raise ChunkwiseError(
                f"options must be a chunkwise.RunOptions, got {type(options).__name__}"
            )
        names = [field.name for field in dataclasses.fields(cls)]
        for name in settings:
            if name not in names:
                near = difflib.get_close_matches(name, names, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise ChunkwiseError(f"unknown option {name!r}{hint}")
        base = options if options is not None else cls()
        return dataclasses.replace(base, **settings) if settings else base

    def replace(self, **settings: Any) -> RunOptions:
        """A copy with ``settings`` changed, checked as a new value is."""
        return RunOptions.of(self, **settings)
