import json

import pytest

pytest.importorskip("peft", reason="export-peft needs the optional package peft")

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
