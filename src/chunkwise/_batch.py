"""Batch: one recipe over many inputs, each into its own output, resumably.

Each input is written to ``OUT_DIR/<its name>``. An output that is complete and
was made by the recipe from the same, unchanged input is skipped without being
touched; an unfinished one is resumed; an input that fails is reported and the
batch goes on. An output made otherwise (another recipe, another input, or an
input changed since) is never replaced unless ``overwrite`` is given.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chunkwise._remote import is_url
from chunkwise.errors import ChunkwiseError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from chunkwise._options import RunOptions
    from chunkwise._recipe import Recipe
    from chunkwise._run import CancelToken

__all__ = ["BatchResult", "batch", "iter_batch", "summary_table"]

#: What became of one input.
STATUSES = ("done", "skipped", "resumed", "failed")


@dataclass(frozen=True)
class BatchResult:
    """What became of one input of a batch.

    ``status`` is ``done`` (computed), ``skipped`` (its output was already complete
    and made by this recipe), ``resumed`` (an unfinished output was finished) or
    ``failed`` (``error`` says why, in one line); the command line's table of a
    batch stopped with Ctrl-C shows the input it stopped in as ``cancelled``.
    """

    input: str
    output: str
    status: str
    seconds: float
    error: str | None = None

    @property
    def failed(self) -> bool:
        """Whether the input failed."""
        return self.status == "failed"


def batch_inputs(inputs: Any, out_dir: Any = None) -> list[str]:
    """Paths and URLs from ``inputs``: paths, URLs and glob patterns, in order.

    A pattern that matches nothing is an error; a path that does not exist is left
    for its run to report (the batch goes on after it). What a pattern matches in
    ``out_dir`` is left out: ``'data/*'`` with outputs in ``data/results`` would
    otherwise take the results folder, and its outputs, for inputs on a rerun.
    """
    items = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    if not items:
        raise ChunkwiseError("a batch needs at least one input")
    found: list[str] = []
    for item in items:
        if not isinstance(item, str | os.PathLike):
            raise ChunkwiseError(f"an input is a path, URL or pattern, got {item!r}")
        text = os.fspath(item)
        text = text if is_url(text) else os.path.expanduser(text)
        if is_url(text) or os.path.exists(text) or not glob.has_magic(text):
            found.append(text)
            continue
        matches = [
            match
            for match in sorted(glob.glob(text, recursive=True))
            if not _within(match, out_dir)
        ]
        if not matches:
            raise ChunkwiseError(f"no input matches {text!r}")
        found += matches
    unique: dict[str, str] = {}
    for text in found:
        unique.setdefault(text if is_url(text) else os.path.abspath(text), text)
    return list(unique.values())


def _within(path: str, folder: Any) -> bool:
    if folder is None or is_url(os.fspath(folder)):
        return False
    inside, top = os.path.abspath(path), os.path.abspath(folder)
    return inside == top or inside.startswith(top.rstrip(os.sep) + os.sep)


def batch_outputs(inputs: list[str], out_dir: Any) -> list[str]:
    """The output of each input: ``out_dir`` joined with the input's name."""
    if not isinstance(out_dir, str | os.PathLike):
        raise ChunkwiseError(f"out_dir must be a path or URL, got {out_dir!r}")
    folder = os.fspath(out_dir)
    remote = is_url(folder)
    outputs: dict[str, str] = {}
    names: list[str] = []
    for source in inputs:
        name = source.rstrip("/").rsplit("/", 1)[-1]
        name = name if is_url(source) else os.path.basename(os.path.normpath(source))
        out = f"{folder.rstrip('/')}/{name}" if remote else os.path.join(folder, name)
        key = out if remote else os.path.abspath(out)
        if key in outputs:
            raise ChunkwiseError(
                f"inputs {outputs[key]} and {source} would both write {out}; "
                "give inputs with different names"
            )
        if key == (source if remote else os.path.abspath(source)):
            raise ChunkwiseError(
                f"{source} would be its own output; choose another output folder"
            )
        outputs[key] = source
        names.append(out)
    return names


def iter_batch(
    recipe: Recipe,
    inputs: Any,
    out_dir: Any,
    options: RunOptions | None = None,
    *,
    progress: bool = False,
    cancel: CancelToken | None = None,
    on_start: Callable[[int, str, str], None] | None = None,
    **settings: Any,
) -> Iterator[BatchResult]:
    """Run ``recipe`` over each input, yielding a `BatchResult` as each ends.

    Everything is checked (the recipe, the settings, the inputs and their output
    names) before the first input starts; see `batch` for the parameters.
    ``on_start(index, input, output)`` is called as each input starts.
    """
    from chunkwise._recipe import Recipe

    if not isinstance(recipe, Recipe):
        recipe = Recipe.load(recipe)
    run_options = recipe.options(options, **settings)
    sources = batch_inputs(inputs, out_dir)
    outputs = batch_outputs(sources, out_dir)
    if not is_url(os.fspath(out_dir)):
        os.makedirs(out_dir, exist_ok=True)
    return _iter(recipe, sources, outputs, run_options, progress, cancel, on_start)


def _iter(
    recipe: Recipe,
    sources: list[str],
    outputs: list[str],
    options: RunOptions,
    progress: bool,
    cancel: CancelToken | None,
    on_start: Callable[[int, str, str], None] | None,
) -> Iterator[BatchResult]:
    cluster = _SharedCluster(options)
    try:
        for index, (source, out) in enumerate(zip(sources, outputs, strict=True)):
            if on_start is not None:
                on_start(index, source, out)
            yield _one(recipe, source, out, cluster, progress, cancel)
    finally:
        cluster.close()


def batch(
    recipe: Recipe | Any,
    inputs: Any,
    out_dir: Any,
    options: RunOptions | None = None,
    *,
    progress: bool = False,
    cancel: CancelToken | None = None,
    **settings: Any,
) -> list[BatchResult]:
    """Run ``recipe`` over many inputs, each into ``out_dir/<its name>``.

    Complete outputs made by this recipe from the same unchanged input are skipped
    untouched, unfinished ones are resumed, and a failing input does not stop the
    others. Runs on any backend; on a local dask cluster, one cluster serves the
    whole batch.

    Parameters
    ----------
    recipe : Recipe, or what `Recipe.load` reads
        What to run.
    inputs : str, os.PathLike or list of them
        Input paths, URLs and glob patterns (``"data/*.zarr"``, ``**`` allowed).
    out_dir : str or os.PathLike
        The folder (or URL) of the outputs; made if missing.
    options : RunOptions, optional
        The machine's settings (jobs, backend, scheduler...); see
        `Recipe.options`. ``overwrite=True`` replaces outputs made otherwise
        (another recipe or input) instead of failing on them.
    progress : bool
        A progress bar for each input, on stderr.
    cancel : CancelToken, optional
        Stops the input running and the batch (raising `Cancelled`); a later batch
        resumes it.
    **settings
        `RunOptions` fields, over ``options`` and the recipe.

    Returns
    -------
    list of BatchResult
        One per input, in order: input, output, status, seconds, error.

    Raises
    ------
    ChunkwiseError
        A bad recipe or setting, a pattern that matches nothing, or two inputs
        with the same name: nothing is run. A dask cluster that cannot start or be
        reached stops the batch when the first input needs it.
    Cancelled
        ``cancel`` was set (or Ctrl-C): the input running is left resumable.

    Examples
    --------
    >>> import tempfile, chunkwise
    >>> from chunkwise import ops
    >>> from chunkwise._sample import write_synthetic_ct
    >>> folder = tempfile.mkdtemp()
    >>> for name in ("a.zarr", "b.zarr"):
    ...     _ = write_synthetic_ct(f"{folder}/{name}", (16,) * 3, chunks=(8,) * 3)
    >>> recipe = chunkwise.Recipe(operation=ops.gaussian(1))
    >>> [r.status for r in batch(recipe, f"{folder}/*.zarr", f"{folder}/out")]
    ['done', 'done']
    >>> [r.status for r in batch(recipe, f"{folder}/*.zarr", f"{folder}/out")]
    ['skipped', 'skipped']
    """
    return list(
        iter_batch(
            recipe,
            inputs,
            out_dir,
            options,
            progress=progress,
            cancel=cancel,
            **settings,
        )
    )


def _one(
    recipe: Recipe,
    source: str,
    out: str,
    cluster: _SharedCluster,
    progress: bool,
    cancel: CancelToken | None,
) -> BatchResult:
    from chunkwise._batch_state import made_by, output_found
    from chunkwise._output import Found
    from chunkwise._run import process
    from chunkwise.errors import BlockError, Cancelled

    start = time.monotonic()
    options = cluster.base

    def result(status: str, error: str | None = None) -> BatchResult:
        return BatchResult(source, out, status, time.monotonic() - start, error)

    def run(**change: Any) -> None:
        process(
            source,
            recipe.operation,
            out,
            cluster.options().replace(**change),
            progress=progress,
            cancel=cancel,
        )

    try:
        found = output_found(out, options)
        if found in (Found.NOTHING, Found.EMPTY):
            run(resume=False, overwrite=False)
            return result("done")
        if found is Found.CHUNKWISE and made_by(recipe, source, out, options):
            return result("skipped")
        try:
            # force is for replacing, below: a resume takes it as a mistake.
            run(resume=True, overwrite=False, force=False)
        except ChunkwiseError as error:
            if not (options.overwrite and str(error).startswith("cannot resume")):
                raise
            run(resume=False, overwrite=True)
            return result("done")
        return result("resumed")
    except (Cancelled, ClusterFailed):
        raise  # the batch stops here; the next one resumes this input
    except (ChunkwiseError, BlockError, OSError) as error:
        return result("failed", _one_line(error))
    except Exception as error:
        return result("failed", f"{type(error).__name__}: {_one_line(error)}")


def _one_line(error: BaseException) -> str:
    lines = (line.strip() for line in str(error).splitlines())
    return "; ".join(line for line in lines if line) or type(error).__name__


class ClusterFailed(ChunkwiseError):
    """The batch's dask cluster cannot start or be reached: the batch stops."""


class _SharedCluster:
    """One dask connection for every input of the batch, opened when first needed.

    A local cluster starts once, not once per input (it takes seconds), and not
    at all when every output is already complete.
    """

    def __init__(self, options: RunOptions) -> None:
        self.base = options
        self._shared: RunOptions | None = None
        self._connection: Any = None

    def options(self) -> RunOptions:
        """The batch's options, with the shared connection as the scheduler."""
        options = self.base
        if options.backend != "dask" or not (
            options.scheduler is None or isinstance(options.scheduler, str)
        ):
            return options
        if self._shared is None:
            import dask

            from chunkwise._executors._dask import DaskConnection

            address = options.scheduler or dask.config.get("scheduler-address", None)
            address = (address or "local").strip()
            local = address == "local"
            try:
                self._connection = DaskConnection(
                    address, options.n_jobs if local else None
                )
            except ChunkwiseError as error:
                raise ClusterFailed(str(error)) from None
            self._shared = options.replace(scheduler=self._connection.client)
        return self._shared

    def close(self) -> None:
        """Close the connection (and the local cluster) if one was opened."""
        if self._connection is not None:
            self._connection.close()


def summary_table(results: Iterable[BatchResult]) -> str:
    """A plain-text table of the results: input, status, time, error."""
    rows = [("input", "status", "time", "error")] + [
        (r.input, r.status, f"{r.seconds:.1f} s", r.error or "") for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(
            [
                *(cell.ljust(width) for cell, width in zip(row, widths, strict=False)),
                row[3],
            ]
        ).rstrip()
        for row in rows
    ]
    return "\n".join(lines)
