"""Recipes: taken from real outputs, run again on new inputs, checked field by field.

Every run writes a real Zarr store on disk; results are compared bit for bit with
scipy.ndimage (or the operation on the whole array) and with a direct run.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
import zarr
from scipy import ndimage

import chunkwise
from chunkwise import RunOptions, ops
from chunkwise._sample import write_synthetic_ct
from chunkwise.cli import main
from faults import CLI, assert_one_line_error, cli_env, read_array, run_cli

HEART = Path(__file__).resolve().parents[2] / "shared" / "data" / "hoa_heart.zarr"
SHAPE = (30, 40, 50)


@pytest.fixture
def volumes(tmp_path: Path) -> dict[str, tuple[Path, np.ndarray]]:
    """Two different inputs on disk: one to tune on, one to apply the recipe to."""
    found = {}
    for name, seed in (("first", 1), ("second", 2)):
        path = tmp_path / f"{name}.zarr"
        write_synthetic_ct(path, SHAPE, chunks=(16, 16, 16), seed=seed)
        found[name] = (path, zarr.open_array(path, mode="r")[:])
    return found


def _reference(data: np.ndarray) -> np.ndarray:
    """Gaussian (1, 1.5, 1.5) then a 2x mean downsample, on the whole array."""
    return ops.downsample(2)(ndimage.gaussian_filter(data, (1.0, 1.5, 1.5)))


CHAIN = ("--op", "gaussian:sigma=1/1.5/1.5", "--op", "downsample:factor=2")


def test_a_recipe_extracted_from_an_output_runs_on_a_new_input(volumes, tmp_path):
    (first, _), (second, data) = volumes["first"], volumes["second"]
    made = tmp_path / "made.zarr"
    layout = ("--chunks", "8,8,8", "--codec", "zstd:5", "--zarr-format", "2")
    result = run_cli("run", first, made, *CHAIN, *layout, "--quiet")
    assert result.code == 0, str(result)
    extracted = run_cli("recipe", made)
    assert extracted.code == 0, str(extracted)
    (tmp_path / "r.json").write_text(extracted.out)
    record = json.loads(extracted.out)
    assert record["chunkwise_recipe"] == 1
    assert [step["op"] for step in record["operations"]] == ["gaussian", "downsample"]
    assert record["output"]["chunks"] == [8, 8, 8]
    assert record["output"]["codec"] == "zstd:5"

    again = tmp_path / "again.zarr"
    direct = tmp_path / "direct.zarr"
    from_output = tmp_path / "from_output.zarr"
    assert run_cli("run", "--recipe", tmp_path / "r.json", second, again).code == 0
    assert run_cli("run", "--recipe", made, second, from_output, "-j", "1").code == 0
    assert run_cli("run", second, direct, *CHAIN, *layout, "--quiet").code == 0
    expected = _reference(data)
    for out in (again, from_output, direct):
        array = zarr.open_array(out, mode="r")
        np.testing.assert_array_equal(array[:], expected)
        assert array.chunks == (8, 8, 8)
        assert array.metadata.zarr_format == 2
        assert array.compressors[0].get_config()["level"] == 5
    # The outputs record the same recipe, so a recipe round trip is exact.
    assert chunkwise.Recipe.load(again) == chunkwise.Recipe.load(direct)
    assert chunkwise.Recipe.load(again) == chunkwise.Recipe.load(made)


def test_every_option_overrides_the_recipe_and_op_replaces_the_chain(volumes, tmp_path):
    path, data = volumes["first"]
    recipe = chunkwise.Recipe(
        operation=chunkwise.chain(ops.gaussian((1.0, 1.5, 1.5)), ops.downsample(2)),
        chunks=(8, 8, 8),
        codec="zstd:5",
        region="0:16,0:16,0:16",
    )
    saved = recipe.save(tmp_path / "r.yaml")
    out = tmp_path / "over.zarr"
    argv = [
        "run", "--recipe", str(saved), str(path), str(out), "--chunks", "4,4,4",
        "--codec", "lz4", "--zarr-format", "2", "--region", "all", "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    array = zarr.open_array(out, mode="r")
    np.testing.assert_array_equal(array[:], _reference(data))
    assert array.chunks == (4, 4, 4)
    assert array.metadata.zarr_format == 2
    assert array.compressors[0].get_config()["cname"] == "lz4"
    assert array.attrs["chunkwise"]["status"] == "complete"  # no region: all of it

    regional = tmp_path / "regional.zarr"
    assert main(["run", "--recipe", str(saved), str(path), str(regional)]) == 0
    assert zarr.open_array(regional, mode="r").attrs["chunkwise"]["status"] == (
        "partial"
    )

    replaced = tmp_path / "replaced.zarr"
    argv = ["run", "--recipe", str(saved), str(path), str(replaced), "--op", "invert"]
    assert main([*argv, "--region", "all"]) == 0
    array = zarr.open_array(replaced, mode="r")
    np.testing.assert_array_equal(array[:], ops.invert()(data))
    assert array.chunks == (8, 8, 8)  # the recipe's layout stays


def test_yaml_and_json_recipes_are_the_same_recipe(volumes, tmp_path):
    path, data = volumes["first"]
    recipe = chunkwise.Recipe(
        operation=chunkwise.chain(
            ops.median(footprint=[[[0, 1, 0], [1, 1, 1], [0, 1, 0]]]),
            ops.rescale(in_range=(10, 200), dtype="float32"),
        ),
        chunks=(16, 8, 8),
        format="ome-zarr",
        levels=2,
        description="median then rescale: a note",
    )
    as_json, as_yaml = recipe.save(tmp_path / "r.json"), recipe.save(tmp_path / "r.yml")
    assert json.loads(as_json.read_text())["chunkwise_recipe"] == 1
    assert yaml.safe_load(as_yaml.read_text()) == json.loads(as_json.read_text())
    assert chunkwise.Recipe.load(as_json) == chunkwise.Recipe.load(as_yaml) == recipe
    outs = [tmp_path / "j.ome.zarr", tmp_path / "y.ome.zarr"]
    for saved, out in zip((as_json, as_yaml), outs, strict=True):
        assert (
            main(["run", "--recipe", str(saved), str(path), str(out), "--quiet"]) == 0
        )
    footprint = np.array([[[0, 1, 0], [1, 1, 1], [0, 1, 0]]], bool)
    expected = ops.rescale(in_range=(10, 200), dtype="float32")(
        ndimage.median_filter(data, footprint=footprint, mode="reflect")
    )
    for out in outs:
        group = zarr.open_group(out, mode="r")
        np.testing.assert_array_equal(group["0"][:], expected)
        assert sorted(group.array_keys()) == ["0", "1"]
    # The recipe read back from the OME-Zarr output keeps its format and levels.
    back = chunkwise.Recipe.load(outs[1])
    assert (back.format, back.levels, back.operation) == (
        "ome-zarr",
        2,
        recipe.operation,
    )


def test_the_command_line_and_python_text_run_as_is(volumes, tmp_path):
    path, data = volumes["second"]
    spaced = tmp_path / "in put.zarr"
    path.rename(spaced)
    recipe = chunkwise.Recipe(
        operation=chunkwise.chain(
            ops.gaussian((1.0, 1.5, 1.5), mode=("reflect", "nearest", "wrap")),
            ops.custom("tests.functions:slow_copy", halo=1),
            ops.correlate([[[0.5, 1.0], [1.0, 0.25]]]),
            ops.downsample(2, method="max"),
        ),
        chunks=(8, 8, 8),
        codec="gzip:3",
    )
    options = RunOptions(n_jobs=2, block=(8, 16, 16))
    env = cli_env(CHUNKWISE_TEST_DELAY="0")
    command = chunkwise.to_command_line(
        recipe, spaced, tmp_path / "cli out.zarr", options
    )
    words = shlex.split(command)
    assert words[:2] == ["chunkwise", "run"]
    done = subprocess.run(
        [*CLI, *words[1:]], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    script = chunkwise.to_python(recipe, spaced, tmp_path / "py.zarr", options)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    direct = recipe.process(spaced, tmp_path / "direct.zarr", n_jobs=1)
    # The chain on the whole array in memory (its steps are each checked against
    # scipy in tests/ops).
    expected = recipe.operation(data)
    np.testing.assert_array_equal(direct[:], expected)
    for out in ("cli out.zarr", "py.zarr"):
        array = zarr.open_array(tmp_path / out, mode="r")
        np.testing.assert_array_equal(array[:], expected)
        assert array.chunks == (8, 8, 8)
        assert chunkwise.Recipe.load(tmp_path / out) == chunkwise.Recipe.load(direct)


GOOD = {"chunkwise_recipe": 1, "operations": [{"op": "gaussian", "sigma": 1}]}


@pytest.mark.parametrize(
    ("change", "field", "needle"),
    [
        ({"chunkwise_recipe": None}, "chunkwise_recipe", "missing"),
        ({"chunkwise_recipe": 2}, "chunkwise_recipe", "version 2"),
        ({"chunkwise_recipe": "1"}, "chunkwise_recipe", "version '1'"),
        ({"chunkwise_recipe": True}, "chunkwise_recipe", "version True"),
        ({"operation": ["invert"]}, "operation", "did you mean 'operations'"),
        ({"operations": None}, "operations", "missing"),
        ({"operations": []}, "operations", "empty"),
        ({"operations": [7]}, "operations[0]", "mapping"),
        ({"operations": [{"sigma": 1}]}, "operations[0].op", "missing"),
        ({"operations": [{"op": "blur"}]}, "operations[0]", "unknown operation"),
        ({"operations": [{"op": "gaussian", "sigm": 1}]}, "operations[0].sigm",
         "did you mean 'sigma'"),
        ({"operations": ["invert", {"op": "gaussian", "sigma": -1}]},
         "operations[1].sigma", ">= 0"),
        ({"operations": ["gaussian:sigma=x"]}, "operations[0]", "sigma"),
        ({"operations": [{"op": "custom", "function": "no_such_module:f"}]},
         "operations[0].function", "cannot be imported"),
        ({"operations": [{"op": "custom", "function": "builtins.print"}]},
         "operations[0].function", "module:function"),
        ({"output": {"chunks": [0, 8, 8]}}, "output.chunks", "positive whole"),
        ({"output": {"chunks": "64"}}, "output.chunks", "sequence"),
        ({"output": {"shards": [8.5, 8, 8]}}, "output.shards", "positive whole"),
        ({"output": {"codec": "snappy"}}, "output.codec", "one of zstd"),
        ({"output": {"codec": "gzip:12"}}, "output.codec", "0 to 9"),
        ({"output": {"zarr_format": 4}}, "output.zarr_format", "2 or 3"),
        ({"output": {"format": "tiff"}}, "output.format", "zarr, ome-zarr"),
        ({"output": {"levels": 0}}, "output.levels", ">= 1"),
        ({"output": {"format": "zarr", "levels": 2}}, "levels", "ome-zarr"),
        ({"output": {"chunk": [8]}}, "output.chunk", "did you mean 'chunks'"),
        ({"output": {"n_jobs": 4}}, "output.n_jobs", "machine"),
        ({"output": {"region": "0:8,:,:"}}, "output.region", "belongs in input"),
        ({"output": [1]}, "output", "mapping"),
        ({"input": {"region": "0:8,a:b,:"}}, "input.region", "start:stop"),
        ({"input": {"axes": "zyq"}}, "input.axes", "t (time)"),
        ({"input": {"level": -1}}, "input.level", ">= 0"),
        ({"input": {"scale": [1, 0, 1]}}, "input.scale", "positive"),
        ({"description": 5}, "description", "text"),
    ],
)  # fmt: skip
def test_a_bad_recipe_is_one_line_naming_the_field(
    change, field, needle, volumes, tmp_path, capsys
):
    record = {**GOOD, **change}
    record = {key: value for key, value in record.items() if value is not None}
    (tmp_path / "r.json").write_text(json.dumps(record))
    yaml_path = tmp_path / "r.yaml"
    yaml_path.write_text(yaml.safe_dump(record))
    path, _ = volumes["first"]
    for recipe in (tmp_path / "r.json", yaml_path):
        out = tmp_path / "never.zarr"
        assert main(["run", "--recipe", str(recipe), str(path), str(out)]) == 2
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert "Traceback" not in err
        assert f"recipe {recipe}: {field}" in lines[0], lines[0]
        assert needle in lines[0], lines[0]
        assert not out.exists()
        with pytest.raises(chunkwise.ChunkwiseError, match=re.escape(needle)):
            chunkwise.Recipe.load(recipe)


def test_bad_files_and_sources_are_one_line_in_a_real_process(volumes, tmp_path):
    path, _ = volumes["first"]
    broken = tmp_path / "broken.yaml"
    broken.write_text("chunkwise_recipe: 1\noperations: [invert\n")
    result = run_cli("run", "--recipe", broken, path, tmp_path / "o.zarr")
    assert result.code == 2
    assert_one_line_error(result, f"recipe {broken}: not valid YAML", "line 3")
    result = run_cli("run", "--recipe", tmp_path / "absent.json", path, tmp_path / "o")
    assert result.code == 2
    assert_one_line_error(result, "absent.json: no such recipe file")
    # An array that chunkwise did not make records no recipe.
    result = run_cli("recipe", path)
    assert result.code == 2
    assert_one_line_error(result, "records no recipe")
    result = run_cli("recipe", tmp_path / "r.txt")
    assert result.code == 2
    assert_one_line_error(result, "no such recipe file or output")


def test_a_recipe_from_standard_input(volumes, tmp_path):
    path, data = volumes["first"]
    text = (
        "chunkwise_recipe: 1\n"
        "operations: ['gaussian:sigma=1/1.5/1.5', downsample:factor=2]\n"
    )
    out = tmp_path / "o.zarr"
    done = subprocess.run(
        [*CLI, "run", "--recipe", "-", str(path), str(out), "--quiet"],
        input=text,
        env=cli_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(read_array(out), _reference(data))


def test_settings_and_machine_options_are_kept_apart():
    options = RunOptions(
        n_jobs=3, backend="loky", chunks=(8, 8, 8), codec="lz4", nice=4,
        storage_options={"anon": True}, region="0:4,:,:",
    )  # fmt: skip
    recipe = chunkwise.Recipe.from_options(ops.invert(), options, levels=2)
    assert recipe.settings == {
        "chunks": (8, 8, 8), "codec": "lz4", "levels": 2, "region": "0:4,:,:"
    }  # fmt: skip
    assert "n_jobs" not in json.dumps(recipe.to_dict())
    assert "anon" not in json.dumps(recipe.to_dict())
    # The machine's options, then the recipe's settings, then the overrides.
    merged = recipe.options(RunOptions(n_jobs=2, codec="gzip"), codec="zstd:2")
    assert (merged.n_jobs, merged.codec, merged.chunks) == (2, "zstd:2", (8, 8, 8))
    assert recipe.options(region=None).region is None
    # Slices and boxes become the region's text.
    sliced = chunkwise.Recipe(operation="invert", region=(slice(0, 4), slice(None, 8)))
    assert sliced.region == "0:4,:8"
    assert chunkwise.Recipe(operation="invert", region=chunkwise.Box((1, 2), (3, 4))) \
        .region == "1:3,2:4"  # fmt: skip


def test_only_importable_functions_go_into_a_recipe(tmp_path):
    recipe = chunkwise.Recipe(operation=ops.custom("tests.functions:slow_copy", halo=1))
    record = recipe.to_dict()
    assert record["operations"][0]["function"] == "tests.functions:slow_copy"
    assert chunkwise.Recipe.from_dict(record) == recipe

    def local(block):
        return block

    with pytest.raises(chunkwise.ChunkwiseError, match="importable as module:function"):
        chunkwise.Recipe(operation=ops.custom(local))


def test_an_operation_on_chosen_axes_is_refused_as_op_text_not_mistranslated():
    recipe = chunkwise.Recipe(operation=ops.on_axes(ops.gaussian(1), (0, 1)))
    with pytest.raises(chunkwise.ChunkwiseError, match="--recipe"):
        chunkwise.to_command_line(recipe, "in.zarr", "out.zarr")
    assert "ops.on_axes(ops.gaussian(), (0, 1))" in chunkwise.to_python(
        recipe, "in.zarr", "out.zarr"
    )


@pytest.mark.skipif(
    not HEART.exists(), reason=f"the shared heart scan is absent ({HEART})"
)
def test_a_recipe_tuned_on_the_heart_scan_runs_on_another_volume(tmp_path):
    heart = zarr.open_array(HEART, mode="r")[:]
    made = tmp_path / "heart.ome.zarr"
    argv = [
        "run", str(HEART), str(made), "--op", "median:size=3", "--op",
        "downsample:factor=2,method=max", "--levels", "2", "--chunks", "32,32,32",
        "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    expected = ops.downsample(2, method="max")(ndimage.median_filter(heart, 3))
    np.testing.assert_array_equal(zarr.open_group(made)["0"][:], expected)
    recipe = chunkwise.Recipe.load(made)
    assert (recipe.format, recipe.levels, recipe.chunks) == ("ome-zarr", 2, (32,) * 3)
    other = tmp_path / "other.zarr"
    write_synthetic_ct(other, (70, 60, 50), chunks=(32, 32, 32), seed=3)
    data = zarr.open_array(other, mode="r")[:]
    out = tmp_path / "other_out.zarr"
    assert main(["run", "--recipe", str(made), str(other), str(out), "--quiet"]) == 0
    group = zarr.open_group(out, mode="r")
    np.testing.assert_array_equal(
        group["0"][:], ops.downsample(2, method="max")(ndimage.median_filter(data, 3))
    )
    assert sorted(group.array_keys()) == ["0", "1"]
    # The same recipe applied to the heart again gives the same bytes of data.
    again = recipe.process(HEART, tmp_path / "again.ome.zarr", n_jobs=1)
    np.testing.assert_array_equal(again["0"][:], expected)
    np.testing.assert_array_equal(again["1"][:], zarr.open_group(made)["1"][:])


def test_every_setting_survives_the_command_line_and_the_python_text(volumes, tmp_path):
    path, data = volumes["first"]
    recipe = chunkwise.Recipe(
        operation=ops.uniform(3),
        format="ome-zarr", levels=2, chunks=(8, 16, 16), codec="blosc-zstd:4",
        zarr_format=2, axes="zyx", region="0:8,0:16,0:16", scale=(2.0, 0.5, 0.5),
        translation=(0.0, 10.0, 10.0),
    )  # fmt: skip
    outs = {"cli": tmp_path / "cli.zarr", "python": tmp_path / "python.zarr"}
    words = shlex.split(chunkwise.to_command_line(recipe, path, outs["cli"]))
    assert main([*words[1:], "--quiet"]) == 0
    script = chunkwise.to_python(recipe, path, outs["python"])
    exec(compile(script, "<recipe>", "exec"), {})
    direct = recipe.process(path, tmp_path / "direct.zarr")
    for out in outs.values():
        group = zarr.open_group(out, mode="r")
        image = dict(group.attrs)["multiscales"][0]
        made = dict(direct.attrs)["multiscales"][0]
        assert (image["axes"], image["datasets"]) == (made["axes"], made["datasets"])
        scale = image["datasets"][0]
        assert scale["coordinateTransformations"] == [
            {"type": "scale", "scale": [2.0, 0.5, 0.5]},
            {"type": "translation", "translation": [0.0, 10.0, 10.0]},
        ]
        level = group["0"]
        assert (level.metadata.zarr_format, level.chunks) == (2, (8, 16, 16))
        assert level.compressors[0].get_config()["clevel"] == 4
        assert group.attrs["chunkwise"]["status"] == "partial"  # the region only
        got = level[:8, :16, :16]
        np.testing.assert_array_equal(got, direct["0"][:8, :16, :16])
        expected = ndimage.uniform_filter(data, 3)
        np.testing.assert_array_equal(got, expected[:8, :16, :16])
        assert chunkwise.Recipe.load(out) == chunkwise.Recipe.load(direct)
