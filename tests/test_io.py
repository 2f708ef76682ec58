"""tapegrad.io: safetensors checkpoints that round-trip nested state (bfloat16 included), are
written atomically, refuse truncated or corrupted files, and are read and written by the
reference safetensors implementation (and PyTorch's) alike."""
import json
import os
import struct
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tapegrad as tg
from tapegrad import _safetensors, io

DTYPES = {tg.float32: np.float32, tg.float64: np.float64, tg.int64: np.int64, tg.bool: np.bool_}


def reference_numpy():
    """safetensors.numpy, the reference implementation (a test dependency; skips without it)."""
    return pytest.importorskip("safetensors.numpy")


def bf16_bits(t):
    return (t.float().numpy().view(np.uint32) >> 16).astype(np.uint16)


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
    safetensors_numpy = reference_numpy()
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
    safetensors_numpy = reference_numpy()
    path = str(tmp_path / "foreign.safetensors")
    safetensors_numpy.save_file({"layer.weight": np.eye(2, dtype=np.float32)}, path)
    loaded = io.load(path)
    np.testing.assert_array_equal(loaded["layer.weight"].numpy(), np.eye(2))


def test_unsupported_values_raise_type_error_and_write_nothing(tmp_path):
    with pytest.raises(TypeError):
        io.save({"x": object()}, tmp_path / "bad.safetensors")
    with pytest.raises(TypeError):
        io.save({"x": np.zeros(2, dtype=np.uint16)}, tmp_path / "bad.safetensors")  # no tapegrad dtype holds uint16
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
    safetensors_numpy = reference_numpy()
    import safetensors
    path = tmp_path / "ckpt.safetensors"
    io.save({"x": tg.tensor([1.0, 2.0])}, path)
    with safetensors.safe_open(str(path), "np") as f:
        header = f.metadata()
    forged = safetensors_numpy.save({"x": np.array([1.0, 2.5], dtype=np.float32)}, metadata=header)
    path.write_bytes(forged)
    with pytest.raises(ValueError, match="SHA-256"):
        io.load(path)


def test_checkpoints_need_no_safetensors_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    io.save({"x": tg.arange(3)}, tmp_path / "x.safetensors")
    np.testing.assert_array_equal(io.load(tmp_path / "x.safetensors")["x"].numpy(), [0, 1, 2])


# ---- bfloat16 ----------------------------------------------------------------------------------

def test_every_bfloat16_pattern_round_trips_bit_exactly(tmp_path):
    finite = np.arange(1 << 16, dtype=np.uint32) << 16
    values = finite.view(np.float32)
    values = values[~np.isnan(values)]  # NaN payloads are not kept by float32 -> bfloat16 (as in PyTorch)
    t = tg.tensor(values).to(tg.bfloat16)
    io.save({"w": t, "nested": [t[:3]]}, tmp_path / "b.safetensors")
    got = io.load(tmp_path / "b.safetensors")
    assert got["w"].dtype == tg.bfloat16 and got["nested"][0].dtype == tg.bfloat16
    np.testing.assert_array_equal(bf16_bits(got["w"]), bf16_bits(t))
    np.testing.assert_array_equal(bf16_bits(got["nested"][0]), bf16_bits(t[:3]))


@pytest.mark.parametrize("shape", [(), (0,), (0, 3), (2, 1, 3)])
def test_bfloat16_of_every_shape_round_trips(tmp_path, shape):
    t = tg.tensor(np.random.default_rng(1).standard_normal(shape).astype(np.float32)).to(tg.bfloat16)
    io.save({"t": t}, tmp_path / "s.safetensors")
    got = io.load(tmp_path / "s.safetensors")["t"]
    assert got.dtype == tg.bfloat16 and tuple(got.shape) == shape
    np.testing.assert_array_equal(bf16_bits(got), bf16_bits(t))


def test_bfloat16_is_stored_as_safetensors_bf16(tmp_path):
    path = tmp_path / "b.safetensors"
    values = np.array([1.0, -2.5, 2.0 ** 100], np.float32)  # exact in bfloat16
    io.save({"w": tg.tensor([values]).to(tg.bfloat16)}, path)
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    entry = json.loads(data[8:8 + n])["w"]
    assert entry["dtype"] == "BF16" and entry["shape"] == [1, 3] and entry["data_offsets"] == [0, 6]
    assert data[8 + n:] == (values.view(np.uint32) >> 16).astype("<u2").tobytes()


def test_bfloat16_checkpoints_are_read_and_written_by_pytorch(tmp_path):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    values = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    ours = tmp_path / "ours.safetensors"
    io.save({"w": tg.tensor(values).to(tg.bfloat16)}, ours)
    w = safetensors_torch.load_file(str(ours))["w"]
    assert w.dtype == torch.bfloat16
    np.testing.assert_array_equal(w.float().numpy(), tg.tensor(values).to(tg.bfloat16).float().numpy())
    theirs = tmp_path / "theirs.safetensors"
    safetensors_torch.save_file({"w": torch.from_numpy(values).bfloat16()}, str(theirs))
    got = io.load(theirs)["w"]
    assert got.dtype == tg.bfloat16
    np.testing.assert_array_equal(got.float().numpy(), torch.from_numpy(values).bfloat16().float().numpy())


def test_a_dtype_tapegrad_cannot_hold_raises_type_error_naming_the_key(tmp_path):
    path = tmp_path / "u16.safetensors"
    path.write_bytes(_safetensors.dumps({"half": ("U16", np.ones(2, np.uint16))}))
    with pytest.raises(TypeError, match="'half' has safetensors dtype U16"):
        io.load(path)


def raw_file(header, body):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


@pytest.mark.parametrize("header, body, why", [
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 12, "cover 8 data bytes"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8, "starts at byte 4"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
      "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, "starts at byte 0, expected 4"),
    ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "8 bytes for shape"),
    ({"a": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, "unknown dtype"),
    ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "bad shape"),
    ({"a": {"dtype": "F32", "shape": [1]}}, b"\0" * 4, "dtype, shape, data_offsets"),
    ({"__metadata__": {"k": 1}}, b"", "map of strings"),
])
def test_inconsistent_headers_raise_value_error(tmp_path, header, body, why):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(raw_file(header, body))
    with pytest.raises(ValueError, match=why):
        io.load(path)
    if "safetensors" not in sys.modules or sys.modules["safetensors"] is not None:
        try:
            import safetensors.numpy as reference
        except ImportError:
            return
        with pytest.raises(Exception):  # the reference implementation refuses the same files
            reference.load(path.read_bytes())
