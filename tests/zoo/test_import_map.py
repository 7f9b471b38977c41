"""Importing checkpoints from other frameworks: `zoo create`, .npz archives and `--map` rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.func import functional_call

from weightspace.cli import main
from weightspace.errors import WeightspaceError
from weightspace.nets import CNN, MLP
from weightspace.tasks import make_family
from weightspace.zoo.import_map import apply_import_map, load_import_map, parse_import_map
from weightspace.zoo.store import Zoo
from weightspace.zoo.train import TrainConfig, train_members

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "import-flax-mlp.yaml"
FAMILY_ARGS = ["family.n_tasks=4", "family.n_heldout=2"]


@pytest.fixture(scope="module")
def family():
    return make_family("digits-rotate", n_tasks=4, n_heldout=2)


@pytest.fixture(scope="module")
def trained(family):
    """A real (briefly trained) 100-16-8-10 MLP and the task it learned."""
    arch = MLP(family.input_shape, family.n_classes, (16, 8))
    task = family.task(family.zoo_task_ids()[1])
    result = train_members(arch, [task], [0], TrainConfig(steps=60, batch_size=32))
    return arch, {n: v[0].detach() for n, v in result.final.items()}, task


def flax_arrays(params: dict[str, torch.Tensor], n_layers: int, prefix: str = "params/") -> dict[str, np.ndarray]:
    """What a flax nn.Dense stack holds for the same network: Dense_i/kernel is (in, out)."""
    out = {}
    for i in range(n_layers):
        out[f"{prefix}Dense_{i}/kernel"] = params[f"fc{i}.weight"].T.numpy().astype(np.float64)  # jax often saves float64 via numpy
        out[f"{prefix}Dense_{i}/bias"] = params[f"fc{i}.bias"].numpy()
    return out


def flax_forward(arrays: dict[str, np.ndarray], x: np.ndarray, n_layers: int) -> np.ndarray:
    h = x.reshape(len(x), -1)
    for i in range(n_layers):
        h = h @ arrays[f"params/Dense_{i}/kernel"] + arrays[f"params/Dense_{i}/bias"]
        if i < n_layers - 1:
            h = np.maximum(h, 0)
    return h


def create_zoo(path: Path) -> int:
    return main(["zoo", "create", "--out", str(path), "--family", "digits-rotate", "--arch", "mlp", "--hidden", "16,8", *FAMILY_ARGS])


def test_config_file_starts_with_the_command():
    first = CONFIG.read_text().splitlines()[0]
    assert first.startswith("# weightspace zoo import ") and "--map configs/import-flax-mlp.yaml" in first


def test_create_then_import_flax_npz_computes_the_same_function(tmp_path, trained, family, capsys):
    arch, params, task = trained
    zoo_dir = tmp_path / "zoo"
    assert create_zoo(zoo_dir) == 0
    assert "0 members" in capsys.readouterr().out
    empty = Zoo.open(zoo_dir)
    assert empty.arch.to_dict() == arch.to_dict() and empty.records(split=None) == []
    assert empty.family["config"]["n_tasks"] == 4
    empty.close()
    arrays = flax_arrays(params, 3)
    np.savez(tmp_path / "flax_mlp.npz", **arrays)
    assert main(["zoo", "import", str(zoo_dir), str(tmp_path / "flax_mlp.npz"), "--task", task.task_id,
                 "--map", str(CONFIG), "--metrics-json", '{"test_acc": 0.5}']) == 0
    assert "imported 1 member" in capsys.readouterr().out
    zoo = Zoo.open(zoo_dir)
    (record,) = zoo.records()
    assert record.task_id == task.task_id and record.init == "imported"
    member = {n: v[0] for n, v in zoo.load([record.member_id]).items()}
    for name in arch.spec().names:
        assert torch.allclose(member[name], params[name], atol=1e-6)
    x = task.x_test[:200]
    ours = functional_call(arch.module(), member, (x,))
    assert torch.allclose(ours, functional_call(arch.module(), params, (x,)), atol=1e-5)
    assert np.allclose(ours.numpy(), flax_forward(arrays, x.numpy(), 3), atol=1e-4)
    assert zoo.card["imports"][-1]["map"]["transpose"] == {r"fc\d+\.weight": None}
    assert zoo.check() == []
    # the same zoo again: zoo create leaves an existing zoo with the same settings alone
    assert create_zoo(zoo_dir) == 0 and "left as it is" in capsys.readouterr().out
    assert len(Zoo.open(zoo_dir).records()) == 1


def test_inline_rules_and_plain_npz(tmp_path, trained, family):
    arch, params, task = trained
    zoo = Zoo.create(tmp_path / "zoo", arch, family.to_dict(), {"kind": "zoo"})
    zoo.close()
    np.savez(tmp_path / "plain.npz", **{k: v.numpy() for k, v in params.items()})  # torch names: no map needed
    np.savez(tmp_path / "flax.npz", **flax_arrays(params, 3, prefix=""), **{"opt_state/count": np.array(3)})
    inline = ("{drop: ['^opt_state/'], rename: {'^Dense_(\\d+)/kernel$': 'fc\\1.weight', '^Dense_(\\d+)/bias$': 'fc\\1.bias'}, "
              "transpose: ['fc\\d+\\.weight']}")
    assert main(["zoo", "import", str(tmp_path / "zoo"), str(tmp_path / "plain.npz"), "--task", task.task_id, "--seed", "1"]) == 0
    assert main(["zoo", "import", str(tmp_path / "zoo"), str(tmp_path / "flax.npz"), "--task", task.task_id, "--seed", "2",
                 "--map", inline]) == 0
    stacked = Zoo.open(tmp_path / "zoo").load(None)
    for name in arch.spec().names:
        assert torch.allclose(stacked[name][0], stacked[name][1], atol=1e-6)


@pytest.mark.parametrize("rules, message", [
    ("{rename: {'^Dense_(\\d+/kernel$': 'fc\\1.weight'}}", "not a valid regular expression"),
    ("{rename: {'^Conv_(\\d+)/kernel$': 'fc\\1.weight'}}", "'^Conv_(\\\\d+)/kernel$' matches no tensor"),
    ("{rename: {'^(?:params/)?Dense_(\\d+)/kernel$': 'fc\\1.weight', '^(?:params/)?Dense_(\\d+)/bias$': 'fc\\1.bias'}}",
     "'params/Dense_0/kernel' (mapped to 'fc0.weight') has shape (100, 16) after mapping"),
    ("{rename: {'^(?:params/)?Dense_(\\d+)/kernel$': 'fc\\1.weight'}}", "'params/Dense_0/bias' is not a tensor of the mlp"),
    ("{rename: {'/kernel$': '.weight', '/bias$': '.bias'}}", "is not a tensor of the mlp"),
    ("{rename: {'^.*$': 'fc0.weight'}}", "are both renamed to 'fc0.weight'"),
    ("{rename: {'^(?:params/)?Dense_(\\d+)/kernel$': 'fc\\2.weight'}}", "bad replacement"),
    ("{renames: {}}", "unknown section 'renames'"),
    ("[1, 2]", "must be a mapping"),
    ("{transpose: {'x': [0, 0]}}", "must be a permutation"),
])
def test_bad_rules_are_one_sentence_and_import_nothing(tmp_path, trained, family, capsys, rules, message):
    arch, params, task = trained
    assert create_zoo(tmp_path / "zoo") == 0
    np.savez(tmp_path / "flax.npz", **flax_arrays(params, 3))
    capsys.readouterr()
    assert main(["zoo", "import", str(tmp_path / "zoo"), str(tmp_path / "flax.npz"), "--task", task.task_id, "--map", rules]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    zoo = Zoo.open(tmp_path / "zoo")
    assert zoo.records(split=None) == [] and list((zoo.path / "shards").iterdir()) == []


def test_missing_rules_file_and_npz_with_objects(tmp_path, trained, family, capsys):
    arch, params, task = trained
    assert create_zoo(tmp_path / "zoo") == 0
    np.savez(tmp_path / "flax.npz", **flax_arrays(params, 3))
    assert main(["zoo", "import", str(tmp_path / "zoo"), str(tmp_path / "flax.npz"), "--task", task.task_id,
                 "--map", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml does not exist" in capsys.readouterr().err
    np.savez(tmp_path / "objects.npz", **{"fc0.weight": np.array([{"a": 1}], dtype=object)})  # needs pickle to read
    assert main(["zoo", "import", str(tmp_path / "zoo"), str(tmp_path / "objects.npz"), "--task", task.task_id]) == 2
    assert "allow_pickle=False" in capsys.readouterr().err
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    assert main(["zoo", "import", str(tmp_path / "zoo"), str(tmp_path / "broken.npz"), "--task", task.task_id]) == 2
    assert "not a readable .npz" in capsys.readouterr().err


def test_zoo_create_refuses_training_overrides_and_other_settings(tmp_path, capsys):
    assert main(["zoo", "create", "--out", str(tmp_path / "z"), "lr=0.1"]) == 2
    assert "only family.X" in capsys.readouterr().err
    assert main(["zoo", "create", "--family", "digits-rotate"]) == 2
    assert "--out" in capsys.readouterr().err
    assert create_zoo(tmp_path / "z") == 0
    assert main(["zoo", "create", "--out", str(tmp_path / "z"), "--hidden", "4", *FAMILY_ARGS]) == 2
    assert "different architecture" in capsys.readouterr().err
    assert not (tmp_path / "missing-family").exists()
    assert main(["zoo", "create", "--out", str(tmp_path / "missing-family"), "--family", "no-such-family"]) == 2
    assert not (tmp_path / "missing-family").exists()


def test_explicit_axes_for_conv_kernels():
    arch = CNN((1, 10, 10), 10, channels=(4,), kernel=3)
    spec = arch.spec()
    params = arch.init_params(0)
    flax = {}
    for name, value in params.items():
        if value.ndim == 4:  # torch OIHW -> flax HWIO
            flax[name.replace(".weight", "/kernel")] = value.permute(2, 3, 1, 0)
        elif value.ndim == 2:
            flax[name.replace(".weight", "/kernel")] = value.T
        else:
            flax[name.replace(".", "/")] = value
    rules = parse_import_map({"rename": {"/kernel$": ".weight", "/(bias|weight)$": r".\1"},
                              "transpose": {r"conv\d+\.weight": [3, 2, 0, 1], r"head\.weight": [1, 0]}})
    mapped = apply_import_map(flax, rules, spec)
    for name in spec.names:
        assert torch.equal(mapped[name], params[name])
    with pytest.raises(WeightspaceError, match="has 4 axes; a plain transpose rule swaps 2"):
        apply_import_map(flax, parse_import_map({"rename": {"/kernel$": ".weight", "/(bias|weight)$": r".\1"},
                                                 "transpose": [r".*\.weight"]}), spec)


def test_rules_load_from_json_and_yaml_files(tmp_path):
    (tmp_path / "r.json").write_text('{"rename": {"^a$": "b"}, "transpose": ["b"]}')
    assert load_import_map(tmp_path / "r.json").to_dict()["rename"] == {"^a$": "b"}
    (tmp_path / "bad.yaml").write_text("rename: [unclosed\n")
    with pytest.raises(WeightspaceError, match="not valid YAML"):
        load_import_map(tmp_path / "bad.yaml")
    assert load_import_map(str(CONFIG)).source.endswith("import-flax-mlp.yaml")
