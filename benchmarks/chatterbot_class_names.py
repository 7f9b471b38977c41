"""How much of a chatterbot task its class names carry on frozen MiniLM embeddings (no adapter).

    python benchmarks/chatterbot_class_names.py

The question behind a description head for the chatterbot family (#17): the WordNet family's
description carries its task (zero-shot cosine 0.71 there, benchmarks/description_prototypes.py).
A chatterbot task is "A vs B" (two topics, a topic vs the rest, two languages), so the natural
zero-shot head is the direction e("sentences about B") - e("sentences about A") between the two
classes' phrases. Scored on the 16 held-out tasks' test sets, with the threshold at 0 and with
the threshold at the midpoint of the two classes' mean score on the 20 support sentences.
"""

from __future__ import annotations

import statistics

import torch


def main() -> None:
    from weightspace.encode.text_conditions import embed_texts
    from weightspace.tasks import make_family
    from weightspace.tasks.chatterbot import language_words, topic_words

    torch.set_num_threads(1)
    family = make_family("chatterbot", seed=0)
    by_kind: dict[str, list[tuple[float, float]]] = {}
    for task_id in family.heldout_task_ids()[:16]:
        task = family.task(task_id)

        def phrase(name: str) -> str:
            if task.kind == "lang":
                return f"{language_words(name)} sentences"
            return "sentences about other topics" if name == "other topics" else f"sentences about {topic_words(name)}"

        e0, e1 = embed_texts([phrase(n) for n in task.class_names])
        direction = e1 - e0
        test, support = embed_texts(list(task.texts_test)) @ direction, embed_texts(list(task.support_texts)) @ direction
        middle = float((support[task.support_y == 1].mean() + support[task.support_y == 0].mean()) / 2)
        zero = float(((test > 0).long() == task.y_test).float().mean())
        tuned = float(((test > middle).long() == task.y_test).float().mean())
        by_kind.setdefault(task.kind, []).append((zero, tuned))
        print(f"  {task_id:34s} {zero:.3f}  {tuned:.3f}")
    every = [s for scores in by_kind.values() for s in scores]
    print(f"class-name direction, threshold 0: {statistics.fmean(a for a, _ in every):.3f}; "
          f"threshold from the support set: {statistics.fmean(b for _, b in every):.3f} ({len(every)} tasks)")
    for kind, scores in sorted(by_kind.items()):
        print(f"  {kind}: {statistics.fmean(a for a, _ in scores):.3f} / {statistics.fmean(b for _, b in scores):.3f}")


if __name__ == "__main__":
    main()
