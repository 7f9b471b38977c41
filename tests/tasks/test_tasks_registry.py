"""The family registry and rebuilding families from their recorded dicts. The contract tests
iterate the registry, so a newly registered family fails here until SMALL gives it a config."""

import json

import pytest

from weightspace.errors import WeightspaceError
from weightspace.tasks import DEFAULT_FAMILY, FAMILIES, TaskFamily, family_class, family_from_dict, make_family, register_family
from weightspace.tasks.digits import DigitsRotate

from optional_data import requires_fmnist, requires_wordnet
from text_stack import requires_text_stack

# Small configs of every registered family; building their splits reads no image data.
SMALL = {
    "digits-rotate": {"n_tasks": 12, "n_heldout": 3, "seed": 4},
    "digits-subsets": {"n_tasks": 40, "n_heldout": 6, "seed": 4},
    "fmnist-rotate": {"n_tasks": 12, "n_heldout": 3, "seed": 4, "n_train": 100, "n_test": 50},
    "fmnist-subsets": {"n_tasks": 40, "n_heldout": 6, "seed": 4},
    "mnist1d": {"n_tasks": 12, "n_heldout": 3, "seed": 4, "num_samples": 500},
    "chatterbot": {"max_per_class": 24, "support_per_class": 4},
    "wordnet": {"n_tasks": 12, "n_heldout": 4, "glosses_per_supersense": 20, "max_per_class": 24, "support_per_class": 4},
}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_registered_family_names_itself_with_a_pretty_name_and_paper(name):
    entry = FAMILIES.entry(name)
    assert family_class(name) is entry.obj and entry.obj.name == name and issubclass(entry.obj, TaskFamily)
    assert entry.pretty and entry.paper
    assert name in SMALL, f"give the newly registered family {name!r} a small config in SMALL"


def test_the_default_family_is_registered_first():
    assert DEFAULT_FAMILY == "digits-rotate" == list(FAMILIES)[0]


def test_register_family_makes_a_family_rebuildable():
    @register_family("digits-upright", pretty="upright digits", paper="a test family")
    class Upright(DigitsRotate):
        pass

    try:
        record = make_family("digits-upright", n_tasks=4, n_heldout=1).to_dict()
        assert record["name"] == "digits-upright" == Upright.name and "digits-upright" in FAMILIES
        assert isinstance(family_from_dict(record), Upright)
    finally:
        FAMILIES.unregister("digits-upright")
    assert "digits-upright" not in FAMILIES and DigitsRotate.name == "digits-rotate"


def test_unknown_family_names_the_choices():
    with pytest.raises(WeightspaceError, match="unknown task family 'cifar'.*digits-rotate.*mnist1d"):
        make_family("cifar")


def test_unknown_option_names_the_valid_options():
    with pytest.raises(WeightspaceError, match="unknown key 'angles'.*angle_range.*n_heldout"):
        make_family("digits-rotate", angles=10)


def with_data(name: str):
    """A family name as a test parameter; Fashion-MNIST families skip where the data is absent
    (their records carry a fingerprint of the data), chatterbot where the text stack is, wordnet
    where either WordNet or the text stack (its fingerprint tokenizes) is."""
    if name.startswith("fmnist"):
        return pytest.param(name, marks=requires_fmnist)
    if name == "chatterbot":
        return pytest.param(name, marks=requires_text_stack)
    if name == "wordnet":
        return pytest.param(name, marks=[requires_wordnet, requires_text_stack])
    return name


@pytest.mark.parametrize("name", [with_data(n) for n in FAMILIES])
def test_round_trip_through_json(name):
    assert name in SMALL, f"give the newly registered family {name!r} a small config in SMALL"
    family = make_family(name, **SMALL[name])
    record = json.loads(json.dumps(family.to_dict()))
    rebuilt = family_from_dict(record)
    assert type(rebuilt) is type(family) and rebuilt.to_dict() == family.to_dict()
    assert record["zoo_tasks"] and record["heldout_tasks"] and not set(record["zoo_tasks"]) & set(record["heldout_tasks"])
    if "n_tasks" in SMALL[name]:
        assert len(record["zoo_tasks"]) == SMALL[name]["n_tasks"]


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
