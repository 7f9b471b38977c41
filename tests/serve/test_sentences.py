"""Raw sentences and plain-text descriptions for LoRA generators over HTTP, and the adapters they
give loading in a clean PEFT client.

The zoo is made by hand (no training): three chatterbot zoo tasks, each a LoRA set with small
random adapters and a head fitted on that task's sentence embeddings, so a generator that
reproduces a member (pca-gaussian's central output for the member's own condition does) beats
the constant guess on that task's support set. Generators: pca-gaussian conditioned on
text-support, text-description and text-both.
"""

from __future__ import annotations

import concurrent.futures
import io
import warnings
import zipfile

import httpx
import pytest
import torch
from safetensors.torch import load as load_bytes

from text_stack import require_text_stack

require_text_stack(("peft", "peft"))

from weightspace.adapt.head_refit import refit_head  # noqa: E402
from weightspace.generate import load_generator, make_generator, zoo_data  # noqa: E402
from weightspace.nets.lora_minilm import LoRAMiniLM  # noqa: E402

from serve_helpers import running  # noqa: E402
from text_stack import hidden_family  # noqa: E402,F401  (fixture)

ARCH = LoRAMiniLM(inputs="hidden")
ZOO_IDS = ["lang:dutch-vs-english", "topic:english:ai-vs-coding", "rest:english:emotion"]



@pytest.fixture(scope="module")
def zoo_tasks(hidden_family):
    return [hidden_family.task(i) for i in ZOO_IDS]


@pytest.fixture(scope="module")
def lora_zoo(zoo_tasks):
    g = torch.Generator().manual_seed(0)
    members = []
    for i, task in enumerate(zoo_tasks):
        body = {k: v + (0.01 * torch.randn(v.shape, generator=g) if k.endswith("lora_B") else 0)
                for k, v in ARCH.init_params(i).items() if not k.startswith("head.")}
        members.append(refit_head(ARCH, body, task.x_train, task.y_train)[0])
    return {k: torch.stack([m[k] for m in members]) for k in ARCH.spec().names}


@pytest.fixture(scope="module")
def generators(lora_zoo, zoo_tasks, tmp_path_factory):
    root = tmp_path_factory.mktemp("lora-gens")
    out = {}
    for condition in ("text-support", "text-description", "text-both"):
        data = zoo_data.from_params(ARCH, lora_zoo, zoo_tasks, condition)
        make_generator("pca-gaussian", resample_support=False).fit(data).save(root / condition)
        out[condition] = root / condition
    return out


def post(base: str, body: dict) -> httpx.Response:
    return httpx.post(f"{base}/v1/generate", json=body, timeout=60)


def sentences(task) -> dict:
    return {"texts": list(task.support_texts), "y": task.support_y.tolist()}


def test_raw_sentences_give_the_weights_their_encoded_inputs_give(generators, zoo_tasks):
    task = zoo_tasks[0]
    gen = load_generator(generators["text-support"])
    expected = gen.sample(gen.encode_condition((task.support_x, task.support_y)), 1, deterministic=True)
    with running(generators["text-support"]) as base:
        meta = httpx.get(f"{base}/v1/metadata").json()
        assert meta["reads_sentences"] is True and meta["accepts"] == [["support"]]
        assert meta["limits"]["max_sentences"] == 256
        r = post(base, {"support": sentences(task), "deterministic": True})
        assert r.status_code == 200, r.text
        served = load_bytes(r.content)
        assert all(torch.allclose(served[k], expected[k][0], atol=1e-5) for k in expected)
        assert float(r.headers["x-weightspace-support-accuracy"]) > 0.5
        # numeric inputs still work, and give the same weights
        numeric = post(base, {"support": {"x": task.support_x.tolist(), "y": task.support_y.tolist()}, "deterministic": True})
        assert numeric.status_code == 200, numeric.text
        assert all(torch.allclose(load_bytes(numeric.content)[k], served[k], atol=1e-5) for k in served)
        sampled = post(base, {"support": sentences(task), "n": 2, "best_of": 3, "seed": 1})
        assert sampled.status_code == 200, sampled.text
        assert sampled.headers["x-weightspace-candidates-passed"].endswith("/6")
        assert load_bytes(sampled.content)["head.weight"].shape == (2, 2, 384)


def test_an_adapter_made_from_raw_sentences_loads_in_a_clean_peft_client(generators, zoo_tasks, tmp_path):
    from peft import PeftModel

    from weightspace.export.peft import SentenceClassifier
    from weightspace.nets.lora_minilm import forward as lora
    from weightspace.nets.lora_minilm.base_model import tokenize

    task = zoo_tasks[1]
    body = {"support": sentences(task), "deterministic": True, "format": "peft"}
    with running(generators["text-support"]) as base:
        r = post(base, body)
        weights = load_bytes(post(base, {**body, "format": "safetensors"}).content)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip", r.text
    zipfile.ZipFile(io.BytesIO(r.content)).extractall(tmp_path)
    assert {p.name for p in (tmp_path / "adapter-0").iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no missing or unexpected keys, no other complaint
        model = PeftModel.from_pretrained(SentenceClassifier(2), str(tmp_path / "adapter-0"))
    model.eval()
    ids = tokenize(list(task.texts_test[:6]))
    with torch.no_grad():
        assert torch.allclose(model(ids), lora.logits(ARCH, weights, ids), atol=1e-5)


def test_a_description_generator_takes_plain_text(generators, zoo_tasks):
    with running(generators["text-description"]) as base:
        assert httpx.get(f"{base}/v1/metadata").json()["accepts"] == [["description"]]
        r = post(base, {"description": zoo_tasks[2].description, "deterministic": True, "format": "peft"})
        assert r.status_code == 200, r.text
        r = post(base, {"support": sentences(zoo_tasks[2]), "description": zoo_tasks[2].description})
        assert r.status_code == 422
        assert r.json()["error"] == ("this generator is conditioned on a task description (description) alone; "
                                     "send description without support.")
        r = post(base, {"support": sentences(zoo_tasks[2])})
        assert r.status_code == 422 and "not on a support set" in r.json()["error"]
        r = post(base, {"description": "   "})
        assert r.status_code == 422 and r.json()["error"].startswith("the description is blank")


def test_a_text_both_generator_needs_sentences_and_a_description_together(generators, zoo_tasks):
    task = zoo_tasks[0]
    gen = load_generator(generators["text-both"])
    expected = gen.sample(gen.encode_condition(task), 1, deterministic=True)
    both = {"support": sentences(task), "description": task.description, "deterministic": True}
    with running(generators["text-both"]) as base:
        assert httpx.get(f"{base}/v1/metadata").json()["accepts"] == [["support", "description"]]
        r = post(base, both)
        assert r.status_code == 200, r.text
        served = load_bytes(r.content)
        assert all(torch.allclose(served[k], expected[k][0], atol=1e-5) for k in expected)
        for half in ({"support": sentences(task)}, {"description": task.description}):
            r = post(base, half)
            assert r.status_code == 422
            assert r.json()["error"] == ("this generator (text-both) is conditioned on both a support set and a task "
                                         "description; send support and description together.")
        assert post(base, {**both, "format": "peft"}).headers["content-type"] == "application/zip"
        assert post(base, {**both, "best_of": 2, "deterministic": False}).status_code == 200  # the support set ranks them


@pytest.mark.parametrize("support, message", [
    ({"texts": [], "y": []}, "the support set is empty; give at least one labelled sentence per class."),
    ({"texts": ["one", "two"], "y": [0]}, "support.texts has 2 sentences but support.y has 1 labels"),
    ({"texts": ["one", "  "], "y": [0, 1]}, "support.texts[1] is blank"),
    ({"texts": ["x" * 81], "y": [0]}, "support.texts[0] has 81 characters, above this server's limit of 80."),
    ({"texts": ["a"] * 5, "y": [0] * 5}, "support.texts has 5 sentences, above this server's limit of 4."),
    ({"texts": ["one", "two"], "y": [0, 2]}, "support.y: labels must lie in 0..1, got 0..2."),
    ({"texts": ["one", 2], "y": [0, 1]}, "request field support.texts[1]: input should be a valid string."),
])
def test_bad_sentences_get_one_sentence_before_any_work(generators, support, message, monkeypatch):
    import weightspace.serve.service as service

    def never(*_):
        raise AssertionError("the sentences were encoded before they were checked")

    monkeypatch.setattr(service, "sentence_inputs", never)
    with running(generators["text-support"], max_sentences=4, max_sentence_chars=80) as base:
        r = post(base, {"support": support})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert message in error and error.endswith(".") and "\n" not in error


def test_concurrent_sentence_requests_get_the_bytes_a_lone_request_gets(generators, zoo_tasks):
    bodies = [{"support": sentences(zoo_tasks[i % 3]), "seed": i, "best_of": 2} for i in range(6)]
    with running(generators["text-support"], threads=3) as base:
        serial = [post(base, b).content for b in bodies]
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            parallel = list(pool.map(lambda b: post(base, b), bodies))
    assert all(r.status_code == 200 for r in parallel), [r.text for r in parallel]
    for r, alone in zip(parallel, serial):
        assert {k: v.tolist() for k, v in load_bytes(r.content).items()} == {k: v.tolist() for k, v in load_bytes(alone).items()}


def test_openapi_shows_an_example_for_each_way_to_ask(generators):
    with running(generators["text-support"]) as base:
        schema = httpx.get(f"{base}/openapi.json").json()
    examples = schema["paths"]["/v1/generate"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert {"support-set", "sentences", "description", "sentences-and-description", "descriptor", "task"} <= set(examples)
    assert examples["sentences-and-description"]["value"]["support"]["texts"]
    support = schema["components"]["schemas"]["SupportSet"]["properties"]
    assert {"x", "texts", "y"} <= set(support)
