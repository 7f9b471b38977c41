"""`weightspace zoo build|ls|show|check|import` on tiny sizes, through the real entry point."""

from __future__ import annotations

import json

import pytest
import torch

from weightspace.cli import main
from weightspace.io import save_safetensors
from weightspace.zoo.store import Zoo

TINY = ["--tasks", "3", "--heldout", "1", "--steps", "15", "--batch-size", "32", "--hidden", "8", "--chunk", "2",
        "--workers", "0", "--quiet"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "zoo"
    assert main(["zoo", "build", *TINY, "--out", str(out), "seeds=2", "train.lr=0.01"]) == 0
    return out


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_build_records_recipe_and_card(built):
    zoo = Zoo.open(built)
    assert len(zoo) == 6 and zoo.arch.hidden == (8,) and zoo.family["name"] == "digits-rotate"
    recipe = zoo.card["recipe"]
    assert recipe["seeds"] == 2 and recipe["train"] == {"steps": 15, "batch_size": 32, "lr": 0.01}
    assert zoo.records()[0].optimizer["lr"] == 0.01 and zoo.card["config"]["chunk_size"] == 2


def test_rerun_resumes_and_trains_nothing(built, capsys):
    shards = sorted((built / "shards").iterdir())
    code, out, _ = run(capsys, "zoo", "build", *TINY, "--out", str(built), "seeds=2", "train.lr=0.01")
    assert code == 0 and "6 members" in out
    assert sorted((built / "shards").iterdir()) == shards
    assert len(Zoo.open(built).card["resumed"]) == 1


def test_ls_and_show(built, capsys):
    code, out, _ = run(capsys, "zoo", "ls", str(built))
    assert code == 0 and len(out.strip().splitlines()) == 1
    assert "mlp 100-8-10" in out and "digits-rotate" in out and "6 members" in out and "test_acc 0." in out
    code, out, _ = run(capsys, "zoo", "show", str(built))
    assert code == 0
    for text in ("mlp 100-8-10", "parameters", "zoo members", "6 on 3 tasks", "test acc", "mean", "command", "independent"):
        assert text in out
    code, _, err = run(capsys, "zoo", "ls", str(built), str(built.parent / "nothing"))
    assert code == 2 and "is not a zoo" in err


def test_build_errors_are_one_sentence(tmp_path, capsys):
    code, _, err = run(capsys, "zoo", "build", *TINY, "--out", str(tmp_path / "z"), "colour=red")
    assert code == 2 and err.startswith("error: override key 'colour'") and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "zoo", "build", *TINY, "--out", str(tmp_path / "z"), "--family", "nope")
    assert code == 2 and "unknown task family 'nope'" in err
    code, _, err = run(capsys, "zoo", "build", *TINY, "--out", str(tmp_path / "z"), "--hidden", "8,x")
    assert code == 2 and "comma-separated widths" in err
    assert not (tmp_path / "z").exists()


def test_config_file_with_overrides(tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("family: digits-rotate\nfamily_options: {n_tasks: 2, n_heldout: 1}\nhidden: [4]\n"
                      "workers: 0\nchunk: 4\ntrain: {steps: 10, batch_size: 16}\n")
    code, out, _ = run(capsys, "zoo", "build", "--config", str(recipe), "--out", str(tmp_path / "z"), "--quiet",
                       "steps=12", "family.n_tasks=3")
    assert code == 0, out
    zoo = Zoo.open(tmp_path / "z")
    assert len(zoo) == 3 and zoo.arch.hidden == (4,) and zoo.records()[0].step == 12


def test_check_passes_then_names_a_corrupted_shard(tmp_path, built, capsys):
    code, out, _ = run(capsys, "zoo", "check", str(built))
    assert code == 0 and "healthy" in out
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(built, copy)
    shard = copy / "shards" / "shard-000002.safetensors"
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0x40  # the last member's last bias entry
    shard.write_bytes(bytes(data))
    code, out, _ = run(capsys, "zoo", "check", str(copy))
    assert code == 1 and "shard shard-000002.safetensors is corrupt" in out and "corrupt weights" in out


def test_import_command(tmp_path, built, capsys):
    import shutil

    zoo_dir = tmp_path / "zoo"
    shutil.copytree(built, zoo_dir)
    zoo = Zoo.open(zoo_dir)
    task = zoo.family["zoo_tasks"][0]
    save_safetensors(tmp_path / "a.safetensors", zoo.arch.init_params(11))
    torch.save(zoo.arch.init_params(12), tmp_path / "b.pt")
    code, out, err = run(capsys, "zoo", "import", str(zoo_dir), str(tmp_path / "a.safetensors"), str(tmp_path / "b.pt"),
                         "--task", task, "--metrics-json", json.dumps({"test_acc": 0.5}))
    assert code == 0 and "imported 2 members" in out and "weights_only=True" in err
    assert len(Zoo.open(zoo_dir)) == 8 and Zoo.open(zoo_dir).card["imports"][0]["members"] == 2

    wrong = {**zoo.arch.init_params(13), "fc1.bias": torch.zeros(3)}
    save_safetensors(tmp_path / "wrong.safetensors", wrong)
    code, _, err = run(capsys, "zoo", "import", str(zoo_dir), str(tmp_path / "wrong.safetensors"), "--task", task)
    assert code == 2 and "tensor fc1.bias has shape (3,)" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "zoo", "import", str(zoo_dir), str(tmp_path / "a.safetensors"), "--metrics-json", "{oops")
    assert code == 2 and "--metrics-json" in err
    assert len(Zoo.open(zoo_dir)) == 8


def test_zoo_tasks_lists_zoo_and_heldout_ids_with_member_counts(built, capsys):
    code, out, _ = run(capsys, "zoo", "tasks", str(built), "--json")
    listing = json.loads(out)
    zoo = Zoo.open(built)
    assert code == 0 and [t["task_id"] for t in listing["zoo"]] == zoo.family["zoo_tasks"]
    assert [t["task_id"] for t in listing["heldout"]] == zoo.family["heldout_tasks"]
    assert all(t["members"] == 2 for t in listing["zoo"])  # seeds=2
    assert all(len(t["descriptor"]) == 1 for t in listing["zoo"] + listing["heldout"])
    code, out, _ = run(capsys, "zoo", "tasks", str(built), "--split", "heldout")
    assert code == 0 and zoo.family["heldout_tasks"][0] in out and zoo.family["zoo_tasks"][0] not in out
    code, _, err = run(capsys, "zoo", "tasks", str(built), "--split", "train")
    assert code == 2 and "--split 'train' is unknown" in err


def test_small_zoos_get_a_held_out_count_that_fits(tmp_path, capsys):
    out = tmp_path / "zoo16"
    code, _, err = run(capsys, "zoo", "build", "--out", str(out), "--tasks", "16", "--steps", "5", "--hidden", "8",
                       "--workers", "0", "--quiet")
    assert code == 0, err
    assert len(Zoo.open(out).family["heldout_tasks"]) == 2  # one per 8 zoo tasks, not the default 32
