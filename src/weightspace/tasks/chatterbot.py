"""The chatterbot text task family: binary sentence classification tasks for LoRA zoos.

Four kinds of task, each a pair of sentence pools (class 0 is named first):

- ``topic:<lang>:<a>-vs-<b>``   one language, topic a vs topic b
- ``pooled:<a>-vs-<b>``         topic a vs topic b, pooled over every language that has both
- ``rest:<lang>:<a>`` and ``rest:any:<a>``  topic a vs all other topics (one language / pooled)
- ``lang:<l1>-vs-<l2>``         two languages written in the same script, all topics

Held-out tasks are disjoint from zoo tasks by whole topics and whole languages: a task that
touches a held-out topic or language is held out, and zoo tasks draw sentences only from zoo
topics and zoo languages, so no zoo member ever saw a held-out topic or language. On top, a
seeded fraction of topic pairs and language pairs is held out (every task of that pair).

Both classes of a task get the same number of sentences (min of the pools, capped), so chance
accuracy is 50%. Everything is a deterministic function of the config and the installed corpus.

Inputs (``inputs``): ``"ids"`` gives token ids (see ``TextTask``); ``"hidden"`` gives the frozen
MiniLM's activations entering layer ``hidden_layer`` with the attention mask as a last channel,
(N, max_length, 385), which is what a LoRA on layers >= hidden_layer needs
(``LoRAMiniLM(inputs="hidden")``): every batched trainer, evaluator and generator then runs only
the adapted layers. Texts ride along either way, for probes and text conditions.

The sentences are tokenized and embedded by the frozen MiniLM of nets/lora_minilm (its
``base_model``, which loads transformers on first use), so importing this module stays cheap.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
import torch

from weightspace.config import option
from weightspace.errors import WeightspaceError
from weightspace.nets.lora_minilm import base_model as minilm
from weightspace.tasks.base import stratified_support
from weightspace.tasks.chatterbot_corpus import language_words, load_corpus, script_of, topic_words, unk_rates
from weightspace.tasks.registry import register_family
from weightspace.tasks.text_base import TextFamily, TextTask, hidden_inputs, hidden_layer_option, inputs_option
from weightspace.tasks.text_base import seed_for as _seed_for

Source = tuple[str, str]  # (language, topic)


@dataclass(frozen=True)
class _TaskDef:
    task_id: str
    kind: str
    classes: tuple[tuple[Source, ...], tuple[Source, ...]]
    class_names: tuple[str, str]
    description: str
    heldout: bool


@functools.lru_cache(maxsize=4)
def _measured_unk_rates(data_dir: str | None) -> dict[str, float]:
    return unk_rates(load_corpus(data_dir), minilm.load_tokenizer())


@dataclass
class ChatterbotConfig:
    max_length: int = option(32, "tokens kept per sentence, [CLS] and [SEP] included")
    min_per_class: int = option(60, "a task is made only when each class has this many distinct sentences")
    max_per_class: int = option(150, "at most this many sentences per class, train and test together; both classes "
                                     "get as many")
    test_fraction: float = option(0.3, "share of each class's sentences kept for the test set")
    support_per_class: int = option(10, "labelled support examples per class")
    max_unk_rate: float = option(0.2, "languages whose word pieces are [UNK] more often than this are skipped")
    heldout_topics: tuple[str, ...] = option(("food", "movies"), "whole topics only held-out tasks touch")
    heldout_languages: tuple[str, ...] = option(("italian",), "whole languages only held-out tasks touch")
    heldout_pair_fraction: float = option(0.1, "seeded share of the topic pairs and language pairs also held out")
    kinds: tuple[str, ...] = option(("topic", "pooled", "rest", "lang"), "task kinds made (see the module docstring)")
    seed: int = option(0, "fixes the held-out pairs, every task's sentences and its support set")
    data_dir: str | None = option(None, "a chatterbot corpus directory; unset: the installed chatterbot-corpus")
    inputs: str = inputs_option()
    hidden_layer: int = hidden_layer_option()


@register_family("chatterbot", pretty="chatterbot sentence classification",
                 paper="the ChatterBot conversational corpus (Cox, gunthercox/chatterbot-corpus); topic and "
                       "language pairs, held out by whole topics and languages")
class ChatterbotFamily(TextFamily):
    config_class = ChatterbotConfig

    def __init__(self, **options):
        super().__init__(**options)
        unknown = sorted(set(self.kinds) - {"topic", "pooled", "rest", "lang"})
        if unknown:
            raise WeightspaceError(f"unknown task kind {unknown[0]!r}; choose from topic, pooled, rest, lang.")
        if not 0 < self.test_fraction < 1 or min(self.min_per_class, self.max_per_class) < 2 * (self.support_per_class + 1):
            raise WeightspaceError("chatterbot family: test_fraction must lie in (0, 1) and min_per_class and "
                                   "max_per_class must be at least 2 * (support_per_class + 1).")
        corpus = load_corpus(self.data_dir)
        self.unk_rates = dict(_measured_unk_rates(self.data_dir))
        self.corpus = {l: t for l, t in corpus.items() if self.unk_rates[l] <= self.max_unk_rate}
        self.skipped_languages = sorted(set(corpus) - set(self.corpus))
        topics = sorted({t for ts in self.corpus.values() for t in ts})
        for t in self.heldout_topics:
            if t not in topics:
                raise WeightspaceError(f"held-out topic {t!r} is not in the corpus; topics are {', '.join(topics)}.")
        for l in self.heldout_languages:
            if l not in self.corpus:
                raise WeightspaceError(f"held-out language {l!r} is not among the usable languages {', '.join(self.corpus)}.")
        self.topics, self.languages = topics, list(self.corpus)
        self.scripts = {l: script_of(s for ss in t.values() for s in ss) for l, t in self.corpus.items()}
        self._defs = {d.task_id: d for d in self._enumerate()}
        self.input_shape = (self.max_length,) if self.inputs == "ids" else (self.max_length, 385)
        self.n_classes = 2
        self.descriptor_names = tuple(f"topic:{t}" for t in topics) + tuple(f"lang:{l}" for l in self.languages) + \
            tuple(f"kind:{k}" for k in ("topic", "pooled", "rest", "lang"))

    # ----- enumeration -------------------------------------------------------------------
    def _held_pairs(self, items: list[str], tag: str) -> set[tuple[str, str]]:
        pairs = list(itertools.combinations(items, 2))
        rng = np.random.default_rng(_seed_for(self.seed, f"heldout-pairs:{tag}"))
        k = int(round(self.heldout_pair_fraction * len(pairs)))
        return {pairs[i] for i in rng.choice(len(pairs), size=k, replace=False)} if k else set()

    def _enumerate(self) -> list[_TaskDef]:
        zoo_topics = [t for t in self.topics if t not in self.heldout_topics]
        zoo_langs = [l for l in self.languages if l not in self.heldout_languages]
        held_topic_pairs = self._held_pairs(zoo_topics, "topic")
        held_lang_pairs = self._held_pairs(zoo_langs, "lang")
        has = lambda l, t: t in self.corpus[l]  # noqa: E731
        defs = []

        def add(task_id, kind, c0, c1, names, desc, held):
            if not held:  # zoo tasks see zoo topics and zoo languages only
                c0 = tuple((l, t) for l, t in c0 if l in zoo_langs and t in zoo_topics)
                c1 = tuple((l, t) for l, t in c1 if l in zoo_langs and t in zoo_topics)
            pool0, pool1 = self._pool(c0), self._pool(c1)
            if min(len(pool0 - pool1), len(pool1 - pool0)) >= self.min_per_class:
                defs.append(_TaskDef(task_id, kind, (c0, c1), names, desc, held))

        touches = lambda topics=(), langs=(): any(t in self.heldout_topics for t in topics) or \
            any(l in self.heldout_languages for l in langs)  # noqa: E731
        for a, b in itertools.combinations(self.topics, 2):
            held_pair = touches((a, b)) or (a, b) in held_topic_pairs
            if "topic" in self.kinds:
                for l in self.languages:
                    if has(l, a) and has(l, b):
                        add(f"topic:{l}:{a}-vs-{b}", "topic", ((l, a),), ((l, b),), (a, b),
                            f"{language_words(l)} sentences about {topic_words(a)} vs {topic_words(b)}",
                            held_pair or touches(langs=(l,)))
            langs = [l for l in self.languages if has(l, a) and has(l, b) and (held_pair or l in zoo_langs)]
            if "pooled" in self.kinds and len(langs) >= 2:
                add(f"pooled:{a}-vs-{b}", "pooled", tuple((l, a) for l in langs), tuple((l, b) for l in langs), (a, b),
                    f"Sentences in any language about {topic_words(a)} vs {topic_words(b)}", held_pair)
        if "rest" in self.kinds:
            for a in self.topics:
                for l in self.languages:
                    if has(l, a):
                        others = tuple((l, t) for t in self.corpus[l] if t != a)
                        add(f"rest:{l}:{a}", "rest", ((l, a),), others, (a, "other topics"),
                            f"{language_words(l)} sentences about {topic_words(a)} vs other topics", touches((a,), (l,)))
                langs = [l for l in self.languages if has(l, a) and (touches((a,)) or l in zoo_langs)]
                if len(langs) >= 2:
                    add(f"rest:any:{a}", "rest", tuple((l, a) for l in langs),
                        tuple((l, t) for l in langs for t in self.corpus[l] if t != a), (a, "other topics"),
                        f"Sentences in any language about {topic_words(a)} vs other topics", touches((a,)))
        if "lang" in self.kinds:
            for l1, l2 in itertools.combinations(self.languages, 2):
                if self.scripts[l1] == self.scripts[l2]:
                    add(f"lang:{l1}-vs-{l2}", "lang", tuple((l1, t) for t in self.corpus[l1]),
                        tuple((l2, t) for t in self.corpus[l2]), (l1, l2),
                        f"{language_words(l1)} vs {language_words(l2)} sentences",
                        touches(langs=(l1, l2)) or (l1, l2) in held_lang_pairs)
        return defs

    def _pool(self, sources) -> set[str]:
        return {s for l, t in sources for s in self.corpus[l][t]}

    # ----- TaskFamily contract -------------------------------------------------------------
    def zoo_task_ids(self) -> list[str]:
        return [i for i, d in self._defs.items() if not d.heldout]

    def heldout_task_ids(self) -> list[str]:
        """Held-out tasks interleaved by kind (topic, pooled, rest, lang, topic, ...), so that
        evaluating the first N covers every kind rather than the first kind only."""
        by_kind: dict[str, list[str]] = {}
        for i, d in self._defs.items():
            if d.heldout:
                by_kind.setdefault(d.kind, []).append(i)
        queues = [by_kind[k] for k in ("topic", "pooled", "rest", "lang") if k in by_kind]
        return [q[j] for j in range(max(map(len, queues), default=0)) for q in queues if j < len(q)]

    def descriptor(self, task_id: str) -> tuple[float, ...]:
        """Per topic and language: +1 only in class 1, -1 only in class 0, +0.5 in both, else
        0; then a one-hot task kind. Reads no sentences."""
        d = self._def(task_id)
        values = dict.fromkeys(self.descriptor_names, 0.0)
        for sign, sources in ((-1.0, d.classes[0]), (1.0, d.classes[1])):
            for l, t in sources:
                for key in (f"topic:{t}", f"lang:{l}"):
                    values[key] = 0.5 if values[key] not in (0.0, sign) else sign
        values[f"kind:{d.kind}"] = 1.0
        return tuple(values.values())

    descriptor_features = descriptor  # already numeric features: nothing to unwrap

    def description(self, task_id: str) -> str:
        return self._def(task_id).description

    def _def(self, task_id: str) -> _TaskDef:
        if task_id not in self._defs:
            raise WeightspaceError(f"task {task_id!r} is not in the chatterbot family (see `zoo_task_ids()` / `heldout_task_ids()`).")
        return self._defs[task_id]

    def _inputs(self, texts) -> torch.Tensor:
        ids = minilm.tokenize(texts, self.max_length)
        if self.inputs == "ids":
            return ids
        return hidden_inputs(ids, self.max_length, self.hidden_layer)  # a fixed width: tasks stack into one batch

    def _build_task(self, task_id: str) -> TextTask:
        d = self._def(task_id)
        pool0, pool1 = self._pool(d.classes[0]), self._pool(d.classes[1])
        pools = [sorted(pool0 - pool1), sorted(pool1 - pool0)]
        rng = np.random.default_rng(_seed_for(self.seed, task_id))
        n = min(len(pools[0]), len(pools[1]), self.max_per_class)
        n_test = max(1, int(round(self.test_fraction * n)))
        train, test = [], []
        for label, pool in enumerate(pools):
            chosen = [pool[i] for i in rng.choice(len(pool), size=n, replace=False)]
            test += [(s, label) for s in chosen[:n_test]]
            train += [(s, label) for s in chosen[n_test:]]
        train = [train[i] for i in rng.permutation(len(train))]
        test = [test[i] for i in rng.permutation(len(test))]
        y_train = np.array([y for _, y in train])
        sup = stratified_support(y_train, 2 * self.support_per_class, _seed_for(self.seed, "support:" + task_id) % 2**32)
        texts_train, texts_test = tuple(s for s, _ in train), tuple(s for s, _ in test)
        support_texts = tuple(texts_train[i] for i in sup)
        return TextTask(
            task_id=task_id, family=self.name, descriptor=self.descriptor(task_id), description=d.description,
            x_train=self._inputs(texts_train), y_train=torch.as_tensor(y_train, dtype=torch.long),
            x_test=self._inputs(texts_test), y_test=torch.tensor([y for _, y in test], dtype=torch.long),
            support_x=self._inputs(support_texts), support_y=torch.as_tensor(y_train[sup], dtype=torch.long),
            n_classes=2, texts_train=texts_train, texts_test=texts_test, support_texts=support_texts, kind=d.kind,
            class_names=d.class_names, languages=tuple(sorted({l for c in d.classes for l, _ in c})),
        )

    def pretrain_task(self) -> TextTask:
        """LoRA members all start from PEFT's init (B = 0), so there is no shared pretraining;
        this returns the zoo task with the most sentences for callers that want one."""
        zoo = self.zoo_task_ids()
        if not zoo:
            raise WeightspaceError("the chatterbot family has no zoo tasks with this config; lower min_per_class.")
        return self.task(max(zoo, key=lambda i: min(len(self._pool(c)) for c in self._defs[i].classes)))

    def counts(self) -> dict[str, dict[str, int]]:
        """Number of zoo / held-out tasks per kind (for reports)."""
        out: dict[str, dict[str, int]] = {}
        for d in self._defs.values():
            row = out.setdefault(d.kind, {"zoo": 0, "heldout": 0})
            row["heldout" if d.heldout else "zoo"] += 1
        return out
