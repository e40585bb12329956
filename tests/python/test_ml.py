"""hornbeam_ml as Python code uses it: caching, models, batching."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import hornbeam_ml as ml
from hornbeam_ml import _models

import batchmod


@pytest.fixture(autouse=True)
def fresh():
    ml.cache_clear()
    _models._models.clear()
    old = os.environ.pop("HORNBEAM_ML_FALLBACK", None)
    yield
    _models._models.clear()
    if old is None:
        os.environ.pop("HORNBEAM_ML_FALLBACK", None)
    else:
        os.environ["HORNBEAM_ML_FALLBACK"] = old


@pytest.fixture
def fallback():
    os.environ["HORNBEAM_ML_FALLBACK"] = "hash"


@pytest.mark.parametrize("result", [None, (1, 2), [1, (2, 3)], {"a": 1.5}, np.arange(4, dtype=np.float32), b"\x00x", "s"])
def test_hit_returns_what_the_miss_did(result):
    calls = []

    def fn(x):
        calls.append(x)
        return result

    first = ml.cached_inference(fn, ["in", 1])
    second = ml.cached_inference(fn, ["in", 1])
    assert calls == [["in", 1]]
    assert type(second) is type(first)
    if isinstance(result, np.ndarray):
        assert second.dtype == result.dtype and np.array_equal(second, result)
    else:
        assert second == result


def test_stats_per_prefix():
    f = lambda x: x * 2  # noqa: E731
    for x in (1, 2, 1, 1):
        ml.cached_inference(f, x, cache_prefix="a")
    ml.cached_inference(f, 1, cache_prefix="b")
    ml.cached_inference(f, 1, cache_key="k", cache_prefix="b")
    st = ml.cache_stats()
    assert st["prefixes"]["a"] == {"hits": 2, "misses": 2, "hit_rate": 0.5, "size": 2, "evictions": 0,
                                   "bytes": st["prefixes"]["a"]["bytes"]}
    assert st["prefixes"]["b"]["misses"] == 2 and st["prefixes"]["b"]["size"] == 2
    assert (st["hits"], st["misses"], st["size"]) == (2, 4, 4)
    assert st["max_entries"] > 0 and st["max_bytes"] > 0


def test_bad_arguments():
    with pytest.raises(TypeError):
        ml.cached_inference("not callable", 1)
    with pytest.raises(TypeError):
        ml.cached_inference(str, 1, cache_key=5)
    with pytest.raises(ValueError):
        ml.cached_inference(str, 1, ttl=-1)


def test_key_is_stable_across_processes():
    code = "import hornbeam_ml; print(hornbeam_ml.stable_key(['text', 1, 2.5]))"
    exe = os.environ.get("HORNBEAM_BIN", "bin/hornbeam")
    keys = {subprocess.run([exe, "run", "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2)}
    assert keys == {ml.stable_key(["text", 1, 2.5]) + "\n"}


def test_batch_cache():
    seen = []

    def fn(xs):
        seen.append(list(xs))
        return [x.upper() for x in xs]

    out, cached = ml.cached_inference_batch(fn, ["a", "b"], cache_prefix="t")
    assert (out, cached) == (["A", "B"], 0)
    out, cached = ml.cached_inference_batch(fn, ["b", "c", "a"], cache_prefix="t")
    assert (out, cached) == (["B", "C", "A"], 2)
    assert seen == [["a", "b"], ["c"]]


def test_missing_model_is_a_clear_error():
    with pytest.raises(ml.ModelUnavailable, match="sentence_transformers is not installed.*--ml-fallback"):
        ml.encode(["x"])
    with pytest.raises(ml.ModelUnavailable):
        ml.SentenceTransformer("all-MiniLM-L6-v2")


def test_fallback_encoder(fallback):
    e = ml.encode(["the cat sat", "the cat sat!", "quarterly earnings"])
    assert e.shape == (3, 384) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    assert e[0] @ e[1] > 0.7 > e[0] @ e[2]
    assert ml.encode("the cat sat").shape == (384,)
    assert isinstance(ml.encode(["a"], as_list=True)[0][0], float)
    assert ml.encode([]).shape == (0, 384)
    info = ml.model_info("default")
    assert info["fallback"] and "fallback" in info["model"] and "all-MiniLM-L6-v2" in info["model"]
    assert info["kind"] == "fallback:hash-ngram"
    with pytest.raises(TypeError):
        ml.encode(["ok", 5])


def test_sentence_transformer_drop_in(fallback):
    m = ml.SentenceTransformer("all-MiniLM-L6-v2")
    assert m.get_sentence_embedding_dimension() == 384 and m.device == "cpu"
    v = m.encode(["a b", "c d"], normalize_embeddings=True)
    assert v.shape == (2, 384)
    assert np.allclose(m.encode("a b"), v[0], atol=1e-6)


def test_aliases_and_model_dir(fallback, tmp_path, monkeypatch):
    assert _models.resolve("large") == "all-mpnet-base-v2"
    assert _models.resolve("multilingual") == "paraphrase-multilingual-MiniLM-L12-v2"
    (tmp_path / "all-MiniLM-L6-v2").mkdir()
    monkeypatch.setenv("HORNBEAM_MODEL_DIR", str(tmp_path))
    assert _models._locate("all-MiniLM-L6-v2") == str(tmp_path / "all-MiniLM-L6-v2")
    assert _models._locate("other") == "other"


def test_batched_coalesces_concurrent_calls():
    batchmod.calls.clear()
    results = {}
    start = threading.Barrier(12)

    def caller(i):
        start.wait()
        results[i] = batchmod.double([i, i + 100])

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: [2 * i, 2 * (i + 100)] for i in range(12)}
    assert sum(batchmod.calls) == 24 and len(batchmod.calls) < 12
    assert batchmod.double([3], factor=3) == [9]
    assert batchmod.double([]) == []
    assert batchmod.double.direct([1]) == [2]


def test_batched_errors():
    with pytest.raises(ValueError, match="boom in the batch"):
        batchmod.double(["boom"])
    assert batchmod.double([1]) == [2]  # the next batch is fine
    with pytest.raises(ValueError, match="1 results for 2 items"):
        batchmod.wrong_length([1, 2])
    with pytest.raises(TypeError):
        batchmod.double("not a list")
    with pytest.raises(ValueError):
        ml.batched(max_batch_size=0)(lambda xs: xs)


def test_nodes_with_outside_a_cluster():
    assert ml.nodes_with(cpu=1) == [] and ml.gpu_nodes() == []
    with pytest.raises(TypeError):
        ml.nodes_with(gpu="one")
