"""The multilingual model (EmbeddingGemma) as the product runs it: its query
and document prompts, its Dense layers on the fast backend within the
quality gate of torch fp32, and Matryoshka truncation."""

from __future__ import annotations

import numpy as np
import pytest

from kb.embedding import LocalEmbedder, ModelLabel

pytestmark = pytest.mark.slow

MULTILINGUAL = "google/embeddinggemma-300m"
PASSAGES = [
    "Alpine glaciers have lost a third of their ice since 1980.",
    "员工每年享有十五天带薪年假。",
    "To install the printer, download the driver before connecting it.",
    "出差费用必须在三十天内报销，并附上发票。" * 8,
]


@pytest.fixture(scope="module")
def reference() -> LocalEmbedder:
    return LocalEmbedder(MULTILINGUAL, backend="torch", precision="fp32")


@pytest.fixture(scope="module")
def chosen() -> LocalEmbedder:
    return LocalEmbedder(MULTILINGUAL)


def test_the_fast_backend_runs_the_dense_layers_within_the_gate(
    reference: LocalEmbedder, chosen: LocalEmbedder
) -> None:
    assert chosen.backend.startswith("openvino"), chosen.backend
    assert chosen.dimensions == reference.dimensions == 768
    cosines = np.sum(chosen.encode(PASSAGES) * reference.encode(PASSAGES), axis=1)
    assert cosines.min() >= 0.995, cosines
    query = "冰川为什么在融化？"
    assert chosen.encode_query(query) @ reference.encode_query(query) >= 0.995


def test_queries_and_passages_get_the_models_own_prompts(
    reference: LocalEmbedder,
) -> None:
    model = reference._model
    assert reference.query_prompt == model.prompts["query"]
    assert reference.document_prompt == model.prompts["document"]
    text = PASSAGES[0]
    as_query = reference.encode_query(text)
    as_passage = reference.encode([text])[0]
    assert as_query @ as_passage < 0.99  # the prompts make them differ
    expected = model.encode(text, prompt_name="query", normalize_embeddings=True)
    assert as_query @ expected >= 0.9999


def test_a_chinese_question_is_nearest_the_english_passage_that_answers_it(
    chosen: LocalEmbedder,
) -> None:
    passages = chosen.encode(PASSAGES)
    assert (
        int(np.argmax(passages @ chosen.encode_query("阿尔卑斯山的冰川为什么在融化？")))
        == 0
    )
    assert (
        int(np.argmax(passages @ chosen.encode_query("How many days of paid leave?")))
        == 1
    )


def test_matryoshka_truncation_keeps_the_leading_dimensions(
    reference: LocalEmbedder,
) -> None:
    label = ModelLabel.parse(f"{MULTILINGUAL}@256")
    assert (label.name, label.dimensions, str(label)) == (
        MULTILINGUAL,
        256,
        f"{MULTILINGUAL}@256",
    )
    short = LocalEmbedder(str(label), backend="torch", precision="fp32")
    assert short.model_name == f"{MULTILINGUAL}@256" and short.dimensions == 256
    vectors = short.encode(PASSAGES)
    full = reference.encode(PASSAGES)[:, :256]
    expected = full / np.linalg.norm(full, axis=1, keepdims=True)
    assert vectors.shape == (len(PASSAGES), 256)
    assert np.allclose(vectors, expected, atol=1e-5)
    with pytest.raises(Exception, match="cannot be kept"):
        LocalEmbedder(f"{MULTILINGUAL}@1024", backend="torch", precision="fp32")
