"""The safe `.pyth` reader: the reference checkpoint loads, hostile or damaged files are refused."""

from __future__ import annotations

import pickle
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from asf_jax.pyth import PythError, UnsafePickleError, read_pyth

DATA = Path(__file__).parent / "data"
FIXTURE = DATA / "slowfast_vgg_w8.pyth"


# ------------------------------------------------------------------------------------------------
# Hand-written pickles (protocol 2 opcodes), so the tests need no torch.
# ------------------------------------------------------------------------------------------------


def _value(obj: object) -> bytes:
    """Opcodes that push a plain value (str, int, tuple, bool, None)."""
    return pickle.dumps(obj, protocol=2)[2:-1]


def _global(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()


def _call(func: bytes, *args: bytes) -> bytes:
    """REDUCE: push func(*args)."""
    return func + b"(" + b"".join(args) + b"tR"


def _tensor(storage: str, key: str, numel: int, offset: int, size: tuple, stride: tuple) -> bytes:
    """`torch._utils._rebuild_tensor_v2` of a storage record, exactly as torch.save writes it."""
    pid = b"(" + _value("storage") + _global("torch", storage) + _value(key)
    pid += _value("cpu") + _value(numel) + b"tQ"
    hooks = _call(_global("collections", "OrderedDict"))
    return _call(
        _global("torch._utils", "_rebuild_tensor_v2"),
        pid,
        _value(offset),
        _value(size),
        _value(stride),
        _value(False),
        hooks,
    )


def _dict(items: dict[str, bytes]) -> bytes:
    return b"}(" + b"".join(_value(k) + v for k, v in items.items()) + b"u"


def _write_pyth(path: Path, body: bytes, records: dict[str, bytes], byteorder: str = "little"):
    """A zip with torch.save's layout around the pickle `body`."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("ckpt/data.pkl", b"\x80\x02" + body + b".")
        z.writestr("ckpt/byteorder", byteorder)
        for key, raw in records.items():
            z.writestr(f"ckpt/data/{key}", raw)
    return path


# ------------------------------------------------------------------------------------------------
# The reference checkpoint.
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ckpt():
    return read_pyth(FIXTURE)


def test_fixture_model_state(ckpt):
    state = ckpt.model_state
    assert list(state)[:2] == ["s1.pathway0_stem.conv.weight", "s1.pathway0_stem.bn.weight"]
    assert list(state)[-1] == "head.projection.bias"
    trainable = [k for k in state if k.endswith((".weight", ".bias"))]
    assert sum(state[k].size for k in trainable) == 501_756
    assert all(state[k].dtype == np.float32 for k in trainable)
    assert state["s1.pathway0_stem.conv.weight"].shape == (8, 1, 1, 7)  # (out, in, time, freq)
    assert state["head.projection.weight"].shape == (309, 8 * 32 + 8 * 32 // 8)  # slow + fast
    tracked = state["s1.pathway0_stem.bn.num_batches_tracked"]
    assert tracked.dtype == np.int64 and tracked.shape == ()
    assert all(v.flags.c_contiguous and v.flags.writeable for v in state.values())


def test_fixture_cfg_and_epoch(ckpt):
    assert ckpt.epoch == 0
    assert ckpt.cfg["MODEL"]["ARCH"] == "slowfast"
    assert ckpt.cfg["RESNET"]["WIDTH_PER_GROUP"] == 8
    assert "WIDTH_PER_GROUP: 8" in ckpt.cfg_text


def test_fixture_optimizer_state_matches_parameters(ckpt):
    trainable = [k for k in ckpt.model_state if k.endswith((".weight", ".bias"))]
    bn = [k for k in trainable if "bn" in k]
    numbered = bn + [k for k in trainable if "bn" not in k]
    groups = ckpt.optimizer_state["param_groups"]
    assert [g["params"] for g in groups] == [list(range(220)), list(range(220, 332))]
    assert [g["weight_decay"] for g in groups] == [0.0, 1e-4]
    state = ckpt.optimizer_state["state"]
    for i, key in enumerate(numbered):
        assert state[i]["momentum_buffer"].shape == ckpt.model_state[key].shape, key


def test_fixture_values_are_one_sgd_step_before_reference(ckpt):
    """The io fixture holds the parameters after one step: each must be close, but not equal."""
    io = np.load(DATA / "slowfast_vgg_w8_io.npz")
    for key in [
        "s4.pathway0_res0.branch2.b.weight",
        "s5.pathway1_res2.branch2.c_bn.bias",
        "head.projection.weight",
        "head.projection.bias",
    ]:
        step = np.abs(io[f"after_step/{key}"] - ckpt.model_state[key])
        assert 0 < step.max() < 0.05, key


# ------------------------------------------------------------------------------------------------
# Hand-built checkpoints: storage sharing, strides, byte order, bare state dicts.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_strided_views_of_a_shared_storage(tmp_path, byteorder):
    values = np.arange(12, dtype=np.float32)
    raw = values.astype(">f4" if byteorder == "big" else "<f4").tobytes()
    body = _dict(
        {
            "epoch": _value(3),
            "model_state": _dict(
                {
                    "w": _tensor("FloatStorage", "0", 12, 0, (3, 4), (4, 1)),
                    "wT": _tensor("FloatStorage", "0", 12, 0, (4, 3), (1, 4)),
                    "tail": _call(
                        _global("torch._utils", "_rebuild_parameter"),
                        _tensor("FloatStorage", "0", 12, 10, (2,), (1,)),
                        _value(True),
                    ),
                }
            ),
        }
    )
    ckpt = read_pyth(_write_pyth(tmp_path / "a.pyth", body, {"0": raw}, byteorder))
    np.testing.assert_array_equal(ckpt.model_state["w"], values.reshape(3, 4))
    np.testing.assert_array_equal(ckpt.model_state["wT"], values.reshape(3, 4).T)
    np.testing.assert_array_equal(ckpt.model_state["tail"], [10, 11])
    assert ckpt.model_state["wT"].flags.c_contiguous
    assert ckpt.model_state["w"].dtype == np.dtype("float32")  # native order, whatever the file's
    assert (ckpt.epoch, ckpt.cfg, ckpt.cfg_text, ckpt.optimizer_state) == (3, {}, "", None)


def test_bare_state_dict_is_model_state(tmp_path):
    body = _dict({"n": _tensor("LongStorage", "k", 1, 0, (), ())})
    raw = np.array([7], "<i8").tobytes()
    ckpt = read_pyth(_write_pyth(tmp_path / "bare.pyth", body, {"k": raw}))
    assert ckpt.model_state["n"].dtype == np.int64 and ckpt.model_state["n"] == 7
    assert ckpt.epoch is None


# ------------------------------------------------------------------------------------------------
# Hostile pickles: refused before anything runs.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module,name,make_arg",
    [
        ("os", "system", lambda m: f"touch {m}"),
        ("posix", "system", lambda m: f"touch {m}"),
        ("builtins", "eval", lambda m: f"open({str(m)!r}, 'w').close()"),
        ("subprocess", "Popen", lambda m: ("touch", str(m))),
    ],
)
def test_malicious_global_is_refused(tmp_path, module, name, make_arg):
    marker = tmp_path / "pwned"
    attack = _call(_global(module, name), _value(make_arg(marker)))
    body = _dict({"model_state": _dict({}), "epoch": attack})
    path = _write_pyth(tmp_path / "evil.pyth", body, {})
    with pytest.raises(UnsafePickleError, match=rf"{module}\.{name}") as err:
        read_pyth(path)
    assert err.value.global_name == f"{module}.{name}" and str(path) in str(err.value)
    assert not marker.exists()


# ------------------------------------------------------------------------------------------------
# Damaged or foreign files.
# ------------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(PythError, match="nope.pyth.*cannot open"):
        read_pyth(tmp_path / "nope.pyth")


def test_truncated_fixture(tmp_path):
    path = tmp_path / "half.pyth"
    path.write_bytes(FIXTURE.read_bytes()[: FIXTURE.stat().st_size // 2])
    with pytest.raises(PythError, match=r"half\.pyth.*truncated or corrupt zip"):
        read_pyth(path)


def test_bad_crc(tmp_path):
    path = tmp_path / "crc.pyth"
    shutil.copy(FIXTURE, path)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[26:30])  # data.pkl's local header comes first
    raw[30 + name_len + extra_len + 100] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(PythError, match=r"crc\.pyth.*corrupt zip.*CRC"):
        read_pyth(path)


@pytest.mark.parametrize(
    "content,reason",
    [
        (b"hello, not a checkpoint", "not a PyTorch zip checkpoint"),
        (b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", "legacy.*re-save"),
    ],
)
def test_not_a_zip(tmp_path, content, reason):
    path = tmp_path / "foreign.pyth"
    path.write_bytes(content)
    with pytest.raises(PythError, match=rf"foreign\.pyth.*{reason}"):
        read_pyth(path)


def test_zip_without_data_pkl(tmp_path):
    path = tmp_path / "empty.pyth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("ckpt/byteorder", "little")
    with pytest.raises(PythError, match=r"empty\.pyth.*data\.pkl"):
        read_pyth(path)


@pytest.mark.parametrize(
    "body,records,reason",
    [
        (
            _dict({"w": _tensor("FloatStorage", "0", 4, 0, (4,), (1,))}),
            {},
            "'ckpt/data/0' is missing",
        ),
        (
            _dict({"w": _tensor("FloatStorage", "0", 4, 0, (4,), (1,))}),
            {"0": b"\0" * 8},
            "has 8 bytes, expected 4",
        ),
        (
            _dict({"w": _tensor("FloatStorage", "0", 4, 1, (4,), (1,))}),
            {"0": b"\0" * 16},
            "reaches past its storage",
        ),
        (_value([1, 2]), {}, "is a list, expected a dict"),
        (_dict({"epoch": _value(1)}), {}, "no 'model_state'"),
    ],
)
def test_malformed_checkpoint(tmp_path, body, records, reason):
    path = _write_pyth(tmp_path / "bad.pyth", body, records)
    with pytest.raises(PythError, match=rf"bad\.pyth.*{reason}"):
        read_pyth(path)
