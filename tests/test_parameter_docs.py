"""`ops.parameters`: each parameter carries its operation's doc and real bounds."""

from __future__ import annotations

import pytest

import chunkwise
from chunkwise import ops


@pytest.mark.parametrize("name", list(ops.CATALOGUE))
def test_every_parameter_has_its_docstring_entry(name):
    for parameter in ops.parameters(name):
        assert parameter.doc, (name, parameter.name)
        assert "As for" not in parameter.doc  # followed to the operation named


def test_docs_are_the_entries_of_their_own_operation():
    docs = {p.name: p.doc for p in ops.parameters("gaussian")}
    assert docs["sigma"].startswith("Standard deviation in voxels")
    assert docs["cval"] == "Value outside the volume for ``constant`` modes."
    assert docs["truncate"] == "Kernel reach in standard deviations."
    # "lo, hi : float" documents both.
    clip = {p.name: p.doc for p in ops.parameters("clip")}
    assert clip["lo"] == clip["hi"] and "lo <= hi" in clip["lo"]
    # A following section (References, Notes) is not part of the last entry.
    assert "skimage" not in {p.name: p.doc for p in ops.parameters("gamma")}["gain"]


def test_bounds_are_the_operations_own():
    sigma = next(p for p in ops.parameters("gaussian") if p.name == "sigma")
    assert (sigma.low, sigma.high) == (0.0, None)
    ops.gaussian(1000.0)  # what the form offers, the operation takes
    factor = next(p for p in ops.parameters("downsample") if p.name == "factor")
    assert (factor.low, factor.high) == (1, None)
    with pytest.raises(chunkwise.ChunkwiseError, match="factor must be >= 1"):
        ops.downsample(0)
