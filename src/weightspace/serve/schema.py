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
    model_config = ConfigDict(extra="forbid", strict=True)

    x: list[Any] = Field(description="Inputs: N rows, each nested to the generator's input shape "
                                     "(or flat rows of the same number of values).",
                         examples=[[[0.0, 0.5, 1.0]]])
    y: list[int] = Field(description="One whole class index per input, in 0..classes-1.", examples=[[0]])


class GenerateRequest(BaseModel):
    """Exactly one of ``support``, ``descriptor``, ``description`` or ``task`` says what the weights are for."""

    model_config = ConfigDict(extra="forbid", strict=True)

    support: SupportSet | None = Field(None, description="Labelled examples of the task (support-set generators).")
    descriptor: list[float] | None = Field(None, min_length=1, max_length=1024,
                                           description="The task's numeric descriptor, e.g. [angle_deg] (descriptor generators).")
    description: str | None = Field(None, min_length=1, max_length=2000,
                                    description="A sentence describing the task (only generators trained with a text condition).")
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
        given = [k for k in ("support", "descriptor", "description", "task") if getattr(self, k) is not None]
        if len(given) != 1:
            what = f"got {' and '.join(given)}" if given else "got none"
            raise ValueError(f"give exactly one of support, descriptor, description or task ({what})")
        return self

    @property
    def condition_kind(self) -> str:
        return next(k for k in ("support", "descriptor", "description", "task") if getattr(self, k) is not None)


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
