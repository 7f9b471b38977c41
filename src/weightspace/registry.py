"""One registry shape for every extension point: generators, architectures, task families,
condition encoders and evaluation baselines.

Each stage keeps one ``Registry`` and its entries register themselves with a decorator in the
module that defines them, a pretty name and a paper reference beside the code (as mergekit lists
its merge methods):

    GENERATORS = Registry("generator", stamp=("name", "paper"))

    @GENERATORS.register("hypernet", pretty="hypernetwork", paper="HyperNetworks (Ha et al. 2017)")
    class HypernetGenerator(Generator): ...

A registry is a read-only mapping from name to object (``GENERATORS["hypernet"]``, ``in``,
iteration in registration order), so stages look entries up instead of testing names, and
contract tests iterate it. An unknown name is one sentence naming the valid choices.

``stamp`` names entry fields the registry writes onto each registered object, for classes whose
instances must know the name they are saved under; ``extras`` declares the further keywords an
entry of this kind carries (with defaults; ``REQUIRED`` for none), so a misspelt one is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, Sequence, TypeVar

from weightspace.errors import WeightspaceError

T = TypeVar("T")
REQUIRED = object()  # an extra every entry of the kind must give
STAMPABLE = ("name", "pretty", "paper")


class UnknownName(WeightspaceError, KeyError):
    """A name no entry is registered under. A KeyError too, so ``registry.get(name)`` and ``in``
    behave as for a dict; its text is the plain sentence (KeyError would quote it)."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered object with what a listing shows beside it."""

    name: str  # the key users type and files record
    pretty: str  # a short human name for listings and reports
    paper: str  # the reference the entry follows
    obj: T
    extras: Mapping[str, Any] = field(default_factory=dict)  # the kind's further declarations


class Registry(Mapping[str, T]):
    def __init__(self, kind: str, *, stamp: Sequence[str] = (), extras: Mapping[str, Any] | None = None):
        unknown = sorted(set(stamp) - set(STAMPABLE))
        if unknown:
            raise ValueError(f"a registry can stamp only {', '.join(STAMPABLE)}, not {', '.join(unknown)}")
        self.kind = kind  # in messages: "unknown {kind} 'x'; choose one of ..."
        self.stamp = tuple(stamp)
        self.extra_defaults = dict(extras or {})
        self._entries: dict[str, Entry[T]] = {}

    # ----- registering ---------------------------------------------------------------------------
    def register(self, name: str, *, pretty: str, paper: str, **extras: Any) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name`` and return it unchanged."""

        def decorate(obj: T) -> T:
            self.add(name, obj, pretty=pretty, paper=paper, **extras)
            return obj

        return decorate

    def add(self, name: str, obj: T, *, pretty: str, paper: str, **extras: Any) -> Entry[T]:
        """Register ``obj``; a name taken by another object, or a declaration the kind does not
        know or misses, is a programming error (ValueError), raised at import."""
        if not name or not pretty or not paper:
            raise ValueError(f"{self.kind} {name!r} needs a name, a pretty name and a paper reference")
        old = self._entries.get(name)
        if old is not None and not _same_definition(old.obj, obj):
            raise ValueError(f"{self.kind} name {name!r} is registered twice ({old.obj!r} and {obj!r})")
        unknown = sorted(set(extras) - set(self.extra_defaults))
        missing = sorted(k for k, v in self.extra_defaults.items() if v is REQUIRED and k not in extras)
        if unknown or missing:
            raise ValueError(f"{self.kind} {name!r}: unknown declarations {unknown}, missing {missing}")
        entry = Entry(name, pretty, paper, obj, {**self.extra_defaults, **extras})
        for attr in self.stamp:
            declared = vars(obj).get(attr) if hasattr(obj, "__dict__") else None
            if declared is not None and declared != getattr(entry, attr):
                raise ValueError(f"{obj!r} declares {attr}={declared!r} but is registered with {getattr(entry, attr)!r}")
            setattr(obj, attr, getattr(entry, attr))
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove an entry (tests that register a throw-away one clean up with it)."""
        self._entries.pop(name, None)

    # ----- looking up ----------------------------------------------------------------------------
    def __getitem__(self, name: str) -> T:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownName(f"unknown {self.kind} {name!r}; choose one of {', '.join(sorted(self._entries))}.") from None

    def entries(self) -> list[Entry[T]]:
        """Every entry in registration order: (name, pretty, paper, obj) and the kind's extras."""
        return list(self._entries.values())

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"


def _same_definition(a: Any, b: Any) -> bool:
    """The same object, or the same definition imported again (a module reloaded)."""
    return a is b or (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == \
        (getattr(b, "__module__", 0), getattr(b, "__qualname__", 0))


def always(*_: Any) -> bool:
    """The default condition: an entry that needs nothing applies everywhere."""
    return True
