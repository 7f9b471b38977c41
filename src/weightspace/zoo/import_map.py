r"""Key renames and transposes that bring checkpoints from other frameworks into a weight space.

A rules file (YAML or JSON; ``weightspace zoo import --map RULES``, or the same text inline) holds
up to three sections, applied to every tensor of a checkpoint in this order:

```yaml
drop: ['^opt_state/']                      # regexes (searched): tensors to leave out
rename:                                    # regex -> replacement, applied in order, each to
  '^(?:params/)?Dense_(\d+)/kernel$': 'fc\1.weight'   # the result of the previous ones
  '^(?:params/)?Dense_(\d+)/bias$': 'fc\1.bias'
transpose: ['fc\d+\.weight']             # full-name regexes on the renamed keys: 2-D (in, out) -> (out, in)
# transpose: {'conv\d+\.weight': [3, 2, 0, 1]}   # or explicit axes (flax HWIO -> torch OIHW)
```

``rename`` patterns are searched (``re.sub``; anchor them with ``^...$``), replacements use
``\1`` group references. ``transpose`` patterns must match the whole renamed name. Every rule
must match at least one tensor of every checkpoint it is used on, and every mapped tensor must
be a tensor of the weight space with its shape: anything else is a mistake in the rules, reported
in one sentence naming the rule or the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from weightspace.errors import WeightspaceError
from weightspace.spec import WeightSpec

SECTIONS = ("drop", "rename", "transpose")


@dataclass(frozen=True)
class ImportMap:
    """Parsed rules; ``source`` says where they came from (for messages)."""

    rename: tuple[tuple[re.Pattern, str], ...] = ()
    transpose: tuple[tuple[re.Pattern, tuple[int, ...] | None], ...] = ()
    drop: tuple[re.Pattern, ...] = ()
    source: str = "import map"

    def to_dict(self) -> dict[str, Any]:
        """The rules as written (for cards)."""
        return {"drop": [p.pattern for p in self.drop],
                "rename": {p.pattern: r for p, r in self.rename},
                "transpose": {p.pattern: list(a) if a is not None else None for p, a in self.transpose}}


def load_import_map(text_or_path: str | Path) -> ImportMap:
    """Rules from a ``.yaml``/``.yml``/``.json`` file, or from YAML/JSON text given inline."""
    import yaml

    p = Path(str(text_or_path))
    try:
        is_file = p.suffix.lower() in (".yaml", ".yml", ".json") or p.is_file()
    except (OSError, ValueError):  # inline text too long or odd for a file name
        is_file = False
    if is_file:
        if not p.is_file():
            raise WeightspaceError(f"import map {p} does not exist; give a rules file or inline rules such as "
                                   "'{rename: {\"^Dense_(\\\\d+)/kernel$\": \"fc\\\\1.weight\"}}'.")
        text, source = p.read_text(), f"import map {p}"
    else:
        text, source = str(text_or_path), "inline import map"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightspaceError(f"{source} is not valid YAML/JSON ({first}).") from None
    return parse_import_map(data, source)


def parse_import_map(data: Any, source: str = "import map") -> ImportMap:
    """Rules from an already-parsed mapping (see the module docstring for the sections)."""
    if not isinstance(data, Mapping):
        raise WeightspaceError(f"{source} must be a mapping with sections {', '.join(SECTIONS)}, got {type(data).__name__}.")
    unknown = sorted(str(k) for k in data if k not in SECTIONS)
    if unknown:
        raise WeightspaceError(f"{source} has unknown section {unknown[0]!r}; the sections are {', '.join(SECTIONS)}.")
    rename_raw = data.get("rename") or {}
    if isinstance(rename_raw, list):  # a list of one-entry mappings or [pattern, replacement] pairs keeps order too
        pairs = []
        for item in rename_raw:
            if isinstance(item, Mapping) and len(item) == 1:
                pairs.append(next(iter(item.items())))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                pairs.append(tuple(item))
            else:
                raise WeightspaceError(f"{source}: rename entry {item!r} is not a pattern -> replacement pair.")
    elif isinstance(rename_raw, Mapping):
        pairs = list(rename_raw.items())
    else:
        raise WeightspaceError(f"{source}: rename must map regex patterns to replacements.")
    rename = []
    for pattern, repl in pairs:
        if not isinstance(repl, str):
            raise WeightspaceError(f"{source}: the replacement of rename rule {pattern!r} must be a string, got {repl!r}.")
        rename.append((_compile(pattern, source, "rename"), repl))
    transpose_raw = data.get("transpose") or []
    if isinstance(transpose_raw, str):
        transpose_raw = [transpose_raw]
    if isinstance(transpose_raw, Mapping):
        items = list(transpose_raw.items())
    elif isinstance(transpose_raw, list):
        items = [(t, None) for t in transpose_raw]
    else:
        raise WeightspaceError(f"{source}: transpose must be a list of patterns or a mapping pattern -> axes.")
    transpose = []
    for pattern, axes in items:
        if axes is not None:
            if not (isinstance(axes, list) and all(isinstance(a, int) and not isinstance(a, bool) for a in axes)
                    and sorted(axes) == list(range(len(axes)))):
                raise WeightspaceError(f"{source}: transpose axes of {pattern!r} must be a permutation of 0..n-1 "
                                       f"such as [1, 0] or [3, 2, 0, 1], got {axes!r}.")
            axes = tuple(axes)
        transpose.append((_compile(pattern, source, "transpose"), axes))
    drop_raw = data.get("drop") or []
    if isinstance(drop_raw, str):
        drop_raw = [drop_raw]
    if not isinstance(drop_raw, list):
        raise WeightspaceError(f"{source}: drop must be a list of patterns.")
    drop = tuple(_compile(p, source, "drop") for p in drop_raw)
    return ImportMap(tuple(rename), tuple(transpose), drop, source)


def _compile(pattern: Any, source: str, section: str) -> re.Pattern:
    if not isinstance(pattern, str):
        raise WeightspaceError(f"{source}: {section} pattern {pattern!r} must be a string (quote it in YAML).")
    try:
        return re.compile(pattern)
    except re.error as e:
        raise WeightspaceError(f"{source}: {section} pattern {pattern!r} is not a valid regular expression ({e}).") from None


def apply_import_map(params: Mapping[str, torch.Tensor], rules: ImportMap, spec: WeightSpec,
                     where: str = "checkpoint") -> dict[str, torch.Tensor]:
    """``params`` renamed and transposed by ``rules``, checked to name exactly ``spec``'s tensors and shapes."""
    for pattern in rules.drop:
        if not any(pattern.search(k) for k in params):
            raise WeightspaceError(f"{rules.source}: drop pattern {pattern.pattern!r} matches no tensor of {where} "
                                   f"(its tensors look like {_examples(params)}).")
    kept = {k: v for k, v in params.items() if not any(p.search(k) for p in rules.drop)}
    names = {k: k for k in kept}  # original -> current
    for pattern, repl in rules.rename:
        hit = False
        for original, current in names.items():
            try:
                new, n = pattern.subn(repl, current)
            except (re.error, IndexError) as e:
                raise WeightspaceError(f"{rules.source}: rename rule {pattern.pattern!r} -> {repl!r} has a bad "
                                       f"replacement ({e}).") from None
            if n:
                names[original], hit = new, True
        if not hit:
            raise WeightspaceError(f"{rules.source}: rename rule {pattern.pattern!r} matches no tensor of {where} "
                                   f"(its tensors look like {_examples(names.values())}).")
    by_new: dict[str, str] = {}
    for original, new in names.items():
        if new in by_new:
            raise WeightspaceError(f"{rules.source}: tensors {by_new[new]!r} and {original!r} of {where} are both renamed to {new!r}.")
        by_new[new] = original
    expected = {t.name: t.shape for t in spec.tensors}
    for new, original in by_new.items():
        if new not in expected:
            shown = f"{original!r} (renamed to {new!r})" if new != original else repr(original)
            raise WeightspaceError(f"{where}: tensor {shown} is not a tensor of the {spec.arch or 'zoo'} weight space "
                                   f"(its names look like {', '.join(spec.names[:4])}); add a rename or drop rule for it.")
    used = set()
    out = {}
    for new, original in by_new.items():
        value = kept[original]
        for pattern, axes in rules.transpose:
            if pattern.fullmatch(new):
                used.add(pattern.pattern)
                if axes is None:
                    if value.ndim != 2:
                        raise WeightspaceError(f"{where}: tensor {original!r} has {value.ndim} axes; a plain transpose rule "
                                               f"swaps 2; give its axes, e.g. transpose: {{{pattern.pattern!r}: [3, 2, 0, 1]}}.")
                    value = value.T
                elif len(axes) != value.ndim:
                    raise WeightspaceError(f"{where}: transpose axes {list(axes)} of {pattern.pattern!r} do not fit tensor "
                                           f"{original!r} with {value.ndim} axes.")
                else:
                    value = value.permute(*axes)
                break
        shape = tuple(value.shape)
        if shape != expected[new]:
            shown = f"{original!r} (mapped to {new!r})" if new != original else repr(original)
            hint = " (a transpose rule for it may be missing or wrong)" if sorted(shape) == sorted(expected[new]) else ""
            raise WeightspaceError(f"{where}: tensor {shown} has shape {shape} after mapping, the weight space expects "
                                   f"{expected[new]}{hint}.")
        out[new] = value.contiguous()
    for pattern, _ in rules.transpose:
        if pattern.pattern not in used:
            raise WeightspaceError(f"{rules.source}: transpose pattern {pattern.pattern!r} matches no renamed tensor of "
                                   f"{where} (they are {_examples(by_new)}).")
    missing = [n for n in spec.names if n not in out]
    if missing:
        raise WeightspaceError(f"{where}: after mapping, weight-space tensor {missing[0]!r} is missing"
                               f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}; no tensor of the file is renamed to it.")
    return out


def _examples(names, k: int = 4) -> str:
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:k])
    return shown + (", ..." if len(names) > k else "") if names else "nothing"


__all__ = ["ImportMap", "load_import_map", "parse_import_map", "apply_import_map"]
