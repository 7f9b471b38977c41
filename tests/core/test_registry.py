"""The one registry shape: decorator registration, lookup with a sentence naming the choices,
iteration, entries with pretty names and papers, declared extras and stamped names."""

import pytest

from weightspace.errors import WeightspaceError
from weightspace.registry import REQUIRED, Registry, UnknownName


def test_register_look_up_iterate_and_list():
    things = Registry("thing")

    @things.register("b", pretty="the B", paper="Bee et al. 2020")
    def b():
        return "b"

    things.add("a", len, pretty="the A", paper="Aye 1999")
    assert things["b"] is b and b() == "b"  # the decorator returns the object unchanged
    assert list(things) == ["b", "a"] and len(things) == 2 and "a" in things and "c" not in things
    assert [(e.name, e.pretty, e.paper, e.obj) for e in things.entries()] == [("b", "the B", "Bee et al. 2020", b),
                                                                            ("a", "the A", "Aye 1999", len)]
    assert things.get("c") is None and dict(things.items()) == {"b": b, "a": len}


def test_an_unknown_name_is_one_sentence_naming_the_choices():
    things = Registry("thing")
    things.add("zeta", 1, pretty="z", paper="p")
    things.add("alpha", 2, pretty="a", paper="p")
    with pytest.raises(WeightspaceError) as info:
        things["gamma"]
    assert str(info.value) == "unknown thing 'gamma'; choose one of alpha, zeta."
    assert isinstance(info.value, KeyError) and isinstance(info.value, UnknownName)
    with pytest.raises(UnknownName):
        things.entry(["not", "hashable"])


def test_every_entry_needs_a_pretty_name_and_a_paper_and_a_name_once():
    things = Registry("thing")
    with pytest.raises(ValueError, match="pretty name and a paper"):
        things.add("x", 1, pretty="", paper="p")
    things.add("x", int, pretty="x", paper="p")
    things.add("x", int, pretty="x", paper="p")  # the same definition again (a module imported twice) is fine
    with pytest.raises(ValueError, match="registered twice"):
        things.add("x", float, pretty="x", paper="p")
    things.unregister("x")
    assert "x" not in things


def test_extras_are_declared_with_defaults_and_required_ones_checked():
    things = Registry("thing", extras={"applies": REQUIRED, "position": 0})
    entry = things.add("x", 1, pretty="x", paper="p", applies=bool)
    assert entry.extras == {"applies": bool, "position": 0}
    with pytest.raises(ValueError, match="missing \\['applies'\\]"):
        things.add("y", 2, pretty="y", paper="p")
    with pytest.raises(ValueError, match="unknown declarations \\['aplies'\\]"):
        things.add("z", 3, pretty="z", paper="p", applies=bool, aplies=bool)


def test_stamped_fields_are_written_onto_the_class_and_must_agree():
    things = Registry("thing", stamp=("name", "paper"))

    @things.register("widget", pretty="a widget", paper="Widgets (Doe 2001)")
    class Widget:
        pass

    assert Widget.name == "widget" and Widget.paper == "Widgets (Doe 2001)"

    class Sub(Widget):  # inherits the stamp, may be registered under its own name
        pass

    things.add("sub", Sub, pretty="s", paper="p")
    assert Sub.name == "sub" and Widget.name == "widget"

    class Declared:
        name = "declared"

    with pytest.raises(ValueError, match="declares name='declared'"):
        things.add("other", Declared, pretty="o", paper="p")
    with pytest.raises(ValueError, match="can stamp only"):
        Registry("thing", stamp=("colour",))
