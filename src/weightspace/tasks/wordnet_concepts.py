"""Named sub-concepts of WordNet's supersenses: more tasks to learn a description's meaning from.

A wordnet task asks "is this definition about one of the supersenses in S?", and a zoo's
supersenses are 21 names. A generator that writes a task's head from its description learns a map
from description embeddings to decision directions out of those 21 names and their unions; on a
supersense no training task used it does no better than zero-shot cosine (benchmarks/RESULTS.md,
session 9: 0.717 against 0.711). Zero-shot transfer grows with the number of named concepts a map
is trained on, and WordNet names tens of thousands: every noun synset is a concept, and its
hyponym subtree within the same lexicographer file is its extension ("bird": every kind of bird).

A *concept* here is a synset of a zoo supersense whose subtree holds at least ``min_size``
distinct kept definitions (the synset's own included) and at most ``max_share`` of its
supersense's: big enough for a task, small enough to differ from the supersense itself. Concepts
are chosen round-robin over the supersenses in a seeded order, skipping any whose definitions
overlap a chosen one's by more than ``MAX_OVERLAP`` (nested chains such as dog > canine > carnivore
otherwise fill the list). Its name is its synset's first lemma ("bird", "musical instrument").

Pointers read: ``@`` (hypernym) and ``@i`` (instance hypernym) between nouns, as in WordNet 3.0's
wndb(5WN) format: ``offset lex_filenum ss_type w_cnt word lex_id ... p_cnt [symbol offset pos
source/target]... | gloss``, w_cnt in hexadecimal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from weightspace.errors import WeightspaceError

MAX_OVERLAP = 0.5  # largest share of a concept's definitions that a chosen concept may already hold
HYPERNYMS = ("@", "@i")


@dataclass(frozen=True)
class Concept:
    offset: str  # the synset's byte offset in data.noun: its id
    supersense: str
    name: str  # first lemma, spaces for underscores
    definitions: tuple[str, ...]  # distinct kept definitions of the synset and its hyponyms, sorted


@dataclass(frozen=True)
class _Synset:
    supersense: str
    name: str
    definition: str
    hypernyms: tuple[str, ...]


def data_lines(path: Path) -> Iterator[tuple[str, list[str], bool, str]]:
    """(line, its fields before the gloss, whether it has a gloss, the gloss) for every synset
    line of a WordNet data file; the licence header (lines starting with two spaces) is skipped."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("  "):
                head, sep, gloss = line.partition(" | ")
                yield line, head.split(), bool(sep), gloss


def parse_synsets(path: Path, lexnames: dict[int, str], definition_of) -> dict[str, _Synset]:
    """offset -> synset of a WordNet 3.0 data file."""
    out: dict[str, _Synset] = {}
    for line, fields, _, gloss in data_lines(path):
        try:
            n_words = int(fields[3], 16)
            p_at = 4 + 2 * n_words
            n_ptr = int(fields[p_at])
            ptrs = fields[p_at + 1: p_at + 1 + 4 * n_ptr]
        except (IndexError, ValueError) as e:
            raise WeightspaceError(f"{path} is not a WordNet 3.0 data file (line {line[:40]!r}).") from e
        hypernyms = tuple(ptrs[i + 1] for i in range(0, len(ptrs), 4) if ptrs[i] in HYPERNYMS and ptrs[i + 2] == "n")
        out[fields[0]] = _Synset(lexnames.get(int(fields[1]), ""), fields[4].replace("_", " "),
                                 definition_of(gloss), hypernyms)
    return out


def subtree_definitions(synsets: dict[str, _Synset], kept: dict[str, set[str]]) -> dict[str, frozenset[str]]:
    """offset -> the kept definitions of the synset and every hyponym below it in the same
    supersense (a hyponym in another lexicographer file starts a subtree of its own there)."""
    children: dict[str, list[str]] = {}
    for off, s in synsets.items():
        for h in s.hypernyms:
            if h in synsets and synsets[h].supersense == s.supersense:
                children.setdefault(h, []).append(off)
    memo: dict[str, frozenset[str]] = {}

    def visit(root: str) -> frozenset[str]:
        # Iterative post-order: subtrees are up to 18 levels deep, fine for recursion, but a
        # malformed file with a cycle must not hang (a node on the stack is skipped).
        stack, on_path = [(root, False)], set()
        while stack:
            off, done = stack.pop()
            if off in memo:
                continue
            if done:
                s = synsets[off]
                own = {s.definition} if s.definition in kept.get(s.supersense, ()) else set()
                memo[off] = frozenset(own.union(*(memo.get(c, frozenset()) for c in children.get(off, ()))))
                on_path.discard(off)
                continue
            on_path.add(off)
            stack.append((off, True))
            stack += [(c, False) for c in children.get(off, ()) if c not in memo and c not in on_path]
        return memo[root]

    return {off: visit(off) for off in synsets}


def choose_concepts(n: int, supersenses: Sequence[str], sizes: dict[str, int], synsets: dict[str, _Synset],
                    subtrees: dict[str, frozenset[str]], min_size: int, max_share: float, seed: int) -> list[Concept]:
    """``n`` concepts of ``supersenses`` (fewer where fewer qualify), spread over them in turn;
    ``sizes``: each supersense's count of kept definitions; ``synsets`` and ``subtrees`` from
    ``parse_synsets`` and ``subtree_definitions``."""
    rng = np.random.default_rng(seed)
    by_supersense: dict[str, list[str]] = {s: [] for s in supersenses}
    for off in sorted(synsets):
        s = synsets[off].supersense
        if s in by_supersense and min_size <= len(subtrees[off]) <= max_share * sizes[s]:
            by_supersense[s].append(off)
    queues = {s: [offs[i] for i in rng.permutation(len(offs))] for s, offs in by_supersense.items()}
    order = [supersenses[i] for i in rng.permutation(len(supersenses))]
    chosen: list[Concept] = []
    while len(chosen) < n and any(queues.values()):
        for s in order:
            while queues[s] and len(chosen) < n:
                off = queues[s].pop(0)
                defs = subtrees[off]
                if all(len(defs & set(c.definitions)) <= MAX_OVERLAP * len(defs) for c in chosen if c.supersense == s):
                    chosen.append(Concept(off, s, synsets[off].name, tuple(sorted(defs))))
                    break
    return chosen
