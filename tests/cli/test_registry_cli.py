"""`weightspace registry` and `weightspace generators` list what the registries hold."""

from weightspace.cli import main
from weightspace.cli.registry_cmd import registries


def test_registry_lists_every_entry_of_every_kind_with_its_paper(capsys):
    assert main(["registry"]) == 0
    out = capsys.readouterr().out
    for kind, entries in registries().items():
        assert f"{kind}:" in out
        for e in entries:
            assert f"  {e.name} " in out and e.pretty in out and e.paper.split()[0] in out


def test_one_kind_and_an_unknown_kind(capsys):
    assert main(["registry", "baselines"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("baselines:") and "task arithmetic and TIES-merging" in out and "hypernet" not in out
    assert main(["registry", "optimizers"]) == 2
    assert "unknown registry 'optimizers'; choose one of generators" in capsys.readouterr().err


def test_generators_lists_the_generator_registry(capsys):
    assert main(["generators"]) == 0
    out = capsys.readouterr().out
    assert "  hypernet " in out and "HyperNetworks (Ha et al. 2017)" in out and "token-flow" in out
