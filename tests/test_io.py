"""tapegrad.io: safetensors checkpoints that round-trip nested state, are written atomically
and refuse truncated or corrupted files."""
import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tapegrad as tg
from tapegrad import io

safetensors = pytest.importorskip("safetensors")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

DTYPES = {tg.float32: np.float32, tg.float64: np.float64, tg.int64: np.int64, tg.bool: np.bool_}


def optimizer_like_state():
    return {
        "state": {0: {"exp_avg": tg.tensor([[0.5, -1.0], [2.0, 3.0]]), "step": 3},
                  1: {"exp_avg": tg.tensor(np.array([1e-8, 7.0])), "step": 3}},
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "amsgrad": False,
                          "params": [0, 1], "name": None}],
    }


def assert_same_tensor(got, want):
    assert isinstance(got, tg.Tensor)
    assert got.dtype == want.dtype and tuple(got.shape) == tuple(want.shape)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def small_checkpoint(path):
    io.save({"w": tg.tensor(np.arange(6, dtype=np.float32).reshape(2, 3)), "n": tg.tensor([3]),
             "mask": tg.tensor([True, False]), "opt": {"step": 2, "v": tg.tensor(np.ones(2))}}, path)
    return path.read_bytes()


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("shape", [(), (0,), (5,), (2, 3, 4)])
def test_round_trip_of_every_dtype_and_shape(tmp_path, dtype, shape):
    rng = np.random.default_rng(0)
    array = np.asarray(rng.standard_normal(shape) * 100).astype(DTYPES[dtype])
    t = tg.from_numpy(array)
    io.save({"x": t}, tmp_path / "ckpt.safetensors")
    loaded = io.load(tmp_path / "ckpt.safetensors")
    assert list(loaded) == ["x"]
    assert_same_tensor(loaded["x"], t)


def test_round_trip_of_optimizer_like_state(tmp_path):
    state = optimizer_like_state()
    io.save(state, str(tmp_path / "opt.safetensors"))
    loaded = io.load(str(tmp_path / "opt.safetensors"))
    assert set(loaded) == {"state", "param_groups"}
    assert set(loaded["state"]) == {0, 1}  # int keys stay ints
    for i in (0, 1):
        assert loaded["state"][i]["step"] == 3
        assert_same_tensor(loaded["state"][i]["exp_avg"], state["state"][i]["exp_avg"])
    assert loaded["param_groups"] == state["param_groups"]  # tuples, None, bools, floats intact
    assert isinstance(loaded["param_groups"][0]["betas"], tuple)


def test_tensor_leaves_use_dotted_keys_readable_by_safetensors(tmp_path):
    path = tmp_path / "opt.safetensors"
    io.save(optimizer_like_state(), path)
    plain = safetensors_numpy.load_file(str(path))
    assert set(plain) == {"state.0.exp_avg", "state.1.exp_avg"}


def test_views_grad_tensors_and_numpy_arrays_are_saved_by_value(tmp_path):
    base = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    io.save({"t": base.transpose(0, 1), "a": np.arange(4)[::2]}, tmp_path / "v.safetensors")
    loaded = io.load(tmp_path / "v.safetensors")
    np.testing.assert_array_equal(loaded["t"].numpy(), np.arange(6.0).reshape(2, 3).T)
    np.testing.assert_array_equal(loaded["a"].numpy(), [0, 2])
    assert not loaded["t"].requires_grad


def test_colliding_dotted_keys_are_kept_apart(tmp_path):
    io.save({"a.b": tg.tensor([1]), "a": {"b": tg.tensor([2])}}, tmp_path / "c.safetensors")
    loaded = io.load(tmp_path / "c.safetensors")
    assert loaded["a.b"].tolist() == [1] and loaded["a"]["b"].tolist() == [2]


def test_user_metadata_round_trips(tmp_path):
    io.save({"x": tg.zeros(1)}, tmp_path / "m.safetensors", metadata={"epoch": "7", "note": "hi"})
    assert io.load_metadata(tmp_path / "m.safetensors") == {"epoch": "7", "note": "hi"}


def test_foreign_safetensors_file_loads_as_flat_dict(tmp_path):
    path = str(tmp_path / "foreign.safetensors")
    safetensors_numpy.save_file({"layer.weight": np.eye(2, dtype=np.float32)}, path)
    loaded = io.load(path)
    np.testing.assert_array_equal(loaded["layer.weight"].numpy(), np.eye(2))


def test_unsupported_values_raise_type_error_and_write_nothing(tmp_path):
    with pytest.raises(TypeError):
        io.save({"x": object()}, tmp_path / "bad.safetensors")
    with pytest.raises(TypeError):
        io.save({"x": np.zeros(2, dtype=np.int32)}, tmp_path / "bad.safetensors")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_failed_write_leaves_old_file_and_no_temporary(tmp_path, monkeypatch, failing):
    path = tmp_path / "ckpt.safetensors"
    io.save({"x": tg.tensor([1.0])}, path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(io.os, failing, boom)
    with pytest.raises(OSError, match="disk full"):
        io.save({"x": tg.tensor([2.0, 3.0])}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]
    assert path.read_bytes() == before


def test_every_truncation_raises_value_error_naming_the_path(tmp_path):
    good = small_checkpoint(tmp_path / "good.safetensors")
    path = tmp_path / "cut.safetensors"
    for n in range(len(good)):
        path.write_bytes(good[:n])
        with pytest.raises(ValueError, match="cut.safetensors"):
            io.load(path)


def assert_flip_detected(good, path, byte, bit):
    damaged = bytearray(good)
    damaged[byte] ^= 1 << bit
    path.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match=path.name):
        io.load(path)


def test_a_bit_flip_in_every_byte_is_detected(tmp_path):
    # header length, JSON header, metadata (structure, checksum) and tensor bytes alike
    good = small_checkpoint(tmp_path / "good.safetensors")
    for byte in range(len(good)):
        assert_flip_detected(good, tmp_path / "flipped.safetensors", byte, byte % 8)


@settings(deadline=None, max_examples=200)
@given(st.floats(0, 1, exclude_max=True), st.integers(0, 7))
def test_any_single_bit_flip_is_detected(tmp_path_factory, where, bit):
    directory = tmp_path_factory.mktemp("flip")
    good = small_checkpoint(directory / "good.safetensors")
    assert_flip_detected(good, directory / "flipped.safetensors", int(where * len(good)), bit)


def test_tensor_swapped_under_a_valid_header_fails_the_checksum(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    io.save({"x": tg.tensor([1.0, 2.0])}, path)
    with safetensors.safe_open(str(path), "np") as f:
        header = f.metadata()
    forged = safetensors_numpy.save({"x": np.array([1.0, 2.5], dtype=np.float32)}, metadata=header)
    path.write_bytes(forged)
    with pytest.raises(ValueError, match="SHA-256"):
        io.load(path)


def test_missing_safetensors_gives_pip_hint_at_call_time(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match="pip install safetensors"):
        io.save({"x": tg.zeros(1)}, tmp_path / "x.safetensors")
    with pytest.raises(ImportError, match="pip install safetensors"):
        io.load(tmp_path / "x.safetensors")


@settings(deadline=None, max_examples=40)
@given(st.sampled_from(list(DTYPES)),
       st.lists(st.integers(0, 4), max_size=3),
       st.integers(0, 2**32 - 1))
def test_random_arrays_round_trip_bit_exactly(tmp_path_factory, dtype, shape, seed):
    rng = np.random.default_rng(seed)
    array = np.asarray(rng.standard_normal(shape) * 1e6).astype(DTYPES[dtype])
    path = tmp_path_factory.mktemp("h") / "r.safetensors"
    io.save({"nested": [{"a": tg.from_numpy(array)}]}, path)
    got = io.load(path)["nested"][0]["a"]
    assert got.dtype == dtype and tuple(got.shape) == tuple(shape)
    assert got.numpy().tobytes() == array.tobytes()


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permissions")
def test_new_file_is_world_readable_and_replaced_file_keeps_its_mode(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    io.save({"x": tg.zeros(1)}, path)
    assert os.stat(path).st_mode & 0o777 == 0o644
    os.chmod(path, 0o600)
    io.save({"x": tg.ones(1)}, path)
    assert os.stat(path).st_mode & 0o777 == 0o600
