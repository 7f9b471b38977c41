"""The wordnet family: parsing WordNet's data files, the held-out split, task assembly and one
small LoRA zoo build. Tests that read WordNet skip where wordnet-base is not installed; those
that build tasks also need the text stack (tasks carry token ids of the MiniLM tokenizer)."""

import itertools
import json

import pytest
import torch

from optional_data import requires_wordnet
from text_stack import requires_text_stack

from weightspace.errors import WeightspaceError
from weightspace.tasks.wordnet import PLAIN_NAMES, WordNetFamily, definition_of, load_glosses, plain_name, spread

SMALL = {"glosses_per_supersense": 20, "max_per_class": 24, "support_per_class": 4}  # 480 definitions in all


@pytest.fixture(scope="module")
def family():
    return WordNetFamily()


@pytest.fixture(scope="module")
def owner():
    """Definition -> its supersense."""
    return {t: s for s, texts in load_glosses().items() for t in texts}


def hamming(a, b):
    return len(set(a) ^ set(b))


# ----- no data needed -----------------------------------------------------------------------
def test_definition_strips_quoted_examples_only():
    gloss = 'a tangible and visible entity; an entity that can cast a shadow; "it was full of rackets"  \n'
    assert definition_of(gloss) == "a tangible and visible entity; an entity that can cast a shadow"
    assert definition_of(gloss, keep_examples=True).endswith('"it was full of rackets"')
    assert definition_of('female of domestic cattle: "moo-cow is a child\'s term"') == "female of domestic cattle"
    assert definition_of("a separate and self-contained entity  ") == "a separate and self-contained entity"


def test_every_supersense_has_a_plain_name():
    assert plain_name("noun.artifact") == "man-made objects" and plain_name("verb.motion") == "verbs of moving"
    assert all(PLAIN_NAMES[s] and not PLAIN_NAMES[s].startswith("noun") for s in PLAIN_NAMES)


def test_spread_is_even_within_caps():
    rng = __import__("numpy").random.default_rng(0)
    assert sorted(spread(10, [100] * 3, rng)) == [3, 3, 4]
    assert spread(10, [1, 100, 100], rng)[0] == 1 and sum(spread(10, [1, 100, 100], rng)) == 10
    with pytest.raises(WeightspaceError):
        spread(5, [1, 1], rng)


def test_missing_wordnet_is_one_sentence(tmp_path):
    with pytest.raises(WeightspaceError) as e:
        WordNetFamily(data_dir=str(tmp_path))
    assert str(e.value) == ("the wordnet family needs WordNet 3.0 from the Debian package wordnet-base "
                            f"(apt-get install wordnet-base); {tmp_path / 'data.noun'} is missing.")


def test_a_file_that_is_not_wordnet_is_refused(tmp_path):
    (tmp_path / "data.noun").write_text("  licence header\nnot a synset line\n")
    with pytest.raises(WeightspaceError, match="not a WordNet 3.0 data file"):
        WordNetFamily(data_dir=str(tmp_path))


# ----- parsing ------------------------------------------------------------------------------
@requires_wordnet
def test_glosses_per_supersense_without_the_licence_header():
    glosses = load_glosses()
    assert len(glosses) == 26 and all(s.startswith("noun.") for s in glosses)
    counts = {s: len(t) for s, t in glosses.items()}
    assert counts["noun.Tops"] == 51 and counts["noun.motive"] == 42 and counts["noun.food"] == 2570
    assert sum(counts.values()) > 79_000
    texts = [t for ts in glosses.values() for t in ts]
    assert len(texts) == len(set(texts))  # a definition under two supersenses is dropped from both
    assert not any("Princeton" in t and "LICENSEE" in t or t.startswith("This software") for t in texts)
    assert "that which is perceived or known or inferred to have its own distinct existence (living or nonliving)" \
        in glosses["noun.Tops"]
    assert "a tangible and visible entity; an entity that can cast a shadow" in glosses["noun.Tops"]
    assert not any('; "' in t for t in texts)
    verbs = load_glosses(pos=("noun", "verb"))
    assert len(verbs) == 41 and len(verbs["verb.motion"]) > 1000


@requires_wordnet
def test_supersenses_with_300_definitions_are_kept(family):
    assert len(family.supersenses) == 24 and family.skipped_supersenses == ("noun.Tops", "noun.motive")
    assert len(family.heldout_supersenses) == 3 and set(family.heldout_supersenses) <= set(family.supersenses)
    assert family.descriptor_names == family.supersenses
    assert len(WordNetFamily(include_verbs=True).supersenses) == 37


# ----- the held-out split -------------------------------------------------------------------
@requires_wordnet
def test_heldout_tasks_are_far_from_every_zoo_task(family):
    zoo, held, pool = family.zoo_task_ids(), family.heldout_task_ids(), family.training_task_ids()
    assert len(zoo) == 256 and len(held) == 32 and set(zoo) <= set(pool) and not set(pool) & set(held)
    subsets = {i: family.subset_of(i) for i in zoo + held + pool}
    for h in held:
        assert all(hamming(subsets[h], subsets[z]) >= 2 for z in pool), h
    assert min(family.heldout_distances().values()) >= 2
    kinds = [family.heldout_kind(i) for i in held]
    assert kinds[:2] == ["combination", "supersense"] and kinds.count("supersense") == 16
    held_ss = set(family.heldout_supersenses)
    for i in held:
        assert bool(held_ss & set(subsets[i])) == (family.heldout_kind(i) == "supersense")
    assert all((s,) in subsets.values() for s in held_ss)  # each held-out supersense alone is a held-out task
    assert {len(subsets[i]) for i in zoo} == {1, 2, 3}


@requires_wordnet
def test_zoo_tasks_never_use_a_heldout_supersense_not_even_as_negatives(family):
    held_ss = set(family.heldout_supersenses)
    for i in family.training_task_ids() + family.heldout_task_ids():
        sources = {s for c in family._classes(family.subset_of(i)) for s in c}
        if i in family.training_task_ids():
            assert not sources & held_ss, i
        else:
            assert not set(family._classes(family.subset_of(i))[0]) & held_ss  # negatives: zoo supersenses


@requires_wordnet
def test_split_is_deterministic_in_the_seed(family):
    again = WordNetFamily()
    assert again.zoo_task_ids() == family.zoo_task_ids() and again.heldout_task_ids() == family.heldout_task_ids()
    assert again.texts == family.texts
    other = WordNetFamily(seed=1)
    assert other.heldout_task_ids() != family.heldout_task_ids() and other.texts != family.texts


@requires_wordnet
def test_kway_and_named_heldout_supersenses():
    kway = WordNetFamily(kind="kway", k=3, heldout_supersenses=["noun.food", "noun.plant"])
    assert kway.n_classes == 3 and kway.heldout_supersenses == ("noun.food", "noun.plant")
    assert all(len(kway.subset_of(i)) == 3 for i in kway.zoo_task_ids() + kway.heldout_task_ids())
    assert not any({"noun.food", "noun.plant"} & set(kway.subset_of(i)) for i in kway.training_task_ids())
    first = kway.zoo_task_ids()[0]
    assert kway.description(first) == "definitions of " + " vs ".join(plain_name(s) for s in kway.subset_of(first))
    with pytest.raises(WeightspaceError, match="held-out supersense 'noun.Tops'"):
        WordNetFamily(heldout_supersenses=["noun.Tops"])
    with pytest.raises(WeightspaceError, match="choose n_tasks <= "):
        WordNetFamily(n_tasks=5000)
    with pytest.raises(WeightspaceError, match="not in the wordnet family"):
        kway.task("in:noun.food")


# ----- tasks ------------------------------------------------------------------------------
@requires_wordnet
@requires_text_stack
def test_task_is_balanced_labelled_and_described(family, owner):
    for task_id in family.zoo_task_ids()[:2] + family.heldout_task_ids()[:2]:
        task, subset = family.task(task_id), set(family.subset_of(task_id))
        for texts, y in ((task.texts_train, task.y_train), (task.texts_test, task.y_test)):
            assert y.tolist().count(0) == y.tolist().count(1)
            for text, label in zip(texts, y.tolist()):
                assert (owner[text] in subset) == (label == 1), (task_id, text)
                assert owner[text] not in family.heldout_supersenses or owner[text] in subset
        assert len(task.texts_train) == 2 * 105 and len(task.texts_test) == 2 * 45
        assert task.support_y.tolist().count(0) == task.support_y.tolist().count(1) == 10
        assert set(task.support_texts) <= set(task.texts_train) and not set(task.texts_train) & set(task.texts_test)
        assert all(plain_name(s) in task.description for s in subset)
        assert task.description.startswith("definitions of ") and task.descriptor == family.descriptor(task_id)
        assert sum(task.descriptor) == len(subset)
    pair = next(i for i in family.training_task_ids() if len(family.subset_of(i)) == 2)
    a, b = (plain_name(s) for s in family.subset_of(pair))
    assert family.description(pair) == f"definitions of {a} or of {b}"
    triple = next(i for i in family.training_task_ids() if len(family.subset_of(i)) == 3)
    a, b, c = (plain_name(s) for s in family.subset_of(triple))
    assert family.description(triple) == f"definitions of {a}, of {b} or of {c}"


@requires_wordnet
@requires_text_stack
def test_test_definitions_are_never_trained_on_in_any_task(family):
    ids = family.zoo_task_ids()[:6] + family.heldout_task_ids()[:6]
    train = set(itertools.chain.from_iterable(family.task(i).texts_train for i in ids))
    test = set(itertools.chain.from_iterable(family.task(i).texts_test for i in ids))
    assert train and test and not train & test
    parts = family._parts.values()
    assert not set().union(*(set(a.tolist()) for a, _ in parts)) & set().union(*(set(b.tolist()) for _, b in parts))


@requires_wordnet
@requires_text_stack
def test_ids_are_the_tokenizers_and_tasks_are_deterministic(family):
    from weightspace.nets.lora_minilm.base_model import tokenize

    task_id = family.zoo_task_ids()[0]
    a = family.task(task_id)
    assert torch.equal(a.x_train, tokenize(a.texts_train, 32)) and torch.equal(a.support_x, tokenize(a.support_texts, 32))
    b = WordNetFamily().task(task_id)
    assert torch.equal(a.x_train, b.x_train) and a.texts_test == b.texts_test
    other = WordNetFamily(seed=1, heldout_supersenses=list(family.heldout_supersenses))
    shared = next(i for i in family.zoo_task_ids() if i in other.training_task_ids())
    assert other.task(shared).texts_test != family.task(shared).texts_test


@requires_wordnet
@requires_text_stack
def test_kway_labels_follow_the_subset_order(owner):
    kway = WordNetFamily(kind="kway", **SMALL)
    task_id = kway.zoo_task_ids()[0]
    task, subset = kway.task(task_id), kway.subset_of(task_id)
    assert [task.y_train.tolist().count(c) for c in range(3)] == [len(task.y_train) // 3] * 3
    assert all(owner[t] == subset[y] for t, y in zip(task.texts_train, task.y_train.tolist()))
    assert task.support_y.tolist().count(2) == SMALL["support_per_class"]


@requires_wordnet
@requires_text_stack
def test_config_rebuilds_the_same_family():
    family = WordNetFamily(n_tasks=12, n_heldout=4, **SMALL)
    again = WordNetFamily(**json.loads(json.dumps(family.config())))
    assert again.to_dict() == family.to_dict() and len(family.to_dict()["data_fingerprint"]) == 64
    hidden = WordNetFamily(n_tasks=12, n_heldout=4, inputs="hidden", **SMALL)
    assert hidden.data_fingerprint() == family.data_fingerprint()  # token ids, not float bits
    assert family.counts()["size=1"]["zoo"] >= 1 and sum(r["heldout"] for r in family.counts().values()) == 4


@requires_wordnet
@requires_text_stack
def test_zoo_build_with_hidden_inputs(tmp_path, capsys):
    """Two tiny tasks through the one zoo builder with the LoRA arch on cached hidden inputs."""
    from weightspace.cli import main
    from weightspace.nets.lora_minilm.base_model import tokenize
    from weightspace.tasks.text_base import hidden_inputs
    from weightspace.zoo.store import Zoo

    opts = [f"family.{k}={v}" for k, v in {**SMALL, "inputs": "hidden", "hidden_layer": 4}.items()]
    argv = ["zoo", "build", "--family", "wordnet", "--arch", "lora-minilm", "--tasks", "2", "--out", str(tmp_path / "zoo"),
            "--steps", "2", "--workers", "0", "--quiet", "arch.rank=2", *opts]
    assert main(argv) == 0
    zoo = Zoo.open(tmp_path / "zoo")
    assert len(zoo.records()) == 2 and zoo.family["name"] == "wordnet" and zoo.arch.inputs == "hidden"
    assert len(zoo.family["heldout_tasks"]) == 1
    family = WordNetFamily(n_tasks=2, n_heldout=1, inputs="hidden", **SMALL)
    task = family.task(family.zoo_task_ids()[0])
    assert task.x_train.shape[1:] == (32, 385)
    torch.testing.assert_close(task.x_test, hidden_inputs(tokenize(task.texts_test, 32), 32, 4))  # a gather of the same
