"""The wordnet text task family: "is this definition about one of the supersenses in S?"

Data: the glosses of WordNet 3.0 (Princeton, a permissive licence), as the Debian package
``wordnet-base`` installs them (/usr/share/wordnet/data.noun, data.verb; ``data_dir`` points
elsewhere). Every synset belongs to one lexicographer file, its *supersense* (noun.animal,
noun.food, ...); its gloss is the text after " | ". A gloss's definition is kept and its
quoted example sentences are stripped (the text before the first ``; "`` or ``: "``), since the
examples are usage, not definition, and often name the word itself; ``keep_examples=True`` keeps
the whole gloss. A definition written the same way in two supersenses is dropped from both (8 in
the nouns), duplicates inside one are kept once.

Supersenses: the noun files with at least ``min_glosses`` (300) distinct definitions: 24 of the
26 (noun.Tops, 51, and noun.motive, 42, drop out); ``include_verbs=True`` adds the 13 of 15 verb
files that pass (verb.consumption, 243, and verb.weather, 81, drop out). Measured distinct
definitions per noun supersense: act 6641, animal 7270, artifact 11568, attribute 3029, body
2015, cognition 2963, communication 5525, event 1072, feeling 427, food 2570, group 2620,
location 3155, object 1538, person 11046, phenomenon 640, plant 7910, possession 1060, process
770, quantity 1269, relation 437, shape 339, state 3541, substance 2957, time 1021.

Tasks (``kind``):
- ``binary`` (default), id ``in:noun.food+noun.plant``: S is a set of 1..``max_subset`` (3)
  supersenses; class 1 = definitions from S (spread evenly over its members), class 0 =
  definitions from every other zoo supersense (spread evenly too). Both classes get the same
  count (``max_per_class`` = 150, 30% of them test), so chance is 50%.
- ``kway``, id ``which:noun.animal+noun.food+noun.plant``: S is a set of ``k`` (3) supersenses,
  label = the position of the definition's supersense in S (supersense order).
Descriptions name S in plain words ("definitions of foods and drinks or of plants"); the
descriptor is the multi-hot of S over all kept supersenses.

Held-out split, deterministic in ``seed``:
- ``heldout_supersenses`` (a seeded choice of 3, or a list of names) are whole supersenses no zoo
  task uses, not even as negatives: class 0 of every task draws from the zoo supersenses only.
- Held-out tasks, interleaved (combination, supersense, combination, ...): half are *new
  combinations*, subsets of zoo supersenses; half *touch a held-out supersense* (S contains one;
  sizes in turn, so each held-out supersense alone is among the first).
- Every held-out subset is at Hamming distance >= ``heldout_distance`` (2) from every zoo subset:
  the allowed pool (``training_task_ids()``, what a hypernet with task_pool=family trains on) is
  every subset of zoo supersenses at that distance from all held-out subsets, and the zoo is a
  seeded draw of ``n_tasks`` from it. The complement of S is never a task (|S| <= 3 of 21), so
  "S vs rest" flipped is no zoo task either. In kway mode distinct k-subsets are always >= 2
  apart. Held-out, pool and zoo draws take subset sizes in turn (1, 2, 3, 1, ...), where a
  uniform draw would give 85% triples. Defaults (binary, 21 zoo supersenses: 21 + 210 + 1330
  subsets): 32 held-out (16 + 16), 1334 in the pool (the rest less the held-out subsets'
  distance-1 moat, which takes most singles and pairs), 256 zoo tasks (6 singles, 94 pairs, 156
  triples).
- Each supersense's definitions are split into train and test once (a seeded sample of
  ``glosses_per_supersense`` = 200, 30% test), and every task draws its train examples from the
  train parts and its test examples from the test parts: a test definition is a test definition
  for every task, so no held-out test definition is in any zoo task's training data.

Auxiliary tasks (``concepts``, default 0): named sub-concepts of the zoo supersenses, id
``kind:noun.animal:01503061``, "definitions of kinds of bird": a synset's hyponym subtree within
its supersense (wordnet_concepts.py) against definitions of every zoo supersense. They are only
ever training tasks (``auxiliary_task_ids()``, a hypernet's ``pool_family``), so they give a
generator that reads descriptions many more named concepts than the 21 supersenses, and leave
the zoo, the held-out split and the data fingerprint unchanged. Their definitions are a seeded
sample of ``max_per_class`` per concept, none of them a test definition of any supersense, and
their test sets too come from train parts, so no held-out test definition is trained on. With
128 concepts the pool's rows grow from 4800 to 22,528 definitions (hidden table 1.1 GB).

Inputs (``inputs``) exactly as chatterbot's: ``"ids"`` token ids padded to the set's longest,
``"hidden"`` the frozen MiniLM's activations entering ``hidden_layer`` (N, max_length, 385), for
``LoRAMiniLM(inputs="hidden")``. Both are computed once per definition of the sampled pool and
cached per process (``_id_table`` / ``_hidden_table``), so building a task is a gather: the hidden
table holds 24 x 200 = 4800 definitions, 237 MB at max_length 32, and takes about 40 s to build on
one CPU thread (a task's own 300 definitions take about 2.5 s); it is kept in the disk cache
(weightspace.tensor_cache), so only a run's first process computes it. A built task holds a copy of
its rows, 16 MB of hidden inputs: a hypernet with task_pool=family, which builds all 1334 pool
tasks at once, needs about 21 GB with ``inputs="hidden"`` (ids: 0.1 GB). Definitions are cut to
``max_length`` (32) tokens with [CLS]/[SEP]: 4.5% of all noun definitions are longer, 4.4% of
the default pool (median 14 tokens, 99th percentile 44).
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from weightspace.config import option
from weightspace.errors import WeightspaceError
from weightspace.nets.lora_minilm import base_model as minilm
from weightspace.tasks.base import stratified_support
from weightspace.tasks.registry import register_family
from weightspace.tasks.subsets import and_join
from weightspace.tasks.text_base import (TextFamily, TextTask, hidden_inputs, hidden_layer_option, inputs_option, seed_for,
                                         text_fingerprint)
from weightspace.tasks.wordnet_concepts import choose_concepts, data_lines, parse_synsets, subtree_definitions
from weightspace.tensor_cache import cached_tensor

WORDNET_DIR = "/usr/share/wordnet"
CONCEPT_MAX_SHARE = 0.5  # a concept holds at most this share of its supersense's definitions

# WordNet 3.0's lexicographer files (its lexnames file; Debian's wordnet-base does not ship it).
LEXNAMES = {
    3: "noun.Tops", 4: "noun.act", 5: "noun.animal", 6: "noun.artifact", 7: "noun.attribute", 8: "noun.body",
    9: "noun.cognition", 10: "noun.communication", 11: "noun.event", 12: "noun.feeling", 13: "noun.food",
    14: "noun.group", 15: "noun.location", 16: "noun.motive", 17: "noun.object", 18: "noun.person",
    19: "noun.phenomenon", 20: "noun.plant", 21: "noun.possession", 22: "noun.process", 23: "noun.quantity",
    24: "noun.relation", 25: "noun.shape", 26: "noun.state", 27: "noun.substance", 28: "noun.time",
    29: "verb.body", 30: "verb.change", 31: "verb.cognition", 32: "verb.communication", 33: "verb.competition",
    34: "verb.consumption", 35: "verb.contact", 36: "verb.creation", 37: "verb.emotion", 38: "verb.motion",
    39: "verb.perception", 40: "verb.possession", 41: "verb.social", 42: "verb.stative", 43: "verb.weather",
}

# What a person would call each supersense (after "definitions of ..."), from WordNet's lexnames glosses.
PLAIN_NAMES = {
    "noun.Tops": "top-level concepts", "noun.act": "acts and actions", "noun.animal": "animals",
    "noun.artifact": "man-made objects", "noun.attribute": "attributes and qualities", "noun.body": "body parts",
    "noun.cognition": "thoughts and knowledge", "noun.communication": "communication and language",
    "noun.event": "events", "noun.feeling": "feelings and emotions", "noun.food": "foods and drinks",
    "noun.group": "groups and collections", "noun.location": "places", "noun.motive": "goals and motives",
    "noun.object": "natural objects", "noun.person": "people", "noun.phenomenon": "natural phenomena",
    "noun.plant": "plants", "noun.possession": "possessions and money", "noun.process": "natural processes",
    "noun.quantity": "quantities and units of measure", "noun.relation": "relations between things",
    "noun.shape": "shapes", "noun.state": "states and conditions", "noun.substance": "substances and materials",
    "noun.time": "times and time periods",
    "verb.body": "grooming, dressing and bodily care", "verb.change": "changing things",
    "verb.cognition": "thinking and judging", "verb.communication": "telling and asking",
    "verb.competition": "fighting and competing", "verb.consumption": "eating and drinking",
    "verb.contact": "touching and hitting", "verb.creation": "making things", "verb.emotion": "feeling",
    "verb.motion": "moving", "verb.perception": "seeing, hearing and sensing", "verb.possession": "owning and giving",
    "verb.social": "social life", "verb.stative": "being and having", "verb.weather": "weather",
}

KINDS = ("binary", "kway")
_EXAMPLE = re.compile(r'[;:]\s*"')  # where a gloss's quoted examples start


def plain_name(supersense: str) -> str:
    """'noun.food' -> 'foods and drinks'; verb supersenses read 'verbs of moving'."""
    words = PLAIN_NAMES[supersense]
    return f"verbs of {words}" if supersense.startswith("verb.") else words


def definition_of(gloss: str, keep_examples: bool = False) -> str:
    """The definition part of a gloss: the text before its first quoted example."""
    gloss = " ".join(gloss.split())
    if not keep_examples:
        gloss = _EXAMPLE.split(gloss, maxsplit=1)[0]
    return gloss.strip().rstrip(";").strip()


def _missing(path: Path) -> WeightspaceError:
    return WeightspaceError(f"the wordnet family needs WordNet 3.0 from the Debian package wordnet-base "
                            f"(apt-get install wordnet-base); {path} is missing.")


@functools.lru_cache(maxsize=4)
def load_glosses(data_dir: str = WORDNET_DIR, pos: tuple[str, ...] = ("noun",),
                 keep_examples: bool = False) -> dict[str, tuple[str, ...]]:
    """Supersense -> its distinct definitions, sorted, from ``data_dir``/data.<pos>. The licence
    header (lines starting with two spaces) is skipped; a definition that occurs under two
    supersenses is dropped from both, since its label would be ambiguous."""
    found: dict[str, set[str]] = {}
    for p in pos:
        path = Path(data_dir) / f"data.{p}"
        if not path.is_file():
            raise _missing(path)
        for line, fields, has_gloss, gloss in data_lines(path):
            if not has_gloss or len(fields) < 2 or not fields[1].isdigit() or int(fields[1]) not in LEXNAMES:
                raise WeightspaceError(f"{path} is not a WordNet 3.0 data file (line {line[:40]!r}); "
                                       "reinstall wordnet-base or point data_dir at WordNet 3.0.")
            text = definition_of(gloss, keep_examples)
            if text:
                found.setdefault(LEXNAMES[int(fields[1])], set()).add(text)
    owners: dict[str, int] = {}
    for texts in found.values():
        for t in texts:
            owners[t] = owners.get(t, 0) + 1
    return {s: tuple(sorted(t for t in texts if owners[t] == 1)) for s, texts in sorted(found.items())}


@functools.lru_cache(maxsize=2)
def _concept_tree(data_dir: str, keep_examples: bool) -> tuple[dict, dict]:
    """The noun synsets and the kept definitions of each one's subtree (wordnet_concepts.py)."""
    kept = {s: set(t) for s, t in load_glosses(data_dir, ("noun",), keep_examples).items()}
    synsets = parse_synsets(Path(data_dir) / "data.noun", LEXNAMES, lambda g: definition_of(g, keep_examples))
    return synsets, subtree_definitions(synsets, kept)


@functools.lru_cache(maxsize=2)
def _id_table(texts: tuple[str, ...], max_length: int) -> torch.Tensor:
    """(N, max_length) token ids of every pool definition, padded with PAD_ID to max_length."""
    ids = minilm.tokenize(texts, max_length)
    return torch.nn.functional.pad(ids, (0, max_length - ids.shape[1]), value=minilm.PAD_ID)


@functools.lru_cache(maxsize=2)
def _hidden_table(texts: tuple[str, ...], max_length: int, hidden_layer: int) -> torch.Tensor:
    """(N, max_length, 385) frozen activations of every pool definition, computed once per process
    in fixed batches (so a task's inputs never depend on which tasks were built before), and kept
    in the disk cache (tensor_cache), so the other processes of a run read it instead."""
    ids = _id_table(texts, max_length)
    return cached_tensor("wordnet-hidden", [ids, max_length, hidden_layer, minilm.weights_sha256()],
                         lambda: hidden_inputs(ids, max_length, hidden_layer))


@dataclass(frozen=True)
class _TaskDef:
    task_id: str
    subset: tuple[str, ...]  # supersenses in supersense order (a concept task: its supersense)
    heldout: str  # "" for a zoo / pool task, else "combination" or "supersense"
    concept: str = ""  # a concept task's name ("bird"), else ""


@dataclass
class WordNetConfig:
    """The module docstring has the measured numbers behind the defaults."""

    kind: str = option("binary", 'binary ("is it in S?") or kway ("which of S?")', choices=KINDS)
    max_subset: int = option(3, "binary: |S| runs from 1 to this", min=1, max=4)
    k: int = option(3, "kway: |S|", min=2, max=4)
    n_tasks: int = option(256, "zoo tasks, a seeded draw from the allowed pool", min=1)
    n_heldout: int = option(32, "held-out tasks: half new combinations, half touching a held-out supersense", min=0)
    heldout_supersenses: Any = option(3, "how many whole supersenses to hold out (a seeded choice), or their names")
    heldout_distance: int = option(2, "least Hamming distance of a held-out subset to every zoo subset", min=1, max=3)
    include_verbs: bool = option(False, "also the 13 verb supersenses (nouns only: 24 supersenses give a pool of 1334 "
                                        "tasks, 37 give 6198)")
    min_glosses: int = option(300, "a supersense needs this many distinct definitions to be kept")
    glosses_per_supersense: int = option(200, "definitions sampled per supersense for all tasks (a single-supersense "
                                              "class needs 150; it bounds the cached hidden table at 24 x 200 rows)")
    max_per_class: int = option(150, "definitions per class, train and test together")
    test_fraction: float = option(0.3, "share of each class's definitions kept for the test set")
    support_per_class: int = option(10, "labelled support examples per class (10: a 20-example support set)", min=1)
    keep_examples: bool = option(False, "keep a gloss's quoted example sentences (default: stripped)")
    max_length: int = option(32, "tokens kept per definition, [CLS] and [SEP] included")
    inputs: str = inputs_option()
    hidden_layer: int = hidden_layer_option()
    seed: int = option(0, "fixes the held-out supersenses, the split and every draw of definitions")
    data_dir: str | None = option(None, "where data.noun lives; unset: /usr/share/wordnet")
    concepts: int = option(0, "auxiliary training tasks (binary): this many named sub-concepts of the zoo supersenses, "
                              '"definitions of kinds of bird" (wordnet_concepts.py); they widen a generator\'s '
                              "training pool only and leave the zoo, held-out tasks and data fingerprint as they are",
                           min=0)


@register_family("wordnet", pretty="WordNet definitions by supersense",
                 paper="WordNet 3.0 glosses (Miller 1995; Princeton) by lexicographer file (supersense, Ciaramita & "
                       "Johnson 2003); held out by whole supersenses and by subsets at Hamming distance >= 2")
class WordNetFamily(TextFamily):
    """Options: ``WordNetConfig``, all recorded by ``config()``."""

    config_class = WordNetConfig

    def __init__(self, **options):
        super().__init__(**options)
        if not 0 < self.test_fraction < 1 or self.max_per_class < 2 * (self.support_per_class + 1):
            raise WeightspaceError("wordnet family: test_fraction must lie in (0, 1) and max_per_class be at least "
                                   "2 * (support_per_class + 1).")
        self.n_classes = 2 if self.kind == "binary" else self.k
        glosses = load_glosses(str(self.data_dir or WORDNET_DIR), ("noun", "verb") if self.include_verbs else ("noun",),
                               self.keep_examples)
        self.gloss_counts = {s: len(t) for s, t in glosses.items()}
        self.supersenses = tuple(s for s in glosses if len(glosses[s]) >= self.min_glosses)
        self.skipped_supersenses = tuple(s for s in glosses if s not in self.supersenses)
        held = self.cfg.heldout_supersenses
        if not isinstance(held, int):  # names, recorded as a list
            held = self.cfg.heldout_supersenses = [held] if isinstance(held, str) else [str(s) for s in held]
        self.heldout_supersenses = self._choose_heldout_supersenses(held)
        self.zoo_supersenses = tuple(s for s in self.supersenses if s not in self.heldout_supersenses)
        self._sample_pool(glosses)
        self._split()
        self._add_concepts()
        self.input_shape = (self.max_length,) if self.inputs == "ids" else (self.max_length, minilm.HIDDEN + 1)
        self.descriptor_names = self.supersenses

    # ----- supersenses, definitions and the split ---------------------------------------------
    def _choose_heldout_supersenses(self, option: int | list[str]) -> tuple[str, ...]:
        if isinstance(option, int):
            if not 0 <= option <= len(self.supersenses) - 3:
                raise WeightspaceError(f"wordnet family: heldout_supersenses={option} must leave at least 3 of the "
                                       f"{len(self.supersenses)} supersenses to the zoo.")
            rng = np.random.default_rng(seed_for(self.seed, "heldout-supersenses"))
            chosen = set(rng.choice(len(self.supersenses), size=option, replace=False).tolist())
            return tuple(s for i, s in enumerate(self.supersenses) if i in chosen)
        names = option
        for s in names:
            if s not in self.supersenses:
                raise WeightspaceError(f"held-out supersense {s!r} is not among the kept supersenses "
                                       f"{', '.join(self.supersenses)}.")
        if len(self.supersenses) - len(set(names)) < 3:
            raise WeightspaceError("wordnet family: the held-out supersenses must leave at least 3 to the zoo.")
        return tuple(s for s in self.supersenses if s in names)

    def _sample_pool(self, glosses: dict[str, tuple[str, ...]]) -> None:
        """A seeded sample of each supersense's definitions, split once into train and test parts:
        ``self.texts`` (the pool, the rows of the id and hidden tables) and per supersense
        ``self._parts[s] = (train row indices, test row indices)``."""
        texts: list[str] = []
        self._parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for s in self.supersenses:
            rng = np.random.default_rng(seed_for(self.seed, f"pool:{s}"))
            pool = glosses[s]
            chosen = [pool[i] for i in rng.permutation(len(pool))[: self.glosses_per_supersense]]
            n_test = int(round(self.test_fraction * len(chosen)))
            rows = np.arange(len(texts), len(texts) + len(chosen))
            if n_test < 1 or len(chosen) - n_test < self.support_per_class:
                raise WeightspaceError(f"wordnet family: {s} keeps {len(chosen) - n_test} train and {n_test} test "
                                       f"definitions; raise glosses_per_supersense (now {self.glosses_per_supersense}) "
                                       f"to give each part at least support_per_class and 1.")
            texts += chosen
            self._parts[s] = (rows[n_test:], rows[:n_test])
        self.texts = tuple(texts)

    def _subsets(self, names: Sequence[str]) -> list[tuple[str, ...]]:
        sizes = range(1, self.max_subset + 1) if self.kind == "binary" else (self.k,)
        return [c for r in sizes for c in itertools.combinations(names, r)]

    def _mask(self, subset: Sequence[str]) -> int:
        return sum(1 << self.supersenses.index(s) for s in subset)

    def _split(self) -> None:
        """Held-out subsets first (new combinations and held-out-supersense tasks), then the pool
        of zoo-supersense subsets far from all of them, then the zoo as a seeded draw from the pool."""
        rng = np.random.default_rng(seed_for(self.seed, "split"))
        held_ss = set(self.heldout_supersenses)
        combos = self._subsets(self.zoo_supersenses)
        touching = [s for s in self._subsets(self.supersenses) if held_ss & set(s)]
        n_super = min(self.n_heldout // 2, len(touching))
        n_combo = self.n_heldout - n_super
        if n_combo >= len(combos):
            raise WeightspaceError(f"wordnet family: n_heldout={self.n_heldout} leaves no zoo tasks; the "
                                   f"{len(self.zoo_supersenses)} zoo supersenses give {len(combos)} subsets.")
        held_combo = by_size(combos, rng)[:n_combo]
        held_super = by_size(touching, rng)[:n_super]  # among the first: each held-out supersense alone
        held_masks = [self._mask(s) for s in held_combo + held_super]
        d = self.heldout_distance
        pool = [s for s in combos if all(bin(self._mask(s) ^ h).count("1") >= d for h in held_masks)]
        if self.n_tasks > len(pool):
            raise WeightspaceError(f"wordnet family: the held-out split leaves {len(pool)} zoo subsets at Hamming "
                                   f"distance >= {self.heldout_distance}; choose n_tasks <= {len(pool)} or fewer "
                                   "held-out tasks.")
        zoo = set(by_size(pool, rng)[: self.n_tasks])
        self._defs: dict[str, _TaskDef] = {}
        for s in pool:
            self._defs[self.task_id_for(s)] = _TaskDef(self.task_id_for(s), s, "")
        self._zoo = [self.task_id_for(s) for s in pool if s in zoo]
        self._pool = [self.task_id_for(s) for s in pool]
        self._heldout = []
        for j in range(max(len(held_combo), len(held_super))):  # interleaved: combination, supersense, ...
            for chosen, why in ((held_combo, "combination"), (held_super, "supersense")):
                if j < len(chosen):
                    task_id = self.task_id_for(chosen[j])
                    self._defs[task_id] = _TaskDef(task_id, chosen[j], why)
                    self._heldout.append(task_id)

    def _add_concepts(self) -> None:
        """``concepts`` auxiliary tasks: a seeded sample of ``max_per_class`` definitions of each
        chosen concept (none of them a test definition of any supersense, so no held-out test set
        leaks into training), appended to the pool's rows."""
        self._concept_rows: dict[str, np.ndarray] = {}
        self._aux: list[str] = []
        if not self.concepts:
            return
        if self.kind != "binary":
            raise WeightspaceError("wordnet family: concepts are binary tasks; use them with kind=binary.")
        sizes = {s: self.gloss_counts[s] for s in self.zoo_supersenses}
        synsets, subtrees = _concept_tree(str(self.data_dir or WORDNET_DIR), self.keep_examples)
        chosen = choose_concepts(self.concepts, self.zoo_supersenses, sizes, synsets, subtrees, self.max_per_class,
                                 CONCEPT_MAX_SHARE, seed_for(self.seed, "concepts"))
        test_texts = {self.texts[r] for _, test in self._parts.values() for r in test}
        row_of = {t: i for i, t in enumerate(self.texts)}
        texts = list(self.texts)
        for c in chosen:
            usable = [d for d in c.definitions if d not in test_texts]
            rng = np.random.default_rng(seed_for(self.seed, "concept:" + c.offset))
            rows = []
            for i in rng.permutation(len(usable))[: self.max_per_class]:
                if usable[i] not in row_of:
                    row_of[usable[i]] = len(texts)
                    texts.append(usable[i])
                rows.append(row_of[usable[i]])
            task_id = f"kind:{c.supersense}:{c.offset}"
            self._defs[task_id] = _TaskDef(task_id, (c.supersense,), "", c.name)
            self._concept_rows[task_id] = np.array(rows)
            self._aux.append(task_id)
        self.texts = tuple(texts)

    def task_id_for(self, subset: Sequence[str]) -> str:
        return ("in:" if self.kind == "binary" else "which:") + "+".join(subset)

    # ----- TaskFamily contract -------------------------------------------------------------
    def zoo_task_ids(self) -> list[str]:
        return list(self._zoo)

    def heldout_task_ids(self) -> list[str]:
        """Held-out tasks interleaved by kind (new combination, held-out supersense, ...), so the
        first N cover both."""
        return list(self._heldout)

    def training_task_ids(self) -> list[str]:
        """Every subset of zoo supersenses at the held-out distance from all held-out subsets:
        the zoo's tasks and the ones no zoo member was trained on (a task is a new draw of
        definitions, as cheap as relabelling)."""
        return list(self._pool)

    def auxiliary_task_ids(self) -> list[str]:
        """The concept tasks (``concepts``), ids ``kind:<supersense>:<synset offset>``."""
        return list(self._aux)

    def heldout_kind(self, task_id: str) -> str:
        """'combination' (a new subset of zoo supersenses), 'supersense' (touches a held-out one),
        or '' for a zoo or pool task."""
        return self._def(task_id).heldout

    def heldout_distances(self) -> dict[str, int]:
        """Each held-out task's Hamming distance to its nearest zoo subset (for the report)."""
        zoo = [self._mask(self._defs[i].subset) for i in self._zoo]
        return {i: min(bin(self._mask(self._defs[i].subset) ^ z).count("1") for z in zoo) for i in self._heldout}

    def subset_of(self, task_id: str) -> tuple[str, ...]:
        return self._def(task_id).subset

    def _def(self, task_id: str) -> _TaskDef:
        if task_id not in self._defs:
            raise WeightspaceError(f"task {task_id!r} is not in the wordnet family (see `zoo_task_ids()`, "
                                   f"`heldout_task_ids()` and `training_task_ids()`; ids look like "
                                   f'"{self.task_id_for(self.zoo_supersenses[:2])}").')
        return self._defs[task_id]

    def descriptor(self, task_id: str) -> tuple[float, ...]:
        """The multi-hot of S over ``descriptor_names`` (every kept supersense). Reads no data."""
        members = set(self._def(task_id).subset)
        return tuple(1.0 if s in members else 0.0 for s in self.supersenses)

    descriptor_features = descriptor  # already numeric features: nothing to unwrap

    def description(self, task_id: str) -> str:
        if self._def(task_id).concept:
            return f"definitions of kinds of {self._def(task_id).concept}"
        names = [plain_name(s) for s in self._def(task_id).subset]
        if self.kind == "binary":
            return "definitions of " + and_join([names[0]] + [f"of {n}" for n in names[1:]], "or")
        return "definitions of " + " vs ".join(names)

    def class_names(self, task_id: str) -> tuple[str, ...]:
        if self._def(task_id).concept:
            return ("other definitions", f"kinds of {self._def(task_id).concept}")
        names = tuple(plain_name(s) for s in self._def(task_id).subset)
        return ("other definitions", " or ".join(names)) if self.kind == "binary" else names

    def _classes(self, subset: tuple[str, ...]) -> list[tuple[str, ...]]:
        """Supersenses behind each label: binary (others, S), kway one per member of S."""
        if self.kind == "binary":
            return [tuple(s for s in self.zoo_supersenses if s not in subset), subset]
        return [(s,) for s in subset]

    def _draw(self, sources: tuple[str, ...], part: int, n: int, rng: np.random.Generator) -> list[int]:
        """n pool rows from part (0 train, 1 test) of the sources, spread as evenly as they allow."""
        parts = [self._parts[s][part] for s in sources]
        counts = spread(n, [len(p) for p in parts], rng)
        return [int(r) for p, c in zip(parts, counts) for r in rng.choice(p, size=c, replace=False)]

    def _rows(self, task_id: str) -> tuple[np.ndarray, ...]:
        """The task's draw: pool rows and labels of its train and test sets (shuffled), and the
        support set as positions in the train set. Reads no inputs."""
        if task_id in self._concept_rows:
            return self._concept_task_rows(task_id)
        classes = self._classes(self._def(task_id).subset)
        rng = np.random.default_rng(seed_for(self.seed, task_id))
        n_test_want = int(round(self.test_fraction * self.max_per_class))
        n_test = min([n_test_want] + [sum(len(self._parts[s][1]) for s in c) for c in classes])
        n_train = min([self.max_per_class - n_test_want] + [sum(len(self._parts[s][0]) for s in c) for c in classes])
        train, test = [], []
        for label, sources in enumerate(classes):
            train += [(r, label) for r in self._draw(sources, 0, n_train, rng)]
            test += [(r, label) for r in self._draw(sources, 1, n_test, rng)]
        return self._shuffled(task_id, train, test, rng)

    def _shuffled(self, task_id: str, train: list[tuple[int, int]], test: list[tuple[int, int]],
                  rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """``_rows``' result from (row, label) pairs: both sets shuffled, and the support set."""
        train = [train[i] for i in rng.permutation(len(train))]
        test = [test[i] for i in rng.permutation(len(test))]
        rows_train, y_train = np.array([r for r, _ in train]), np.array([y for _, y in train])
        rows_test, y_test = np.array([r for r, _ in test]), np.array([y for _, y in test])
        sup = stratified_support(y_train, self.n_classes * self.support_per_class,
                                 seed_for(self.seed, "support:" + task_id) % 2**32)
        return rows_train, y_train, rows_test, y_test, sup

    def _concept_task_rows(self, task_id: str) -> tuple[np.ndarray, ...]:
        """A concept task's draw: its sampled definitions against as many from the train parts of
        every zoo supersense (its own included, less the concept's), train and test both from
        those, so it touches no supersense's test part."""
        rng = np.random.default_rng(seed_for(self.seed, task_id))
        pos = self._concept_rows[task_id]
        own = set(pos.tolist())
        parts = [np.array([r for r in self._parts[s][0] if r not in own]) for s in self.zoo_supersenses]
        counts = spread(len(pos), [len(p) for p in parts], rng)
        neg = np.array([int(r) for p, c in zip(parts, counts) for r in rng.choice(p, size=c, replace=False)])
        n_test = int(round(self.test_fraction * len(pos)))
        pos, neg = pos[rng.permutation(len(pos))].tolist(), neg[rng.permutation(len(neg))].tolist()
        train = [(r, 0) for r in neg[n_test:]] + [(r, 1) for r in pos[n_test:]]
        test = [(r, 0) for r in neg[:n_test]] + [(r, 1) for r in pos[:n_test]]
        return self._shuffled(task_id, train, test, rng)

    def _build_task(self, task_id: str) -> TextTask:
        rows_train, y_train, rows_test, y_test, sup = self._rows(task_id)
        return TextTask(
            task_id=task_id, family=self.name, descriptor=self.descriptor(task_id),
            description=self.description(task_id),
            x_train=self._inputs(rows_train), y_train=torch.as_tensor(y_train, dtype=torch.long),
            x_test=self._inputs(rows_test), y_test=torch.as_tensor(y_test, dtype=torch.long),
            support_x=self._inputs(rows_train[sup]), support_y=torch.as_tensor(y_train[sup], dtype=torch.long),
            n_classes=self.n_classes, texts_train=tuple(self.texts[r] for r in rows_train),
            texts_test=tuple(self.texts[r] for r in rows_test),
            support_texts=tuple(self.texts[r] for r in rows_train[sup]),
            kind=self.kind, class_names=self.class_names(task_id), languages=("english",),
        )

    def _inputs(self, rows: np.ndarray) -> torch.Tensor:
        """A gather from the per-definition tables: ids padded to the set's longest (what
        ``tokenize`` gives), or the hidden activations at the fixed width max_length."""
        index = torch.as_tensor(rows, dtype=torch.long)
        if self.inputs == "hidden":
            return _hidden_table(self.texts, self.max_length, self.hidden_layer)[index]
        ids = _id_table(self.texts, self.max_length)[index]
        return ids[:, : int((ids != minilm.PAD_ID).sum(1).max())]

    def pretrain_task(self) -> TextTask:
        """LoRA members all start from PEFT's init (B = 0), so there is no shared pretraining;
        every task has the same size, so this is the first zoo task, for callers that want one."""
        return self.task(self.zoo_task_ids()[0])

    def _fingerprint(self) -> str:
        """The first zoo task's token ids and labels, without building the hidden table: rebuilding
        a family from a zoo record stays quick."""
        rows_train, y_train, rows_test, y_test, _ = self._rows(self.zoo_task_ids()[0])
        return text_fingerprint([self.texts[r] for r in rows_train], torch.as_tensor(y_train, dtype=torch.long),
                                [self.texts[r] for r in rows_test], torch.as_tensor(y_test, dtype=torch.long),
                                self.max_length)


    def counts(self) -> dict[str, dict[str, int]]:
        """Zoo / held-out / pool tasks per subset size (for reports)."""
        out: dict[str, dict[str, int]] = {}
        for ids, key in ((self._zoo, "zoo"), (self._heldout, "heldout"), (self._pool, "pool")):
            for i in ids:
                row = out.setdefault(f"size={len(self._defs[i].subset)}", {"zoo": 0, "heldout": 0, "pool": 0})
                row[key] += 1
        return dict(sorted(out.items()))


def by_size(subsets: Sequence[tuple[str, ...]], rng: np.random.Generator) -> list[tuple[str, ...]]:
    """The subsets in a seeded order within each size, taken by size in turn (1, 2, 3, 1, 2, 3, ...):
    a draw from the front covers every size, where a uniform one would be 85% triples."""
    sizes = sorted({len(s) for s in subsets})
    queues = [[s for s in (subsets[i] for i in rng.permutation(len(subsets))) if len(s) == r] for r in sizes]
    return [q[j] for j in range(max(map(len, queues), default=0)) for q in queues if j < len(q)]


def spread(n: int, caps: Sequence[int], rng: np.random.Generator) -> list[int]:
    """``n`` split over bins as evenly as their caps allow; a seeded choice of which bins get one more."""
    counts, remaining = [0] * len(caps), n
    open_ = [i for i, c in enumerate(caps) if c > 0]
    while remaining > 0 and open_:
        share, extra = divmod(remaining, len(open_))
        lucky = set(rng.choice(open_, size=extra, replace=False).tolist()) if extra else set()
        for i in open_:
            add = min(caps[i] - counts[i], share + (i in lucky))
            counts[i] += add
            remaining -= add
        open_ = [i for i in open_ if counts[i] < caps[i]]
    if remaining:
        raise WeightspaceError(f"wordnet family: {n} definitions were asked of bins holding {sum(caps)}.")
    return counts
