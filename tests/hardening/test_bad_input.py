"""Bad input through the CLI: each is refused with exit code 2, one sentence "error: ..." on
stderr, and nothing written (every file under the directories involved is byte-identical)."""

from __future__ import annotations

import json
import pickle
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch

import weightspace.tasks.fmnist as fmnist
from weightspace.cli import main
from weightspace.io import save_safetensors
from weightspace.zoo.store import Zoo

from hardening_helpers import snapshot


class CreatesMarker:
    """Unpickling this object creates the file ``path``: proof that a loader unpickled it."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def refused(argv: list[str], capsys, message: str, *watched: Path) -> None:
    before = [snapshot(w) for w in watched]
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    # Legacy .pt files get a note first; the error itself is the last line, and the only one.
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == [lines[-1]] and message in lines[-1], lines
    assert [snapshot(w) for w in watched] == before


def member(zoo_dir: Path) -> tuple[dict[str, torch.Tensor], str]:
    zoo = Zoo.open(zoo_dir)
    rec = zoo.records()[0]
    return {k: v[0] for k, v in zoo.load([rec.member_id]).items()}, rec.task_id


def bad_weight_files(tmp: Path, params: dict[str, torch.Tensor], marker: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, the message the CLI must give)."""
    good = tmp / "good.safetensors"
    save_safetensors(good, params)
    raw = good.read_bytes()
    files = {}
    (tmp / "truncated.safetensors").write_bytes(raw[: len(raw) - 40])
    files["truncated"] = (tmp / "truncated.safetensors", "is truncated")
    (tmp / "header.safetensors").write_bytes((10**9).to_bytes(8, "little") + raw[8:])
    files["header length"] = (tmp / "header.safetensors", "header length is wrong")
    (tmp / "garbage.safetensors").write_bytes(raw[:8] + b"\xff" * (len(raw) - 8))
    files["garbage header"] = (tmp / "garbage.safetensors", "header is not JSON")
    (tmp / "pickle.safetensors").write_bytes(pickle.dumps({"fc0.weight": CreatesMarker(marker)}))
    files["pickle named safetensors"] = (tmp / "pickle.safetensors", "is a pickle/PyTorch archive, not safetensors")
    (tmp / "legacy.pt").write_bytes(pickle.dumps({"fc0.weight": CreatesMarker(marker)}))
    files["raw pickle .pt"] = (tmp / "legacy.pt", "could not be loaded with torch.load(weights_only=True)")
    torch.save({"fc0.weight": CreatesMarker(marker)}, tmp / "archive.pt")
    files["torch archive .pt"] = (tmp / "archive.pt", "could not be loaded with torch.load(weights_only=True)")
    shapes = {**params, "fc0.weight": params["fc0.weight"][:, :5].contiguous()}
    save_safetensors(tmp / "shapes.safetensors", shapes)
    files["shapes"] = (tmp / "shapes.safetensors", "tensor fc0.weight has shape (16, 5), the weight space expects (16, 100).")
    nan = {**params, "fc1.bias": torch.full_like(params["fc1.bias"], float("nan"))}
    save_safetensors(tmp / "nan.safetensors", nan)
    files["nan"] = (tmp / "nan.safetensors", "tensor fc1.bias contains NaN or infinite values.")
    return files


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the .pt files made here
def test_zoo_import_refuses_bad_weight_files_and_never_unpickles(built, tmp_path, capsys):
    zoo_dir, _ = built
    params, task_id = member(zoo_dir)
    marker = tmp_path / "unpickled"
    for name, (path, message) in bad_weight_files(tmp_path, params, marker).items():
        refused(["zoo", "import", str(zoo_dir), str(path), "--task", task_id], capsys, message, zoo_dir)
        assert not marker.exists(), f"{name}: the loader ran code from a pickle"
    # The same good weights are accepted, so the refusals above were about the files.
    good = tmp_path / "good.safetensors"
    copy = tmp_path / "zoo-copy"
    shutil.copytree(zoo_dir, copy)
    assert main(["zoo", "import", str(copy), str(good), "--task", task_id]) == 0


def test_generate_refuses_bad_support_files_and_writes_no_output(built, tmp_path, capsys):
    _, gen = built
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    marker = tmp_path / "unpickled"
    x, y = np.zeros((6, 1, 10, 10), np.float32), np.arange(6) % 3
    cases = {}
    save_safetensors(tmp_path / "s.safetensors", {"x": torch.from_numpy(x), "y": torch.from_numpy(y)})
    raw = (tmp_path / "s.safetensors").read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(raw[:-100])
    cases["truncated.safetensors"] = "is truncated"
    (tmp_path / "pickled.npz").write_bytes(pickle.dumps({"x": CreatesMarker(marker)}))
    cases["pickled.npz"] = "could not be read as .npz"
    np.savez(tmp_path / "objects.npz", x=np.array([CreatesMarker(marker)], dtype=object), y=y)
    cases["objects.npz"] = "could not be read as .npz"
    (tmp_path / "nan.json").write_text(json.dumps({"x": [[float("nan")] * 100] * 2, "y": [0, 1]}))
    cases["nan.json"] = "inputs contain NaN or infinite values."
    (tmp_path / "shape.json").write_text(json.dumps({"x": [[0.5] * 99] * 2, "y": [0, 1]}))
    cases["shape.json"] = "inputs have shape (2, 99), the architecture expects (N, 1, 10, 10)."
    (tmp_path / "labels.json").write_text(json.dumps({"x": [[0.5] * 100] * 2, "y": [0, 12]}))
    cases["labels.json"] = "labels must lie in 0..9, got 0..12."
    (tmp_path / "ragged.json").write_text('{"x": [[1, 2], [3]], "y": [0, 1]}')
    cases["ragged.json"] = "x must be a rectangular array of numbers."
    (tmp_path / "nolabels.npz").write_bytes(b"")
    np.savez(tmp_path / "nolabels.npz", x=x)
    cases["nolabels.npz"] = "lacks y"
    for name, message in cases.items():
        refused(["generate", str(gen), "--support", str(tmp_path / name), "--out", str(out_dir / "w.safetensors")],
                capsys, message, out_dir, gen)
        assert not marker.exists(), f"{name}: the loader ran code from a pickle"


def edited_copy(zoo_dir: Path, dest: Path, sql: str | None = None, zoo_json=None) -> Path:
    shutil.copytree(zoo_dir, dest)
    if sql is not None:
        with sqlite3.connect(dest / "manifest.sqlite") as con:
            con.execute(sql)
        con.close()
    if zoo_json is not None:
        (dest / "zoo.json").write_text(zoo_json(json.loads((dest / "zoo.json").read_text())))
    return dest


def _set(meta: dict, path: str, value) -> str:
    *parents, last = path.split(".")
    d = meta
    for p in parents:
        d = d[p]
    d[last] = value
    return json.dumps(meta)


HAND_EDITS = {
    # Verification refuses these before any work, with the first problem `zoo check` names.
    "row out of range": ({"sql": "UPDATE members SET row = 99"}, "several manifest rows claim row 99"),
    "shard renamed": ({"sql": "UPDATE members SET shard = 'gone.safetensors'"},
                      "point at shard gone.safetensors, which the manifest's shards table does not list"),
    "optimizer not JSON": ({"sql": "UPDATE members SET optimizer = 'lr=0.1'"}, "its optimizer is not a JSON object"),
    "architecture changed": ({"zoo_json": lambda m: _set(m, "arch.hidden", [7])},
                             "zoo.json's weight spec does not match its mlp architecture"),
    "family option mistyped": ({"zoo_json": lambda m: _set(m, "family.config.n_tasks", "three")},
                               "n_tasks must be an integer, got 'three'"),
    "zoo.json cut short": ({"zoo_json": lambda m: json.dumps(m)[:50]}, "zoo.json is not valid JSON"),
}


@pytest.mark.parametrize("edit", list(HAND_EDITS))
def test_training_on_a_hand_edited_zoo_is_refused(built, tmp_path, capsys, edit):
    zoo_dir, _ = built
    change, message = HAND_EDITS[edit]
    copy = edited_copy(zoo_dir, tmp_path / "zoo", **change)
    refused(["train", str(copy), "-g", "pca-gaussian", "--out", str(tmp_path / "gen"), "--quiet"],
            capsys, message, tmp_path)


def test_zoo_check_names_every_member_a_manifest_edit_broke(built, tmp_path, capsys):
    zoo_dir, _ = built
    copy = edited_copy(zoo_dir, tmp_path / "zoo", sql="UPDATE members SET checksum = 'abc' WHERE member_id = 2")
    key = Zoo.open(copy).records()[1].key
    assert main(["zoo", "check", str(copy)]) == 1
    out = capsys.readouterr().out
    assert "1 problem" in out and key in out


def test_a_missing_dataset_is_one_sentence_and_leaves_no_zoo(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fmnist, "FASHION_MNIST_DIR", tmp_path / "not-installed")
    refused(["zoo", "build", "--family", "fmnist-rotate", "--tasks", "2", "--heldout", "1", "--steps", "5",
             "--workers", "0", "--quiet", "--out", str(tmp_path / "zoo")],
            capsys, "Fashion-MNIST is not installed; install the Debian package dataset-fashion-mnist", tmp_path)
    assert not (tmp_path / "zoo").exists()
