"""Orbax checkpoints of pytrees: round trips, keys, items, mismatches, corruption."""

import shutil
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrax
from hybrax.io import Checkpointer, restore_checkpoint, save_checkpoint


def net(seed, width=8):
    return hybrax.nn.MLP(3, 2, width, 1, key=jax.random.key(seed, impl="rbg"))


def test_module_round_trip_is_exact(tmp_path):
    model = hybrax.RK4(hybrax.hybrid.Closure(hybrax.climate.Lorenz96(8, 19.5), net(0)), 0.01)
    save_checkpoint(tmp_path, model)
    template = hybrax.RK4(hybrax.hybrid.Closure(hybrax.climate.Lorenz96(8, 1.0), net(1)), 0.01)
    restored = restore_checkpoint(tmp_path, like=template)
    assert type(restored) is type(model)
    for a, b in zip(jax.tree.leaves(model), jax.tree.leaves(restored), strict=True):
        np.testing.assert_array_equal(a, b)
        assert jnp.result_type(a) == jnp.result_type(b)
    x = jnp.ones(3)
    np.testing.assert_array_equal(restored.dynamics.net(x), model.dynamics.net(x))


def test_keys_items_and_metadata(tmp_path):
    tree = {
        "model": net(0),
        "loop": {"step": jnp.asarray(7, jnp.int32), "key": jax.random.key(3)},
        "empty": (None, "static"),
    }
    with Checkpointer(tmp_path, max_to_keep=2) as checkpoints:
        for step in (1, 2, 3):
            checkpoints.save(step, tree, metadata={"note": f"step {step}"})
        assert checkpoints.all_steps() == [2, 3] and checkpoints.latest_step == 3
        restored, metadata = checkpoints.restore(tree)
        assert metadata == {"note": "step 3"}
        assert jax.random.key_impl(restored["loop"]["key"]) == jax.random.key_impl(
            tree["loop"]["key"]
        )
        np.testing.assert_array_equal(
            jax.random.key_data(restored["loop"]["key"]), jax.random.key_data(tree["loop"]["key"])
        )
        only_model, _ = checkpoints.restore({"model": net(5)}, step=2)
        assert set(only_model) == {"model"}
        np.testing.assert_array_equal(
            only_model["model"].layers[0].weight, tree["model"].layers[0].weight
        )


def test_restore_under_jit_use(tmp_path):
    """A restored module works in jitted, vmapped and differentiated code."""
    save_checkpoint(tmp_path, net(0))
    restored = restore_checkpoint(tmp_path, like=net(1))
    xs = jnp.ones((4, 3))
    out = eqx.filter_jit(lambda n, x: jax.vmap(n)(x))(restored, xs)
    grads = eqx.filter_grad(lambda n: jnp.sum(jax.vmap(n)(xs)))(restored)
    assert out.shape == (4, 2) and jnp.any(grads.layers[0].weight != 0)


def test_mismatches_are_explained(tmp_path):
    save_checkpoint(tmp_path / "a", net(0))
    with pytest.raises(
        hybrax.ConfigurationError,
        match=r"array 0 \(layers.0.weight\) has shape \(8, 3\) but the template's has \(9, 3\)",
    ):
        restore_checkpoint(tmp_path / "a", like=net(0, width=9))
    with pytest.raises(hybrax.ConfigurationError, match="array leaves only in the template"):
        restore_checkpoint(tmp_path / "a", like=[net(0), net(1)])
    with pytest.raises(
        hybrax.ConfigurationError, match=r"has no item 'model'; it holds \['arrays'\]"
    ):
        restore_checkpoint(tmp_path / "a", like={"model": net(0)})
    with pytest.raises(hybrax.CheckpointError, match="no checkpoint for step 5"):
        restore_checkpoint(tmp_path / "a", like=net(0), step=5)
    with pytest.raises(hybrax.CheckpointError, match="no checkpoint in"):
        restore_checkpoint(tmp_path / "empty", like=net(0))


def test_dtype_mismatch_is_an_error_not_a_silent_cast(tmp_path):
    """Probe row 82: a float16 template used to cast the stored float32 weights silently."""
    save_checkpoint(tmp_path, net(0))
    half = jax.tree.map(lambda x: x.astype(jnp.float16) if eqx.is_inexact_array(x) else x, net(0))
    with pytest.raises(
        hybrax.ConfigurationError, match=r"stored as float(32|64) but the template's is float16"
    ):
        restore_checkpoint(tmp_path, like=half)


@pytest.mark.parametrize("step", [-1, 1.5, True, "3", None])
def test_bad_steps_are_rejected(tmp_path, step, wrong_type):
    """Probe rows 80-81: step=-1 was written invisibly, step=1.5 stored as 1."""
    match = "step must be an int >= 0"
    if isinstance(step, int):  # the right type (bool is an int), a bad value
        raises = pytest.raises(hybrax.ConfigurationError, match=match)
    else:  # 1.5, "3", None: not an int, as ``step: int`` is annotated
        raises = wrong_type("step", hybrax.ConfigurationError, match)
    with raises:
        save_checkpoint(tmp_path, net(0), step=step)
    assert not any(tmp_path.iterdir())


def test_bad_directories_and_arguments(tmp_path, wrong_type):
    """Probe row 69: a file or an unwritable place as the directory."""
    afile = tmp_path / "file"
    afile.write_text("user data")
    with pytest.raises(hybrax.ConfigurationError, match=r"directory=.*is a file"):
        Checkpointer(afile)
    assert afile.read_text() == "user data"
    with pytest.raises(hybrax.ConfigurationError, match=r"directory=.*cannot be created"):
        Checkpointer("/proc/hybrax-checkpoints")
    with wrong_type("directory", hybrax.ConfigurationError, "directory must be a path"):
        Checkpointer(3)
    with pytest.raises(hybrax.ConfigurationError, match="max_to_keep must be None"):
        Checkpointer(tmp_path / "c", max_to_keep=0)
    with pytest.raises(hybrax.ConfigurationError, match="metadata must be JSON-serialisable"):
        save_checkpoint(tmp_path / "c", net(0), metadata={"f": object()})
    with pytest.raises(hybrax.ConfigurationError, match="may not be called 'metadata'"):
        save_checkpoint(tmp_path / "c", {"metadata": net(0)})
    save_checkpoint(tmp_path / "c", net(0), step=3)
    with pytest.raises(hybrax.CheckpointError, match="step 3 already exists"):
        save_checkpoint(tmp_path / "c", net(1), step=3)


def data_files(step_dir: Path) -> list[Path]:
    """The files of a checkpoint that hold array data (not the JSON metadata)."""
    return sorted(p for p in step_dir.rglob("*") if p.is_file() and p.parent.name == "d")


def test_altered_arrays_fail_their_checksum(tmp_path):
    """An item whose data were replaced by other, well-formed data is detected: orbax reads
    it without complaint, the stored CRC-32 does not match."""
    save_checkpoint(tmp_path / "a", {"model": net(0)}, step=7)
    save_checkpoint(tmp_path / "b", {"model": net(1)}, step=7)
    for name in ("d", "ocdbt.process_0", "manifest.ocdbt"):
        a, b = tmp_path / "a" / "7" / "model" / name, tmp_path / "b" / "7" / "model" / name
        if a.is_dir():
            for f in a.rglob("*"):
                f.unlink() if f.is_file() else None
            for f in b.rglob("*"):
                if f.is_file():
                    target = a / f.relative_to(b)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(f.read_bytes())
        else:
            a.write_bytes(b.read_bytes())
    with pytest.raises(hybrax.CorruptedDataError, match=r"a/7: array 0 \(layers.0.weight\) fails"):
        restore_checkpoint(tmp_path / "a", like={"model": net(2)})


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # orbax's loop
def test_flipped_or_truncated_data_never_restore_silently(tmp_path):
    """Probe rows 75-77: flip 4 bytes at several places of every array data file, or
    truncate it: restoring either raises CorruptedDataError naming the checkpoint or gives
    the saved arrays bit for bit, never changed weights or a raw TensorStore error."""
    model = hybrax.nn.MLP(3, 2, 48, 2, key=jax.random.key(0, impl="rbg"))
    reference = jax.tree.leaves(eqx.filter(model, eqx.is_array))
    save_checkpoint(tmp_path / "ref", model, step=1)
    files = [p.relative_to(tmp_path / "ref") for p in data_files(tmp_path / "ref" / "1")]
    assert files
    detected = 0
    for index, rel in enumerate(files):
        size = (tmp_path / "ref" / rel).stat().st_size
        for damage in ("flip_start", "flip_middle", "flip_end", "truncate"):
            case = tmp_path / f"{index}_{damage}"
            shutil.copytree(tmp_path / "ref", case)
            path = case / rel
            data = bytearray(path.read_bytes())
            if damage == "truncate":
                data = data[: size // 2]
            else:
                at = {"flip_start": 0, "flip_middle": size // 2, "flip_end": max(size - 8, 0)}
                at = at[damage]
                data[at : at + 4] = bytes(b ^ 0xFF for b in data[at : at + 4])
            path.write_bytes(bytes(data))
            try:
                restored = restore_checkpoint(case, like=model)
            except hybrax.CorruptedDataError as error:
                assert f"{case}/1" in str(error) and "tensorstore_spec" not in str(error)
                detected += 1
                continue
            back = jax.tree.leaves(eqx.filter(restored, eqx.is_array))
            for a, b in zip(reference, back, strict=True):
                np.testing.assert_array_equal(a, b)
    assert detected > 0


@pytest.mark.parametrize("damage", ["manifest", "metadata_json", "array_metadata", "empty"])
def test_damaged_checkpoint_is_named_and_fallback_finds_the_intact_one(tmp_path, damage):
    """Probe rows 78-79: a missing manifest, corrupt metadata JSON, or an empty step folder
    "40" give a hybrax error naming the checkpoint; restore(fallback=True) moves it aside
    with a warning and returns the newest intact checkpoint, and the step can be saved again."""
    tree = {"model": net(0), "loop": {"step": jnp.asarray(0, jnp.int32)}}
    with Checkpointer(tmp_path) as checkpoints:
        checkpoints.save(10, tree, metadata={"at": 10})
        checkpoints.save(20, tree, metadata={"at": 20})
    bad = 40 if damage == "empty" else 20
    if damage == "manifest":
        (tmp_path / "20" / "model" / "manifest.ocdbt").unlink()
    elif damage == "metadata_json":
        (tmp_path / "20" / "metadata" / "metadata").write_text("{not json")
    elif damage == "array_metadata":
        (tmp_path / "20" / "model" / "_METADATA").write_text("{not json")
    else:
        (tmp_path / "40").mkdir()
    expected = hybrax.CheckpointError if damage == "empty" else hybrax.CorruptedDataError
    with Checkpointer(tmp_path) as checkpoints:
        with pytest.raises(expected, match=f"{tmp_path}/{bad}") as info:
            checkpoints.restore(tree)
        assert "tensorstore_spec" not in str(info.value)
        with pytest.warns(UserWarning, match=f"{bad}.corrupt"):
            _, metadata = checkpoints.restore(tree, fallback=True)
        assert metadata == {"at": 10 if damage != "empty" else 20}
        assert bad not in checkpoints.all_steps()
        assert (tmp_path / f"{bad}.corrupt").is_dir()
        checkpoints.save(bad, tree)
        assert checkpoints.latest_step == bad
        checkpoints.restore(tree)


def test_plain_number_fields_of_the_template_must_match(tmp_path):
    """A Python-float field (RK4's dt given as 0.01) is not an array, so it is not written
    and the template's value would win silently: a different value is an error."""
    model = hybrax.RK4(hybrax.hybrid.Closure(hybrax.climate.Lorenz96(8, 19.5), net(0)), 0.01)
    save_checkpoint(tmp_path, {"model": model})
    other_dt = hybrax.RK4(hybrax.hybrid.Closure(hybrax.climate.Lorenz96(8), net(1)), 0.02)
    with pytest.raises(
        hybrax.ConfigurationError, match=r"saved with dt = 0.01, but the template has dt = 0.02"
    ):
        restore_checkpoint(tmp_path, like={"model": other_dt})
    same_dt = hybrax.RK4(hybrax.hybrid.Closure(hybrax.climate.Lorenz96(8), net(1)), 0.01)
    restored = restore_checkpoint(tmp_path, like={"model": same_dt})["model"]
    assert float(restored.dynamics.dynamics.forcing) == 19.5
    with pytest.raises(hybrax.CheckpointError, match="no such folder"):
        restore_checkpoint(tmp_path / "missing", like=net(0))
    assert not (tmp_path / "missing").exists()
