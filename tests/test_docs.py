"""The documentation pages (docs/*.md) stay true: their code runs or at least compiles,
their command lines parse, the site builds strictly and its figures are up to date.

Every page but docs/cluster.md is a session, as a reader would follow it: its
```python and ```bash blocks run in order, in one temporary folder, the Python blocks
in one namespace, and each ``chunkwise …`` line through the command's own entry
point (any other command fails the test). A block titled with a file name
(```` ```yaml title="recipe.yaml" ````) is written to that file in the folder, in its
turn. A block titled ``Not run: <reason>`` is only compiled or parsed, for the
reasons in `NOT_RUN`. Every complete output a page writes must equal numpy or scipy
on its whole input (`scipy_reference`).

docs/cluster.md needs a cluster, and keeps these conventions, in plain Markdown as
mkdocs renders it:

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
import html
import importlib.util
import json
import math
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
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
PAGES = sorted((ROOT / "docs").rglob("*.md"))
#: Pages whose blocks need a cluster, checked by the conventions above only.
CLUSTER_PAGES = ("cluster.md",)
#: Why a block of a session page may be left unrun (its title says which).
NOT_RUN = ("Not run: needs a cluster", "Not run: installs into .venv")
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


def session_pages() -> list[Path]:
    return [page for page in PAGES if page.name not in CLUSTER_PAGES]


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
    """numpy or scipy.ndimage on the whole array, for the operations the pages run."""
    settings = dict(operation)
    name = settings.pop("op")
    if name == "chain":
        for step in settings["steps"]:
            data = scipy_reference(step, data)
        return data
    if name == "clip":
        lo, hi = settings.pop("lo"), settings.pop("hi")
        assert lo == int(lo) and hi == int(hi), "the pages clip with whole numbers"
        return np.clip(data, int(lo), int(hi))
    if name == "upsample" and not settings.get("order"):
        factor = settings["factor"]
        for axis, k in enumerate(_per_axis(factor, data.ndim)):
            data = data.repeat(k, axis)
        return data
    if name == "downsample" and settings.get("method", "mean") == "mean":
        assert set(settings) <= {"factor", "method"}, "only the default conventions"
        return window_means(data, _per_axis(settings["factor"], data.ndim))
    if name == "convolve":
        kernel = np.asarray(settings.pop("kernel"))
        dtype = settings.pop("dtype", None) or data.dtype
        return ndimage.convolve(data, kernel, output=np.dtype(dtype), **settings)
    # Provenance leaves out what is at its default.
    plain = all(settings.pop(key, None) in (None, 0) for key in ("order", "radius"))
    if name == "gaussian" and plain and settings.pop("dtype", None) is None:
        return ndimage.gaussian_filter(data, **settings)
    if name == "median" and settings.pop("footprint", None) is None:
        return ndimage.median_filter(data, **settings)
    pytest.fail(f"no scipy reference for {operation}: add one to scipy_reference")


def _per_axis(value, ndim: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * ndim


def window_means(data: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Downsample's definition: the mean of each window, a partial window at the
    far edge over its voxels only, rounded half to even."""
    sums, counts = data.astype(np.float64), np.ones(data.shape)
    for axis, (n, k) in enumerate(zip(data.shape, factors, strict=True)):
        starts = np.arange(0, n, k)
        sums = np.add.reduceat(sums, starts, axis=axis)
        counts = np.add.reduceat(counts, starts, axis=axis)
    return np.round(sums / counts).astype(data.dtype)


def test_references_follow_the_definitions():
    data = np.array([[1, 2, 9], [3, 4, 8]], np.uint8)
    assert window_means(data, (2, 2)).tolist() == [[2, 8]]
    up = scipy_reference({"op": "upsample", "factor": 2, "order": 0}, data[:1, :2])
    assert up.tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]
    chain = {"op": "chain", "steps": [{"op": "clip", "lo": 2.0, "hi": 8.0}]}
    assert scipy_reference(chain, data).tolist() == [[2, 2, 8], [3, 4, 8]]


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


#: The command lines of the cluster pages: the other pages' commands run (below).
COMMANDS = [
    pytest.param(where, words, id=where)
    for block in blocks_in("bash", "sh", "console")
    if block.page.name in CLUSTER_PAGES
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


@pytest.mark.parametrize(
    "block",
    params([b for b in blocks_in("yaml", "yml") if b.page.name in CLUSTER_PAGES]),
)
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


# -------------------------------------------------------------- session pages

RUNNABLE = ("python", "py", "bash", "sh", "console")
#: A block titled with a file name (```yaml title="recipe.yaml"```) is that file: the
#: session writes it into its folder for the blocks after it.
FILE_TITLE = re.compile(r"[\w.-]+\.\w+")


def session_blocks() -> list[Block]:
    return [
        block
        for page in session_pages()
        for block in read_blocks(page)
        if block.language in RUNNABLE or FILE_TITLE.fullmatch(block.title)
    ]


def _not_run(block: Block) -> bool:
    if not block.title.startswith("Not run"):
        return False
    assert block.title in NOT_RUN, f"{block}: say why it is not run, as in NOT_RUN"
    return True


@dataclass
class Session:
    """One page followed as a reader would: a folder, a namespace, blocks run."""

    folder: Path
    namespace: dict = field(default_factory=lambda: {"__name__": "__main__"})
    done: int = 0
    failed: str = ""
    checked: dict = field(default_factory=dict)

    def run_through(self, block: Block, capsys) -> None:
        """Run the page's blocks up to ``block``, in order; check their outputs."""
        blocks = [b for b in session_blocks() if b.page == block.page]
        target = blocks.index(block)
        while self.done <= target:
            current = blocks[self.done]
            self.done += 1
            if self.failed:
                pytest.fail(f"{current} not run: the page's {self.failed} failed")
            if _not_run(current):
                continue
            try:
                self._run(current, capsys)
                self._check_outputs(current)
            except BaseException:
                self.failed = str(current)
                raise

    def _run(self, block: Block, capsys) -> None:
        if FILE_TITLE.fullmatch(block.title):
            (self.folder / block.title).write_text(block.code, encoding="utf-8")
            return
        if block.language in ("python", "py"):
            exec(compile(block.code, str(block), "exec"), self.namespace)
            return
        for where, words in commands(block):
            env, command = _split_env(words)
            assert not env and command[:1] == ["chunkwise"], (
                f"{where}: only chunkwise commands run in the tests; mark the block "
                "as not run or add a way to run it"
            )
            code = cli.main(command[1:])
            printed = capsys.readouterr()
            assert code == 0, f"{where}: exit code {code}\n{printed.err}"

    def _check_outputs(self, block: Block) -> None:
        """Every complete output in the folder equals numpy or scipy on its input."""
        for path in sorted(self.folder.rglob("*.zarr")):
            record = _record(path)
            if record is None or record.get("status") != "complete":
                continue
            key = (record["run_id"], record.get("finished"))
            if self.checked.get(path) == key:
                continue
            data = zarr.open_array(record["input"]["location"], mode="r")[:]
            expected = scipy_reference(record["operation"], data)
            np.testing.assert_array_equal(
                zarr.open_array(path, mode="r")[:], expected, err_msg=f"{block}: {path}"
            )
            self.checked[path] = key


def _record(path: Path) -> dict | None:
    """The chunkwise run record of a Zarr array, None for anything else."""
    try:
        node = zarr.open(path, mode="r")
    except Exception:
        return None
    if not isinstance(node, zarr.Array):
        assert "chunkwise" not in node.attrs, f"{path}: check OME-Zarr outputs too"
        return None
    record = node.attrs.get("chunkwise")
    return dict(record) if record else None


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    made: dict[Path, Session] = {}

    def of(page: Path) -> Session:
        if page not in made:
            made[page] = Session(tmp_path_factory.mktemp(page.stem))
        return made[page]

    return of


@pytest.mark.slow
# A block marked not run is no test of its own (test_session_pages_run_what_they_show
# checks what it names); the session steps over it.
@pytest.mark.parametrize(
    "block", params([block for block in session_blocks() if not _not_run(block)])
)
def test_snippet_runs(block, sessions, monkeypatch, capsys):
    session = sessions(block.page)
    monkeypatch.chdir(session.folder)
    session.run_through(block, capsys)


def test_session_pages_run_what_they_show():
    """Each session page runs snippets, and leaves out only what NOT_RUN allows."""
    blocks = session_blocks()
    assert {b.page.name for b in blocks} >= {
        "getting-started.md",
        "how-it-works.md",
        "tutorial.md",
        "napari.md",
        "recipes.md",
    }
    not_run = [b for b in blocks if _not_run(b)]
    assert len(not_run) <= 2, [str(b) for b in not_run]
    for block in not_run:
        if block.title == "Not run: installs into .venv":
            # They are the repository's own scripts; scripts/test.sh is CI itself.
            for where, words in commands(block):
                assert words[0] == "bash", where
                assert (ROOT / words[1]).is_file(), f"{where}: no {words[1]}"


# ---------------------------------------------------------------- the site


def test_site_builds_strictly(tmp_path):
    """What ``bash scripts/docs.sh`` runs, into a temporary folder."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])
        ),
        "NO_MKDOCS_2_WARNING": "1",
        # mkdocs' plugins warn about their own dependencies; not ours to fix.
        "PYTHONWARNINGS": "ignore",
    }
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-4000:]
    operations = (site / "operations" / "index.html").read_text(encoding="utf-8")
    text = html.unescape(re.sub(r"<[^>]+>", "", operations))
    text = " ".join(text.split())
    for name in ops.CATALOGUE:
        assert f'id="{name}"' in operations, f"{name} is not in the operations page"
        entry = ops.entry(name)
        said = " ".join(entry.exactness.replace("``", "").split())
        assert said in text, f"{name}'s exactness is not on the operations page"
        if entry.labels is not None:
            assert f"{entry.labels.value} them" in text.lower()
    commands_page = (site / "cli" / "index.html").read_text(encoding="utf-8")
    for action in cli._parser()._subparsers._group_actions:
        for name in action.choices:
            assert f"chunkwise {name}" in commands_page
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for name in set(chunkwise.__all__) - {"__version__", "ops"}:
        assert 'id="chunkwise.' in api and f">{name}<" in api, name
    for image in re.findall(r'<img[^>]*src="([^"]+)"', _all_html(site)):
        if not image.startswith(("http", "data:")):
            assert list(site.rglob(Path(image).name)), f"missing image {image}"


def _all_html(site: Path) -> str:
    return "".join(p.read_text(encoding="utf-8") for p in site.rglob("*.html"))


# ------------------------------------------------------------------- figures


def _figure_script():
    spec = importlib.util.spec_from_file_location(
        "make_figures", ROOT / "docs" / "make_figures.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_figures_are_up_to_date():
    """The numbers docs/images/figures.json says the figures show are still true.

    The geometry is planned again (cheap); the tutorial's operations must be the
    script's, each run identical to its reference. If this fails, run
    ``.venv/bin/python docs/make_figures.py`` and commit the figures.
    """
    script = _figure_script()
    recorded = json.loads((script.RECORD).read_text())
    assert set(recorded["geometry"]) == set(script.GEOMETRY)
    for name, op in script.GEOMETRY.items():
        shape = tuple(recorded["geometry"][name]["input_shape"])
        assert recorded["geometry"][name] == script.geometry_boxes(op, shape), name
        assert (script.IMAGES / f"geometry-{name}.png").exists()
    assert set(recorded["tutorial"]) == set(script.TUTORIAL)
    for name, op in script.TUTORIAL.items():
        step = recorded["tutorial"][name]
        assert step["operation"] == json.loads(json.dumps(op.to_dict())), name
        assert step["identical"], name
        assert (script.IMAGES / f"tutorial-{name}.png").exists()


def test_figure_references_agree_with_the_tests_references():
    script = _figure_script()
    data = np.random.default_rng(3).integers(0, 256, (9, 10, 11), dtype=np.uint8)
    for name, op in script.TUTORIAL.items():
        np.testing.assert_array_equal(
            script.reference(name, data), scipy_reference(op.to_dict(), data)
        )
        np.testing.assert_array_equal(op(data), script.reference(name, data))


# ------------------------------------------------------------ troubleshooting

#: The section of docs/troubleshooting.md that explains the errors each module
#: raises. A module that starts raising one needs its place on the page.
ERROR_SECTIONS = {
    "ops/": "Operations and their parameters",
    "_source.py": "Inputs",
    "_store.py": "Outputs",
    "_output.py": "Outputs",
    "_checks.py": "Resuming",
    "_prepare.py": "Resuming",
    "_options.py": "Run options",
    "_plan.py": "Run options",
    "_api.py": "Run options",
    "_selection.py": "Run options",
    "_ngff.py": "Run options",
    "_run.py": "Run options",
    "cli.py": "Run options",
    "_resources.py": "Memory and disk",
    "_remote.py": "Object stores and URLs",
    "_executors/": "The dask backend",
    "_sample.py": "The sample",
    "_napari/": "napari",
    "_job.py": "`BlockError`: a run failed",
    "_region.py": "`Cancelled`: a run was stopped",
    "_verify.py": "Outputs",
    "_recipe.py": "Recipes",
    "_recipe_check.py": "Recipes",
    "_recipe_text.py": "Recipes",
    "_batch.py": "Batch",
    "_batch_state.py": "Batch",
}


def _raising_modules() -> dict[str, set[str]]:
    """Each module of src/chunkwise and the error classes it makes."""
    classes = set(chunkwise.errors.__all__)
    found: dict[str, set[str]] = {}
    package = ROOT / "src" / "chunkwise"
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", "")
                if name in classes:
                    module = path.relative_to(package).as_posix()
                    found.setdefault(module, set()).add(name)
    return found


def test_troubleshooting_covers_every_error_class_and_module():
    page = (ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    headings = re.findall(r"^#+ (.+)$", page, re.MULTILINE)
    for name in chunkwise.errors.__all__:
        assert any(h.startswith(f"`{name}`") for h in headings), name
    modules = _raising_modules()
    assert len(modules) > 20, "the search for raise sites found too little"
    for module, classes in modules.items():
        if module == "errors.py":
            continue
        section = next(
            (s for key, s in ERROR_SECTIONS.items() if module.startswith(key)), None
        )
        assert section, f"{module} raises {classes}: add it to the page and here"
        assert section in headings, f"no section {section!r} on the page"
        for name in classes - {"ChunkwiseError"}:
            # BlockError and Cancelled each have their own section.
            assert any(h.startswith(f"`{name}`") for h in headings), name


def test_a_block_titled_with_a_file_name_is_written_there(tmp_path, capsys):
    session = Session(tmp_path)
    page = ROOT / "docs" / "recipes.md"
    recipe = Block(page, 3, "yaml", "recipe.yaml", "op: gaussian\nsigma: 2\n")
    assert FILE_TITLE.fullmatch(recipe.title)
    session._run(recipe, capsys)
    assert (tmp_path / "recipe.yaml").read_text() == recipe.code
    assert not FILE_TITLE.fullmatch("Not run: needs a cluster")
