"""`weightspace train` and `weightspace generate` end to end on a tiny digits-rotate zoo."""

import json
import re

import numpy as np
import pytest
import torch

import weightspace.cli.generate_cmd  # noqa: F401  (registers train/generate; cli/__init__ imports it too)
from weightspace.cli import main
from weightspace.io import save_safetensors


def load_safetensors(path):
    # Read outputs with safetensors itself: weightspace.io's pickle sniffing misreads a header
    # length of 640/896/1152 bytes (0x80 0x02..0x05) as a pickle, and the metadata here varies.
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    from weightspace.nets import MLP
    from weightspace.tasks import make_family
    from weightspace.zoo.build import build_zoo
    from weightspace.zoo.train import TrainConfig

    torch.set_num_threads(1)
    family = make_family("digits-rotate", n_tasks=8, n_heldout=2, angle_range=40.0)
    arch = MLP(input_shape=family.input_shape, n_classes=family.n_classes, hidden=(16,))
    path = tmp_path_factory.mktemp("zoo") / "zoo"
    build_zoo(path, family, arch, TrainConfig(steps=150), init="shared", pretrain_steps=150, workers=0,
              include_heldout=True, progress=False)
    return path, family


def run(*args) -> int:
    return main([str(a) for a in args])


def test_train_then_generate_from_support_and_task(tiny_zoo, tmp_path, capsys):
    zoo, family = tiny_zoo
    gen = tmp_path / "gen"
    assert run("train", zoo, "--generator", "pca-gaussian", "--condition", "support", "condition.n_anchors=4",
               "--out", gen, "--quiet") == 0
    assert "held-out accuracy" in capsys.readouterr().out
    card = json.loads((gen / "card.json").read_text())
    assert card["generator"] == "pca-gaussian" and card["members"] == 8 and card["zoo_init"] == "shared"
    assert card["heldout"]["tasks"] == 2 and card["heldout"]["reference_acc_mean"] > 0.5

    task = family.task(family.heldout_task_ids()[0])
    np.savez(tmp_path / "support.npz", x=task.support_x.numpy(), y=task.support_y.numpy())
    out = tmp_path / "w.safetensors"
    assert run("generate", gen, "--support", tmp_path / "support.npz", "-n", "2", "--best-of", "3", "--out", out) == 0
    tensors, meta = load_safetensors(out)
    assert tensors["fc0.weight"].shape == (2, 16, 100) and meta["generator"] == "pca-gaussian"
    assert all(a > 0.1 for a in json.loads(meta["support_accuracy"]))

    single = tmp_path / "one.safetensors"
    assert run("generate", gen, "--task", family.heldout_task_ids()[1], "--out", single, "--deterministic") == 0
    tensors, _ = load_safetensors(single)
    assert tensors["fc0.weight"].shape == (16, 100)  # n = 1: a plain state dict
    (tmp_path / "s.json").write_text(json.dumps({"x": task.support_x.reshape(len(task.support_y), -1).tolist(),
                                                 "y": task.support_y.tolist()}))
    assert run("generate", gen, "--support", tmp_path / "s.json", "--out", single) == 0


def test_bad_inputs_get_one_sentence(tiny_zoo, tmp_path, capsys):
    zoo, family = tiny_zoo
    gen = tmp_path / "gen"
    assert run("train", zoo, "-g", "hypernet", "steps=5", "warmup_steps=2", "--out", gen, "--quiet") == 0
    capsys.readouterr()
    out = tmp_path / "w.safetensors"
    cases = []
    np.savez(tmp_path / "shape.npz", x=np.zeros((4, 7), np.float32), y=np.zeros(4, np.int64))
    cases.append((["--support", tmp_path / "shape.npz"], r"architecture expects \(N, 1, 10, 10\)"))
    np.savez(tmp_path / "labels.npz", x=np.zeros((4, 100), np.float32), y=np.array([0, 1, 2, 10]))
    cases.append((["--support", tmp_path / "labels.npz"], r"labels must lie in 0\.\.9"))
    np.savez(tmp_path / "obj.npz", x=np.array([object()], dtype=object), y=np.zeros(1))
    cases.append((["--support", tmp_path / "obj.npz"], "could not be read as .npz"))
    (tmp_path / "bad.json").write_text('{"x": [[1, 2], [3]], "y": [0, 1]}')
    cases.append((["--support", tmp_path / "bad.json"], "rectangular array of numbers"))
    save_safetensors(tmp_path / "nan.safetensors", {"x": torch.full((2, 100), float("nan")), "y": torch.zeros(2)})
    cases.append((["--support", tmp_path / "nan.safetensors"], "NaN or infinite"))
    cases.append((["--support", tmp_path / "missing.npz"], "does not exist"))
    cases.append((["--task", "rot=999.00"], "not a task of family"))
    cases.append(([], "exactly one of --task ID or --support FILE"))
    for args, message in cases:
        assert run("generate", gen, *args, "--out", out) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
        assert re.search(message, err), (message, err)
    assert not out.exists()

    tensors = gen / "generator.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:100])
    assert run("generate", gen, "--task", family.heldout_task_ids()[0], "--out", out) == 2
    assert "generator.safetensors" in capsys.readouterr().err
    assert run("train", zoo, "-g", "nope", "--out", tmp_path / "g2") == 2
    assert "unknown generator 'nope'" in capsys.readouterr().err
    assert run("train", zoo, "-g", "flow", "stepz=3", "--out", tmp_path / "g2") == 2
    assert "unknown key 'stepz'" in capsys.readouterr().err
