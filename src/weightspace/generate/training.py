"""Fit a generator on a stored zoo: the one path behind `weightspace train`, its torchrun twin
(weightspace.distributed.train_generator), `weightspace demo` and `weightspace sweep` (fit_and_save).

    spec = TrainSpec.from_cli("hypernet", "support", config=None, items=["steps=500", "condition.n_anchors=16"])
    gen, data, facts = fit_on_zoo(spec, zoo, align="auto")
    gen.save(out, card=generator_card(spec, gen, data, facts))
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from weightspace.card import make_card
from weightspace.config import apply_overrides, load_yaml, to_dict
from weightspace.errors import WeightspaceError

ALIGN_MODES = ("auto", "yes", "no")


def split_overrides(items: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """``key=value`` generator options, and ``condition.key=value`` ones (parsed as YAML) for the encoder."""
    generator, condition = [], {}
    for item in items:
        if "=" not in item:
            raise WeightspaceError(f"argument {item!r} is not of the form key=value.")
        key, value = item.split("=", 1)
        if key.startswith("condition."):
            try:
                condition[key[len("condition."):].strip()] = yaml.safe_load(value)
            except yaml.YAMLError:
                condition[key[len("condition."):].strip()] = value
        else:
            generator.append(item)
    return generator, condition


@dataclass
class TrainSpec:
    """Which generator, with which resolved options, conditioned on what."""

    generator: str
    config: Any  # the generator class's Config dataclass, resolved
    condition: str = "support"
    condition_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_cli(cls, generator: str, condition: str, config: Path | None, items: Sequence[str]) -> "TrainSpec":
        from weightspace.generate.registry import GENERATORS

        gen_cls = GENERATORS[generator]  # an unknown name is one sentence naming the choices
        gen_items, cond_opts = split_overrides(items)
        cfg = apply_overrides(load_yaml(gen_cls.Config, config) if config else gen_cls.Config(), gen_items)
        return cls(generator, cfg, condition, cond_opts)

    def build(self):
        from weightspace.generate.registry import GENERATORS

        return GENERATORS[self.generator](self.config)


def prepare(spec: TrainSpec, zoo, align: str = "auto", progress=None):
    """The generator to fit, its training data, and the facts a card records."""
    from weightspace.generate import zoo_data

    gen = spec.build()
    init = zoo_data.zoo_init_kind(zoo.records(final_only=True, split="zoo"))
    if align not in ALIGN_MODES:
        raise WeightspaceError(f"--align must be one of {', '.join(ALIGN_MODES)}, not {align!r}.")
    aligned = align == "yes" or (align == "auto" and init == "independent" and gen.wants_alignment)
    data = zoo_data.from_zoo(zoo, spec.condition, align=aligned, progress=progress,
                             condition_options=spec.condition_options)
    return gen, data, {"zoo": str(zoo.path), "zoo_init": init, "aligned": aligned}


def fit_on_zoo(spec: TrainSpec, zoo, align: str = "auto", align_progress=None, fit_progress=None, **fit_kwargs):
    gen, data, facts = prepare(spec, zoo, align, align_progress)
    gen.fit(data, progress=fit_progress, **fit_kwargs)
    return gen, data, facts


def generator_card(spec: TrainSpec, gen, data, facts: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return make_card("generator", to_dict(spec.config), getattr(spec.config, "seed", None), generator=spec.generator,
                     paper=gen.paper, condition=data.encoder.name, condition_options=spec.condition_options,
                     members=len(data), **facts, **extra)


def fit_and_save(zoo_dir: Path, out: Path, generator: str, condition: str, options: Mapping[str, Any]) -> float:
    """Fit ``generator`` (with ``options``) on the stored zoo and save it to ``out``; returns the seconds spent."""
    from weightspace.config import from_mapping
    from weightspace.generate.registry import GENERATORS
    from weightspace.zoo.store import Zoo

    spec = TrainSpec(generator, from_mapping(GENERATORS[generator].Config, dict(options), where="generator options"), condition)
    began = time.perf_counter()
    with Zoo.open_verified(zoo_dir) as zoo:
        gen, data, facts = fit_on_zoo(spec, zoo, align="auto")
    seconds = time.perf_counter() - began
    gen.save(out, card=generator_card(spec, gen, data, facts, fit_seconds=seconds))
    return seconds
