"""The ``chunkwise`` command: argument parsing and a progress bar over the public API.

Exit codes: 0 success, 2 bad usage or bad input, 1 failure during a run or an
unexpected error, 128 + the signal number when cancelled (130 Ctrl-C, 143 SIGTERM,
129 SIGHUP), 141 when the reader of the output went away (``chunkwise info | head``).
Every failure is one line on stderr, never a traceback (``CHUNKWISE_DEBUG=1`` shows
the traceback of an unexpected error).

The console script (`chunkwise._console`) takes over the stop signals before it
imports this module; the rest (argparse, zarr, numpy, scipy) loads inside `main`,
so a Ctrl-C at any moment of start-up is handled like one during a run.
"""

from __future__ import annotations

import os
import sys
import warnings

from chunkwise._signals import ignore_stop_signals, report_stop, signals_as_interrupts
from chunkwise.errors import BlockError, Cancelled, ChunkwiseError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any

    import zarr

    from chunkwise._options import RunOptions
    from chunkwise._recipe import Recipe

__all__ = ["main"]

#: ``sample`` and ``demo`` generate at most this many voxels (64 GiB of uint8).
MAX_SAMPLE_VOXELS = 2**36
#: Exit code of a command whose standard output was closed early: as a shell
#: reports a process killed by SIGPIPE.
EXIT_BROKEN_PIPE = 128 + 13


class _UsageError(Exception):
    """A bad command line, already worded for the user."""


def _one_line(text: object) -> str:
    lines = (line.strip() for line in str(text).splitlines())
    return "; ".join(line for line in lines if line)


_QUIET_LOKY = "ignore::UserWarning:joblib.externals.loky.backend.resource_tracker"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    code = _guarded_main(argv)
    if argv is None:
        _ignore_late_signals()
    return code


def _ignore_late_signals() -> None:
    """Once the command is over and has reported, signals are ignored.

    The interpreter takes about 0.15 s to shut down (joblib's and zarr's threads,
    then its modules), and part of that comes after Python hands signals back to
    their default action: a SIGTERM then killed a run that had finished, and its
    exit code said so. Ignoring them (SIG_IGN outlives that hand-back) lets the
    process end with the command's own exit code.
    """
    ignore_stop_signals()


def _guarded_main(argv: Sequence[str] | None) -> int:
    command: list[str] = []
    restore: Callable[[], None] = lambda: None  # noqa: E731
    # loky's resource tracker, a process of its own, reports the semaphores of a
    # killed or failed run as "leaked" while it cleans them up: noise, not news.
    warnings_option = os.environ.get("PYTHONWARNINGS", "")
    if _QUIET_LOKY not in warnings_option:
        os.environ["PYTHONWARNINGS"] = ",".join(
            filter(None, (warnings_option, _QUIET_LOKY))
        )
    if sys.stdout is None:
        # Started with standard output closed (`>&-`): what it prints goes nowhere.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    try:
        restore = signals_as_interrupts()
        code = _main(argv, command)
        sys.stdout.flush()
        return code
    except _UsageError as error:
        print(f"chunkwise: error: {error}", file=sys.stderr)
        return 2
    except ChunkwiseError as error:
        print(f"chunkwise: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except BlockError as error:
        print(f"chunkwise: run failed: {_one_line(error)}", file=sys.stderr)
        return 1
    except (Cancelled, KeyboardInterrupt) as stop:
        hint = "; run again with --resume to finish" if command == ["run"] else ""
        if command == ["batch"]:
            hint = "; run the batch again to resume it"
        return report_stop(stop, hint)
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as error:
        if os.environ.get("CHUNKWISE_DEBUG"):
            raise
        where = f"{error.filename}: " if error.filename else ""
        print(
            f"chunkwise: error: {where}{_one_line(error.strerror or error)}",
            file=sys.stderr,
        )
        return 1
    except Exception as error:
        if os.environ.get("CHUNKWISE_DEBUG"):
            raise
        print(
            f"chunkwise: internal error: {type(error).__name__}: {_one_line(error)} "
            "(set CHUNKWISE_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1
    finally:
        restore()


def _discard_stdout() -> None:
    """Send what is left for stdout to /dev/null (the reader went away).

    Python flushes stdout at exit and would report the broken pipe again; see
    "Note on SIGPIPE" in the documentation of the signal module.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file: nothing will flush to it
        pass


def _main(argv: Sequence[str] | None, command: list[str]) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version
        return _exit_code(done)
    command.append(args.command)
    try:
        with warnings.catch_warnings():
            # joblib's note on cancelled tasks when a run stops early: the one-line
            # message below says what happened.
            warnings.filterwarnings(
                "ignore", message=".*tasks have been successfully executed"
            )
            # ... and its note on tasks in flight that a failed run cancelled.
            warnings.filterwarnings(
                "ignore", message=".*tasks which were still being processed"
            )
            return _COMMANDS[args.command](args) or 0
    except SystemExit as done:  # the viewer without a display
        return _exit_code(done)


def _exit_code(done: SystemExit) -> int:
    if done.code is None or isinstance(done.code, int):
        return done.code or 0
    print(done.code, file=sys.stderr)
    return 1


# ----------------------------------------------------------------- the parser


def _parser() -> argparse.ArgumentParser:
    import argparse

    from chunkwise import __version__

    class Parser(argparse.ArgumentParser):
        """Reports a bad command line in one line, pointing at --help."""

        def error(self, message: str) -> None:  # type: ignore[override]
            raise _UsageError(f"{message} (see {self.prog} --help)")

    parser = Parser(
        prog="chunkwise",
        description="Exact, parallel, resumable processing of Zarr volumes.",
    )
    parser.add_argument(
        "--version", action="version", version=f"chunkwise {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(commands)
    _add_recipe(commands)
    _add_batch(commands)
    commands.add_parser("ops", help="list the operations and their parameters")
    info = commands.add_parser("info", help="describe a Zarr array and its provenance")
    info.add_argument("path")
    _add_timeout(info)
    _add_storage_options(info, "--storage-option", "PATH")
    verify = commands.add_parser(
        "verify",
        help="decode every chunk of an output's finished blocks (exit 1 if damaged)",
    )
    verify.add_argument("path")
    _add_storage_options(verify, "--storage-option", "PATH")
    sample = commands.add_parser(
        "sample", help="write the generated CT-like sample volume"
    )
    sample.add_argument("output")
    sample.add_argument("--shape", type=_volume_shape, default=(256, 256, 256))
    sample.add_argument("--chunks", type=_volume_chunks, default=(64, 64, 64))
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument(
        "--overwrite", action="store_true", help="replace an earlier sample there"
    )
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
    demo.add_argument("--shape", type=_volume_shape, default=(256, 256, 256))
    return parser


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
        "--recipe",
        metavar="RECIPE",
        help="run a recipe: a .json/.yaml file, or an output whose record is "
        "read ('-': standard input); the options below override its settings, "
        "--op replaces its operations",
    )
    _add_run_options(run)
    _add_timeout(run)
    _add_storage_options(run, "--storage-option", "INPUT and OUTPUT")
    _add_storage_options(run, "--input-storage-option", "INPUT (over the shared ones)")
    _add_storage_options(
        run, "--output-storage-option", "OUTPUT (over the shared ones)"
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_recipe(commands: argparse._SubParsersAction) -> None:
    recipe = commands.add_parser(
        "recipe",
        help="print the recipe that made an output (or check a recipe file)",
        description="Print the recipe of SOURCE, a chunkwise output (what made it) "
        "or a recipe file (checked), as JSON or YAML. Example: chunkwise recipe "
        "out.zarr > r.json, then chunkwise run --recipe r.json new.zarr new_out.zarr",
    )
    recipe.add_argument("source", help="a chunkwise output, or a .json/.yaml recipe")
    recipe.add_argument(
        "--format", choices=("json", "yaml"), default="json", help="default json"
    )
    _add_storage_options(recipe, "--storage-option", "SOURCE")


def _add_batch(commands: argparse._SubParsersAction) -> None:
    batch = commands.add_parser(
        "batch",
        help="run a recipe over many inputs",
        description="Run RECIPE over every INPUT (paths, URLs or quoted glob "
        "patterns), each into OUT_DIR/<its name>. Outputs already complete and made "
        "by the recipe from the same input are skipped, unfinished ones resumed; "
        "a failing input does not stop the others. Prints a table of what became "
        "of each; exit 1 if any failed. Example: chunkwise batch r.json "
        "'data/*.zarr' --out-dir results/",
    )
    batch.add_argument(
        "recipe",
        metavar="RECIPE",
        help="a .json/.yaml recipe, or an output whose recipe is read; --op and "
        "the options below override it",
    )
    batch.add_argument("inputs", nargs="+", metavar="INPUT")
    batch.add_argument(
        "--out-dir", required=True, metavar="DIR", help="where the outputs go"
    )
    _add_run_options(batch, batch=True)
    _add_timeout(batch)
    _add_storage_options(batch, "--storage-option", "the inputs and outputs")
    batch.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_run_options(parser: argparse.ArgumentParser, *, batch: bool = False) -> None:
    """The options of ``run`` after its paths, shared with ``batch``."""
    from chunkwise._checks import FORMATS
    from chunkwise._executors import BACKENDS
    from chunkwise._store import CODECS

    parser.add_argument(
        "--op",
        action="append",
        metavar="NAME:PARAM=VALUE,...",
        help="an operation (repeat to chain); per-axis values as 1/2/2; "
        "see 'chunkwise ops'. Without one, run converts: it copies INPUT into "
        "OUTPUT's format (an OME-Zarr pyramid, other chunks or codec)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="zarr: one array; ome-zarr: an OME-Zarr image with a pyramid built "
        "during the run (default: ome-zarr when OUTPUT ends in .ome.zarr)",
    )
    parser.add_argument(
        "--levels",
        type=_at_least(1, "a whole number"),
        help="pyramid levels, full resolution included (default: until the "
        "largest axis is at most 256)",
    )
    parser.add_argument(
        "--level",
        type=_at_least(0, "a level number"),
        help="level of an OME-Zarr input to process (default 0, full resolution)",
    )
    parser.add_argument(
        "--axes",
        metavar="AXES",
        help="one letter per input axis, t (time), c (channel), z, y, x (space): "
        "czyx, cyx, yxc (RGB). Operations act on the space axes, each channel and "
        "time point apart (default: the input's OME-Zarr axes, else space last)",
    )
    parser.add_argument(
        "--region",
        metavar="Z0:Z1,Y0:Y1,X0:X1",
        help="process only the output chunks over this region of the input (input "
        "voxels); finish the rest later with --resume; all: the whole input (over "
        "a recipe's region)",
    )
    for name, what in (
        ("scale", "the size of the input's voxels"),
        ("translation", "the world position of the input's first voxel"),
    ):
        parser.add_argument(
            f"--{name}",
            type=_numbers,
            metavar="Z,Y,X",
            help=f"with an OME-Zarr output: {what}, one number per axis (default: "
            "the input's metadata)",
        )
    parser.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        default=None,
        help="blocks at once (default: all cores; with --backend dask and a "
        "scheduler address, every worker thread)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="threading",
        help="where blocks run: threads here (default), loky processes here, or "
        "the workers of a dask cluster",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --backend dask: a scheduler address (tcp://host:8786), or "
        "'local' for a cluster of --jobs worker processes here (default: dask's "
        "scheduler-address setting, else local)",
    )
    parser.add_argument(
        "--chunks", type=_shape, help="output chunk shape, e.g. 64,64,64"
    )
    parser.add_argument(
        "--shards", type=_shape, help="Zarr v3 shard shape (multiple of chunks)"
    )
    parser.add_argument(
        "--block", type=_shape, help="work-block shape in output voxels"
    )
    parser.add_argument(
        "--zarr-format", type=int, choices=(2, 3), help="output format (default 3)"
    )
    parser.add_argument(
        "--codec",
        help=f"one of {', '.join(CODECS)}, optionally with a level: zstd:5 "
        "(default zstd, level 1)",
    )
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument(
        "--overwrite",
        action="store_true",
        help="replace outputs made by another recipe or from another input (those "
        "of this recipe are skipped or resumed)"
        if batch
        else "replace an existing output",
    )
    if not batch:
        existing.add_argument(
            "--resume", action="store_true", help="finish an interrupted run"
        )
    parser.add_argument(
        "--force",
        action="store_true",
        help="with --overwrite, also replace a Zarr array chunkwise did not make",
    )
    parser.add_argument(
        "--no-space-check",
        action="store_true",
        help="run even if the output looks too large for its disk",
    )
    parser.add_argument(
        "--missing-chunks",
        choices=("fill", "error"),
        default=None,
        help="an input chunk never written: the fill value (Zarr's rule) or an error "
        "(default: error for URLs, fill otherwise)",
    )


def _add_storage_options(
    parser: argparse.ArgumentParser, flag: str, where: str
) -> None:
    parser.add_argument(
        flag,
        action="append",
        type=_storage_option,
        metavar="KEY=VALUE",
        help=f"an fsspec option for the file system of {where} when a URL (repeat "
        "for more): endpoint_url=http://..., anon=true, profile=NAME, "
        'client_kwargs={"region_name":"eu-west-1"}; a VALUE that parses as JSON '
        "is JSON, except for secrets (key, secret, token...), which stay text. "
        "AWS_ENDPOINT_URL, AWS_PROFILE and AWS_ACCESS_KEY_ID... apply too",
    )


def _add_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="give up on an http(s) input that sends nothing for this long "
        "(default 60)",
    )


def _type_error(message: str) -> Exception:
    import argparse

    return argparse.ArgumentTypeError(message)


def _shape(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise _type_error(f"expected integers like 64,64,64, got {text!r}") from None
    if any(v < 1 for v in values):
        raise _type_error(f"expected positive integers, got {text!r}")
    return values


def _volume_chunks(text: str) -> tuple[int, ...]:
    values = _shape(text)
    if len(values) != 3:
        raise _type_error(
            f"expected 3 integers z,y,x like 64,64,64, got {len(values)} ({text!r})"
        )
    return values


def _volume_shape(text: str) -> tuple[int, ...]:
    import math

    values = _volume_chunks(text)
    if math.prod(values) > MAX_SAMPLE_VOXELS:
        raise _type_error(
            f"{'x'.join(map(str, values))} is {math.prod(values):.3g} voxels; the "
            f"sample is limited to 2**36 ({MAX_SAMPLE_VOXELS:.3g}, 64 GiB)"
        )
    return values


def _at_least(low: int, what: str) -> Callable[[str], int]:
    """A parser of whole numbers >= ``low`` (``what`` names them in errors)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise _type_error(f"expected {what} >= {low}, got {text!r}")
        return value

    return parse


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _type_error(
            f"expected a whole number of jobs, got {text!r}; negative counts back "
            "from all cores (-1: all)"
        ) from None
    if value == 0:
        raise _type_error("expected a non-zero number of jobs, got 0")
    return value


def _storage_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` as a key and its value: JSON where it parses, else text."""
    import json

    from chunkwise._secrets import is_secret

    key, equals, value = text.partition("=")
    key = key.strip()
    if not equals or not key:
        # Not the text itself: it may hold a secret.
        raise _type_error(
            "expected KEY=VALUE, such as anon=true or endpoint_url=http://host:9000"
        )
    if is_secret(key):
        return key, value
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _seconds(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise _type_error(f"expected a number of seconds, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise _type_error(f"expected a positive number of seconds, got {text!r}")
    return value


def _numbers(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise _type_error(f"expected numbers like 1,0.5,0.5, got {text!r}") from None


# --------------------------------------------------------------- the commands


def _quiet_distributed() -> None:
    """Silence distributed's logs: the command says what went wrong in one line.

    distributed logs a lost scheduler with tracebacks, through loggers it gives
    their own levels when imported.
    """
    import contextlib
    import logging

    with contextlib.suppress(ImportError):
        import distributed  # noqa: F401  (configures its loggers)
    for name in [*logging.root.manager.loggerDict, "distributed"]:
        if name == "distributed" or name.startswith("distributed."):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def _machine_options(
    args: argparse.Namespace, storage_options: Any, **settings: Any
) -> RunOptions:
    """The options of ``run`` and ``batch`` of this machine, not of a recipe."""
    from chunkwise._options import RunOptions

    return RunOptions(
        n_jobs=args.jobs,
        backend=args.backend,
        scheduler=args.scheduler,
        block=args.block,
        overwrite=args.overwrite,
        force=args.force,
        check_space=not args.no_space_check,
        missing=args.missing_chunks,
        timeout=args.timeout,
        storage_options=storage_options,
        **settings,
    )


def _run(args: argparse.Namespace) -> None:
    from chunkwise._run import process
    from chunkwise._secrets import redact

    if args.output.lower().startswith("memory://"):
        raise ChunkwiseError(
            "a memory:// output vanishes when the command exits; write to a path"
        )
    if args.force and not args.overwrite:
        raise ChunkwiseError("--force only applies with --overwrite")
    if args.backend == "dask":
        _quiet_distributed()
    recipe, overrides = _recipe_and_overrides(
        args, dict(args.storage_option or []) or None
    )
    source, storage_options = _sides(args)
    machine = _machine_options(args, storage_options, resume=args.resume)
    options = recipe.options(machine, **overrides)
    process(source, recipe.operation, args.output, options, progress=not args.quiet)
    print(f"wrote {redact(args.output)}")


def _recipe_and_overrides(
    args: argparse.Namespace, storage_options: dict | None = None
) -> tuple[Recipe, dict]:
    """The recipe of ``run`` or ``batch``, and the settings given over it.

    ``--recipe`` (none: a recipe of the ``--op`` operations alone), its operations
    replaced by ``--op`` where given; each option given overrides the recipe's
    setting, and ``--region all`` drops its region.
    """
    import dataclasses

    from chunkwise._recipe import SETTINGS, Recipe
    from chunkwise.ops import chain, parse

    recipe = _read_recipe(args.recipe, storage_options) if args.recipe else None
    if args.op or recipe is None:
        op = chain(*(parse(spec) for spec in args.op or ["copy"]))
        op = op.steps[0] if len(op.steps) == 1 else op
        recipe = (
            Recipe(operation=op)
            if recipe is None
            else dataclasses.replace(recipe, operation=op)
        )
    overrides = {
        name: getattr(args, name)
        for name in SETTINGS
        if getattr(args, name) is not None
    }
    if overrides.get("region") == "all":
        overrides["region"] = None
    return recipe, overrides


def _read_recipe(source: str, storage_options: dict | None = None) -> Recipe:
    """A recipe from a file, an output, or standard input (``-``)."""
    from chunkwise._recipe import Recipe

    if source == "-":
        return Recipe.from_text(sys.stdin.read(), where="recipe <stdin>")
    return Recipe.load(source, storage_options=storage_options)


def _recipe(args: argparse.Namespace) -> None:
    recipe = _read_recipe(args.source, dict(args.storage_option or []) or None)
    sys.stdout.write(recipe.to_text(args.format))


def _batch(args: argparse.Namespace) -> int:
    import time

    from chunkwise._batch import BatchResult, batch_inputs, iter_batch, summary_table

    if args.force and not args.overwrite:
        raise ChunkwiseError("--force only applies with --overwrite")
    if args.backend == "dask":
        _quiet_distributed()
    recipe, overrides = _recipe_and_overrides(
        args, dict(args.storage_option or []) or None
    )
    options = _machine_options(args, dict(args.storage_option or []) or None)

    current: list[tuple[str, str, float]] = []

    def announce(index: int, source: str, out: str) -> None:
        current[:] = [(source, out, time.monotonic())]
        if not args.quiet:
            print(f"[{index + 1}/{count}] {source} -> {out}", file=sys.stderr)

    sources = batch_inputs(args.inputs, args.out_dir)
    count = len(sources)
    runs = iter_batch(
        recipe, sources, args.out_dir, options, progress=not args.quiet,
        on_start=announce, **overrides,
    )  # fmt: skip
    results: list[BatchResult] = []
    try:
        results.extend(runs)
    except (KeyboardInterrupt, Cancelled):
        # What was done stays done: say so before the stop is reported.
        stopped = [
            BatchResult(source, out, "cancelled", time.monotonic() - began)
            for source, out, began in current
            if all(result.input != source for result in results)
        ]
        print(summary_table([*results, *stopped]))
        raise
    print(summary_table(results))
    failed = sum(result.failed for result in results)
    if failed:
        print(
            f"chunkwise: {failed} of {len(results)} inputs failed; run the batch "
            "again to retry them (finished outputs are skipped)",
            file=sys.stderr,
        )
    return 1 if failed else 0


def _sides(args: argparse.Namespace) -> tuple[object, dict | None]:
    """The input to pass on, and the storage options of the run.

    With other options for the input than for the output, the input is opened
    here with its own, and the run's options go to the output alone.
    """
    from chunkwise._remote import is_url
    from chunkwise._source import open_source

    shared = dict(args.storage_option or [])
    mine = dict(args.input_storage_option or [])
    theirs = dict(args.output_storage_option or [])
    for flag, given, path in (
        ("--input-storage-option", mine, args.input),
        ("--output-storage-option", theirs, args.output),
    ):
        if given and not is_url(path):
            raise ChunkwiseError(
                f"{flag} applies to a URL (s3://, gs://...), and {path} is none"
            )
    if not (mine or theirs):
        return args.input, shared or None
    inputs, outputs = shared | mine, shared | theirs
    if not is_url(args.input):
        return args.input, outputs
    if not is_url(args.output) or inputs == outputs:
        return args.input, inputs
    source = open_source(
        args.input,
        missing=args.missing_chunks,
        timeout=args.timeout,
        level=args.level,
        storage_options=inputs,
    )
    return source, outputs or None


def _ops(args: argparse.Namespace) -> None:
    import inspect

    from chunkwise.ops import CATALOGUE, describe

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


def _info(args: argparse.Namespace) -> None:
    import json

    import zarr

    from chunkwise._output import effective_status
    from chunkwise._remote import check_storage_options
    from chunkwise._source import open_source
    from chunkwise._store import Ledger, provenance

    path = args.path
    options = dict(args.storage_option or []) or None
    source = open_source(
        path,
        timeout=args.timeout,
        storage_options=check_storage_options(options, path),
    )
    array = source.array
    if not isinstance(array, zarr.Array):
        raise ChunkwiseError(f"{path} is not a Zarr array")
    metadata = array.metadata
    record = provenance(array)
    if source.image is not None:
        # An OME-Zarr image: its group holds the run record, and its levels.
        parent = array.store_path.path.rpartition("/")[0]
        group = zarr.open_group(store=array.store_path.store, path=parent, mode="r")
        record = provenance(group) or record
        _print_levels(group)
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
        recipe = record.get("recipe")
        output = recipe.get("output") if isinstance(recipe, dict) else None
        blocks = output.get("blocks") if isinstance(output, dict) else None
        blocks = blocks if isinstance(blocks, int) and blocks >= 0 else 0
        print(f"status: {effective_status(record)}")
        print(
            f"blocks complete: {int(Ledger.of(array).done(blocks).sum())} of {blocks}"
        )
        print("provenance:", json.dumps(record, indent=2))


def _print_levels(group: zarr.Group) -> None:
    from chunkwise._ngff import read_multiscale

    image = read_multiscale(group)
    if image is None:
        return
    axes = ",".join(a["name"] for a in image.axes)
    name = f" {image.name!r}" if image.name else ""
    print(f"OME-Zarr image{name}, NGFF {image.version}, axes {axes}")
    for number, level in enumerate(image.levels):
        try:
            shape = str(group[level.path].shape)
        except KeyError:
            shape = "missing"
        scale = ", ".join(f"{v:g}" for v in level.scale)
        print(f"level {number} ({level.path}): shape {shape}, scale {scale}")


def _verify(args: argparse.Namespace) -> int:
    from chunkwise._verify import verify

    problems = verify(
        args.path, storage_options=dict(args.storage_option or []) or None
    )
    for problem in problems:
        print(problem)
    if problems:
        print(
            f"chunkwise: {args.path}: {len(problems)} finished blocks have damaged "
            "chunks; run again with --resume to compute them again",
            file=sys.stderr,
        )
        return 1
    print(f"{args.path}: every chunk of every finished block decodes")
    return 0


def _sample(args: argparse.Namespace) -> None:
    from chunkwise._sample import write_synthetic_ct

    write_synthetic_ct(
        args.output,
        args.shape,
        chunks=args.chunks,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    print(f"wrote {args.output}")


def _view(args: argparse.Namespace) -> None:
    from chunkwise._napari._main import main as view

    view(args.path, args.screenshot)


def _demo(args: argparse.Namespace) -> None:
    import tempfile
    from pathlib import Path

    from chunkwise._run import process
    from chunkwise._sample import write_synthetic_ct
    from chunkwise.ops import parse

    shape = args.shape
    scratch = Path(tempfile.mkdtemp(prefix="chunkwise-demo-"))
    source = scratch / "sample.zarr"
    print(f"generating a {'x'.join(map(str, shape))} CT-like sample at {source}")
    write_synthetic_ct(source, shape)
    output = scratch / "gaussian.zarr"
    process(source, parse("gaussian:sigma=2"), output, progress=True)
    print(f"wrote {output}")
    print(f"inspect it with: chunkwise info {output}")


_COMMANDS: dict[str, Callable[[argparse.Namespace], int | None]] = {
    "run": _run,
    "recipe": _recipe,
    "batch": _batch,
    "ops": _ops,
    "info": _info,
    "verify": _verify,
    "sample": _sample,
    "view": _view,
    "demo": _demo,
}


if __name__ == "__main__":
    sys.exit(main())
