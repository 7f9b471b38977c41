"""Sentences of the chatterbot-corpus (BSD-3), grouped by language and topic.

The corpus ships as YAML files ``data/<language>/<topic>.yml``; each holds ``conversations``,
lists of utterances. We read them with ``yaml.safe_load`` and keep every distinct utterance as
a sentence of that (language, topic). File names are mostly English topic names; a few are
translated or misspelt and are mapped onto a common name so that a topic can be pooled across
languages. A sentence that occurs under two topics of one language is dropped from both: its
label would be ambiguous.

Languages whose text the MiniLM tokenizer mostly turns into [UNK] carry no signal to the frozen
model; ``unk_rates`` measures that and the family drops languages above a threshold.
"""

from __future__ import annotations

import functools
import unicodedata
from collections import Counter
from pathlib import Path

import yaml

from weightspace.errors import WeightspaceError

# File stems that name a topic another way -> the common topic name.
TOPIC_ALIASES = {
    "sport": "sports", "ia": "ai", "dinero": "money", "emociones": "emotion", "emotions": "emotion",
    "psicologia": "psychology", "perfilbot": "botprofile", "profile": "botprofile",
    "coversations": "conversations", "greeting": "greetings", "computer": "computers",
}
# How a topic reads in a task description ("English sentences about <words>").
TOPIC_WORDS = {
    "ai": "artificial intelligence", "botprofile": "the bot itself", "tech_support": "tech support",
    "history_brasil": "Brazilian history", "linguistic_knowledge": "linguistics", "unilab": "the UNILAB university",
    "conversations": "small talk", "trivia": "trivia questions", "origen": "origins",
}


def corpus_dir() -> Path:
    try:
        from chatterbot_corpus.corpus import DATA_DIRECTORY
    except ImportError:
        raise WeightspaceError("the text task family needs the chatterbot corpus; install it with `pip install chatterbot-corpus`.") from None
    return Path(DATA_DIRECTORY)


def topic_name(stem: str) -> str:
    s = stem.lower()
    return TOPIC_ALIASES.get(s, s)


def topic_words(topic: str) -> str:
    return TOPIC_WORDS.get(topic, topic.replace("_", " "))


def language_words(language: str) -> str:
    return language.capitalize()


def _utterances(node) -> list[str]:
    """Strings of a conversation entry (lists may nest; anything that is not text is skipped)."""
    if isinstance(node, str):
        return [node.strip()] if node.strip() else []
    if isinstance(node, list):
        return [s for item in node for s in _utterances(item)]
    return []


@functools.lru_cache(maxsize=4)
def load_corpus(data_dir: str | None = None) -> dict[str, dict[str, tuple[str, ...]]]:
    """language -> topic -> sorted distinct sentences, ambiguous sentences removed."""
    root = Path(data_dir) if data_dir else corpus_dir()
    if not root.is_dir():
        raise WeightspaceError(f"chatterbot corpus directory {root} does not exist.")
    raw: dict[str, dict[str, set[str]]] = {}
    for path in sorted(root.glob("*/*.yml")):
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise WeightspaceError(f"corpus file {path} is not readable YAML ({e.__class__.__name__}); reinstall chatterbot-corpus.") from None
        sentences = set(_utterances(doc.get("conversations") if isinstance(doc, dict) else None))
        if sentences:
            raw.setdefault(path.parent.name, {}).setdefault(topic_name(path.stem), set()).update(sentences)
    if not raw:
        raise WeightspaceError(f"no corpus YAML files found under {root}.")
    out = {}
    for lang, topics in raw.items():
        seen = Counter(s for sents in topics.values() for s in sents)
        out[lang] = {t: tuple(sorted(s for s in sents if seen[s] == 1)) for t, sents in sorted(topics.items())}
    return dict(sorted(out.items()))


def unk_rates(corpus: dict[str, dict[str, tuple[str, ...]]], tokenizer) -> dict[str, float]:
    """Fraction of each language's word pieces that the tokenizer maps to [UNK]."""
    rates = {}
    for lang, topics in corpus.items():
        sents = [s for ss in topics.values() for s in ss]
        ids = tokenizer(sents, add_special_tokens=False)["input_ids"] if sents else []
        total = sum(len(i) for i in ids)
        unk = sum(t == tokenizer.unk_token_id for i in ids for t in i)
        rates[lang] = unk / total if total else 1.0
    return rates


def script_of(sentences) -> str:
    """The writing system most letters of these sentences use ("LATIN", "CYRILLIC", ...), read
    from Unicode character names so no table of languages is needed."""
    counts: Counter[str] = Counter()
    for s in sentences:
        for ch in s:
            if ch.isalpha():
                counts[unicodedata.name(ch, "UNKNOWN").split(" ")[0]] += 1
    return counts.most_common(1)[0][0] if counts else "UNKNOWN"
