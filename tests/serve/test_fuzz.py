"""Fuzzing with hypothesis: the file readers only ever answer with a WeightspaceError, and no JSON
body makes the server answer 500."""

from __future__ import annotations

import io
import json
import struct
import tempfile
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save as safetensors_bytes

from weightspace.errors import WeightspaceError
from weightspace.generate.support_file import read_support_file
from weightspace.io import load_safetensors

from serve_helpers import auth, support_body

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
INPUT_SHAPE, CLASSES = (1, 2, 2), 3

json_scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=8)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner, max_size=6),
                           max_leaves=40)


def write_tmp(data: bytes, suffix: str) -> Path:
    f = tempfile.NamedTemporaryFile(suffix=suffix, delete=False)
    f.write(data)
    f.close()
    return Path(f.name)


def only_clear_errors(read, data: bytes, suffix: str):
    path = write_tmp(data, suffix)
    try:
        return read(path)
    except WeightspaceError as e:
        assert str(e) and "\n" not in str(e)
    finally:
        path.unlink()


VALID = safetensors_bytes({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.zeros(2)}, {"k": "v"})


@FAST
@given(st.binary(max_size=300))
def test_safetensors_reader_on_random_bytes(data):
    only_clear_errors(load_safetensors, data, ".safetensors")


@FAST
@given(st.data())
def test_safetensors_reader_on_damaged_valid_files(data):
    raw = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    only_clear_errors(load_safetensors, bytes(raw[:cut]), ".safetensors")


@FAST
@given(json_values, st.binary(max_size=64))
def test_safetensors_reader_on_wellformed_frames_around_any_json_header(header, payload):
    text = json.dumps(header).encode()
    only_clear_errors(load_safetensors, struct.pack("<Q", len(text)) + text + payload, ".safetensors")


@pytest.mark.parametrize("header_length", [0x280, 0x380, 0x480, 0x580])
def test_safetensors_whose_first_bytes_look_like_a_pickle_still_load(header_length, tmp_path):
    # The length 0x0480 is stored as 80 04 00 ..., the first two bytes of a protocol-4 pickle.
    tensors = {"w": torch.arange(3.0)}
    data = next(d for pad in range(header_length) if
                int.from_bytes((d := safetensors_bytes(tensors, {"pad": "x" * pad}))[:8], "little") == header_length)
    (tmp_path / "w.safetensors").write_bytes(data)
    loaded, meta = load_safetensors(tmp_path / "w.safetensors")
    assert torch.equal(loaded["w"], tensors["w"]) and meta["pad"].startswith("x")


def read_support(path: Path):
    x, y = read_support_file(path, INPUT_SHAPE, CLASSES)
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and tuple(x.shape[1:]) == INPUT_SHAPE
    assert torch.isfinite(x).all() and int(y.min()) >= 0 and int(y.max()) < CLASSES


@FAST
@given(json_values)
def test_support_reader_on_any_json(value):
    only_clear_errors(read_support, json.dumps(value).encode(), ".json")


def filled(shape: list[int], dtype: str, value) -> np.ndarray:
    with np.errstate(all="ignore"):  # NaN and inf cast to integers on purpose: odd values are the point
        return np.full(shape, value).astype(dtype, casting="unsafe")


arrays = st.builds(filled, st.lists(st.integers(0, 4), max_size=4), st.sampled_from(["f4", "f8", "i8", "u1", "bool", "c8", "i2"]),
                   st.floats(allow_nan=True, allow_infinity=True) | st.integers(-5, 5))


@FAST
@given(st.dictionaries(st.sampled_from(["x", "y", "z"]), arrays, max_size=3))
def test_support_reader_on_any_npz(entries):
    buf = io.BytesIO()
    np.savez(buf, **entries)
    only_clear_errors(read_support, buf.getvalue(), ".npz")


@FAST
@given(st.dictionaries(st.sampled_from(["x", "y"]), arrays.filter(lambda a: a.dtype.kind != "c"), max_size=2))
def test_support_reader_on_any_safetensors(entries):
    data = safetensors_bytes({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in entries.items()})
    only_clear_errors(read_support, data, ".safetensors")


# ----- the server ----------------------------------------------------------------------------
bodies = st.fixed_dictionaries({}, optional={
    "support": st.fixed_dictionaries({}, optional={"x": json_values, "y": json_values}) | json_values,
    "descriptor": json_values, "description": json_values, "task": json_values | st.just("rot=000.00"),
    "n": json_values, "seed": json_values, "best_of": json_values, "deterministic": json_values,
    "format": json_values | st.sampled_from(["safetensors", "peft"]),
}) | json_values


@pytest.fixture(scope="module")
def client():
    with httpx.Client(headers=auth(), timeout=30) as c:
        yield c


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_no_json_body_crashes_the_server(server, client, body):
    r = client.post(f"{server}/v1/generate", content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code in (200, 413, 422), (r.status_code, r.text)
    if r.status_code != 200:
        error = r.json()["error"]
        assert error.endswith(".") and "\n" not in error


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_support_sets_never_crash_the_server(server, client, fam, data):
    task = fam.task(fam.zoo_task_ids()[0])
    body = support_body(task)
    x, y = body["support"]["x"], body["support"]["y"]
    i = data.draw(st.integers(0, len(y) - 1))
    choice = data.draw(st.integers(0, 4))
    if choice == 0:
        y[i] = data.draw(st.integers(-2**70, 2**70) | st.floats() | st.none())
    elif choice == 1:
        x[i][0][0][data.draw(st.integers(0, 9))] = data.draw(st.floats() | st.text(max_size=3) | st.none())
    elif choice == 2:
        x[i] = data.draw(json_values)
    elif choice == 3:
        del x[i]
    else:
        body["support"]["x"] = x[:data.draw(st.integers(0, 3))]
        body["support"]["y"] = y[:data.draw(st.integers(0, 3))]
    # Python's json writes NaN and Infinity literals, which the server's parser accepts as numbers.
    r = client.post(f"{server}/v1/generate", content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code in (200, 422), (r.status_code, r.text)
