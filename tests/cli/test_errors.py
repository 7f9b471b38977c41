"""Usage and OS errors: one clear message, exit code 2, no traceback, nothing written.

Typer raises the exceptions of the click it bundles, not those of the click package; these tests
fail if the CLI stops recognising them (a 40-line traceback and exit code 1 is what users saw).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from weightspace.cli import main
from weightspace.errors import is_click_error


@pytest.mark.parametrize(
    "argv, words",
    [
        (["trian"], "No such command 'trian'"),
        (["zoo", "build", "--tasks", "abc", "--out", "{out}"], "Invalid value for '--tasks'"),
        (["zoo", "ls", "--bogus"], "No such option: --bogus"),
        (["generate"], "Missing argument"),
    ],
)
def test_usage_errors_are_one_message_and_exit_2(argv, words, tmp_path, capsys):
    out = tmp_path / "zoo"
    assert main([a.format(out=out) for a in argv]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not out.exists()


def test_no_arguments_shows_help_without_traceback():
    proc = subprocess.run([sys.executable, "-c", "import sys; from weightspace.cli import main; sys.exit(main([]))"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 2) and "Traceback" not in proc.stderr + proc.stdout
    assert "zoo" in proc.stdout + proc.stderr


def test_an_output_path_under_a_file_is_refused_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code = main(["zoo", "build", "--out", str(blocker / "zoo"), "--tasks", "4", "--heldout", "1", "steps=5", "workers=0"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"{blocker} is a file, not a directory" in err
    assert blocker.read_text() == "not a directory"


def test_an_os_error_during_work_is_one_sentence_and_debug_shows_the_traceback(monkeypatch, capsys):
    import weightspace.cli.zoo_cmd as zoo_cmd

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device", "/data/zoo/shards/shard-000001.safetensors")

    monkeypatch.setattr(zoo_cmd, "build_from_recipe", disk_full)
    argv = ["zoo", "build", "--out", "/tmp/weightspace-test-never-written", "--tasks", "4"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("error: cannot use /data/zoo/shards/shard-000001.safetensors: no space left on device; "
                           "check that the path exists, is writable and has free space.")
    with pytest.raises(OSError):
        main(["--debug", *argv])


def test_click_errors_are_recognised_from_either_click():
    bundled = pytest.importorskip("typer._click.exceptions")  # the click current typer bundles and raises

    assert is_click_error(bundled.UsageError("x")) and not is_click_error(ValueError("x"))
    click = pytest.importorskip("click")
    assert is_click_error(click.UsageError("x"))


@pytest.mark.parametrize(
    "argv, words",
    [
        (["generate", "{gen}", "--task", "x", "-n", "100000", "--out", "{out}"], "-n"),
        (["generate", "{gen}", "--task", "x", "--best-of", "0", "--out", "{out}"], "--best-of"),
        (["eval", "{gen}", "--zoo", "{gen}", "--tasks", "-1", "--out", "{out}"], "--tasks"),
    ],
)
def test_sizes_are_bounded_before_any_work(argv, words, tmp_path, capsys):
    out = tmp_path / "out.safetensors"
    assert main([a.format(gen=tmp_path, out=out) for a in argv]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("item, words", [("steps=abc", "steps must be an integer, got 'abc'"),
                                         ("steps=-5", "steps must be at least 0, got -5"),
                                         ("lr=fast", "lr must be a number, got 'fast'")])
def test_config_values_are_typed_and_bounded(item, words):
    from weightspace.config import apply_overrides
    from weightspace.errors import WeightspaceError
    from weightspace.generate.hypernet import HypernetConfig

    with pytest.raises(WeightspaceError, match=words):
        apply_overrides(HypernetConfig(), [item])


def test_bounds_declared_on_an_option_are_checked():
    from dataclasses import dataclass

    from weightspace.config import from_mapping, option
    from weightspace.errors import WeightspaceError

    @dataclass
    class Example:
        width: int = option(8, "units", min=1, max=64)
        rate: float | None = option(None, "optional rate")

    assert from_mapping(Example, {"width": 64, "rate": None}).width == 64
    for bad in (0, 65):
        with pytest.raises(WeightspaceError, match="width must be between 1 and 64"):
            from_mapping(Example, {"width": bad})


@pytest.mark.parametrize("command", [
    ["eval", "{gen}", "--zoo", "{gen}", "--out", "{file}"],
    ["analyze", "{gen}", "--out", "{file}"],
    ["sweep", "{gen}", "--out", "{file}"],
    ["train", "{gen}", "--generator", "pca-gaussian", "--out", "{file}"],
    ["zoo", "build", "--out", "{file}", "--tasks", "4"],
])
def test_an_output_that_is_an_existing_file_is_refused_before_any_work(command, tmp_path, capsys):
    existing = tmp_path / "results"
    existing.write_text("keep me")
    assert main([a.format(gen=tmp_path / "nothing-here", file=existing) for a in command]) == 2
    err = capsys.readouterr().err
    assert "is a file; give a directory" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert existing.read_text() == "keep me"


def test_a_generate_output_in_an_unwritable_place_is_refused(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["generate", str(tmp_path), "--task", "t", "--out", str(blocker / "w.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "is a file; give a directory" in err and "Traceback" not in err


# /proc refuses new files even to root (who passes every permission-bit check), as a read-only
# file system would; an os.access check alone lets these through until the first write.
UNWRITABLE = "/proc/weightspace-test-out"


@pytest.mark.parametrize("command", [
    ["train", "{gen}", "--generator", "pca-gaussian", "--out", "{out}"],
    ["generate", "{gen}", "--task", "t", "--out", "{out}/w.safetensors"],
    ["eval", "{gen}", "--zoo", "{gen}", "--out", "{out}"],
    ["analyze", "{gen}", "--out", "{out}"],
    ["align", "{gen}", "--out", "{out}"],
    ["sweep", "{gen}", "--out", "{out}"],
    ["zoo", "build", "--out", "{out}", "--tasks", "4"],
])
def test_an_unwritable_output_location_is_refused_before_any_work(command, tmp_path, capsys):
    argv = [a.format(gen=tmp_path / "nothing-here", out=UNWRITABLE) for a in command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot be written" in err and "refuses new files" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "nothing-here").exists()


@pytest.mark.parametrize("argv, words", [
    (["eval", "{gen}", "--zoo", "{gen}", "--out", "{out}", "--budget", "-1"], "--budget"),
    (["eval", "{gen}", "--zoo", "{gen}", "--out", "{out}", "--eval-every", "0"], "--eval-every"),
    (["eval", "{gen}", "--zoo", "{gen}", "--out", "{out}", "--workers", "-2"], "--workers"),
    (["sweep", "{gen}", "--out", "{out}", "--eval-tasks", "-1"], "--eval-tasks"),
    (["lora-zoo", "build", "--out", "{out}", "--steps", "-1"], "--steps"),
    (["lora-zoo", "build", "--out", "{out}", "--chunk", "0"], "--chunk"),
    (["lora-zoo", "build", "--out", "{out}", "--seeds", "0"], "--seeds"),
    (["serve", "{gen}", "--port", "70000"], "--port"),
    (["eval", "{gen}", "--zoo", "{gen}"], "Missing option '--out'"),
    (["generate", "{gen}", "--task", "t"], "Missing option '--out'"),
])
def test_out_of_range_options_are_usage_errors(argv, words, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([a.format(gen=tmp_path / "nothing-here", out=out) for a in argv]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("item, words", [
    ("steps=abc", "steps must be an integer, got 'abc'"),
    ("steps=-5", "steps must be at least 0, got -5"),
    ("lr=-1", "lr must be at least 0, got -1.0"),
    ("batch_tasks=0", "batch_tasks must be at least 1, got 0"),
])
def test_bad_generator_options_stop_train_before_any_work(item, words, tmp_path, capsys):
    out = tmp_path / "gen"
    assert main(["train", str(tmp_path / "nothing-here"), "--generator", "hypernet", "--out", str(out), item]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_conventional_bounds_hold_in_every_config_and_defaults_pass():
    """Step counts, workers and learning rates are never negative, batch sizes at least 1, in any
    config dataclass (an option's own min/max wins); every shipped default satisfies them."""
    import dataclasses
    import importlib
    import pkgutil

    import weightspace
    from weightspace.config import from_mapping
    from weightspace.errors import WeightspaceError
    from weightspace.zoo.train import TrainConfig

    for bad, words in [({"lr": -0.1}, "lr must be at least 0"), ({"batch_size": 0}, "batch_size must be at least 1"),
                       ({"snapshot_every": 2, "steps": -1}, "steps must be at least 0")]:
        with pytest.raises(WeightspaceError, match=words):
            from_mapping(TrainConfig, bad)
    checked = 0
    for info in pkgutil.walk_packages(weightspace.__path__, "weightspace."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed
            continue
        for obj in list(vars(module).values()):
            if not (isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__):
                continue
            fs = dataclasses.fields(obj)
            if not any("help" in f.metadata for f in fs):
                continue
            try:
                default = obj()
            except TypeError:  # a required field: not a config with defaults
                continue
            from_mapping(obj, {f.name: getattr(default, f.name) for f in fs})
            checked += 1
    assert checked >= 10


def test_importing_into_an_unwritable_zoo_says_permission_not_another_writer(tmp_path, monkeypatch, capsys):
    import os

    from weightspace.io import save_safetensors
    from weightspace.zoo.store import Zoo

    zoo_dir = tmp_path / "zoo"
    assert main(["zoo", "build", "--out", str(zoo_dir), "--tasks", "3", "--heldout", "1", "--steps", "5",
                 "--hidden", "8", "--workers", "0", "--quiet"]) == 0
    zoo = Zoo.open(zoo_dir)
    task, n_before = zoo.family["zoo_tasks"][0], len(zoo)
    zoo.close()
    save_safetensors(tmp_path / "a.safetensors", zoo.arch.init_params(11))
    capsys.readouterr()
    real_open = os.open

    def read_only(path, flags, *args):  # root ignores permission bits: fail the lock file's open instead
        if str(path).endswith(".lock"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    assert main(["zoo", "import", str(zoo_dir), str(tmp_path / "a.safetensors"), "--task", task]) == 2
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert "cannot be written (permission denied)" in err and "another process" not in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert len(Zoo.open(zoo_dir)) == n_before
