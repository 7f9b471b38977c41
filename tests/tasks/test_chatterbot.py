import pytest
import torch

from text_stack import require_text_stack

require_text_stack()
from text_stack import family  # noqa: E402,F401  (fixtures)

from weightspace.errors import WeightspaceError
from weightspace.tasks.chatterbot_corpus import load_corpus, script_of
from weightspace.tasks.chatterbot import ChatterbotFamily


def test_unreadable_languages_are_measured_and_skipped(family):
    for lang in ("chinese", "traditionalchinese", "thai", "oriya", "telugu"):
        assert lang in family.skipped_languages
        assert family.unk_rates[lang] > 0.5
    for lang in ("english", "spanish", "russian", "persian"):
        assert lang in family.languages and family.unk_rates[lang] < 0.05


def test_corpus_sentences_are_unambiguous_within_a_language():
    corpus = load_corpus()
    for lang, topics in corpus.items():
        seen = [s for sents in topics.values() for s in sents]
        assert len(seen) == len(set(seen)), lang
    assert "sports" in corpus["dutch"] and "sport" not in corpus["dutch"]  # aliases merged
    assert script_of(corpus["russian"]["food"]) == "CYRILLIC"


def test_several_hundred_tasks_with_sixty_sentences_per_class(family):
    counts = family.counts()
    assert set(counts) == {"topic", "pooled", "rest", "lang"}
    assert len(family.zoo_task_ids()) + len(family.heldout_task_ids()) >= 300
    task = family.task(family.zoo_task_ids()[0])
    for label in (0, 1):
        n = int((task.y_train == label).sum() + (task.y_test == label).sum())
        assert family.min_per_class <= n <= family.max_per_class


def test_split_holds_out_whole_topics_and_languages(family):
    zoo, held = set(family.zoo_task_ids()), set(family.heldout_task_ids())
    assert zoo and held and not zoo & held
    for task_id in zoo:
        d = family._defs[task_id]
        for lang, topic in d.classes[0] + d.classes[1]:
            assert topic not in family.heldout_topics and lang not in family.heldout_languages, task_id
    assert any("food" in t for t in held) and any("italian" in t for t in held)
    # a held-out topic pair also takes its per-language tasks out of the zoo
    pairs = {tuple(t.split(":")[-1].split("-vs-")) for t in held if t.startswith("pooled:")}
    assert not any(t.startswith("topic:") and tuple(t.split(":")[-1].split("-vs-")) in pairs for t in zoo)


def test_task_is_deterministic_balanced_and_described(family):
    task_id = "topic:english:ai-vs-emotion"
    a, b = family.task(task_id), family.task(task_id)
    assert torch.equal(a.x_train, b.x_train) and a.texts_test == b.texts_test
    assert a.description == "English sentences about artificial intelligence vs emotion"
    assert a.class_names == ("ai", "emotion") and a.languages == ("english",)
    assert not set(a.texts_train) & set(a.texts_test)
    assert set(a.support_texts) <= set(a.texts_train)
    assert a.support_y.tolist().count(0) == a.support_y.tolist().count(1) == family.support_per_class
    assert a.x_train.dtype == torch.long and a.x_train.shape[1] <= family.max_length
    assert torch.equal(a.x_train[:, 0], torch.full((len(a.texts_train),), 101))  # [CLS] first
    other = ChatterbotFamily(seed=1)
    assert other.task(task_id).texts_test != a.texts_test


def test_descriptor_marks_classes_languages_and_kind(family):
    names = family.descriptor_names
    d = dict(zip(names, family.descriptor("lang:english-vs-spanish")))
    assert d["lang:english"] == -1.0 and d["lang:spanish"] == 1.0 and d["kind:lang"] == 1.0
    d = dict(zip(names, family.descriptor("pooled:ai-vs-emotion")))
    assert d["topic:ai"] == -1.0 and d["topic:emotion"] == 1.0 and d["lang:english"] == 0.5


def test_config_rebuilds_the_same_family(family):
    again = ChatterbotFamily(**family.config())
    assert again.to_dict() == family.to_dict()


def test_bad_options_are_one_sentence_errors():
    with pytest.raises(WeightspaceError, match="held-out topic"):
        ChatterbotFamily(heldout_topics=("cooking",))
    with pytest.raises(WeightspaceError, match="unknown task kind"):
        ChatterbotFamily(kinds=("topic", "sentiment"))
    with pytest.raises(WeightspaceError, match="not in the chatterbot family"):
        ChatterbotFamily().task("topic:english:nothing-vs-else")
