"""Which embedding model a new installation starts with.

The multilingual model (EmbeddingGemma-300m) is the one that reads Chinese
and finds documents across Chinese and English, but on some CPUs it embeds
far slower than the bundled English-only MiniLM (docs/benchmarks.md). So a
new installation, whose index holds no chunk yet, measures the multilingual
model on its own cores and takes it when it embeds at least
``EMBEDDING_AUTO_MIN_CHUNKS_PER_SECOND``; otherwise it keeps MiniLM and says
how to switch. An installation with chunks is never changed here: that is
``manage.py reembed``'s job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from kb.embedding import BUNDLED_MODEL_NAME, EmbeddingError, embedder_for

MULTILINGUAL_MODEL = "google/embeddinggemma-300m"
SAMPLE_PASSAGES = 24
# Remembered so that a new installation restarted before its first upload
# does not load and measure the model again.
CACHE_KEY = "embedding-choice:multilingual-rate"
CACHE_SECONDS = 30 * 24 * 3600

_ENGLISH = (
    "Passage {n}. Archivist keeps each team's documents in collections, and a "
    "person sees only the collections granted to one of their groups. Uploads "
    "are parsed, cut into passages and embedded by workers; search ranks the "
    "passages by meaning and by their words, and answers cite the passages "
    "they come from. Backups, retention and audit records are kept by the "
    "operations part, which also watches the workers and the model server. "
)
_CHINESE = (
    "第{n}段。知识库按团队把文档放进集合，只有被授权的组成员才能看到集合中的内容。"
    "上传的文件由后台进程解析、切分成段落并计算向量；搜索同时按语义和词语为段落排序，"
    "回答会注明引用的段落。备份、保留期限和审计记录由运维模块负责。"
)


@dataclass(frozen=True)
class EmbeddingChoice:
    model_name: str
    multilingual_rate: float | None
    reason: str


def sample_passages(count: int = SAMPLE_PASSAGES) -> list[str]:
    """Passages about as long as the chunker makes them, half English and
    half Chinese, each different so that nothing is served from a cache."""
    limit = settings.CHUNK_MAX_CHARS
    passages = []
    for n in range(count):
        sentence = (_ENGLISH if n % 2 == 0 else _CHINESE).format(n=n)
        # Chinese packs more tokens into a character than English does.
        length = limit if n % 2 == 0 else limit // 2
        passages.append((sentence * (length // len(sentence) + 1))[:length])
    return passages


def multilingual_rate() -> float:
    """Passages a second the multilingual model embeds here, with every core
    and the backend the workers would use. Raises EmbeddingError when the
    model is not installed or cannot load."""
    remembered = cache.get(CACHE_KEY)
    if isinstance(remembered, float):
        return remembered
    embedder = embedder_for(MULTILINGUAL_MODEL)
    passages = sample_passages()
    embedder.encode(passages[:2])  # the first call pays for start-up
    started = time.perf_counter()
    embedder.encode(passages)
    rate = len(passages) / (time.perf_counter() - started)
    cache.set(CACHE_KEY, rate, CACHE_SECONDS)
    return rate


def choose_model() -> EmbeddingChoice:
    """The model a new installation should start with, and why."""
    needed = settings.EMBEDDING_AUTO_MIN_CHUNKS_PER_SECOND
    try:
        rate = multilingual_rate()
    except EmbeddingError as error:
        return EmbeddingChoice(
            BUNDLED_MODEL_NAME,
            None,
            f"The multilingual model could not be used ({error}); search reads "
            "English only.",
        )
    if rate >= needed:
        return EmbeddingChoice(
            MULTILINGUAL_MODEL,
            rate,
            f"{MULTILINGUAL_MODEL} embeds {rate:.1f} passages a second here (at "
            f"least {needed:g} needed): search reads Chinese and English and "
            "finds documents across the two.",
        )
    return EmbeddingChoice(
        BUNDLED_MODEL_NAME,
        rate,
        f"{MULTILINGUAL_MODEL} embeds only {rate:.1f} passages a second here "
        f"(below {needed:g}), so search keeps the faster English-only "
        f"{BUNDLED_MODEL_NAME}. For Chinese and cross-language search anyway, set "
        f"EMBEDDING_MODEL={MULTILINGUAL_MODEL} (uploads will take longer).",
    )
