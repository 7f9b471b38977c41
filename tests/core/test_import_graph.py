"""The package's imports flow down the pipeline: no cycles, no stage importing a later one, and no
module paths written as strings where registries live.

The graph is read from the sources with ``ast`` (function-level imports included, relative ones
resolved), so a lazy import inside a function counts as much as one at the top: it is the same
dependency, paid later. A module importing its own parent package is not counted (the package's
``__init__`` re-exports it).

Stage order (a module may import its own stage and any earlier one):

    base      errors, io, config, spec, card, progress_lines, registry (the one registry shape every
              stage's extension point uses; it imports only errors), training_loop (the one training
              loop and its checkpoint/resume: nets, encode, adapt and generate train with it), and
              the package root: shared by all
    nets, tasks   architectures (LoRA's frozen backbone included) and task families; the text
                  family reads sentences through the frozen MiniLM of nets/lora_minilm
    zoo       store, trainers, build backends
    symmetry  permutations, matching, canonical forms (they align stored zoos)
    geometry  spectrum, intrinsic dimension, connectivity of (aligned) zoos
    encode    normalisation, latents, condition encoders
    adapt     fine-tuning, retrieval, merging, head refitting: what generation must beat
    generate  generators
    evaluate  the harness and its baselines
    export    PEFT folders
    serve     weights over HTTP
    report    HTML report, plots, analysis output
    demo      the end-to-end demos (demo.py, lora_demo.py)
    cli       the `weightspace` command, and the torchrun entry point (distributed/)
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "weightspace"
STAGES = [
    {"", "errors", "io", "config", "spec", "card", "progress_lines", "registry", "training_loop", "tensor_cache"},
    {"nets", "tasks"},
    {"zoo"},
    {"symmetry"},
    {"geometry"},
    {"encode"},
    {"adapt"},
    {"generate"},
    {"evaluate"},
    {"export"},
    {"serve"},
    {"report"},
    {"demo", "lora_demo"},
    {"cli", "distributed"},
]
RANK = {name: i for i, names in enumerate(STAGES) for name in names}
NO_STRING_PATHS = ("nets", "tasks")  # registries import their entries; no "weightspace.x.y" strings
MODULE_PATH = re.compile(rf"{PACKAGE}(\.\w+)+(:\w+)?")  # "weightspace.text.family:ChatterbotFamily"


def modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in (SRC / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def import_graph() -> dict[str, set[str]]:
    mods = modules()

    def resolve(name: str) -> str | None:  # the module an imported name lives in
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in mods}
    for module, (path, is_package) in mods.items():
        base = module.split(".") if is_package else module.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                stem = ".".join(base[: len(base) - node.level + 1]) if node.level else ""
                source = ".".join(x for x in (stem, node.module or "") if x)
                targets = [source, *(f"{source}.{a.name}" for a in node.names)]
            else:
                continue
            for target in targets:
                found = resolve(target) if target.split(".")[0] == PACKAGE else None
                if found and found != module and not module.startswith(found + "."):
                    edges[module].add(found)
    return edges


def stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack, on_stack, found = [], set(), []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_every_module_has_a_stage():
    unknown = sorted({stage(m) for m in modules()} - set(RANK))
    assert not unknown, f"add these top-level modules/packages to STAGES: {unknown}"


def test_the_import_graph_has_no_cycles():
    assert cycles(import_graph()) == []


def test_no_stage_imports_a_later_one():
    upward = sorted(f"{m} -> {t}" for m, targets in import_graph().items() for t in targets
                    if RANK[stage(t)] > RANK[stage(m)])
    assert upward == [], "imports against the pipeline:\n" + "\n".join(upward)


def test_no_module_paths_as_strings_in_registries():
    offenders = []
    for folder in NO_STRING_PATHS:
        for path in (SRC / PACKAGE / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_PATH.fullmatch(node.value.strip()):
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno}: {node.value[:60]!r}")
    assert offenders == []


def test_the_checks_see_what_they_are_for():
    # lora_demo imports the zoo builder inside run_lora_demo, not at the top
    assert "weightspace.zoo.build" in import_graph()["weightspace.lora_demo"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert MODULE_PATH.fullmatch("weightspace.text.family:ChatterbotFamily")
    assert not MODULE_PATH.fullmatch("see ``weightspace.tasks`` for the families")


def test_the_registry_sits_below_every_stage():
    # every stage's registry builds on it, so it may lean on nothing but the error type
    assert import_graph()["weightspace.registry"] <= {"weightspace.errors"}
