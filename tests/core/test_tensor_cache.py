"""The disk cache of costly tensors (weightspace/tensor_cache.py)."""

from __future__ import annotations

import torch

from weightspace import tensor_cache


def counted(value: torch.Tensor):
    calls = []
    return calls, lambda: calls.append(1) or value.clone()


def test_the_first_call_computes_and_writes_and_the_next_reads_the_same_tensor(tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTSPACE_CACHE", str(tmp_path / "cache"))
    value = torch.randn(3, 4, 5)
    calls, make = counted(value)
    first = tensor_cache.cached_tensor("t", [torch.arange(4), 32, 4], make)
    again = tensor_cache.cached_tensor("t", [torch.arange(4), 32, 4], make)
    assert len(calls) == 1 and torch.equal(first, value) and torch.equal(again, value)
    assert len(list((tmp_path / "cache").glob("t-*.safetensors"))) == 1
    tensor_cache.cached_tensor("t", [torch.arange(4), 32, 5], make)  # another key part: computed again
    tensor_cache.cached_tensor("t", [torch.arange(4).int(), 32, 4], make)  # another dtype of the same values too
    assert len(calls) == 3


def test_a_damaged_entry_is_computed_again_and_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTSPACE_CACHE", str(tmp_path))
    value = torch.ones(2, 2)
    calls, make = counted(value)
    tensor_cache.cached_tensor("t", ["k"], make)
    (entry,) = tmp_path.glob("t-*.safetensors")
    entry.write_bytes(entry.read_bytes()[:20])
    assert torch.equal(tensor_cache.cached_tensor("t", ["k"], make), value) and len(calls) == 2
    assert torch.equal(tensor_cache.cached_tensor("t", ["k"], make), value) and len(calls) == 2  # replaced


def test_off_and_an_unwritable_directory_only_cost_the_time(tmp_path, monkeypatch):
    value = torch.zeros(3)
    calls, make = counted(value)
    monkeypatch.setenv("WEIGHTSPACE_CACHE", "off")
    assert tensor_cache.cache_dir() is None
    tensor_cache.cached_tensor("t", ["k"], make)
    tensor_cache.cached_tensor("t", ["k"], make)
    assert len(calls) == 2
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("WEIGHTSPACE_CACHE", str(blocked / "cache"))
    assert torch.equal(tensor_cache.cached_tensor("t", ["k"], make), value) and len(calls) == 3
