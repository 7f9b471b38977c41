import json

import pytest
import torch
from gen_helpers import ARCH, tiny_zoo

from weightspace import WeightspaceError
from weightspace.generate import GENERATORS, load_generator, make_generator, zoo_data
from weightspace.generate.base import TENSORS_FILE

# Options that fit in a fraction of a second; every registered generator needs an entry (the
# round trip below iterates the registry).
TINY = {
    "pca-gaussian": {},
    "hypernet": {"steps": 20, "warmup_steps": 5, "hidden": 16},
    "flow": {"steps": 20, "hidden": 16, "depth": 1, "sample_steps": 3, "guidance": 2.0},
    "diffusion": {"steps": 20, "hidden": 16, "depth": 1, "sample_steps": 4, "eta": 0.5, "latent": "ae", "ae_steps": 10, "k": 4},
    "token-flow": {"steps": 20, "hidden": 16, "depth": 1, "chunk": 16, "embed": 8, "sample_steps": 3, "guidance": 2.0},
}


def fitted(name, condition="support-probe"):
    assert name in TINY, f"give the newly registered generator {name!r} tiny test options in TINY"
    params, tasks, _ = tiny_zoo()
    opts = {"n_anchors": 4} if condition == "support-probe" else {"dim": 8, "hidden": 16}
    return make_generator(name, **TINY[name]).fit(zoo_data.from_params(ARCH, params, tasks, condition, condition_options=opts))


@pytest.mark.parametrize("name,condition", [(n, "support-probe") for n in GENERATORS] + [("hypernet", "support-deepsets")])
def test_save_load_gives_identical_samples(tmp_path, name, condition):
    gen = fitted(name, condition)
    gen.save(tmp_path / "gen")
    assert sorted(p.name for p in (tmp_path / "gen").iterdir()) == ["card.json", "config.json", TENSORS_FILE]
    assert [p.name for p in tmp_path.iterdir()] == ["gen"]  # no temporary leftovers
    meta = json.loads((tmp_path / "gen" / "config.json").read_text())
    assert meta["name"] == name and meta["class"] == type(gen).__name__ and meta["version"]
    card = json.loads((tmp_path / "gen" / "card.json").read_text())
    assert card["kind"] == "generator" and card["generator"] == name
    loaded = load_generator(tmp_path / "gen")
    task = tiny_zoo()[2][0]
    c1, c2 = gen.encode_condition(task), loaded.encode_condition(task)
    assert torch.allclose(c1, c2, atol=1e-6)
    a, b = gen.sample(c1, 3, seed=11), loaded.sample(c2, 3, seed=11)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert loaded.config == gen.config


def test_saving_over_an_existing_generator_replaces_it(tmp_path):
    gen = fitted("pca-gaussian")
    gen.save(tmp_path / "gen")
    gen.config.noise_scale = 0.0
    gen.save(tmp_path / "gen")
    assert load_generator(tmp_path / "gen").config.noise_scale == 0.0
    assert [p.name for p in tmp_path.iterdir()] == ["gen"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(WeightspaceError, match="not a generator directory"):
        gen.save(tmp_path / "other")


def test_corrupt_or_missing_generator_files_are_clear_errors(tmp_path):
    fitted("pca-gaussian").save(tmp_path / "gen")
    tensors = tmp_path / "gen" / TENSORS_FILE
    data = tensors.read_bytes()
    tensors.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightspaceError, match="truncated"):
        load_generator(tmp_path / "gen")
    tensors.write_bytes(b"\x80\x04garbage-that-is-a-pickle")
    with pytest.raises(WeightspaceError, match="never unpickles"):
        load_generator(tmp_path / "gen")
    cfg = tmp_path / "gen" / "config.json"
    cfg.write_text("{not json")
    with pytest.raises(WeightspaceError, match="not valid JSON"):
        load_generator(tmp_path / "gen")
    with pytest.raises(WeightspaceError, match="not a generator directory"):
        load_generator(tmp_path / "missing")


def test_generator_file_missing_a_tensor_is_a_clear_error(tmp_path):
    from weightspace.io import load_safetensors, save_safetensors

    fitted("hypernet").save(tmp_path / "gen")
    path = tmp_path / "gen" / TENSORS_FILE
    tensors, meta = load_safetensors(path)
    del tensors["model.resid_std"]
    save_safetensors(path, tensors, meta)
    with pytest.raises(WeightspaceError, match="differs from the file config.json was saved with"):
        load_generator(tmp_path / "gen")
    config = json.loads((tmp_path / "gen" / "config.json").read_text())
    del config["tensors_sha256"]  # as saved before the cross-checks: the rebuild itself must still say it
    (tmp_path / "gen" / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightspaceError, match="not a complete generator"):
        load_generator(tmp_path / "gen")


def _edit_hidden(d):
    d["arch"]["hidden"] = [d["arch"]["hidden"][0] + 1]


def _edit_option(d):
    d["config"]["support_draws"] = d["config"]["support_draws"] + 1


@pytest.mark.parametrize("edit, words", [(_edit_hidden, "weight space is not the recorded spec"),
                                         (_edit_option, "changed after the generator was saved")])
def test_an_edited_config_is_refused(tmp_path, edit, words):
    fitted("pca-gaussian").save(tmp_path / "gen")
    path = tmp_path / "gen" / "config.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))
    with pytest.raises(WeightspaceError, match=words):
        load_generator(tmp_path / "gen")


def test_a_damaged_tensor_file_is_refused(tmp_path):
    fitted("pca-gaussian").save(tmp_path / "gen")
    path = tmp_path / "gen" / TENSORS_FILE
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(WeightspaceError, match="differs from the file config.json was saved with"):
        load_generator(tmp_path / "gen")


def test_a_config_whose_arch_and_spec_disagree_is_refused_even_without_hashes(tmp_path):
    fitted("pca-gaussian").save(tmp_path / "gen")
    path = tmp_path / "gen" / "config.json"
    meta = json.loads(path.read_text())
    del meta["tensors_sha256"]  # as a directory saved before the cross-checks existed
    _edit_hidden(meta)
    path.write_text(json.dumps(meta))
    with pytest.raises(WeightspaceError, match="weight space is not the recorded spec"):
        load_generator(tmp_path / "gen")
