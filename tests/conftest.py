"""Shared hypothesis strategies for the exactness tests: volumes and chunk layouts.

Test modules import these as ``from conftest import ...`` (pytest puts ``tests/`` on
``sys.path`` for this rootdir conftest).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import chunkwise

DTYPES = ("uint8", "uint16", "int16", "float32", "float64")
#: Largest side per dimensionality, so that every example stays well under a second.
SIDES = {2: 40, 3: 24, 4: 12}


def exact_settings(max_examples: int) -> settings:
    """Few examples, no deadline: each example runs a whole chunked process().

    Set ``CHUNKWISE_EXAMPLES=10`` (a multiplier) for a deeper search.
    """
    return settings(
        max_examples=max_examples * int(os.environ.get("CHUNKWISE_EXAMPLES", "1")),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def spatial_axes(ndim: int) -> tuple[int, ...]:
    """The contract: the last 3 axes are spatial (the last 2 for 2D input)."""
    return tuple(range(max(ndim - 3, 0), ndim))


def make_volume(shape, dtype, seed: int, values: str = "full") -> np.ndarray:
    """Random data: the dtype's full range, or only ``few`` values (0..3) for ties."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if values == "few":
        return rng.integers(0, 4, shape).astype(dtype)
    if dtype.kind == "f":
        return rng.uniform(-100, 100, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


@st.composite
def shapes(draw, ndims=(2, 3, 4), min_side=1, max_side=40) -> tuple[int, ...]:
    ndim = draw(st.sampled_from(ndims))
    side = st.integers(min_side, min(SIDES[ndim], max_side))
    spatial = tuple(draw(side) for _ in range(min(ndim, 3)))
    return (draw(st.integers(1, 3)), *spatial) if ndim == 4 else spatial


@st.composite
def volumes(draw, ndims=(2, 3, 4), dtypes=DTYPES, min_side=1, max_side=40):
    shape = draw(shapes(ndims, min_side, max_side))
    dtype = draw(st.sampled_from(dtypes))
    values = draw(st.sampled_from(["full", "full", "few"]))
    return make_volume(shape, dtype, draw(st.integers(0, 2**32 - 1)), values)


@st.composite
def layouts(draw, shape) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Output chunks that need not divide ``shape`` and blocks of 1 to 3 chunks."""
    most = 6 if len(shape) < 4 else 3
    chunks = tuple(draw(st.integers(-(-n // most), n)) for n in shape)
    block = tuple(c * draw(st.integers(1, 3)) for c in chunks)
    return chunks, block


def per_axis(value, ndim: int) -> tuple[int, ...]:
    """A factor for every axis: the given ones on spatial axes, 1 elsewhere."""
    spatial = spatial_axes(ndim)
    given = value if isinstance(value, tuple) else (value,) * len(spatial)
    factors = [1] * ndim
    for axis, factor in zip(spatial, given, strict=True):
        factors[axis] = factor
    return tuple(factors)


def _mode(window: np.ndarray):
    values, counts = np.unique(window, return_counts=True)
    return values[np.argmax(counts)]  # values are sorted: ties go to the smallest


REDUCE = {
    "mean": lambda w: np.mean(w, dtype=np.float64),
    "median": lambda w: np.median(w.astype(np.float64)),
    "min": np.min,
    "max": np.max,
    "mode": _mode,
    "nearest": lambda w: w.flat[0],
}


def reference_downsample(x: np.ndarray, factor, method: str) -> np.ndarray:
    """Reduce each window in float64 (slices clip partial windows at the far edge)."""
    factors = per_axis(factor, x.ndim)
    shape = tuple(-(-n // k) for n, k in zip(x.shape, factors, strict=True))
    out = np.empty(shape, np.float64)
    for index in np.ndindex(shape):
        window = x[
            tuple(
                slice(i * k, (i + 1) * k) for i, k in zip(index, factors, strict=True)
            )
        ]
        out[index] = REDUCE[method](window)
    if x.dtype.kind in "ui":
        out = np.rint(out)  # exact for min/max/mode/nearest; half to even otherwise
    return out.astype(x.dtype)


def gaussian_derivatives_reference(scipy_filter, x, sigma, mode="reflect", **kwargs):
    """scipy's gradient magnitude or Laplacian of Gaussian of ``x``, with ``axes=``
    the spatial axes of sigma > 0: the contract for a sigma of 0 on an axis.

    ``sigma`` and a ``mode`` sequence give one value per spatial axis.
    """
    from scipy import ndimage

    spatial = spatial_axes(x.ndim)
    sigmas = sigma if isinstance(sigma, tuple) else (sigma,) * len(spatial)
    full = [0.0] * x.ndim
    for axis, s in zip(spatial, sigmas, strict=True):
        full[axis] = s
    axes = tuple(a for a in spatial if full[a] > 1e-15)
    if not isinstance(mode, str):
        mode = tuple(mode[spatial.index(a)] for a in axes)
    if scipy_filter is ndimage.gaussian_laplace:  # its sigma is per axis of axes
        return scipy_filter(x, [full[a] for a in axes], mode=mode, axes=axes, **kwargs)
    return scipy_filter(x, full, mode=mode, axes=axes, **kwargs)


def processed(array: np.ndarray, op, layout, **kwargs) -> np.ndarray:
    """``chunkwise.process`` with two threads, read back into memory."""
    chunks, block = layout
    kwargs.setdefault("n_jobs", 2)
    result = chunkwise.process(array, op, chunks=chunks, block=block, **kwargs)
    return result[:]


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test: napari's viewer fixture reads it."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


#: What a napari test that sets no answer of its own replies, as a cautious user would.
CAUTIOUS = ("Start over", "Keep", "Cancel")


@pytest.fixture(autouse=True)
def _napari_quietly(request, monkeypatch, tmp_path):
    """In napari tests: recent runs in a temporary folder, and no dialog that waits.

    The widget asks before deleting scratch results as napari closes; a real
    dialog there would wait for a click forever.
    """
    if "napari" not in request.node.path.parts:
        return
    from chunkwise._napari import _recent, _widget

    monkeypatch.setenv(_recent.ENV, str(tmp_path / "chunkwise-state"))

    def answer(title: str, text: str, buttons: tuple[str, ...]) -> str:
        return next((b for b in CAUTIOUS if b in buttons), buttons[-1])

    monkeypatch.setattr(_widget, "_ask", answer)


def pytest_terminal_summary(terminalreporter) -> None:
    """Say how many documentation snippets ran (tests/test_docs.py)."""
    passed = [r.nodeid for r in terminalreporter.stats.get("passed", [])]
    ran = [
        n
        for n in passed
        if "test_docs.py::test_snippet_runs[" in n
        or "test_docs.py::test_laptop_blocks_run_and_equal_scipy[" in n
    ]
    checked = [
        n
        for n in passed
        if "test_docs.py::test_python_blocks_compile[" in n
        or "test_docs.py::test_command_lines_parse[" in n
    ]
    if ran or checked:
        terminalreporter.write_line(
            f"docs: {len(ran)} snippets run and checked, {len(checked)} Python "
            "blocks compiled and command lines parsed"
        )
