"""What `--help` and the CLI's messages tell a user: every generator option is listed under
`train --help`, every `--flag` any text names exists, `--condition support` is `support-probe`,
and `zoo build --init` says which init the generators need."""

from __future__ import annotations

import json
import re

import pytest
import torch
import typer.main
from typer.testing import CliRunner

from weightspace.cli import app, main
from weightspace.config import describe
from weightspace.generate import GENERATORS

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*[a-z]")
# Flags handled outside the commands' own parameters: --debug by cli.main, --help by click.
GLOBAL_FLAGS = {"--debug", "--help"}


def flat(text: str) -> str:
    """Help text with rich's panel borders and line wrapping taken out."""
    return " ".join(text.replace("│", " ").split())


def help_of(*path: str) -> str:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def commands(cmd=None, path=()):
    """(path, click command) of every leaf command, walking the typer app's click tree."""
    cmd = typer.main.get_command(app) if cmd is None else cmd
    if hasattr(cmd, "commands"):
        yield path, cmd
        for name, sub in sorted(cmd.commands.items()):
            yield from commands(sub, (*path, name))
    else:
        yield path, cmd


def real_flags() -> set[str]:
    return GLOBAL_FLAGS | {o for _, cmd in commands() for p in cmd.params
                           for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ())) if o.startswith("--")}


def test_train_help_lists_every_generator_option_with_its_help():
    text = flat(help_of("train"))
    assert GENERATORS, "the registry is empty"
    for name, cls in GENERATORS.items():
        assert f"{name}:" in text, name
        for key, _, help_text in describe(cls.Config):
            assert f" {key}=" in text, (name, key)
            first_words = " ".join(help_text.split()[:4])
            assert first_words in text, (name, key, first_words)
    assert "condition.KEY=VALUE" in text


def test_train_help_epilog_keeps_one_option_per_line():
    lines = [line.strip(" │") for line in help_of("train").splitlines()]
    for key, _, _ in describe(GENERATORS["hypernet"].Config):
        assert any(line.startswith(f"{key}=") for line in lines), key  # not run together into a paragraph


@pytest.mark.parametrize("env", [{}, {"TYPER_USE_RICH": "0"}], ids=["rich", "plain-click"])
def test_train_help_epilog_survives_both_help_formatters(env):
    import os
    import subprocess
    import sys

    code = ("from typer.testing import CliRunner; from weightspace.cli import app; "
            "print(CliRunner().invoke(app, ['train', '--help']).output)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, **env}).stdout
    lines = [line.strip(" │") for line in out.splitlines()]
    assert any(line.startswith("objective=task") for line in lines), out
    assert any(line.startswith("token-flow:") for line in lines), out
    assert "\b" not in out


def help_texts(cmd) -> list[str]:
    """The prose of a command's help: its docstring, epilog and every parameter's help (read from
    the click tree; the rendered table truncates long option names when the screen is narrow)."""
    texts = [cmd.help or "", cmd.epilog or "", getattr(cmd, "short_help", None) or ""]
    return texts + [getattr(p, "help", None) or "" for p in cmd.params]


def test_every_flag_named_in_any_help_text_is_a_real_option():
    known = real_flags()
    assert {"--heldout-models", "--init", "--condition", "--sizes"} <= known
    named = {}
    for path, cmd in commands():
        for text in help_texts(cmd):
            for flag in FLAG.findall(text):
                named.setdefault(flag, " ".join(path) or "weightspace")
    assert "--heldout-models" in named and "--pretrain-steps" in named  # the scan sees the prose
    unknown = {flag: where for flag, where in named.items() if flag not in known}
    assert not unknown, f"help text names options that no command has: {unknown}"


def test_sweep_help_names_the_zoo_build_flag_for_references():
    text = flat(help_of("sweep"))
    assert "include_heldout" not in text
    assert "--heldout-models" in text


@pytest.fixture(scope="module")
def zoo_without_references(tmp_path_factory):
    from weightspace.nets import make_arch
    from weightspace.tasks import make_family
    from weightspace.zoo.build import build_zoo
    from weightspace.zoo.train import TrainConfig

    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("help") / "zoo"
    family = make_family("digits-rotate", n_tasks=4, n_heldout=1, seed=0)
    arch = make_arch("mlp", input_shape=family.input_shape, n_classes=family.n_classes, hidden=(8,))
    build_zoo(path, family, arch, TrainConfig(steps=30), init="shared", pretrain_steps=30, workers=0,
              progress=False).close()
    return path


def test_the_sweep_error_for_a_zoo_without_references_names_real_flags(zoo_without_references, tmp_path, capsys):
    assert main(["sweep", str(zoo_without_references), "--sizes", "2,4", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "held-out reference members" in err and "include_heldout" not in err
    flags = FLAG.findall(err)
    assert "--heldout-models" in flags
    assert set(flags) <= real_flags(), flags


def test_condition_support_and_support_probe_are_one_choice_and_record_the_same(zoo_without_references, tmp_path, capsys,
                                                                               monkeypatch):
    import weightspace.training_loop as checkpoint

    text = flat(help_of("train"))
    assert "`support-probe` is the same encoder" in text
    fingerprints = []  # what decides whether a training snapshot is resumed: one spelling resumes the other's

    class Recording(checkpoint.Checkpoint):
        def __init__(self, directory, every, fingerprint):
            fingerprints.append(dict(fingerprint))
            super().__init__(directory, every, fingerprint)

    monkeypatch.setattr(checkpoint, "Checkpoint", Recording)
    dirs = {}
    for spelling in ("support", "support-probe"):
        dirs[spelling] = tmp_path / spelling
        assert main(["train", str(zoo_without_references), "-g", "pca-gaussian", "--condition", spelling,
                     "--out", str(dirs[spelling]), "--quiet"]) == 0
    assert capsys.readouterr().out.count("condition support-probe") == 2
    assert len(fingerprints) == 2 and fingerprints[0] == fingerprints[1]
    assert fingerprints[0]["condition"] == "support-probe"
    # tensors_sha256 hashes the file, whose metadata safetensors writes in hash-map order, so two
    # identical runs differ there; the tensors themselves are compared below.
    configs = [{k: v for k, v in json.loads((d / "config.json").read_text()).items() if k != "tensors_sha256"}
               for d in dirs.values()]
    assert configs[0] == configs[1]
    assert configs[0]["encoder"]["name"] == "support-probe"
    cards = [json.loads((d / "card.json").read_text()) for d in dirs.values()]
    ignore = {"command", "created"}
    assert {k: v for k, v in cards[0].items() if k not in ignore} == {k: v for k, v in cards[1].items() if k not in ignore}
    assert cards[0]["condition"] == "support-probe"
    from safetensors.torch import load_file

    weights = [load_file(str(d / "generator.safetensors")) for d in dirs.values()]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_zoo_build_init_help_says_generators_need_shared_and_why():
    text = flat(help_of("zoo", "build"))
    assert "Generators need shared" in text
    for figure in ("0.781 vs 0.799", "0.865", "0.738", "benchmarks/RESULTS.md"):
        assert figure in text, figure
