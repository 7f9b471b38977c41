from dataclasses import dataclass

import pytest
import torch

from weightspace import WeightspaceError
from weightspace.config import apply_overrides, describe, from_mapping, load_yaml, option, to_dict
from weightspace.io import atomic_path, load_safetensors, save_safetensors


@dataclass
class Recipe:
    lr: float = option(1e-3, "learning rate")
    hidden: tuple = option((32,), "hidden widths")
    name: str = option("adam", "optimizer")
    steps: int = option(10, "steps")


def test_overrides_parse_values():
    cfg = apply_overrides(Recipe(), ["lr=0.01", "hidden=[8, 8]", "name=sgd", "steps=3"])
    assert cfg == Recipe(lr=0.01, hidden=(8, 8), name="sgd", steps=3)
    assert to_dict(cfg)["hidden"] == [8, 8]
    assert apply_overrides(Recipe(), ["lr=1e-2"]).lr == 0.01
    assert [d[0] for d in describe(Recipe)] == ["lr", "hidden", "name", "steps"]


def test_bad_config_is_one_sentence(tmp_path):
    with pytest.raises(WeightspaceError, match="unknown key 'lrr'"):
        from_mapping(Recipe, {"lrr": 1})
    with pytest.raises(WeightspaceError, match="key=value"):
        apply_overrides(Recipe(), ["lr"])
    p = tmp_path / "r.yaml"
    p.write_text("lr: [unclosed")
    with pytest.raises(WeightspaceError, match="not valid YAML"):
        load_yaml(Recipe, p)
    p.write_text("lr: 0.5\nsteps: 7\n")
    assert load_yaml(Recipe, p) == Recipe(lr=0.5, steps=7)
    # over another config, only the fields the file sets change (a field set to its default too)
    p.write_text("lr: 0.001\n")
    assert load_yaml(Recipe, p, over=Recipe(lr=0.5, hidden=(8, 8), name="sgd")) == Recipe(hidden=(8, 8), name="sgd")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_safetensors_loader_refuses_pickle_and_truncation(tmp_path):
    good = tmp_path / "w.safetensors"
    save_safetensors(good, {"a": torch.arange(6.0)}, {"k": "v"})
    t, meta = load_safetensors(good)
    assert torch.equal(t["a"], torch.arange(6.0)) and meta == {"k": "v"}

    pkl = tmp_path / "w.pt"
    torch.save({"a": torch.zeros(2)}, pkl)
    with pytest.raises(WeightspaceError, match="never unpickles"):
        load_safetensors(pkl)

    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-8])
    with pytest.raises(WeightspaceError, match="truncated"):
        load_safetensors(cut)

    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{abcd")
    with pytest.raises(WeightspaceError, match="not JSON"):
        load_safetensors(junk)
