import json

import torch

from text_stack import require_text_stack

require_text_stack(("peft", "peft"))  # export-peft needs peft

import weightspace.cli.lora_cmd  # noqa: E402,F401  (registers the commands)
from weightspace.cli import main  # noqa: E402

SMALL = json.dumps({"max_per_class": 24, "support_per_class": 4})


def test_tasks_lists_counts_and_skipped_languages(capsys):
    assert main(["lora-zoo", "tasks"]) == 0
    out = capsys.readouterr().out
    assert "skipped: chinese" in out and "pooled" in out and "total" in out


def test_build_then_export_peft(tmp_path, capsys):
    zoo = tmp_path / "zoo"
    args = ["lora-zoo", "build", "--out", str(zoo), "--family", SMALL, "--max-tasks", "1", "--steps", "2",
            "--rank", "2", "--workers", "0", "--no-heldout-models", "--quiet"]
    assert main(args) == 0
    assert "1 LoRA sets" in capsys.readouterr().out
    out = tmp_path / "adapter"
    assert main(["export-peft", str(zoo), "--member", "1", "--out", str(out)]) == 0
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 2
    card = json.loads((out / "card.json").read_text())
    assert card["config"]["source"]["member_id"] == 1
    assert main(["export-peft", str(zoo), "--member", "1", "--out", str(out)]) == 2  # exists: one-line error
    assert "already exists" in capsys.readouterr().err
    assert main(["export-peft", str(zoo), "--member", "99", "--out", str(tmp_path / "b")]) == 2


# kinds=lang with 400 sentences a class leaves 4 zoo tasks: the whole plan stays small
TINY = {"kinds": ["lang"], "max_per_class": 24, "support_per_class": 4, "min_per_class": 400}


def test_zoo_build_with_the_lora_arch_is_the_one_builder_behind_lora_zoo_build(tmp_path, capsys):
    from weightspace.zoo.store import Zoo

    alias, built = tmp_path / "alias", tmp_path / "built"
    assert main(["lora-zoo", "build", "--out", str(alias), "--family", json.dumps(TINY), "--steps", "1", "--rank", "2",
                 "--workers", "0", "--no-heldout-models", "--quiet"]) == 0
    family_opts = [f"family.{k}={json.dumps(v)}" for k, v in {**TINY, "inputs": "hidden", "hidden_layer": 4}.items()]
    argv = ["zoo", "build", "--family", "chatterbot", "--arch", "lora-minilm", "--out", str(built), "--steps", "1",
            "--workers", "0", "--quiet", "arch.rank=2", *family_opts]
    assert main(argv) == 0
    a, b = Zoo.open(alias), Zoo.open(built)
    assert a.arch == b.arch and [r.key for r in a.records()] == [r.key for r in b.records()]
    assert all(torch.equal(a.load()[n], b.load()[n]) for n in a.spec.names)
    assert {r.init for r in b.records()} == {"independent:peft"} and b.card["kind"] == "zoo"
    capsys.readouterr()
    assert main(argv) == 0  # a rerun resumes: nothing left to train
    assert len(Zoo.open(built).records()) == len(a.records())
    assert main([*argv[:-1], "family.inputs=ids"]) == 2  # settings that change the members are refused
    assert main(["zoo", "build", "--family", "chatterbot", "--arch", "lora-minilm", "--init", "shared", "--quiet",
                 "--out", str(tmp_path / "shared")]) == 2
    assert "own trainer" in capsys.readouterr().err and not (tmp_path / "shared").exists()
