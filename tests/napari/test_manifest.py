"""The one manifest, napari.yaml at the repository root, is found and valid both from
the editable install and from a built wheel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "napari.yaml"

# How npe2 finds a manifest: the entry point names a package and a file in it.
FIND_MANIFEST = """
import importlib.metadata, importlib.util, pathlib
dist = importlib.metadata.distribution("chunkwise")
[ep] = [e for e in dist.entry_points if e.group == "napari.manifest"]
package, _, name = ep.value.partition(":")
spec = importlib.util.find_spec(package)
found = [pathlib.Path(p) / name for p in spec.submodule_search_locations]
print([str(f) for f in found if f.exists()][0])
"""


def run(*args: str, pythonpath: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    done = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def validate(pythonpath: Path | None = None) -> Path:
    """Validate the installed manifest (importing every python_name) and locate it."""
    out = run("-m", "npe2", "validate", "chunkwise", "--imports", pythonpath=pythonpath)
    assert "valid!" in out
    return Path(run("-c", FIND_MANIFEST, pythonpath=pythonpath).strip())


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory) -> Path:
    """The project built as a wheel and installed alone into a fresh directory."""
    dist = tmp_path_factory.mktemp("dist")
    site = tmp_path_factory.mktemp("site")
    run("-m", "build", "--wheel", "--outdir", str(dist), str(REPO))
    [wheel] = dist.glob("chunkwise-*.whl")
    run("-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel))
    return site


def test_editable_install_uses_the_repository_manifest():
    assert validate().resolve() == MANIFEST


def test_wheel_ships_the_manifest(wheel_site):
    found = validate(pythonpath=wheel_site)
    assert found.is_relative_to(wheel_site)
    assert not found.is_symlink()
    assert found.read_text() == MANIFEST.read_text()
