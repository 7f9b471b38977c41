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
                                         ("steps=-5", "steps must be >= 0, got -5"),
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
