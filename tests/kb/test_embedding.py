"""The embedding backends: the fast local one keeps fp32's geometry, and an
OpenAI-compatible /v1/embeddings server gives the same vectors as the model
it serves."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from kb.embedding import (
    EmbeddingError,
    LocalEmbedder,
    RemoteEmbedder,
    _load_embedder,
    embedder_for,
    local_embedder,
)
from kb.openvino_backend import OPENVINO_QUERY_TOKEN_BUCKETS

# Texts outside the calibration set, of very different lengths.
HELD_OUT = [
    "Where do I find the holiday calendar?",
    "Patients receiving the higher dose reported fewer side effects than expected. "
    * 12,
    "The quarterly board meeting was moved to the main conference room.",
    "Tumour growth slowed after the second cycle of chemotherapy.",
    "Connect to the guest Wi-Fi with the password printed at reception.",
    "Data retention rules require deleting personal records after seven years. " * 6,
]


@pytest.fixture(scope="module")
def fp32() -> LocalEmbedder:
    return LocalEmbedder(None, backend="torch", precision="fp32")


def test_forced_fp32_is_the_reference_backend(fp32: LocalEmbedder) -> None:
    assert fp32.backend == "torch-fp32"
    vectors = fp32.encode(HELD_OUT)
    assert vectors.shape == (len(HELD_OUT), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_the_chosen_backend_keeps_fp32_geometry(fp32: LocalEmbedder) -> None:
    chosen = embedder_for()
    assert chosen.backend in {
        "openvino-bf16",
        "torch-bf16",
        "openvino-fp32",
        "torch-fp32",
    }
    cosines = np.sum(fp32.encode(HELD_OUT) * chosen.encode(HELD_OUT), axis=1)
    assert cosines.min() >= 0.995
    # Batching and order must not change a text's vector.
    alone = chosen.encode([HELD_OUT[1]])[0]
    assert float(alone @ chosen.encode(HELD_OUT)[1]) >= 0.999
    assert chosen.encode([]).shape == (0, 384)


def test_a_query_alone_gets_the_vector_it_gets_in_a_batch() -> None:
    """Queries of every length up to past the longest padded shape (the
    tokenizer adds two tokens): alone, a short one is padded to a fixed
    length and run by a model compiled for it; the padding changes nothing."""
    chosen = embedder_for()
    texts = [" ".join(["cells"] * count) for count in range(1, 70)]
    batched = chosen.encode(texts)
    alone = np.stack([chosen.encode([text])[0] for text in texts])
    assert np.sum(batched * alone, axis=1).min() >= 0.9999
    if chosen.backend.startswith("openvino"):
        model = chosen._encode_batch.__self__
        assert set(model._single) == {*OPENVINO_QUERY_TOKEN_BUCKETS, None}


def test_warming_up_prepares_every_lone_text_length_before_it_is_asked() -> None:
    # As the answer reader loads: its lone texts on every thread.
    fresh = local_embedder(None, lone_text_on_all_threads=True)
    fresh.warm_up()
    if fresh.backend.startswith("openvino"):
        model = fresh._encode_batch.__self__
        assert set(model._single) == {*OPENVINO_QUERY_TOKEN_BUCKETS, None}
        threads = {
            request.get_compiled_model().get_property("INFERENCE_NUM_THREADS")
            for request in model._single.values()
        }
        assert threads == {fresh._threads}
        # The search's own embedder keeps one thread a query.
        shared = embedder_for()
        shared.encode_query("cells")
        assert {
            request.get_compiled_model().get_property("INFERENCE_NUM_THREADS")
            for request in shared._encode_batch.__self__._single.values()
        } == {1}
    # Warm or not, a query gets the vector the shared embedder gives it.
    assert (
        float(fresh.encode_query("cells") @ embedder_for().encode_query("cells"))
        >= 0.999
    )


class _EmbeddingsServer(BaseHTTPRequestHandler):
    """A real /v1/embeddings server over the local model."""

    model: LocalEmbedder
    requests_seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests_seen.append(body)
        if self.path != "/v1/embeddings" or body.get("model") != "served-model":
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "model not found"}}')
            return
        vectors = self.model.encode(body["input"])
        payload = {
            "object": "list",
            # Deliberately out of order: clients must sort by index.
            "data": [
                {"object": "embedding", "index": index, "embedding": vector.tolist()}
                for index, vector in reversed(list(enumerate(vectors)))
            ],
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def embeddings_server(fp32: LocalEmbedder) -> Iterator[str]:
    _EmbeddingsServer.model = fp32
    _EmbeddingsServer.requests_seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmbeddingsServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_remote_embedder_matches_the_model_it_serves(
    embeddings_server: str, fp32: LocalEmbedder
) -> None:
    remote = RemoteEmbedder(
        embeddings_server, "served-model", api_key=None, batch_size=4, timeout=30
    )
    assert remote.dimensions == 384
    vectors = remote.encode(HELD_OUT)
    assert np.allclose(vectors, fp32.encode(HELD_OUT), atol=1e-5)
    # Six texts in batches of four: two requests after the dimension probe.
    assert [len(r["input"]) for r in _EmbeddingsServer.requests_seen[1:]] == [4, 2]


def test_remote_embedder_names_the_problem(embeddings_server: str) -> None:
    with pytest.raises(EmbeddingError, match="EMBEDDING_BASE_URL"):
        RemoteEmbedder(
            embeddings_server, "wrong-model", api_key=None, batch_size=4, timeout=30
        )
    with pytest.raises(EmbeddingError, match="embedding server"):
        RemoteEmbedder(
            "http://127.0.0.1:9/v1",
            "served-model",
            api_key=None,
            batch_size=4,
            timeout=2,
        )


def test_configured_remote_server_becomes_the_embedder(
    embeddings_server: str, settings: Any
) -> None:
    settings.EMBEDDING_BASE_URL = embeddings_server
    settings.EMBEDDING_MODEL = "served-model"
    _load_embedder.cache_clear()
    try:
        embedder = embedder_for()
        assert embedder.backend == "remote"
        assert embedder.model_name == "served-model"
    finally:
        _load_embedder.cache_clear()


def test_a_remote_url_without_a_model_name_is_refused(settings: Any) -> None:
    settings.EMBEDDING_BASE_URL = "http://127.0.0.1:9/v1"
    settings.EMBEDDING_MODEL = None
    _load_embedder.cache_clear()
    try:
        with pytest.raises(EmbeddingError, match="EMBEDDING_MODEL"):
            embedder_for()
    finally:
        _load_embedder.cache_clear()
