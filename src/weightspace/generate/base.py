"""The Generator contract and the data it is fitted on.

A generator maps a condition vector (from a ConditionEncoder) to weights. Every generator
works in the latent of a WeightCodec (normalised weights -> PCA / autoencoder / identity), so
what it emits always decodes to a state dict valid for the WeightSpec. Subclasses implement:

    _fit(zoo, progress)                               build self.codec and the model
    _sample_latent(cond (B, C), g, deterministic)     -> (B, k) latents
    _model_state() / _load_model_state(state)         the model's tensors

and the base class owns the codec, the condition encoder and persistence: a generator
directory holds ``generator.safetensors`` (all tensors), ``config.json`` (class name, version,
resolved config, weight space, codec and encoder config) and ``card.json``; it is written into a
temporary sibling and renamed into place, so no half-written generator ever exists.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import torch

import weightspace
from weightspace.card import make_card
from weightspace.config import from_mapping, to_dict, validate
from weightspace.encode.codec import WeightCodec, substate
from weightspace.encode.condition import ConditionEncoder, condition_encoder_from
from weightspace.errors import WeightspaceError
from weightspace.training_loop import Checkpoint
from weightspace.io import atomic_dir, atomic_write_json, file_sha256, json_sha256, load_safetensors, read_json, save_safetensors
from weightspace.nets import arch_from_dict
from weightspace.nets.base import Architecture
from weightspace.spec import WeightSpec
from weightspace.tasks.base import Task

FORMAT = "weightspace-generator"
FORMAT_VERSION = 1
TENSORS_FILE = "generator.safetensors"

Progress = Callable[..., None]  # progress(done, total, **info); called on the main process only


@dataclass
class ZooData:
    """What a generator is fitted on (built from a Zoo by ``zoo_data.from_zoo``)."""

    spec: WeightSpec
    arch: Architecture
    params: dict[str, torch.Tensor]  # stacked (M, ...), aligned / canonicalised if asked
    conditions: torch.Tensor  # (M, C): each member's task encoded by ``encoder``
    tasks: list[Task] | None  # per member, for end-to-end training and fresh support draws
    encoder: ConditionEncoder | None = None  # produced ``conditions``; saved inside the generator
    aligned: bool = False  # members were permutation-aligned before fitting
    source: dict = dataclasses.field(default_factory=dict)  # zoo path, init, etc. (for the card)

    def __len__(self) -> int:
        return self.conditions.shape[0]


class Generator:
    name: ClassVar[str]  # registry name, e.g. "pca-gaussian" (written by @register, generate.registry)
    paper: ClassVar[str]  # the reference it follows (likewise)
    Config: ClassVar[type]  # dataclass of options (weightspace.config.option fields)
    wants_alignment: ClassVar[bool] = True  # models weights directly, so permutation noise hurts
    trains_encoder: ClassVar[bool] = True  # can train a trainable (DeepSets) encoder jointly
    data_parallel: ClassVar[bool] = False  # its training loop can share each step over torchrun processes

    def __init__(self, config: Any = None, **overrides: Any):
        cfg = config if config is not None else self.Config()
        if overrides:
            cfg = from_mapping(self.Config, {**to_dict(cfg), **overrides}, where=f"{self.name} options")
        self.config = validate(cfg, where=f"{self.name} options")
        self.codec: WeightCodec | None = None
        self.encoder: ConditionEncoder | None = None
        self.spec: WeightSpec | None = None
        self.arch: Architecture | None = None
        self.fit_info: dict = {}
        self.checkpoint = Checkpoint()  # disabled unless fit() is given one

    # ----- fitting ---------------------------------------------------------------------------
    def fit(self, zoo: ZooData, progress: Progress | None = None, checkpoint: Checkpoint | None = None) -> "Generator":
        """Fit on ``zoo``. With a ``checkpoint``, training loops snapshot their state every few steps
        and a rerun with the same checkpoint continues from the latest snapshot."""
        if len(zoo) < 2:
            raise WeightspaceError(f"a generator needs at least 2 zoo members to fit, got {len(zoo)}.")
        zoo.spec.validate(zoo.params, stacked=True, where="zoo weights")
        if zoo.encoder is not None and zoo.encoder.trainable and not self.trains_encoder:
            raise WeightspaceError(
                f"the {self.name} generator fits in closed form and cannot train the {zoo.encoder.name} encoder; "
                "use the support-probe or descriptor condition."
            )
        self.spec, self.arch, self.encoder = zoo.spec, zoo.arch, zoo.encoder
        self.checkpoint = checkpoint if checkpoint is not None else Checkpoint()
        self._fit(zoo, progress)
        self.fit_info.update({"members": len(zoo), "aligned": zoo.aligned, **zoo.source})
        return self

    def _fit(self, zoo: ZooData, progress: Progress | None) -> None:
        raise NotImplementedError

    # ----- sampling --------------------------------------------------------------------------
    def encode_condition(self, task_or_support: Task | tuple[torch.Tensor, torch.Tensor] | str) -> torch.Tensor:
        """(C,) condition of a task, a task id (descriptor encoders) or an (x, y) support set."""
        if self.encoder is None:
            raise WeightspaceError(f"the {self.name} generator has no condition encoder; fit it on a zoo first.")
        return self.encoder.encode(task_or_support)

    @torch.no_grad()
    def sample(self, condition: torch.Tensor, n: int = 1, seed: int = 0, deterministic: bool = False) -> dict[str, torch.Tensor]:
        """n members (stacked) for a (C,) condition; for (B, C) conditions, B * n members, condition-major.

        ``deterministic=True`` returns the generator's central output (the predicted mean, or the
        sample from zero noise) for every draw.
        """
        if self.codec is None:
            raise WeightspaceError(f"the {self.name} generator is not fitted; fit it on a zoo or load a saved one.")
        cond = torch.as_tensor(condition, dtype=torch.float32)
        cond = cond[None] if cond.dim() == 1 else cond
        if cond.dim() != 2 or cond.shape[1] != self.condition_dim:
            raise WeightspaceError(
                f"condition has shape {tuple(torch.as_tensor(condition).shape)}, the {self.name} generator expects "
                f"({self.condition_dim},) or (B, {self.condition_dim})."
            )
        if n < 1:
            raise WeightspaceError(f"number of samples must be at least 1, got {n}.")
        g = torch.Generator().manual_seed(int(seed))
        where = f"weights from the {self.name} generator"
        if deterministic:
            # The central output once per condition, then copied: identical draws by construction
            # (a batched GEMM need not round every row alike) and n times cheaper.
            central = self.codec.checked(self._decode(self._sample_latent(cond, g, True), cond), where)
            return central if n == 1 else {k: v.repeat_interleave(n, dim=0) for k, v in central.items()}
        cond = cond.repeat_interleave(n, dim=0)
        return self.codec.checked(self._decode(self._sample_latent(cond, g, False), cond), where)

    def _sample_latent(self, cond: torch.Tensor, g: torch.Generator, deterministic: bool) -> torch.Tensor:
        raise NotImplementedError

    def _decode(self, z: torch.Tensor, cond: torch.Tensor) -> dict[str, torch.Tensor]:
        """Stacked weights from latents ``z`` drawn for conditions ``cond`` (differentiable); a
        generator that writes some tensors from the condition itself overrides it."""
        return self.codec.decode(z)

    @property
    def condition_dim(self) -> int:
        return self.encoder.dim if self.encoder is not None else 0

    # ----- persistence -----------------------------------------------------------------------
    def _model_state(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _load_model_state(self, state: Mapping[str, torch.Tensor]) -> None:
        raise NotImplementedError

    def describe(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "class": type(self).__name__,
            "name": self.name,
            "paper": self.paper,
            "version": weightspace.__version__,
            "config": to_dict(self.config),
            "arch": self.arch.to_dict(),
            "spec": self.spec.to_dict(),
            "codec": self.codec.config(),
            "encoder": self.encoder.config() if self.encoder is not None else None,
            "fit_info": self.fit_info,
        }

    def save(self, path: str | Path, card: Mapping | None = None) -> None:
        if self.codec is None:
            raise WeightspaceError(f"the {self.name} generator is not fitted; nothing to save.")
        final = Path(path)
        if final.exists() and (not final.is_dir() or (any(final.iterdir()) and not (final / "config.json").exists())):
            raise WeightspaceError(f"{final} exists and is not a generator directory; choose another --out.")
        tensors = {f"codec.{k}": v for k, v in self.codec.state().items()}
        if self.encoder is not None:
            tensors.update({f"encoder.{k}": v for k, v in self.encoder.state().items()})
        tensors.update({f"model.{k}": v for k, v in self._model_state().items()})
        with atomic_dir(final) as tmp:
            # Each file vouches for the other: the tensors carry the config's hash, the config the
            # tensors' hash, so an edited config.json or a damaged tensor file is refused on load.
            config = self.describe()
            save_safetensors(tmp / TENSORS_FILE, {k: v.float().contiguous() for k, v in tensors.items()},
                             metadata={"format": FORMAT, "name": self.name, "config_sha256": json_sha256(config)})
            atomic_write_json(tmp / "config.json", {**config, "tensors_sha256": file_sha256(tmp / TENSORS_FILE)})
            atomic_write_json(tmp / "card.json", dict(card) if card is not None else
                              make_card("generator", to_dict(self.config), getattr(self.config, "seed", None),
                                        generator=self.name, paper=self.paper, fit_info=self.fit_info))

    @classmethod
    def load(cls, path: str | Path) -> "Generator":
        meta = read_generator_config(path)
        if meta["name"] != cls.name:
            raise WeightspaceError(f"{path} holds a {meta['name']} generator, not {cls.name}.")
        tensors, tensor_meta = load_safetensors(Path(path) / TENSORS_FILE)
        verify_generator_files(path, meta, tensor_meta)
        try:
            gen = cls(from_mapping(cls.Config, meta["config"], where=f"{path}/config.json"))
            gen.arch = arch_from_dict(meta["arch"])
            gen.spec = WeightSpec.from_dict(meta["spec"])
            gen.codec = WeightCodec.from_state(gen.spec, meta["codec"], substate(tensors, "codec."))
            if meta.get("encoder") is not None:
                gen.encoder = condition_encoder_from(meta["encoder"], substate(tensors, "encoder."))
            gen.fit_info = dict(meta.get("fit_info", {}))
            gen._load_model_state(substate(tensors, "model."))
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise WeightspaceError(
                f"{path} is not a complete generator: {type(e).__name__} while rebuilding it ({e}); re-run `weightspace train`."
            ) from None
        return gen


def verify_generator_files(path: str | Path, meta: dict, tensor_meta: Mapping[str, str]) -> None:
    """The cross-checks ``save`` wrote (directories saved before them carry none and load as they
    are), and that the architecture's weight space is the recorded spec."""
    try:
        arch_spec = arch_from_dict(meta["arch"]).spec().to_dict()
    except (KeyError, TypeError, ValueError, WeightspaceError) as e:
        raise WeightspaceError(f"{path}/config.json names an architecture that cannot be built ({e}).") from None
    if arch_spec != meta["spec"]:
        raise WeightspaceError(f"{path}/config.json: its architecture's weight space is not the recorded spec "
                               "(was config.json edited?); re-run `weightspace train`.")
    recorded = meta.get("tensors_sha256")
    if recorded is not None and file_sha256(Path(path) / TENSORS_FILE) != recorded:
        raise WeightspaceError(f"{path}/{TENSORS_FILE} differs from the file config.json was saved with (damaged?); "
                               "re-run `weightspace train`.")
    config_sha = tensor_meta.get("config_sha256")
    if config_sha is not None and json_sha256({k: v for k, v in meta.items() if k != "tensors_sha256"}) != config_sha:
        raise WeightspaceError(f"{path}/config.json was changed after the generator was saved, so it no longer "
                               "describes the saved tensors; re-run `weightspace train` instead of editing it.")


def read_generator_config(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_dir():
        raise WeightspaceError(f"{p} is not a generator directory (it should hold config.json and {TENSORS_FILE}).")
    cfg = p / "config.json"
    if not cfg.is_file():
        raise WeightspaceError(f"{p} has no config.json, so it is not a generator written by `weightspace train`.")
    meta = read_json(cfg, f"{cfg} is not valid JSON (truncated or corrupt); re-run `weightspace train`.")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise WeightspaceError(f"{cfg} does not describe a weightspace generator.")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise WeightspaceError(f"{p} was written by a newer weightspace (format {meta['format_version']}); upgrade to read it.")
    for key in ("name", "config", "arch", "spec", "codec"):
        if key not in meta:
            raise WeightspaceError(f"{cfg} lacks the {key!r} entry (corrupt?); re-run `weightspace train`.")
    return meta
