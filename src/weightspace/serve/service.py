"""The work behind POST /v1/generate: check a request against the loaded generator, sample, encode.

Concurrency: the generator is loaded once per generation thread (``replicas``). A request
borrows one replica for its whole run, so no two threads ever touch the same modules: the
support-probe encoder runs a shared ``nn.Module`` through ``torch.func.functional_call``, which
swaps that module's parameters in place and gives wrong codes when two threads interleave
(measured). Randomness is per request: ``Generator.sample`` seeds its own ``torch.Generator``
from the request's seed, so equal requests give equal bytes under any load.
"""

from __future__ import annotations

import contextlib
import json
import queue
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

import weightspace
from weightspace.encode.condition import check_support
from weightspace.errors import WeightspaceError
from weightspace.generate import generate_weights, load_generator
from weightspace.generate.base import Generator, read_generator_config
from weightspace.generate.sampling import select, weights_metadata
from weightspace.serve.formats import (
    SAFETENSORS_MEDIA, ZIP_MEDIA, is_lora, peft_export_available, peft_zip_body, safetensors_body,
)
from weightspace.serve.limits import ServeSettings
from weightspace.serve.schema import CONDITION_FIELDS, GenerateRequest, SupportSet
from weightspace.serve.sentences import (
    BASE_MODEL_LOCK, accepted_fields, condition, sentence_inputs,
)

# How to ask for each encoder kind, and what each request field is.
_SEND = {"support": "a support set (support)", "descriptor": "a task descriptor (descriptor)",
         "text": "a task description (description)"}
_FIELD = {"support": "a support set (support)", "descriptor": "a task descriptor (descriptor)",
          "description": "a task description (description)"}


class ServeError(Exception):
    """A request the server refuses: an HTTP status and one sentence."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Output:
    body: bytes
    media_type: str
    filename: str
    headers: dict[str, str] = field(default_factory=dict)


class WeightService:
    def __init__(self, generator_dir: str | Path, settings: ServeSettings):
        self.path = Path(generator_dir)
        self.settings = settings
        self.config = read_generator_config(self.path)  # clear errors for a missing or foreign directory
        first = load_generator(self.path)
        if first.arch is None or first.spec is None:
            raise WeightspaceError(f"{self.path} holds an unfitted generator; re-run `weightspace train`.")
        self.replicas: queue.SimpleQueue[Generator] = queue.SimpleQueue()
        self.replicas.put(first)
        for _ in range(int(settings.threads) - 1):
            self.replicas.put(load_generator(self.path))
        self.name, self.paper, self.arch, self.spec = first.name, first.paper, first.arch, first.spec
        self.encoder_kind = first.encoder.kind if first.encoder is not None else None
        self.encoder_name = first.encoder.name if first.encoder is not None else None
        self.accepts = accepted_fields(first.encoder)  # the request fields the condition needs, together
        self.family = first.fit_info.get("family")
        self.lora = is_lora(self.arch)
        self.sentences = self.lora  # a LoRA set of the frozen MiniLM reads sentences: support.texts become its inputs
        self.card = _read_card(self.path)

    # ----- description -----------------------------------------------------------------------
    def formats(self) -> list[str]:
        return ["safetensors", "peft"] if self.lora and peft_export_available() else ["safetensors"]

    def metadata(self) -> dict:
        s = self.settings
        shape = self.arch.input_shape
        return {
            "generator": self.name,
            "paper": self.paper,
            "weight_space": {"arch": self.arch.to_dict(), "tensors": {t.name: list(t.shape) for t in self.spec.tensors},
                             "numel": self.spec.numel, "lora": self.lora},
            "condition_kind": self.encoder_kind,
            "condition_encoder": self.encoder_name,
            "accepts": [[f for f in CONDITION_FIELDS if f in self.accepts]] * bool(self.accepts)
                       + [["task"]] * (self.family is not None),
            "reads_sentences": self.sentences,
            "input_shape": list(shape) if shape is not None else None,
            "classes": self.arch.n_classes,
            "version": weightspace.__version__,
            "generator_version": self.config.get("version"),
            "formats": self.formats(),
            "limits": {"max_request_bytes": s.max_request_bytes, "timeout_s": s.timeout_s, "max_n": s.max_n,
                       "max_best_of": s.max_best_of, "max_candidates": s.max_candidates, "max_support": s.max_support,
                       "max_sentences": s.max_sentences, "max_sentence_chars": s.max_sentence_chars},
            "card": self.card,
        }

    # ----- one request -----------------------------------------------------------------------
    def check_limits(self, req: GenerateRequest) -> None:
        """Cheap checks, run before a request is queued for a thread."""
        s = self.settings
        if req.n > s.max_n:
            raise ServeError(422, f"n={req.n} is more models than this server makes per request (at most {s.max_n}).")
        if req.best_of > s.max_best_of:
            raise ServeError(422, f"best_of={req.best_of} is above this server's limit of {s.max_best_of}.")
        draws = req.n if req.deterministic else req.n * req.best_of
        if draws > s.max_candidates:
            raise ServeError(422, f"n * best_of = {draws} candidates is above this server's limit of "
                                  f"{s.max_candidates}; ask for fewer models or a smaller best_of.")
        if req.format == "peft" and "peft" not in self.formats():
            why = "this generator does not produce LoRA adapters" if not self.lora else \
                "this server cannot export PEFT adapters (weightspace.export.peft is not installed)"
            raise ServeError(422, f"{why}; ask for format safetensors.")
        kind = req.condition_kind
        given = frozenset(req.condition_fields)
        if kind != "task" and given != self.accepts:
            raise ServeError(422, self._wrong_condition(req.condition_fields))
        if kind == "task" and self.family is None:
            raise ServeError(422, "this generator records no task family, so task ids cannot be resolved; "
                                  f"send {_SEND.get(self.encoder_kind or '', 'a condition')} instead.")
        if kind in ("descriptor", "description") and req.best_of > 1 and not req.deterministic:
            raise ServeError(422, f"best_of ranks candidates on a support set, and a {kind} request has none; "
                                  "use best_of=1 or send a task id, whose support set is used.")
        if req.support is not None and len(req.support.y) > s.max_support:
            raise ServeError(422, f"the support set has {len(req.support.y)} examples, above this server's limit "
                                  f"of {s.max_support}.")
        if req.support is not None and req.support.texts is not None:
            self._check_texts(req.support.texts, req.support.y)
        if req.description is not None and not req.description.strip():
            raise ServeError(422, "the description is blank; give a short sentence describing the task.")

    def _check_texts(self, texts: list[str], y: list[int]) -> None:
        """Raw sentences, checked before any tokenizing or forward pass."""
        s = self.settings
        if not self.sentences:
            raise ServeError(422, f"this generator's {self.arch.name} networks do not read sentences, so support.texts "
                                  "cannot be used; send numeric inputs as support.x.")
        if not texts:
            raise ServeError(422, "the support set is empty; give at least one labelled sentence per class.")
        if len(texts) > s.max_sentences:
            raise ServeError(422, f"support.texts has {len(texts)} sentences, above this server's limit of "
                                  f"{s.max_sentences}.")
        if len(y) != len(texts):
            raise ServeError(422, f"support.texts has {len(texts)} sentences but support.y has {len(y)} labels; "
                                  "give one label per sentence.")
        for i, text in enumerate(texts):
            if not text.strip():
                raise ServeError(422, f"support.texts[{i}] is blank; every example needs some text.")
            if len(text) > s.max_sentence_chars:
                raise ServeError(422, f"support.texts[{i}] has {len(text)} characters, above this server's limit of "
                                      f"{s.max_sentence_chars}.")
        classes = self.arch.n_classes
        if min(y) < 0 or max(y) >= classes:
            raise ServeError(422, f"support.y: labels must lie in 0..{classes - 1}, got {min(y)}..{max(y)}.")

    def generate(self, req: GenerateRequest) -> Output:
        """Runs in a generation thread with an exclusive replica of the generator."""
        self.check_limits(req)
        with self._replica() as gen, (BASE_MODEL_LOCK if self.sentences else contextlib.nullcontext()):
            stacked, accuracy, passed = self._sample(gen, req)
        source = f"http {req.condition_kind}" + (f" {req.task}" if req.task else "")
        headers = {"X-Weightspace-Generator": self.name, "X-Weightspace-Seed": str(req.seed)}
        if accuracy is not None:
            headers["X-Weightspace-Support-Accuracy"] = ",".join(f"{a:.4f}" for a in accuracy)
            headers["X-Weightspace-Candidates-Passed"] = passed
        if req.format == "peft":
            card = {"kind": "peft-adapter", "generator": self.name, "paper": self.paper, "seed": req.seed,
                    "source": source, "support_accuracy": accuracy, "generator_command": self.card.get("command")}
            return Output(peft_zip_body(self.arch, stacked, card), ZIP_MEDIA, "adapters.zip", headers)
        meta = weights_metadata(self.name, req.n, req.seed, self.arch, source, accuracy)
        return Output(safetensors_body(stacked, meta), SAFETENSORS_MEDIA, "weights.safetensors", headers)

    @contextlib.contextmanager
    def _replica(self) -> Iterator[Generator]:
        gen = self.replicas.get()  # as many replicas as threads, so this never waits
        try:
            yield gen
        finally:
            self.replicas.put(gen)

    def _sample(self, gen: Generator, req: GenerateRequest):
        """(stacked weights (n, ...), support accuracies or None, 'passed/drawn' or '')."""
        kind = req.condition_kind
        if req.support is not None and (req.support.texts is not None or req.description is not None):
            # raw sentences, or a support set with a description: the condition is built here
            if req.support.texts is not None:
                x, y = sentence_inputs(self.arch, req.support.texts), torch.tensor(req.support.y, dtype=torch.long)
            else:
                x, y = support_arrays(req.support)
            x, y = _checked(gen, x, y)
            cond = condition(gen.encoder, x, y, req.description)
            out = select(gen, cond, x, y, req.n, req.seed, req.best_of, req.deterministic, larger="a larger best_of")
            return out.params, [float(a) for a in out.support_accuracy], f"{out.passed}/{out.candidates}"
        if kind in ("support", "task"):
            target = self._task(req.task) if kind == "task" else support_arrays(req.support)
            out = generate_weights(gen, target, n=req.n, seed=req.seed, best_of=req.best_of,
                                   deterministic=req.deterministic)
            return out.params, [float(a) for a in out.support_accuracy], f"{out.passed}/{out.candidates}"
        if kind == "descriptor":
            cond = descriptor_condition(gen.encoder, req.descriptor)
        else:
            cond = gen.encode_condition(req.description)
        return gen.sample(cond, req.n, seed=req.seed, deterministic=req.deterministic), None, ""

    def _task(self, task_id: str):
        from weightspace.tasks import family_from_dict

        family = family_from_dict(self.family)
        known = family.zoo_task_ids() + family.heldout_task_ids()
        if task_id not in known:
            raise ServeError(422, f"task {task_id!r} is not a task of the generator's {family.name} family; "
                                  f"ids look like {known[0]!r} (GET /v1/metadata shows the card).")
        return family.task(task_id)

    def _wrong_condition(self, given: tuple[str, ...]) -> str:
        wants = self.accepts
        if self.encoder_kind is None or not wants:
            return "this generator has no condition encoder, so it cannot be conditioned on a task."
        if len(wants) > 1:
            return (f"this generator ({self.encoder_name}) is conditioned on both a support set and a task description; "
                    "send support and description together.")
        (want,) = wants
        if len(given) > 1:
            others = " and ".join(f for f in given if f != want)
            return f"this generator is conditioned on {_FIELD[want]} alone; send {want} without {others}."
        if given == ("description",):
            return (f"this generator was not trained with a text condition, so it cannot use a description; "
                    f"send {_SEND.get(self.encoder_kind, self.encoder_kind)} instead.")
        return (f"this generator is conditioned on {_FIELD[want]}, not on {_FIELD[given[0]]}; send that instead.")


def _checked(gen, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) validated against the architecture where it has a fixed input shape; inputs without one
    are token ids (LoRAMiniLM's ``inputs="ids"``), which the condition encoder checks."""
    shape = gen.arch.input_shape
    if shape is not None:
        return check_support(x, y, shape, gen.arch.n_classes)
    return (x.round().long() if torch.is_floating_point(x) else x), y.long()


def support_arrays(support: SupportSet) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain numeric tensors from the request's nested lists; shapes and ranges are checked later by
    ``check_support`` against the architecture."""
    try:
        x = np.asarray(support.x)
    except (ValueError, TypeError):
        raise ServeError(422, "support.x must be a rectangular array of numbers (every row the same shape).") from None
    if x.dtype.kind not in "iuf":
        raise ServeError(422, "support.x must hold only numbers (no strings, booleans, nulls or ragged rows).")
    if len(support.y) == 0 or x.size == 0:
        raise ServeError(422, "the support set is empty; give at least one labelled example per class.")
    if x.ndim < 2:
        raise ServeError(422, f"support.x must hold one row per example, got an array of shape {tuple(x.shape)}.")
    y = np.asarray(support.y)
    if y.dtype.kind not in "iu":  # Python ints beyond int64 come out as objects
        raise ServeError(422, "support.y must hold class indices that fit in 64 bits.")
    with np.errstate(over="ignore"):  # values beyond float32 become inf, which check_support refuses
        x32 = x.astype(np.float32)
    return torch.from_numpy(x32), torch.from_numpy(y.astype(np.int64))


def descriptor_condition(encoder, values: list[float]) -> torch.Tensor:
    """The condition of a raw task descriptor (e.g. [angle_deg])."""
    if not all(np.isfinite(values)):
        raise ServeError(422, "descriptor values must be finite numbers (no NaN or infinity).")
    encode = getattr(encoder, "encode_descriptor", None)  # any descriptor, where the encoder can featurise one
    if encode is not None:
        return encode(values)
    family = encoder.family
    if family is None:
        raise ServeError(422, "this generator's descriptor encoder records no task family, so descriptors cannot be encoded.")
    # Otherwise the family featurises task ids only: accept the descriptor of one of its tasks.
    for task_id in family.zoo_task_ids() + family.heldout_task_ids():
        known = family.descriptor(task_id)
        if len(known) == len(values) and np.allclose(known, values, rtol=0, atol=1e-6):
            return encoder.encode(task_id)
    examples = ", ".join(str(list(family.descriptor(t))) for t in family.heldout_task_ids()[:3])
    raise ServeError(422, f"descriptor {list(values)} is not one of the {family.name} family's tasks, and this "
                          f"version encodes only those (held-out ones include {examples}).")


def _read_card(path: Path) -> dict:
    try:
        card = json.loads((path / "card.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return card if isinstance(card, dict) else {}
