"""Named sub-concepts of WordNet supersenses (wordnet_concepts.py and the family's ``concepts``):
the subtree logic on a hand-written data file, then, where wordnet-base is installed, the
auxiliary tasks of the real family and that they leave its zoo, held-out split and test sets alone."""

import itertools

import pytest

from optional_data import requires_wordnet
from text_stack import requires_text_stack

from weightspace.tasks.wordnet import LEXNAMES, WordNetFamily, definition_of
from weightspace.tasks.wordnet_concepts import choose_concepts, parse_synsets, subtree_definitions

# offset lex_filenum ss_type w_cnt word lex_id ... p_cnt [symbol offset pos source/target]... | gloss
LINES = [
    "  1 licence header line",
    "00000001 05 n 01 animal 0 002 ~ 00000002 n 0000 ~ 00000005 n 0000 | a living organism",
    "00000002 05 n 01 bird 0 002 @ 00000001 n 0000 ~ 00000003 n 0000 | warm-blooded egg-laying vertebrates",
    '00000003 05 n 02 songbird 0 oscine 0 001 @ 00000002 n 0000 | a bird that sings; "songbirds at dawn"',
    "00000004 05 n 01 robin 0 001 @i 00000003 n 0000 | a particular songbird",
    "00000005 05 n 01 fish 0 001 @ 00000001 n 0000 | a cold-blooded aquatic vertebrate",
    "00000006 13 n 01 fish_dish 0 001 @ 00000005 n 0000 | fish as food",  # another supersense: not in the subtree
]


@pytest.fixture
def tree(tmp_path):
    path = tmp_path / "data.noun"
    path.write_text("\n".join(LINES) + "\n")
    synsets = parse_synsets(path, LEXNAMES, definition_of)
    kept = {"noun.animal": {s.definition for s in synsets.values() if s.supersense == "noun.animal"},
            "noun.food": {"fish as food"}}
    return synsets, subtree_definitions(synsets, kept)


def test_parsing_reads_names_hypernyms_and_definitions(tree):
    synsets, _ = tree
    assert synsets["00000003"].name == "songbird" and synsets["00000003"].hypernyms == ("00000002",)
    assert synsets["00000004"].hypernyms == ("00000003",)  # an instance hypernym counts
    assert synsets["00000003"].definition == "a bird that sings"  # quoted example stripped
    assert synsets["00000006"].supersense == "noun.food"


def test_a_subtree_holds_its_hyponyms_within_one_supersense(tree):
    _, sub = tree
    assert sub["00000004"] == {"a particular songbird"}
    assert sub["00000002"] == {"warm-blooded egg-laying vertebrates", "a bird that sings", "a particular songbird"}
    assert "fish as food" not in sub["00000001"] and "fish as food" not in sub["00000005"]
    assert len(sub["00000001"]) == 5


def test_a_hypernym_cycle_does_not_hang(tmp_path):
    path = tmp_path / "data.noun"
    path.write_text("00000001 05 n 01 a 0 001 @ 00000002 n 0000 | first\n00000002 05 n 01 b 0 001 @ 00000001 n 0000 | second\n")
    synsets = parse_synsets(path, LEXNAMES, definition_of)
    sub = subtree_definitions(synsets, {"noun.animal": {"first", "second"}})
    assert sub["00000001"] <= {"first", "second"} and "first" in sub["00000001"]


def test_choice_respects_size_share_and_overlap(tree):
    synsets, sub = tree
    chosen = choose_concepts(5, ["noun.animal"], {"noun.animal": 5}, synsets, sub, min_size=2, max_share=0.6, seed=0)
    names = [c.name for c in chosen]
    assert names == ["bird"] or names == ["songbird"]  # animal is too big a share; bird and songbird overlap
    assert all(2 <= len(c.definitions) <= 3 for c in chosen)


@pytest.fixture(scope="module")
def families():
    return WordNetFamily(inputs="ids"), WordNetFamily(inputs="ids", concepts=24)


@requires_wordnet
def test_concepts_leave_the_zoo_and_heldout_split_alone(families):
    plain, wide = families
    assert wide.zoo_task_ids() == plain.zoo_task_ids() and wide.heldout_task_ids() == plain.heldout_task_ids()
    assert wide.training_task_ids() == plain.training_task_ids()
    assert plain.auxiliary_task_ids() == [] and len(wide.auxiliary_task_ids()) == 24
    assert wide.texts[: len(plain.texts)] == plain.texts  # the pool's rows keep their places
    supersenses = {wide.subset_of(t)[0] for t in wide.auxiliary_task_ids()}
    assert supersenses <= set(wide.zoo_supersenses) and len(supersenses) > 5


@requires_wordnet
@requires_text_stack
def test_concept_tasks_are_balanced_described_and_touch_no_test_definition(families):
    plain, wide = families
    assert wide.data_fingerprint() == plain.data_fingerprint()
    test_texts = {wide.texts[r] for _, test in wide._parts.values() for r in test}
    heldout_test = set(itertools.chain.from_iterable(plain.task(t).texts_test for t in plain.heldout_task_ids()[:8]))
    assert heldout_test <= test_texts
    for task_id in wide.auxiliary_task_ids()[:6]:
        task = wide.task(task_id)
        assert task.description.startswith("definitions of kinds of ") and task.class_names[0] == "other definitions"
        assert 2 * task.y_train.sum() == len(task.y_train) and 2 * task.y_test.sum() == len(task.y_test)
        seen = set(task.texts_train) | set(task.texts_test)
        assert not seen & test_texts and not set(task.texts_train) & set(task.texts_test)
        assert len(task.support_y) == 2 * wide.support_per_class
