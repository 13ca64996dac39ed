"""The ``chunkwise`` command: argument parsing and a progress bar over the public API.

Exit codes: 0 success, 2 bad usage or bad input, 1 failure during a run,
130 cancelled (Ctrl-C).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import zarr

from chunkwise import __version__, chain
from chunkwise._run import BACKENDS, process
from chunkwise._sample import write_synthetic_ct
from chunkwise._source import open_source
from chunkwise._store import CODECS, Ledger, provenance
from chunkwise.errors import BlockError, Cancelled, ChunkwiseError
from chunkwise.ops import CATALOGUE, describe, parse

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def _shape(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers like 64,64,64, got {text!r}"
        ) from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _add_run(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="process a volume",
        description="Process INPUT into OUTPUT with one or more operations, chained "
        "in the order given. Example: chunkwise run in.zarr out.zarr "
        "--op gaussian:sigma=2 --op downsample:factor=2,method=mean",
    )
    run.add_argument("input", help="Zarr directory, .zip store, OME-Zarr image or URL")
    run.add_argument("output", help="Zarr directory or URL to write")
    run.add_argument(
        "--op",
        action="append",
        required=True,
        metavar="NAME:PARAM=VALUE,...",
        help="an operation (repeat to chain); per-axis values as 1/2/2; "
        "see 'chunkwise ops'",
    )
    run.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=None,
        help="parallel jobs (default: all cores)",
    )
    run.add_argument("--backend", choices=BACKENDS, default="threading")
    run.add_argument("--chunks", type=_shape, help="output chunk shape, e.g. 64,64,64")
    run.add_argument(
        "--shards", type=_shape, help="Zarr v3 shard shape (multiple of chunks)"
    )
    run.add_argument("--block", type=_shape, help="work-block shape in output voxels")
    run.add_argument(
        "--zarr-format", type=int, choices=(2, 3), help="output format (default 3)"
    )
    run.add_argument(
        "--codec",
        help=f"one of {', '.join(CODECS)}, optionally with a level: zstd:5 "
        "(default zstd, level 1)",
    )
    run.add_argument(
        "--overwrite", action="store_true", help="replace an existing output"
    )
    run.add_argument("--resume", action="store_true", help="finish an interrupted run")
    run.add_argument(
        "--missing-chunks",
        choices=("fill", "error"),
        default="fill",
        help="an input chunk never written: the fill value (Zarr's rule) or an error",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chunkwise",
        description="Exact, parallel, resumable processing of Zarr volumes.",
    )
    parser.add_argument(
        "--version", action="version", version=f"chunkwise {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run(commands)
    commands.add_parser("ops", help="list the operations and their parameters")
    info = commands.add_parser("info", help="describe a Zarr array and its provenance")
    info.add_argument("path")
    sample = commands.add_parser(
        "sample", help="write the generated CT-like sample volume"
    )
    sample.add_argument("output")
    sample.add_argument("--shape", type=_shape, default=(256, 256, 256))
    sample.add_argument("--chunks", type=_shape, default=(64, 64, 64))
    sample.add_argument("--seed", type=int, default=0)
    view = commands.add_parser(
        "view",
        help="open napari with the plugin docked and a volume (default: the sample)",
    )
    view.add_argument("path", nargs="?", help="Zarr array or OME-Zarr image to open")
    view.add_argument("--screenshot", help="run a Gaussian, compare, save a PNG, quit")
    demo = commands.add_parser(
        "demo",
        help="run a Gaussian filter over generated sample data into a scratch folder",
    )
    demo.add_argument("--shape", type=_shape, default=(256, 256, 256))
    return parser


def _run(args: argparse.Namespace) -> None:
    op = chain(*(parse(spec) for spec in args.op))
    if len(op.steps) == 1:
        op = op.steps[0]
    process(
        args.input,
        op,
        args.output,
        n_jobs=args.jobs,
        backend=args.backend,
        chunks=args.chunks,
        shards=args.shards,
        block=args.block,
        zarr_format=args.zarr_format,
        codec=args.codec,
        overwrite=args.overwrite,
        resume=args.resume,
        progress=not args.quiet,
        missing=args.missing_chunks,
    )
    print(f"wrote {args.output}")


def _ops() -> None:
    for name, cls in CATALOGUE.items():
        summary = (inspect.getdoc(cls) or "").splitlines()[0]
        print(f"{name}: {summary}")
        for param, annotation, default in describe(name):
            shown = (
                "required"
                if default is inspect.Parameter.empty
                else f"default {default!r}"
            )
            print(f"    {param} ({annotation}): {shown}")


def _info(path: str) -> None:
    array = open_source(path).array
    if not isinstance(array, zarr.Array):
        raise ChunkwiseError(f"{path} is not a Zarr array")
    metadata = array.metadata
    record = provenance(array)
    lines = {
        "shape": array.shape,
        "dtype": array.dtype,
        "chunks": array.chunks,
        "shards": array.shards,
        "zarr format": metadata.zarr_format,
        "codecs": ", ".join(str(c) for c in (*array.filters, *array.compressors))
        or "none",
    }
    for key, value in lines.items():
        print(f"{key}: {value}")
    if record:
        blocks = record.get("recipe", {}).get("output", {}).get("blocks", 0)
        print(f"status: {record.get('status')}")
        print(
            f"blocks complete: {int(Ledger.of(array).done(blocks).sum())} of {blocks}"
        )
        print("provenance:", json.dumps(record, indent=2))


def _demo(shape: Sequence[int]) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="chunkwise-demo-"))
    source = scratch / "sample.zarr"
    print(f"generating a {'x'.join(map(str, shape))} CT-like sample at {source}")
    write_synthetic_ct(source, shape)
    output = scratch / "gaussian.zarr"
    process(source, parse("gaussian:sigma=2"), output, progress=True)
    print(f"wrote {output}")
    print(f"inspect it with: chunkwise info {output}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            _run(args)
        elif args.command == "ops":
            _ops()
        elif args.command == "info":
            _info(args.path)
        elif args.command == "sample":
            write_synthetic_ct(
                args.output, args.shape, chunks=args.chunks, seed=args.seed
            )
            print(f"wrote {args.output}")
        elif args.command == "view":
            from chunkwise._napari._main import main as view

            view(args.path, args.screenshot)
        else:
            _demo(args.shape)
    except ChunkwiseError as error:
        print(f"chunkwise: error: {error}", file=sys.stderr)
        return 2
    except BlockError as error:
        print(f"chunkwise: run failed: {error}", file=sys.stderr)
        return 1
    except (Cancelled, KeyboardInterrupt):
        print(
            "chunkwise: cancelled; run again with --resume to finish", file=sys.stderr
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
