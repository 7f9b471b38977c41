"""The family registry and rebuilding families from their recorded dicts."""

import json

import pytest

from weightspace.errors import WeightspaceError
import weightspace.tasks as tasks
from weightspace.tasks import DEFAULT_FAMILY, FAMILIES, FAMILY_NAMES, family_class, family_from_dict, make_family
from weightspace.tasks.digits import DigitsRotate

from optional_data import requires_fmnist

# Small configs of every family; building their splits reads no data.
SMALL = {
    "digits-rotate": {"n_tasks": 12, "n_heldout": 3, "seed": 4},
    "digits-subsets": {"n_tasks": 40, "n_heldout": 6, "seed": 4},
    "fmnist-rotate": {"n_tasks": 12, "n_heldout": 3, "seed": 4, "n_train": 100, "n_test": 50},
    "fmnist-subsets": {"n_tasks": 40, "n_heldout": 6, "seed": 4},
    "mnist1d": {"n_tasks": 12, "n_heldout": 3, "seed": 4, "num_samples": 500},
}


def test_registry_lists_every_family():
    assert set(SMALL) <= set(FAMILIES) and set(FAMILY_NAMES) == set(SMALL) | {"chatterbot"}
    assert DEFAULT_FAMILY == "digits-rotate"
    assert all(family_class(name).name == name for name in FAMILY_NAMES)  # lazy ones import


def test_register_family_makes_a_family_rebuildable(monkeypatch):
    monkeypatch.setattr(tasks, "FAMILIES", dict(FAMILIES))
    monkeypatch.setattr(tasks, "FAMILY_NAMES", FAMILY_NAMES)

    class Upright(DigitsRotate):
        name = "digits-upright"

    tasks.register_family(Upright)
    record = make_family("digits-upright", n_tasks=4, n_heldout=1).to_dict()
    assert record["name"] == "digits-upright" and "digits-upright" in tasks.FAMILY_NAMES
    assert isinstance(family_from_dict(record), Upright)


def test_unknown_family_names_the_choices():
    with pytest.raises(WeightspaceError, match="unknown task family 'cifar'.*digits-rotate.*mnist1d"):
        make_family("cifar")


def test_unknown_option_names_the_valid_options():
    with pytest.raises(WeightspaceError, match="unknown key 'angles'.*angle_range.*n_heldout"):
        make_family("digits-rotate", angles=10)


def with_data(name: str):
    """A family name as a test parameter; Fashion-MNIST families skip where the data is absent
    (their records carry a fingerprint of the data)."""
    return pytest.param(name, marks=requires_fmnist) if name.startswith("fmnist") else name


@pytest.mark.parametrize("name", [with_data(n) for n in sorted(SMALL)])
def test_round_trip_through_json(name):
    family = make_family(name, **SMALL[name])
    record = json.loads(json.dumps(family.to_dict()))
    rebuilt = family_from_dict(record)
    assert type(rebuilt) is type(family) and rebuilt.to_dict() == family.to_dict()
    assert len(record["zoo_tasks"]) == SMALL[name]["n_tasks"] and not set(record["zoo_tasks"]) & set(record["heldout_tasks"])


@pytest.mark.parametrize("name", [with_data("digits-subsets"), with_data("fmnist-subsets")])
def test_kway_round_trip(name):
    family = make_family(name, mode="kway", k=4, n_tasks=30, n_heldout=5)
    assert family_from_dict(family.to_dict()).to_dict() == family.to_dict()


@pytest.mark.parametrize("key", ["zoo_tasks", "heldout_tasks"])
def test_a_changed_split_is_refused(key):
    record = make_family("digits-rotate", **SMALL["digits-rotate"]).to_dict()
    record[key] = record[key][1:]
    with pytest.raises(WeightspaceError, match=f"does not reproduce the recorded {key}"):
        family_from_dict(record)


def test_a_record_with_changed_config_is_refused():
    record = make_family("digits-rotate", **SMALL["digits-rotate"]).to_dict()
    record["config"]["seed"] = 5
    with pytest.raises(WeightspaceError, match="heldout_tasks"):
        family_from_dict(record)


@pytest.mark.parametrize(
    "record", [{}, {"name": "digits-rotate"}, [1, 2], {"name": "digits-rotate", "config": 3, "zoo_tasks": [], "heldout_tasks": []}]
)
def test_malformed_records_are_clear_errors(record):
    with pytest.raises(WeightspaceError):
        family_from_dict(record)


def test_a_record_with_other_data_is_refused():
    from weightspace.tasks import family_from_dict, make_family

    family = make_family("digits-rotate", n_tasks=4, n_heldout=2)
    record = family.to_dict()
    assert len(record["data_fingerprint"]) == 64 and family_from_dict(record).data_fingerprint() == record["data_fingerprint"]
    with pytest.raises(WeightspaceError, match="differs from the data it was recorded with"):
        family_from_dict({**record, "data_fingerprint": "0" * 64})
    legacy = {k: v for k, v in record.items() if k != "data_fingerprint"}
    assert family_from_dict(legacy).zoo_task_ids() == record["zoo_tasks"]
