"""The registry: operations register themselves, with their form hints and labels.

Every registered operation is exact against its reference in tests/catalogue.py, and
that list must name exactly the registered operations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest

import chunkwise
from catalogue import EXAMPLES, REFERENCES, unreferenced
from chunkwise import ops
from chunkwise.ops import _registry
from conftest import make_volume


def test_every_registered_operation_has_a_reference():
    assert unreferenced() == set()


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_every_registered_operation_is_exact_chunk_by_chunk(name):
    op, reference, dtype = REFERENCES[name]
    x = make_volume((13, 17, 11), dtype, seed=3)
    expected = reference(x)
    np.testing.assert_array_equal(op(x), expected, strict=True)
    result = chunkwise.process(x, op, chunks=(4, 5, 3), block=(8, 5, 6), n_jobs=2)
    np.testing.assert_array_equal(result[:], expected, strict=True)


def test_the_catalogue_lists_families_in_order_each_as_defined():
    families = [cls.family for cls in ops.CATALOGUE.values()]
    order = list(ops.FAMILIES)
    assert families == sorted(families, key=order.index)
    assert set(families) == set(ops.FAMILIES)
    names = list(ops.CATALOGUE)
    assert names[:3] == ["copy", "clip", "threshold"]
    assert names.index("gaussian") < names.index("median")
    assert names[-1] == "custom"


def test_the_catalogue_is_read_only():
    with pytest.raises(TypeError):
        ops.CATALOGUE["blur"] = ops.gaussian  # type: ignore[index]


def test_chunkwise_ops_exports_every_registered_operation():
    for name, cls in ops.CATALOGUE.items():
        assert name in ops.__all__
        assert getattr(ops, name) is cls
        assert cls.__module__.startswith("chunkwise.ops._")


def test_every_parameter_has_a_kind_a_form_can_edit():
    for name in ops.CATALOGUE:
        for parameter in ops.parameters(name):
            assert parameter.kind in _registry.KINDS, (name, parameter.name)
            if parameter.kind in ("int", "float"):
                assert parameter.step, (name, parameter.name)
            if parameter.kind in ("choice", "dtype"):
                assert parameter.choices, (name, parameter.name)
            assert not (parameter.advanced and parameter.required), parameter


def _build_with(name: str, parameter: str, value):
    params = {k: v for k, v in EXAMPLES[name].to_dict().items() if k != "op"}
    op = ops.from_dict({"op": name, **params, parameter: value})
    op.check(3)
    return op


def test_hinted_bounds_are_the_operations_own():
    # A form's spin box ends where the operation refuses: nothing it takes is cut off.
    bounded = 0
    for name in ops.CATALOGUE:
        for p in ops.parameters(name):
            if p.kind not in ("int", "float"):
                continue
            for bound, beyond in ((p.low, -1), (p.high, +1)):
                if bound is None:
                    continue
                bounded += 1
                with pytest.raises(chunkwise.ChunkwiseError, match=p.name):
                    _build_with(name, p.name, bound + beyond * p.step)
    assert bounded >= 20


def test_the_names_an_array_offers_are_taken_by_its_operation():
    offered = 0
    for name in ops.CATALOGUE:
        for p in ops.parameters(name):
            if p.kind != "array":
                continue
            assert p.choices, (name, p.name)
            for preset in p.choices:
                kernel = preset in ops.KERNEL_PRESETS
                value = ops.kernel_preset(preset, 3).tolist() if kernel else preset
                _build_with(name, p.name, value)
                offered += 1
    assert offered == 2 * len(ops.KERNEL_PRESETS) + 5 * 6  # kernels, footprints


def test_an_unhinted_number_gets_its_kind_from_its_annotation():
    value = {p.name: p for p in ops.parameters("threshold")}["value"]
    assert (value.kind, value.low, value.high, value.step) == ("float", None, None, 1.0)
    rank = {p.name: p for p in ops.parameters("rank_filter")}["rank"]
    assert (rank.kind, rank.step, rank.per_axis) == ("int", 1, False)
    sigma = {p.name: p for p in ops.parameters("gaussian")}["sigma"]
    assert sigma.per_axis  # float | tuple[float, ...]


def test_every_entry_says_what_a_reference_page_shows():
    for name, cls in ops.CATALOGUE.items():
        entry = ops.entry(name)
        assert entry.name == name and entry.family in ops.FAMILIES
        assert entry.summary and entry.exactness.endswith("."), name
        assert entry.parameters == ops.parameters(name)
        if entry.labels is None:  # a parameter decides: the doc says how
            assert isinstance(cls.labels, property)
            assert entry.labels_doc.startswith("Keeps labels"), name
        else:
            assert entry.labels is EXAMPLES[name].labels and not entry.labels_doc
    effects = {ops.entry(name).labels for name in ops.CATALOGUE}
    assert effects == {*ops.LabelEffect, None}
    assert "1e-12" in ops.entry("uniform").exactness


def test_cli_text_records_and_python_are_validated_alike():
    # The command line parses, a recipe's record and the form go through from_dict:
    # one validation, one message.
    messages = set()
    for build in (
        lambda: ops.parse("gaussian:sigma=-1"),
        lambda: ops.from_dict({"op": "gaussian", "sigma": -1}),
        lambda: ops.gaussian(-1),
    ):
        with pytest.raises(chunkwise.ChunkwiseError) as error:
            build()
        messages.add(str(error.value))
    assert messages == {"sigma must be >= 0, got -1.0"}


# Registering: a newcomer plugs in by defining itself.


@pytest.fixture
def registered():
    """Remove what a test registers, so the catalogue is as it was."""
    before = dict(_registry._REGISTRY)
    yield
    _registry._REGISTRY.clear()
    _registry._REGISTRY.update(before)


def _newcomer():
    @ops.register
    @dataclass(frozen=True)
    class brighten(ops.Operation):
        """Add ``amount``.

        Parameters
        ----------
        amount : float
            What is added, >= 0.
        """

        name = "brighten"
        family = "pointwise"
        labels = ops.LabelEffect.DROPS
        exactness = "Bit-identical to numpy."
        amount: float = ops.param(1.0, low=0.0, step=0.25)

        def apply(self, data, data_box, box):
            return data[box.relative_to(data_box)] + self.amount

    return brighten


def test_a_registered_operation_is_everywhere_at_once(registered):
    brighten = _newcomer()
    names = list(ops.CATALOGUE)
    # Last of its family, before the next family.
    assert names.index("brighten") == names.index("gamma") + 1
    assert ops.parse("brighten:amount=2") == brighten(2.0)
    assert ops.from_dict({"op": "brighten", "amount": 2}) == brighten(2.0)
    (amount,) = ops.parameters("brighten")
    assert (amount.kind, amount.low, amount.step, amount.doc) == (
        "float",
        0.0,
        0.25,
        "What is added, >= 0.",
    )
    # And the reference list no longer matches: the test above would fail.
    assert unreferenced() == {"brighten"}


def test_registering_twice_under_one_name_is_refused(registered):
    _newcomer()
    _newcomer()  # the same class again (a module reloaded): replaced
    with pytest.raises(TypeError, match="'gaussian'"):

        @ops.register
        @dataclass(frozen=True)
        class gaussian(ops.Operation):
            name = "gaussian"
            family = "neighbourhood"
            labels = ops.LabelEffect.DROPS
            exactness = "Bit-identical to scipy."


COMPLETE = {
    "name": "x",
    "family": "pointwise",
    "labels": ops.LabelEffect.KEEPS,
    "exactness": "Bit-identical to numpy.",
}


@pytest.mark.parametrize(
    ("missing", "wrong", "message"),
    [
        ("name", None, "no name"),
        ("family", None, "family"),
        (None, {"family": "filters"}, "family"),
        ("labels", None, "no labels"),
        (None, {"labels": True}, "no labels"),
        ("exactness", None, "no exactness"),
        (None, {"exactness": ""}, "no exactness"),
        (None, {"name": "chain"}, "chains"),
    ],
)
def test_an_incomplete_declaration_is_refused_where_it_is_defined(
    missing, wrong, message
):
    body = {k: v for k, v in COMPLETE.items() if k != missing} | (wrong or {})
    cls = dataclass(frozen=True)(type("x", (ops.Operation,), body))
    with pytest.raises(TypeError, match=message):
        ops.register(cls)
    assert "x" not in ops.CATALOGUE


@pytest.mark.parametrize(
    ("annotation", "hints", "message"),
    [
        ("bool", {}, "needs a kind"),
        ("npt.ArrayLike", {}, "needs a kind"),
        ("str", {"kind": "choice"}, "without choices"),
        ("float", {"kind": "slider"}, "needs a kind"),
        ("float", {"advanced": True}, "advanced"),
    ],
)
def test_a_parameter_a_form_cannot_edit_is_refused(annotation, hints, message):
    namespace = {
        "__annotations__": {"value": annotation},
        "value": ops.param(**hints),
        **COMPLETE,
    }
    cls = dataclass(frozen=True)(type("x", (ops.Operation,), namespace))
    with pytest.raises(TypeError, match=message):
        ops.register(cls)


@pytest.mark.parametrize("field", ["op", "spatial_axes"])
def test_a_parameter_named_like_a_record_key_is_refused(field):
    namespace = {"__annotations__": {field: "float"}, field: 1.0, **COMPLETE}
    cls = dataclass(frozen=True)(type("x", (ops.Operation,), namespace))
    with pytest.raises(TypeError, match="clash in its records"):
        ops.register(cls)


def test_only_frozen_dataclass_operations_register():
    class plain(ops.Operation):
        name = "plain"
        family = "pointwise"
        labels = ops.LabelEffect.KEEPS
        exactness = "Bit-identical to numpy."

    with pytest.raises(TypeError, match="frozen dataclass"):
        ops.register(plain)
    with pytest.raises(TypeError, match="subclass"):
        ops.register(dataclasses.make_dataclass("other", [], frozen=True))
