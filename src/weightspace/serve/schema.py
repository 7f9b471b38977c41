"""The JSON the server reads and writes (pydantic models; FastAPI publishes them at /openapi.json).

The schema checks structure only: types, required fields, unknown fields (refused, so a typo
is not silently ignored), static bounds. What depends on the loaded generator — input shape,
label range, which condition it takes, the server's size limits — is checked by the service,
which answers with the same one-sentence error body.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_SEED = 2**63 - 1


class SupportSet(BaseModel):
    """Labelled examples: numeric inputs ``x``, or raw sentences ``texts`` (sentence-model generators)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    x: list[Any] | None = Field(None, description="Inputs: N rows, each nested to the generator's input shape "
                                                  "(or flat rows of the same number of values).",
                                examples=[[[0.0, 0.5, 1.0]]])
    texts: list[str] | None = Field(None, description="Raw sentences, one per example, for generators of LoRA adapters "
                                                      "of a sentence model; the server tokenizes and encodes them "
                                                      "(GET /v1/metadata: limits.max_sentences, max_sentence_chars).",
                                    examples=[["I love pasta", "The film was too long"]])
    y: list[int] = Field(description="One whole class index per input, in 0..classes-1.", examples=[[0]])

    @model_validator(mode="after")
    def _inputs_or_texts(self) -> "SupportSet":
        if (self.x is None) == (self.texts is None):
            raise ValueError("give exactly one of x (numeric inputs) or texts (raw sentences)")
        return self


# The request fields that say what the weights are for, and the one combination allowed.
CONDITION_FIELDS = ("support", "descriptor", "description", "task")
TOGETHER = ("support", "description")  # generators conditioned on both (text-both)


class GenerateRequest(BaseModel):
    """Exactly one of ``support``, ``descriptor``, ``description`` or ``task`` says what the weights
    are for; a generator conditioned on both a support set and a description takes the two together."""

    model_config = ConfigDict(extra="forbid", strict=True)

    support: SupportSet | None = Field(None, description="Labelled examples of the task (support-set generators, "
                                                         "and with a description for text-both generators).")
    descriptor: list[float] | None = Field(None, min_length=1, max_length=1024,
                                           description="The task's numeric descriptor, e.g. [angle_deg] (descriptor generators).")
    description: str | None = Field(None, min_length=1, max_length=2000,
                                    description="A plain-text sentence describing the task (generators trained with a "
                                                "text condition: text-description alone, text-both with support).")
    task: str | None = Field(None, min_length=1, max_length=200,
                             description="A task id of the generator's own task family, as `weightspace generate --task`.")
    n: int = Field(1, ge=1, description="Number of models.")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Sampling seed; equal requests give equal weights.")
    best_of: int = Field(1, ge=1, description="Draw n * best_of candidates and keep the n with the lowest "
                                              "support-set loss (needs a support set or a task).")
    deterministic: bool = Field(False, description="The generator's central output instead of a random draw.")
    format: Literal["safetensors", "peft"] = Field(
        "safetensors", description="safetensors: one file (a state dict for n = 1, else tensors stacked on a leading "
                                   "axis); peft: a zip of PEFT adapter folders adapter-0/, adapter-1/, ... "
                                   "(LoRA generators only).")

    @model_validator(mode="after")
    def _one_condition(self) -> "GenerateRequest":
        given = self.condition_fields
        if len(given) != 1 and given != TOGETHER:
            what = f"got {' and '.join(given)}" if given else "got none"
            raise ValueError(f"give exactly one of support, descriptor, description or task, or support with "
                             f"description ({what})")
        return self

    @property
    def condition_fields(self) -> tuple[str, ...]:
        return tuple(k for k in CONDITION_FIELDS if getattr(self, k) is not None)

    @property
    def condition_kind(self) -> str:
        """support | descriptor | description | task | support+description."""
        return "+".join(self.condition_fields)


class ErrorBody(BaseModel):
    error: str = Field(description="One sentence: what is wrong and what to do.")


class WeightSpaceInfo(BaseModel):
    arch: dict = Field(description="The architecture (weightspace.nets) the weights are for.")
    tensors: dict[str, list[int]] = Field(description="Tensor name -> shape, in the weight space's order.")
    numel: int = Field(description="Numbers per model.")
    lora: bool = Field(description="True when the weights are a LoRA set (format=peft is available).")


class Metadata(BaseModel):
    generator: str
    paper: str
    weight_space: WeightSpaceInfo
    condition_kind: str | None = Field(description="support, descriptor or text: what the generator is conditioned on.")
    condition_encoder: str | None
    accepts: list[list[str]] = Field(description="The request fields the generator can be asked with, each list one "
                                                 "request (e.g. [[\"support\", \"description\"], [\"task\"]]).")
    reads_sentences: bool = Field(description="True when support.texts (raw sentences) is accepted.")
    input_shape: list[int] | None
    classes: int | None
    version: str = Field(description="weightspace version serving the generator.")
    generator_version: str | None = Field(description="weightspace version that wrote the generator.")
    formats: list[str]
    limits: dict[str, int | float] = Field(description="The server's request limits (bytes, seconds, counts).")
    card: dict


class Health(BaseModel):
    status: Literal["ok"]
    generator: str
