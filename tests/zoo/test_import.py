"""Importing checkpoints: formats accepted, everything validated, nothing written on failure."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from weightspace.errors import WeightspaceError
from weightspace.io import save_safetensors
from weightspace.nets import MLP
from weightspace.tasks import make_family
from weightspace.zoo.importer import import_checkpoints
from weightspace.zoo.store import Zoo


@pytest.fixture(scope="module")
def family():
    return make_family("digits-rotate", n_tasks=4, n_heldout=2)


@pytest.fixture
def zoo(tmp_path, family):
    arch = MLP(input_shape=family.input_shape, n_classes=family.n_classes, hidden=(8,))
    return Zoo.create(tmp_path / "zoo", arch, family.to_dict(), {"kind": "zoo"})


def stored(zoo):
    return sorted(p.name for p in (zoo.path / "shards").iterdir()), len(zoo.records(final_only=False, split=None))


def test_safetensors_files_with_task_and_metrics(tmp_path, zoo, family):
    weights = [zoo.arch.init_params(s) for s in (1, 2)]
    for i, w in enumerate(weights):
        save_safetensors(tmp_path / f"m{i}.safetensors", w)
    task = family.zoo_task_ids()[1]
    ids = import_checkpoints(zoo, [tmp_path / "m0.safetensors", tmp_path / "m1.safetensors"], task_id=task,
                             metrics={"test_acc": 0.75})
    records = zoo.records()
    assert [r.member_id for r in records] == ids and len(zoo.manifest.shards()) == 1
    assert all(r.task_id == task and r.init == "imported" and r.metrics == {"test_acc": 0.75} for r in records)
    assert records[0].descriptor == tuple(family.task(task).descriptor) and records[0].seed is None
    loaded = zoo.load(ids)
    for name in zoo.spec.names:
        assert torch.equal(loaded[name], torch.stack([w[name] for w in weights]))
    with pytest.raises(WeightspaceError, match="already holds"):
        import_checkpoints(zoo, [tmp_path / "m0.safetensors"], task_id=task)
    assert zoo.check() == []


def test_sidecar_gives_task_seed_metrics_and_split(tmp_path, zoo, family):
    (tmp_path / "ckpt").mkdir()
    for s in (3, 4):
        save_safetensors(tmp_path / "ckpt" / f"s{s}.safetensors", zoo.arch.init_params(s))
    held = family.heldout_task_ids()[0]
    (tmp_path / "ckpt" / "meta.csv").write_text(
        "file,task_id,seed,test_acc,ece\n"
        f"s3.safetensors,{family.zoo_task_ids()[0]},3,0.9,0.05\n"
        f"s4.safetensors,{held},4,0.8,\n"
    )
    import_checkpoints(zoo, [tmp_path / "ckpt" / "s3.safetensors", tmp_path / "ckpt" / "s4.safetensors"],
                       sidecar=tmp_path / "ckpt" / "meta.csv")
    every = {r.seed: r for r in zoo.records(split=None)}
    assert every[3].metrics == {"test_acc": 0.9, "ece": 0.05} and every[3].split == "zoo"
    assert every[4].key == f"{held}|seed=4|step=0" and every[4].split == "heldout" and every[4].metrics == {"test_acc": 0.8}


def test_legacy_pt_goes_through_weights_only_and_says_so(tmp_path, zoo, family):
    state = {f"module.{k}": v for k, v in zoo.arch.init_params(5).items()}
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "old.pt")
    notes = []
    ids = import_checkpoints(zoo, [tmp_path / "old.pt"], task_id=family.zoo_task_ids()[0], note=notes.append)
    assert len(ids) == 1 and "torch.load(weights_only=True)" in notes[0] and "old.pt" in notes[0]
    assert torch.equal(zoo.load(ids)["fc1.bias"][0], zoo.arch.init_params(5)["fc1.bias"])


class Payload:  # an arbitrary Python object: weights_only loading must refuse it
    pass


def _refused(zoo, files, match, **kw):
    before = stored(zoo)
    with pytest.raises(WeightspaceError, match=match):
        import_checkpoints(zoo, files, note=lambda _: None, **kw)
    assert stored(zoo) == before


def test_bad_checkpoints_are_refused_and_nothing_is_written(tmp_path, zoo, family):
    task = family.zoo_task_ids()[0]
    good = tmp_path / "good.safetensors"
    save_safetensors(good, zoo.arch.init_params(1))
    torch.save({"weights": Payload()}, tmp_path / "object.pt")
    _refused(zoo, [good, tmp_path / "object.pt"], r"could not be loaded with torch\.load\(weights_only=True\)", task_id=task)

    (tmp_path / "pickled.safetensors").write_bytes(pickle.dumps(zoo.arch.init_params(1), protocol=4))
    _refused(zoo, [good, tmp_path / "pickled.safetensors"], "is a pickle/PyTorch archive, not safetensors", task_id=task)

    wrong = {**zoo.arch.init_params(2), "fc0.weight": torch.zeros(8, 10)}
    save_safetensors(tmp_path / "wrong.safetensors", wrong)
    _refused(zoo, [good, tmp_path / "wrong.safetensors"], r"tensor fc0\.weight has shape \(8, 10\)", task_id=task)

    extra = {**zoo.arch.init_params(2), "fc9.weight": torch.zeros(2)}
    save_safetensors(tmp_path / "extra.safetensors", extra)
    _refused(zoo, [tmp_path / "extra.safetensors"], "unexpected fc9.weight", task_id=task)

    nan = zoo.arch.init_params(3)
    nan["fc1.weight"][0, 0] = float("nan")
    save_safetensors(tmp_path / "nan.safetensors", nan)
    _refused(zoo, [good, tmp_path / "nan.safetensors"], "fc1.weight contains NaN", task_id=task)

    _refused(zoo, [good], "no task is known")
    _refused(zoo, [good], "is not a task of the zoo's family", task_id="rot=999")
    (tmp_path / "weights.npy").write_bytes(b"\x93NUMPY")
    _refused(zoo, [tmp_path / "weights.npy"], "is not a checkpoint weightspace reads", task_id=task)


def test_peft_style_folder(tmp_path, zoo, family):
    folder = tmp_path / "adapter"
    folder.mkdir()
    weights = zoo.arch.init_params(7)
    save_safetensors(folder / "adapter_model.safetensors", {f"base_model.model.{k}": v for k, v in weights.items()})
    _refused(zoo, [folder], "no adapter_config.json", task_id=family.zoo_task_ids()[2])
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    ids = import_checkpoints(zoo, [folder], task_id=family.zoo_task_ids()[2])
    assert torch.equal(zoo.load(ids)["fc0.weight"][0], weights["fc0.weight"])
