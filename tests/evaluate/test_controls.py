"""Condition controls (evaluate/controls.py) on a synthetic case whose answer is known.

Four held-out tasks on 4-d Gaussian inputs: task t asks for the sign of coordinate t, and its
description names t. A linear network reads coordinate t exactly when its condition names t, so
a generator that reads its description solves every task (100%), and one told the wrong task or a
random string is at chance (about 50%); a generator that ignores its condition scores the same
under every control (margin 0, exactly).
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from weightspace.evaluate.controls import (
    control_margins,
    control_methods,
    control_modes,
    none_partners,
    random_string,
    shuffle_partners,
)
from weightspace.evaluate.generated import PRIOR_STRENGTH
from weightspace.evaluate.results import controls_sentence
from weightspace.nets import MLP
from weightspace.nets.predict import predict_members
from weightspace.spec import stack_members
from weightspace.tasks.base import Task

ARCH = MLP(input_shape=(4,), n_classes=2, hidden=())
LETTERS_AND_SPACE = set("abcdefghijklmnopqrstuvwxyz ")


def sign_task(t: int, n: int = 160) -> Task:
    g = torch.Generator().manual_seed(100 + t)
    x = torch.randn(2 * n, 4, generator=g)
    y = (x[:, t] > 0).long()
    return Task(task_id=f"sign:{t}", family="synthetic", descriptor=(float(t),), description=f"the sign of coordinate {t}",
                x_train=x[:n], y_train=y[:n], x_test=x[n:], y_test=y[n:], support_x=x[:8], support_y=y[:8], n_classes=2)


class DescriptionEncoder:
    """One-hot of the coordinate a description names; zeros for any other text."""

    kind, name, dim = "text", "fake-description", 4

    def encode(self, task) -> torch.Tensor:
        known = {f"the sign of coordinate {i}": i for i in range(4)}
        code = torch.zeros(4)
        if task.description in known:
            code[known[task.description]] = 1.0
        return code


class NothingEncoder:
    kind, name, dim = "none", "none", 1

    def encode(self, task) -> torch.Tensor:
        return torch.zeros(1)


@dataclasses.dataclass
class Options:
    steps: int = 3


class LinearGenerator:
    """Weights reading the coordinate the condition names (``ignore``: always coordinate 0)."""

    name, paper = "linear-oracle", "a test double"

    def __init__(self, encoder, ignore: bool = False):
        self.encoder, self.ignore = encoder, ignore
        self.arch, self.spec, self.config = ARCH, ARCH.spec(), Options()
        self.fit_info = {"members": 4, "aligned": False, "init": "shared", "family": {"name": "synthetic"}}

    def encode_condition(self, task) -> torch.Tensor:
        return self.encoder.encode(task)

    def sample(self, condition, n=1, seed=0, deterministic=False):
        c = torch.zeros(4) if condition.numel() != 4 else condition.float()
        if self.ignore or condition.numel() != 4:
            c = torch.tensor([1.0, 0.0, 0.0, 0.0])
        weight = torch.stack([-c, c]) * 5.0
        return {"fc0.weight": weight.expand(n, 2, 4).clone(), "fc0.bias": torch.zeros(n, 2)}


@pytest.fixture(scope="module")
def ctx():
    return SimpleNamespace(arch=ARCH, spec=ARCH.spec(), tasks=[sign_task(t) for t in range(4)])


def entries_of(ctx, methods, gen_methods) -> dict[str, dict]:
    """The fields of results.json method entries that control_margins reads."""
    out = {}
    for m in [*gen_methods, *methods]:
        accs = []
        for t, task in enumerate(ctx.tasks):
            pred, _ = predict_members(ARCH, stack_members([m.weights[t]], ARCH.spec()), task.x_test, task.y_test)
            accs.append(float((pred[0] == task.y_test).float().mean()))
        out[m.key] = {"kind": m.kind, "info": m.info, "acc_mean": sum(accs) / len(accs),
                      "per_task": [{"acc": a} for a in accs]}
    return out


def central(ctx, gen, name):
    from weightspace.evaluate.generated import generator_methods

    return generator_methods(ctx, gen, "dir", name, ["central"])


def test_random_strings_keep_the_length_and_use_letters_and_spaces():
    s = random_string(57, seed=3)
    assert len(s) == 57 and set(s) <= LETTERS_AND_SPACE and " " in s and s[0] != " " != s[-1]
    assert s == random_string(57, seed=3) and s != random_string(57, seed=4)
    assert random_string(0, 1) == "" and len(random_string(1, 1)) == 1


def test_shuffled_partners_are_other_tasks_with_another_condition():
    a, b = torch.zeros(2), torch.ones(2)
    assert shuffle_partners([a, b]) == [1, 0]
    assert shuffle_partners([a, b, b, a]) == [2, 3, 0, 1]  # half the list away, when that differs
    assert shuffle_partners([a, a, b, a]) == [2, 2, 0, 2]  # else the next one that does
    assert shuffle_partners([a, a]) == [1, 0]  # nothing differs: half the list away still


def test_control_modes_are_the_deterministic_ones():
    assert control_modes(["sample", "central", "best-of-8", "central+head"]) == ["central", "central+head"]
    assert control_modes(["sample", "best-of-4"]) == ["central"]


def test_a_generator_that_reads_its_description_beats_every_control(ctx):
    gen, twin = LinearGenerator(DescriptionEncoder()), LinearGenerator(NothingEncoder())
    controls = control_methods(ctx, gen, "oracle", ["central"], seed=0)
    assert [m.key for m in controls] == ["ablation:oracle:shuffled", "ablation:oracle:random-string"]
    shuffled, strings = controls
    assert shuffled.info["partners"] == ["sign:2", "sign:3", "sign:0", "sign:1"]  # held-out tasks, half the list away
    for task, fake in zip(ctx.tasks, strings.info["strings"]):
        assert len(fake) == len(task.description) and set(fake) <= LETTERS_AND_SPACE and fake != task.description
    entries = entries_of(ctx, controls, central(ctx, gen, "oracle") + central(ctx, twin, "oracle@none"))
    assert entries["generator:oracle:central"]["acc_mean"] == 1.0
    margins = control_margins(entries, none_partners([gen, twin], ["oracle", "oracle@none"]))
    m = margins["generator:oracle:central"]
    assert list(m) == ["shuffled", "random-string", "none"]
    for control in ("shuffled", "random-string"):  # chance on every task: about +50 points
        assert 40 < m[control]["margin_points"] < 60 and m[control]["excludes_zero"], m[control]
        assert m[control]["ci_points"][0] <= m[control]["margin_points"] <= m[control]["ci_points"][1]
    # told nothing, it always reads coordinate 0: right on one task of four, chance on the rest
    assert 30 < m["none"]["margin_points"] < 45 and m["none"]["control_key"] == "generator:oracle@none:central"
    sentence = controls_sentence(m)
    assert "over another held-out task's condition" in sentence and "over a random-string description" in sentence
    assert "over the same generator told nothing" in sentence and sentence.count("points") == 3


def test_a_generator_that_ignores_its_condition_gains_nothing_over_its_controls(ctx):
    gen, twin = LinearGenerator(DescriptionEncoder(), ignore=True), LinearGenerator(NothingEncoder())
    controls = control_methods(ctx, gen, "deaf", ["central"], seed=0)
    entries = entries_of(ctx, controls, central(ctx, gen, "deaf") + central(ctx, twin, "deaf@none"))
    margins = control_margins(entries, none_partners([gen, twin], ["deaf", "deaf@none"]))["generator:deaf:central"]
    assert set(margins) == {"shuffled", "random-string", "none"}
    assert all(m["margin_points"] == 0 and not m["excludes_zero"] for m in margins.values())
    assert "does not clearly carry the task" in controls_sentence(margins)


def test_a_condition_that_reads_no_description_gets_no_random_string_control(ctx):
    class SupportEncoder(DescriptionEncoder):
        kind, name = "support", "fake-support"

        def encode(self, task):
            return torch.nn.functional.one_hot(torch.tensor(int(task.task_id[-1])), 4).float()

    controls = control_methods(ctx, LinearGenerator(SupportEncoder()), "s", ["sample", "central"], seed=0)
    assert [m.key for m in controls] == ["ablation:s:shuffled"]


def test_only_the_same_generator_told_nothing_is_the_none_control():
    gen, twin = LinearGenerator(DescriptionEncoder()), LinearGenerator(NothingEncoder())
    other = LinearGenerator(NothingEncoder())
    other.config = Options(steps=4)  # other options: another generator, not a control
    assert none_partners([gen, other], ["a", "b"]) == {}
    assert none_partners([gen, other, twin], ["a", "b", "c"]) == {"a": "c"}
    elsewhere = LinearGenerator(NothingEncoder())
    elsewhere.fit_info = {**elsewhere.fit_info, "members": 5}  # another zoo
    assert none_partners([gen, elsewhere], ["a", "b"]) == {}


def test_head_modes_get_controls_with_the_head_refitted_on_the_support_set(hidden_lora_tasks):
    from weightspace.adapt.head_refit import fit_head
    from weightspace.nets.lora_minilm import LoRAMiniLM

    arch = LoRAMiniLM(inputs="hidden")
    tasks = hidden_lora_tasks
    g = torch.Generator().manual_seed(0)
    base = {t.name: torch.randn(t.shape, generator=g) * 0.05 for t in arch.spec().tensors}

    class LoRAGenerator(LinearGenerator):
        def sample(self, condition, n=1, seed=0, deterministic=False):
            scale = 1.0 + float(condition.argmax())
            return {k: (v * scale).expand(n, *v.shape).clone() for k, v in base.items()}

    gen = LoRAGenerator(DescriptionEncoder())
    gen.arch, gen.spec = arch, arch.spec()
    fake_tasks = [dataclasses.replace(task, description=f"the sign of coordinate {i}") for i, task in enumerate(tasks)]
    ctx = SimpleNamespace(arch=arch, spec=arch.spec(), tasks=fake_tasks)
    controls = control_methods(ctx, gen, "lora", ["central", "central+head"], seed=0)
    keys = [m.key for m in controls]
    assert keys == ["ablation:lora:shuffled", "ablation:lora:random-string",
                    "ablation:lora:shuffled:central+head", "ablation:lora:random-string:central+head"]
    plain, headed = controls[0], controls[2]
    assert headed.info["generator_key"] == "generator:lora:central+head"
    for t, task in enumerate(fake_tasks):
        # the partner's body, with the head fitted on this task's own support set
        expected = fit_head(arch, plain.weights[t], task.support_x, task.support_y)
        assert all(torch.allclose(headed.weights[t][k], expected[k]) for k in expected)
        assert not torch.equal(headed.weights[t]["head.weight"], plain.weights[t]["head.weight"])
    shrunk = control_methods(ctx, gen, "lora", ["central+prior"], seed=0)[0]
    assert shrunk.key == "ablation:lora:shuffled:central+prior"
    for t, task in enumerate(fake_tasks):
        # the partner's head is the prior: the support set corrects it, on this task's examples
        expected = fit_head(arch, plain.weights[t], task.support_x, task.support_y, prior=PRIOR_STRENGTH)
        assert torch.allclose(shrunk.weights[t]["head.weight"], expected["head.weight"], atol=1e-5)


@pytest.fixture(scope="module")
def hidden_lora_tasks():
    from text_stack import require_text_stack

    require_text_stack()
    from weightspace.tasks.chatterbot import ChatterbotFamily

    torch.set_num_threads(1)
    fam = ChatterbotFamily(inputs="hidden", max_per_class=24, support_per_class=4)
    return [fam.task(t) for t in fam.heldout_task_ids()[:2]]
