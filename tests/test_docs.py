"""The documentation pages (docs/*.md) stay true: their code runs or at least compiles,
and their command lines parse.

Conventions, in plain Markdown as mkdocs renders it:

- Every ```python block compiles.
- A ```python block titled ``Runs on a laptop…`` (```` ```python title="Runs on a
  laptop" ````; mkdocs-material shows the title) runs, as a script's main module, in
  a temporary folder holding a small generated ``in.zarr``. Every other ``*.zarr`` it
  writes there must be complete and equal scipy.ndimage on the whole array.
- A block that makes a dask-jobqueue cluster (``cluster = SLURMCluster(...)``) runs up
  to that line: the cluster is made, with its scheduler on the loopback, and never
  submits a job. Its job script must ask for what the block's keywords ask for.
- Every ``chunkwise …`` line of a ```bash block is parsed by the command's own parser
  (its ``--op`` values by `chunkwise.ops.parse`), every ``dask scheduler`` and
  ``dask worker`` line by dask's, and every ``DASK_…`` variable must name a dask
  setting. Nothing is run.
- Every ```yaml block is a dask configuration whose settings exist.
"""

from __future__ import annotations

import ast
import math
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import dask
import numpy as np
import pytest
import yaml
import zarr
from scipy import ndimage

import chunkwise
from chunkwise import cli, ops

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md"))
RUNS_HERE = "Runs on a laptop"
JOBQUEUE_CLUSTERS = ("SLURMCluster", "PBSCluster")

pytestmark = pytest.mark.filterwarnings(
    # distributed's HTTP server starts on 8787 even without a dashboard, and moves to
    # a free port when another cluster on this machine holds it...
    "ignore:Port 8787 is already in use:UserWarning",
    # ... leaving the socket that failed to bind unclosed (distributed/node.py,
    # start_http_server).
    "ignore:unclosed <socket.socket:ResourceWarning",
)


@dataclass(frozen=True)
class Block:
    """A fenced code block of a page."""

    page: Path
    line: int
    language: str
    title: str
    code: str

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


def read_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, dedented to their fence."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        end = i + 1
        while end < len(lines) and not _closes(lines[end], fence):
            end += 1
        info = opening["info"].strip()
        title = re.search(r'title="([^"]*)"', info)
        found.append(
            Block(
                page=page,
                line=i + 1,
                language=info.split()[0].lower() if info else "",
                title=title[1] if title else "",
                code="\n".join(line[indent:] for line in lines[i + 1 : end]) + "\n",
            )
        )
        i = end + 1
    return found


def _closes(line: str, fence: str) -> bool:
    text = line.strip()
    return len(text) >= len(fence) and text == fence[0] * len(text)


BLOCKS = [block for page in PAGES for block in read_blocks(page)]


def blocks_in(*languages: str) -> list[Block]:
    return [block for block in BLOCKS if block.language in languages]


def params(blocks: list[Block]) -> list:
    return [pytest.param(block, id=str(block)) for block in blocks]


def test_the_conventions_find_what_the_cluster_page_holds():
    """A change of syntax must not make the tests below silently check nothing."""
    page = [b for b in BLOCKS if b.page.name == "cluster.md"]
    python = [b for b in page if b.language == "python"]
    assert len(python) >= 6
    assert sum(b.title.startswith(RUNS_HERE) for b in python) >= 2
    assert sum("SLURMCluster(" in b.code for b in python) == 1
    assert sum("PBSCluster(" in b.code for b in python) == 1
    lines = [c for b in page if b.language == "bash" for c in commands(b)]
    assert sum(c[0] == "chunkwise" for _, c in lines) >= 6
    assert sum(c[0] == "dask" for _, c in lines) >= 2
    assert any(b.language == "yaml" for b in page)


# ------------------------------------------------------------------------ python


@pytest.mark.parametrize("block", params(blocks_in("python", "py")))
def test_python_blocks_compile(block):
    compile(block.code, str(block), "exec")


SHAPE = (40, 48, 56)


@pytest.fixture
def laptop(tmp_path, monkeypatch):
    """A folder with ``in.zarr``, as the laptop examples expect; its data."""
    data = np.random.default_rng(13).integers(0, 256, SHAPE, dtype=np.uint8)
    zarr.create_array(
        tmp_path / "in.zarr", shape=SHAPE, chunks=(16, 16, 16), dtype=np.uint8
    )[:] = data
    # Local workers start in the driver's working directory, as the page says.
    monkeypatch.chdir(tmp_path)
    return tmp_path, data


@pytest.mark.slow
@pytest.mark.parametrize(
    "block",
    params([b for b in blocks_in("python") if b.title.startswith(RUNS_HERE)]),
)
def test_laptop_blocks_run_and_equal_scipy(block, laptop):
    folder, data = laptop
    exec(compile(block.code, str(block), "exec"), {"__name__": "__main__"})
    outputs = sorted(p for p in folder.glob("*.zarr") if p.name != "in.zarr")
    assert outputs, f"{block} wrote no output next to in.zarr"
    for path in outputs:
        array = zarr.open_array(path, mode="r")
        record = dict(array.attrs["chunkwise"])
        assert record["status"] == "complete", path.name
        expected = scipy_reference(record["operation"], data)
        np.testing.assert_array_equal(array[:], expected, err_msg=path.name)


def scipy_reference(operation: dict, data: np.ndarray) -> np.ndarray:
    """scipy.ndimage on the whole array, for the operations the pages run."""
    settings = dict(operation)
    name = settings.pop("op")
    # Provenance leaves out what is at its default.
    plain = all(settings.pop(key, None) in (None, 0) for key in ("order", "radius"))
    if name == "gaussian" and plain and settings.pop("dtype", None) is None:
        return ndimage.gaussian_filter(data, **settings)
    if name == "median" and settings.pop("footprint", None) is None:
        return ndimage.median_filter(data, **settings)
    pytest.fail(f"no scipy reference for {operation}: add one to scipy_reference")


def jobqueue_blocks() -> list[Block]:
    return [
        block
        for block in blocks_in("python")
        if any(f"{name}(" in block.code for name in JOBQUEUE_CLUSTERS)
    ]


def _until_cluster(code: str) -> tuple[ast.Module, str, ast.Call]:
    """The block up to its ``name = SLURMCluster(...)`` line, the name, the call."""
    tree = ast.parse(code)
    for i, statement in enumerate(tree.body):
        if (
            isinstance(statement, ast.Assign)
            and isinstance(statement.value, ast.Call)
            and isinstance(statement.value.func, ast.Name)
            and statement.value.func.id in JOBQUEUE_CLUSTERS
        ):
            [target] = statement.targets
            assert isinstance(target, ast.Name)
            return ast.Module(tree.body[: i + 1], []), target.id, statement.value
    raise AssertionError("the cluster is not made in a top-level assignment")


def _expected_lines(kind: str, asked: dict) -> list[str]:
    """What the job script must say for each keyword of the block."""
    asked = dict(asked)
    processes = asked.get("processes", 1)
    expected = []
    for key, value in asked.items():
        if key == "cores":
            if kind == "SLURMCluster":
                expected.append(f"#SBATCH --cpus-per-task={value}")
            else:
                expected.append(f"select=1:ncpus={value}")
            expected.append(f"--nthreads {value // processes}")
        elif key == "processes":
            expected.append(f"--nworkers {value}")
        elif key == "memory":
            gib = math.ceil(dask.utils.parse_bytes(value) / 2**30)
            expected.append(
                f"#SBATCH --mem={gib}G" if kind == "SLURMCluster" else f":mem={gib}GB"
            )
        elif key == "queue":
            expected.append(f"-{'p' if kind == 'SLURMCluster' else 'q'} {value}")
        elif key == "account":
            expected.append(f"-A {value}")
        elif key == "walltime":
            expected.append(
                f"#SBATCH -t {value}"
                if kind == "SLURMCluster"
                else f"#PBS -l walltime={value}"
            )
        elif key == "local_directory":
            expected.append(f"--local-directory {value}")
        else:
            pytest.fail(f"say what the job script holds for {key}= in _expected_lines")
    return expected


@pytest.mark.parametrize("block", params(jobqueue_blocks()))
def test_jobqueue_clusters_ask_for_what_the_page_says(block, monkeypatch, tmp_path):
    jobqueue = pytest.importorskip(
        "dask_jobqueue",
        reason="dask-jobqueue is not installed (pip install dask-jobqueue): the "
        "SLURM and PBS examples are only compiled",
    )

    async def never_submit(self, script_filename):
        raise AssertionError("a test tried to submit a batch job")

    monkeypatch.setattr(jobqueue.core.Job, "_submit_job", never_submit)
    monkeypatch.chdir(tmp_path)
    head, name, call = _until_cluster(block.code)
    kind = call.func.id
    asked = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    section = f"jobqueue.{kind.removesuffix('Cluster').lower()}"
    namespace: dict = {"__name__": "__main__"}
    # The scheduler dask-jobqueue starts in this process: on the loopback, with its
    # dashboard on any free port.
    loopback = {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}
    with dask.config.set({f"{section}.scheduler-options": loopback}):
        exec(compile(head, str(block), "exec"), namespace)
    cluster = namespace[name]
    try:
        script = cluster.job_script()
        assert not cluster.workers, "a job was started"
    finally:
        cluster.close()
    # What the keywords ask for, and the directives the page's comments quote.
    quoted = re.findall(r"(#(?:SBATCH|PBS) [^#\n]*?)\s*$", block.code, re.MULTILINE)
    for line in _expected_lines(kind, asked) + quoted:
        assert line in script, f"{block}: {line!r} not in\n{script}"


def test_job_script_expectations_cover_every_keyword():
    asked = {"walltime": "06:00:00", "memory": "128GiB"}
    assert _expected_lines("SLURMCluster", asked) == [
        "#SBATCH -t 06:00:00",
        "#SBATCH --mem=128G",
    ]
    # A keyword the page adds later needs its own expectation.
    with pytest.raises(pytest.fail.Exception, match="job_extra_directives"):
        _expected_lines("SLURMCluster", {"job_extra_directives": ["--gres=gpu:1"]})


# -------------------------------------------------------------------------- bash


def commands(block: Block) -> list[tuple[str, list[str]]]:
    """The commands of a bash block, continuation lines joined, comments dropped."""
    joined = block.code.replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            found.append((f"{block} command {len(found) + 1}", words))
    return found


def _split_env(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """``export A=1`` or ``A=1 command ...``: the variables, and the command."""
    if words[0] == "export":
        words = words[1:]
    env = {}
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        name, _, value = words[0].partition("=")
        env[name] = value
        words = words[1:]
    return env, words


COMMANDS = [
    pytest.param(where, words, id=where)
    for block in blocks_in("bash", "sh", "console")
    for where, words in commands(block)
]


@pytest.mark.parametrize(("where", "words"), COMMANDS)
def test_command_lines_parse(where, words):
    env, command = _split_env(words)
    for name, value in env.items():
        if name.startswith("DASK_"):
            check_dask_settings(dask.config.collect_env({name: value}), where)
    if not command or command[0] not in ("chunkwise", "dask"):
        return
    if command[0] == "chunkwise":
        try:
            args = cli._parser().parse_args(command[1:])
        except cli._UsageError as error:
            pytest.fail(f"{where}: {shlex.join(command)}: {error}")
        for spec in getattr(args, "op", None) or []:
            try:
                ops.parse(spec)
            except chunkwise.ChunkwiseError as error:
                pytest.fail(f"{where}: --op {spec}: {error}")
    else:
        parse_dask_command(command, where)


def parse_dask_command(command: list[str], where: str) -> None:
    """Parse ``dask scheduler|worker ...`` with dask's own (click) parser."""
    import click
    from distributed.cli import dask_scheduler, dask_worker

    mains = {"scheduler": dask_scheduler.main, "worker": dask_worker.main}
    assert command[1] in mains, f"{where}: no check for 'dask {command[1]}' yet"
    try:
        mains[command[1]].make_context(f"dask {command[1]}", command[2:])
    except click.UsageError as error:
        pytest.fail(f"{where}: {shlex.join(command)}: {error.format_message()}")


#: Settings read by distributed and chunkwise that dask's defaults do not list.
NO_DEFAULT = {"scheduler-address"}


def check_dask_settings(config: dict, where: str) -> None:
    """Every setting in ``config`` (nested) is one dask knows."""
    pytest.importorskip("distributed", reason="its settings need dask.distributed")
    missing = object()
    for key in _flatten(config):
        known = key.replace("_", "-") in NO_DEFAULT
        assert known or dask.config.get(key, missing) is not missing, (
            f"{where}: {key} is not a dask setting"
        )


def _flatten(config: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        keys += _flatten(value, f"{name}.") if isinstance(value, dict) else [name]
    return keys


def test_setting_checks_would_notice_a_misspelt_variable():
    with pytest.raises(AssertionError, match="not a dask setting"):
        check_dask_settings(
            dask.config.collect_env({"DASK_DISTRIBUTED__COMM__TIMEOUT": "1s"}), "x"
        )


def test_command_checks_would_notice_an_unknown_option():
    with pytest.raises(pytest.fail.Exception, match="unrecognized arguments"):
        test_command_lines_parse("x", ["chunkwise", "run", "a", "b", "--jbos", "2"])


# -------------------------------------------------------------------------- yaml


@pytest.mark.parametrize("block", params(blocks_in("yaml", "yml")))
def test_yaml_blocks_are_dask_settings_that_exist(block):
    check_dask_settings(yaml.safe_load(block.code), str(block))


# ------------------------------------------------------------ claims on behaviour


@pytest.mark.slow
def test_dask_scheduler_address_is_used_without_a_scheduler(laptop, monkeypatch):
    """``--backend dask`` with no ``--scheduler`` goes to DASK_SCHEDULER_ADDRESS."""
    distributed = pytest.importorskip("distributed", reason="needs dask.distributed")
    folder, data = laptop
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        dask.config.refresh()
        try:
            run = chunkwise.iter_process(
                folder / "in.zarr",
                ops.median(size=3),
                folder / "o.zarr",
                backend="dask",
            )
            assert run.executor.address == cluster.scheduler_address
            for _ in run:
                pass
        finally:
            monkeypatch.delenv("DASK_SCHEDULER_ADDRESS")
            dask.config.refresh()
    np.testing.assert_array_equal(
        zarr.open_array(folder / "o.zarr")[:], ndimage.median_filter(data, 3)
    )
