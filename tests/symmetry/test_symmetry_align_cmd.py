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
