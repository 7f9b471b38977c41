"""The ConditionEncoder contract, for every registered encoder: it names itself, encodes a task
to ``dim`` finite numbers, and is rebuilt from its saved config and state to the same code.
Iterates the registry, so a newly registered encoder fails here until SETUPS says how to build a
small one."""

import functools

import pytest
import torch

from text_stack import requires_text_stack
from weightspace.encode import CONDITION_ENCODERS, ConditionEncoder, condition_encoder_from, make_condition_encoder
from weightspace.nets import MLP
from weightspace.tasks.base import Task

KINDS = {"support", "descriptor", "text", "none"}
# name -> (zoo it is fitted on, encoder options): "toy" random inputs on an MLP, "text" chatterbot on MiniLM.
SETUPS = {
    "none": ("toy", {}),
    "descriptor": ("toy", {}),
    "support-probe": ("toy", {"n_anchors": 4}),
    "support-deepsets": ("toy", {"dim": 8, "hidden": 16}),
    "text-support": ("text", {}),
    "text-description": ("text", {}),
    "text-both": ("text", {}),
}


@functools.lru_cache(maxsize=None)
def zoo(kind: str):
    """(arch, stacked params, tasks) to fit an encoder on."""
    if kind == "toy":
        arch = MLP(input_shape=(2, 3), n_classes=4, hidden=(5,))
        tasks = []
        for i in range(5):
            g = torch.Generator().manual_seed(i)
            x, y = torch.randn(30, 2, 3, generator=g), torch.randint(0, 4, (30,), generator=g)
            tasks.append(Task(f"t{i}", "toy", (float(i), 2.0 * i), "", x, y, x, y, x[:12], y[:12], 4))
        return arch, arch.init_params_stacked(range(5)), tasks
    from weightspace.nets.lora_minilm import LoRAMiniLM
    from weightspace.tasks.chatterbot import ChatterbotFamily

    torch.set_num_threads(1)
    family = ChatterbotFamily(max_per_class=24, support_per_class=4, inputs="hidden")
    ids = ["topic:english:ai-vs-coding", "rest:english:emotion", "lang:dutch-vs-english"]
    return LoRAMiniLM(inputs="hidden"), {}, [family.task(t) for t in ids]


def registered():
    for name in CONDITION_ENCODERS:
        text = SETUPS.get(name, ("toy",))[0] == "text"
        yield pytest.param(name, marks=requires_text_stack) if text else name


@pytest.mark.parametrize("name", list(registered()))
def test_registered_encoder_names_itself_with_a_pretty_name_and_paper(name):
    entry = CONDITION_ENCODERS.entry(name)
    assert issubclass(entry.obj, ConditionEncoder) and entry.obj.name == name and entry.obj.kind in KINDS
    assert entry.pretty and entry.paper
    assert name in SETUPS, f"say in SETUPS how to build a small {name!r} encoder"


@pytest.mark.parametrize("name", list(registered()))
def test_registered_encoder_encodes_and_restores(name):
    assert name in SETUPS, f"say in SETUPS how to build a small {name!r} encoder"
    kind, options = SETUPS[name]
    arch, params, tasks = zoo(kind)
    enc = make_condition_encoder(name, arch, **options).fit(arch, params, tasks)
    code = enc.encode(tasks[0])
    assert code.shape == (enc.dim,) and enc.dim >= 1 and torch.isfinite(code).all()
    assert enc.encode_tasks(tasks[:2]).shape == (2, enc.dim)
    again = condition_encoder_from(enc.config(), enc.state())
    assert type(again) is type(enc) and again.config()["name"] == name
    assert torch.allclose(again.encode(tasks[0]), code, atol=1e-5)
