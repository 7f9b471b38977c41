"""`weightspace align`: an aligned copy of a stored zoo, permutations recorded, written atomically."""

import pytest
import torch
from symmetry_helpers import random_params

import weightspace.cli.symmetry_cmd  # noqa: F401  (registers `align` until the CLI imports it)
from weightspace.cli import main
from weightspace.io import load_safetensors
from weightspace.nets import MLP
from weightspace.spec import stack_members
from weightspace.symmetry.align_zoo import align_stored_zoo
from weightspace.symmetry.permute import apply_permutation, random_permutation
from weightspace.tasks import make_family
from weightspace.zoo.store import MemberRecord, Zoo

ARCH = MLP((1, 10, 10), 10, (8, 6))


def _record(i: int, split: str = "zoo", final: bool = True) -> MemberRecord:
    task = f"rot={i}"
    return MemberRecord(key=f"{task}|seed={i}|step=10", task_id=task, descriptor=(float(i),), seed=i,
                        init="independent:uniform", optimizer={"lr": 0.1}, metrics={"test_acc": 0.5 + i / 100},
                        step=10, final=final, split=split)


@pytest.fixture()
def permuted_zoo(tmp_path):
    """Five permuted copies of one network (three final zoo members, a snapshot, a held-out one)."""
    spec = ARCH.spec()
    base = random_params(ARCH, 0)
    copies = [apply_permutation(base, spec, random_permutation(spec, torch.Generator().manual_seed(i))) for i in range(5)]
    family = make_family("digits-rotate", n_tasks=4, n_heldout=2).to_dict()
    zoo = Zoo.create(tmp_path / "zoo", ARCH, family, {"kind": "zoo"})
    records = [_record(0), _record(1), _record(2), _record(3, final=False), _record(4, split="heldout")]
    zoo.add(records[:2], stack_members(copies[:2], spec))
    zoo.add(records[2:], stack_members(copies[2:], spec))
    zoo.close()
    return tmp_path / "zoo", base


def test_align_command_collapses_permuted_copies_and_records_perms(permuted_zoo, tmp_path):
    src, base = permuted_zoo
    out = tmp_path / "aligned"
    assert main(["align", str(src), "--out", str(out), "--quiet"]) == 0
    source, aligned = Zoo.open(src), Zoo.open(out)
    spec = ARCH.spec()
    old = {r.key: r for r in source.records(final_only=False, split=None)}
    new = aligned.records(final_only=False, split=None)
    assert sorted(r.key for r in new) == sorted(old)
    for r in new:
        assert (r.metrics, r.split, r.final, r.task_id) == (old[r.key].metrics, old[r.key].split, old[r.key].final, old[r.key].task_id)
    weights = aligned.load([r.member_id for r in new])
    for name in spec.names:  # every member is now the same point
        assert torch.allclose(weights[name], weights[name][:1].expand_as(weights[name]), atol=1e-6)
    perms, meta = load_safetensors(out / "perms.safetensors")
    src_weights = source.load(perms["source_member_id"].tolist())
    group_perms = {g.name: perms[g.name] for g in spec.groups}
    redone = apply_permutation(src_weights, spec, group_perms, stacked=True)
    by_id = aligned.load(perms["member_id"].tolist())
    for name in spec.names:
        assert torch.equal(redone[name], by_id[name])
        assert torch.allclose(perms[f"reference.{name}"], weights[name][0], atol=1e-6)
    assert meta["method"] == "weight" and "barycentre" in meta["reference"]
    assert aligned.card["alignment"]["reference"].startswith("barycentre of 3")
    assert aligned.check() == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_align_to_a_member_by_activations(permuted_zoo, tmp_path):
    src, _ = permuted_zoo
    reference = Zoo.open(src).records()[1]
    out = tmp_path / "aligned"
    assert main(["align", str(src), "--out", str(out), "--reference", f"member:{reference.member_id}",
                 "--method", "activation", "--probe", "256", "--quiet"]) == 0
    aligned = Zoo.open(out)
    target = Zoo.open(src).load([reference.member_id])
    weights = aligned.load(None, final_only=False, split=None)
    for name in ARCH.spec().names:
        assert torch.equal(weights[name], target[name].expand_as(weights[name]))


def test_bad_requests_are_one_sentence_errors(permuted_zoo, tmp_path, capsys):
    src, _ = permuted_zoo
    assert main(["align", str(src), "--out", str(src), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["align", str(src), "--out", str(tmp_path / "a"), "--reference", "member:999", "--quiet"]) == 2
    assert "member 999 is not in" in capsys.readouterr().err
    assert main(["align", str(src), "--out", str(tmp_path / "a"), "--reference", "median", "--quiet"]) == 2
    assert main(["align", str(tmp_path / "nothing"), "--out", str(tmp_path / "a"), "--quiet"]) == 2
    assert "not a zoo" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_a_failure_midway_leaves_no_output(permuted_zoo, tmp_path, monkeypatch):
    src, _ = permuted_zoo
    calls = []

    def add_then_crash(self, records, tensors):
        calls.append(len(records))
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return original(self, records, tensors)

    original = Zoo.add
    monkeypatch.setattr(Zoo, "add", add_then_crash)
    with pytest.raises(RuntimeError, match="disk full"):
        align_stored_zoo(src, tmp_path / "aligned", chunk=2)
    assert len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zoo"]


# ----- pair mode: weightspace align A.safetensors B.safetensors --out B_aligned.safetensors --------

import json  # noqa: E402

import numpy as np  # noqa: E402
from torch.func import functional_call  # noqa: E402

from weightspace.io import save_safetensors  # noqa: E402
from weightspace.zoo.train import TrainConfig, train_members  # noqa: E402

FAMILY = ["--family", "digits-rotate", "--family-option", "n_tasks=4", "--family-option", "n_heldout=2"]


@pytest.fixture(scope="module")
def trained_pair():
    """Two 100-32-10 MLPs trained on one digits task from different seeds, and the task."""
    family = make_family("digits-rotate", n_tasks=4, n_heldout=2)
    task = family.task(family.zoo_task_ids()[0])
    arch = MLP(family.input_shape, family.n_classes, (32,))
    result = train_members(arch, [task, task], [0, 1], TrainConfig(steps=300, batch_size=64))
    return arch, [{n: v[i].detach() for n, v in result.final.items()} for i in (0, 1)], task


def _generated_meta(arch) -> dict:  # what `weightspace generate -n 1` writes into the header
    return {"format": "weightspace-generated", "generator": "test", "members": "1", "arch": json.dumps(arch.to_dict())}


def test_pair_mode_undoes_a_random_permutation(trained_pair, tmp_path, capsys):
    arch, (a, _), task = trained_pair
    spec = arch.spec()
    b = apply_permutation(a, spec, random_permutation(spec, torch.Generator().manual_seed(7)))
    save_safetensors(tmp_path / "a.safetensors", a)  # plain state dicts: no arch record
    save_safetensors(tmp_path / "b.safetensors", b)
    out = tmp_path / "b_aligned.safetensors"
    assert main(["align", str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors"), "--out", str(out),
                 "--arch", "mlp", *FAMILY, "--task", task.task_id]) == 0
    printed = capsys.readouterr().out
    assert "weight-matching objective" in printed and "L2 distance" in printed and "barrier on the linear path" in printed
    aligned, meta = load_safetensors(out)
    for name in spec.names:  # back onto the reference ...
        assert torch.allclose(aligned[name], a[name], atol=1e-6)
    x = task.x_test  # ... and still B's function
    assert torch.allclose(functional_call(arch.module(), aligned, (x,)), functional_call(arch.module(), b, (x,)), atol=1e-5)
    perms = {g: torch.tensor(p) for g, p in json.loads(meta["perms"]).items()}
    redone = apply_permutation(b, spec, perms)
    assert all(torch.equal(redone[n], aligned[n]) for n in spec.names)
    summary = json.loads(meta["alignment"])
    before, after = summary["barriers"]["before"], summary["barriers"]["after"]
    assert after["acc"] <= before["acc"] and after["loss"] <= before["loss"]
    assert after["acc"] == 0.0 and after["loss"] < 1e-5 and before["loss"] > 0.05
    assert summary["objective_after"] > summary["objective_before"] and summary["l2_after"] < 1e-4
    assert json.loads(meta["arch"]) == arch.to_dict() and meta["format"] == "weightspace-aligned"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.safetensors", "b.safetensors", "b_aligned.safetensors"]
    # the written file records its architecture, so it aligns again without --arch
    assert main(["align", str(tmp_path / "a.safetensors"), str(out), "--out", str(tmp_path / "again.safetensors")]) == 0


@pytest.mark.parametrize("method", ["weight", "activation"])
def test_pair_mode_lowers_the_barrier_between_independent_nets(trained_pair, tmp_path, method, capsys):
    arch, (a, b), task = trained_pair
    save_safetensors(tmp_path / "a.safetensors", a, _generated_meta(arch))
    save_safetensors(tmp_path / "b.safetensors", b, _generated_meta(arch))
    np.savez(tmp_path / "data.npz", x=task.x_test.numpy(), y=task.y_test.numpy())
    out = tmp_path / "out.safetensors"
    assert main(["align", str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors"), "--out", str(out),
                 "--method", method, "--data", str(tmp_path / "data.npz")]) == 0
    assert "architecture from metadata" in capsys.readouterr().out
    aligned, meta = load_safetensors(out)
    x = task.x_test
    assert torch.allclose(functional_call(arch.module(), aligned, (x,)), functional_call(arch.module(), b, (x,)), atol=1e-5)
    summary = json.loads(meta["alignment"])
    before, after = summary["barriers"]["before"], summary["barriers"]["after"]
    assert after["loss"] < before["loss"] and after["acc"] <= before["acc"]
    assert summary["l2_after"] < summary["l2_before"] and summary["objective_after"] > summary["objective_before"]
    assert meta["generator"] == "test" and meta["method"] == method


def test_pair_mode_bad_requests_are_one_sentence_errors(trained_pair, tmp_path, capsys):
    arch, (a, b), task = trained_pair
    pa, pb, out = tmp_path / "a.safetensors", tmp_path / "b.safetensors", tmp_path / "out.safetensors"
    save_safetensors(pa, a)
    save_safetensors(pb, b)
    other = MLP(arch.input_shape, arch.n_classes, (8,))
    save_safetensors(tmp_path / "small.safetensors", other.init_params(0), _generated_meta(other))
    save_safetensors(tmp_path / "big.safetensors", a, _generated_meta(arch))
    stacked = {n: torch.stack([a[n], b[n]]) for n in a}
    save_safetensors(tmp_path / "stacked.safetensors", stacked, {**_generated_meta(arch), "members": "2"})
    cases = [
        ([pa, pb], [], "records no architecture"),
        ([pa, pb, pb], ["--arch", "mlp"], "one zoo directory"),
        ([pa], [], "one zoo directory"),
        ([pa, pb], ["--arch", "mlp", "--reference", "member:1"], "belong to zoo mode"),
        ([pa, pb], ["--arch", "mlp", "--task", task.task_id], "needs --family"),
        ([pa, pb], ["--arch", "mlp", "--method", "activation"], "needs inputs"),
        ([tmp_path / "big.safetensors", tmp_path / "small.safetensors"], [], "record different architectures"),
        ([pa, tmp_path / "stacked.safetensors"], ["--arch", "mlp"], "holds 2 stacked models"),
        ([pa, tmp_path / "small.safetensors"], ["--arch", "mlp"], "tensor fc0.weight has shape (8, 100)"),
        ([pa, tmp_path / "missing.safetensors"], ["--arch", "mlp"], "does not exist"),
        ([pa, pb], ["--arch", "mlp", *FAMILY, "--task", "rot=123.45"], "not a task of family"),
    ]
    for files, extra, message in cases:
        assert main(["align", *map(str, files), "--out", str(out), *extra]) == 2, (files, extra)
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (message, err)
    assert main(["align", str(pa), str(pb), "--out", str(tmp_path / "out.pt"), "--arch", "mlp"]) == 2
    assert "must end in .safetensors" in capsys.readouterr().err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_zoo_mode_refuses_pair_options(permuted_zoo, tmp_path, capsys):
    src, _ = permuted_zoo
    assert main(["align", str(src), "--out", str(tmp_path / "a"), "--task", "rot=000.00"]) == 2
    assert "--task belongs to pair mode" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
