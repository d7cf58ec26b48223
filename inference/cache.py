"""The answer cache in Redis, scoped to what the asker may read.

Every key starts with a *scope*: a hash of the collections the asker may read
(after any collection filter and token restriction) with their versions, the
LLM model, the embedding model and the prompt version. Two people share an
entry only when they could have produced the same answer; a change to any
of those collections bumps its version and so retires every entry built on
it (old entries simply expire).

Two tiers: *exact* (the normalised question) and *semantic* (a question
whose embedding is within ``ANSWER_CACHE_SIMILARITY`` of a cached one). A
near-miss paraphrase, such as the same question about another year,
product or person, or the negated question, embeds very close to the
original; a semantic hit therefore also needs the same numbers, the same
negation and the same distinctive words (names, codes, capitalised terms).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis
from django.conf import settings

from core.metrics import ANSWER_CACHE_LOOKUPS
from core.redis_pool import redis_client
from inference.prompts import PROMPT_VERSION
from kb.text import FUNCTION_WORDS

PREFIX = "archivist:answer:"
SEMANTIC_ENTRIES_MAX = 2000
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_NEGATIONS = {
    "not", "no", "never", "without", "none", "nobody", "nothing", "cannot", "can't",
    "don't", "doesn't", "isn't", "aren't", "wasn't", "weren't", "won't", "except",
    "不", "没", "没有", "无", "非", "未", "别", "不是", "除了",
}  # fmt: skip
_QUESTION_WORDS_ZH = {
    "什么", "怎么", "如何", "为什么", "哪些", "哪个", "多少", "是否", "可以", "请问",
}  # fmt: skip


def _answer_key(scope: str, question_key: str) -> str:
    return f"{PREFIX}{scope}:q:{question_key}"


def _vectors_key(scope: str) -> str:
    return f"{PREFIX}{scope}:vectors"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def hit_rate(stats: dict[str, int]) -> float:
    """Share of lookups answered from either tier (0 when there were none)."""
    lookups = sum(stats.values())
    return (stats["exact"] + stats["semantic"]) / lookups if lookups else 0.0


def normalise(question: str) -> str:
    text = unicodedata.normalize("NFKC", question).casefold()
    text = re.sub(r"\s+", " ", text).strip()
    return text.rstrip("?？!！.。 ")


def scope_key(
    collection_versions: list[tuple[int, int]], *, embedding_model: str
) -> str:
    material = json.dumps(
        {
            "collections": sorted(collection_versions),
            "llm": settings.LLM_MODEL,
            "embedding": embedding_model,
            "prompt": PROMPT_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def _question_key(normalised: str) -> str:
    return hashlib.sha256(normalised.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Signature:
    """What must agree between two questions for one's answer to serve the other."""

    numbers: frozenset[str]
    negated: bool
    distinctive: frozenset[str]

    def matches(self, other: Signature) -> bool:
        return (
            self.numbers == other.numbers
            and self.negated == other.negated
            and self.distinctive == other.distinctive
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "numbers": sorted(self.numbers),
            "negated": self.negated,
            "distinctive": sorted(self.distinctive),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Signature:
        return cls(
            frozenset(data.get("numbers", [])),
            bool(data.get("negated")),
            frozenset(data.get("distinctive", [])),
        )


def signature(question: str) -> Signature:
    """Numbers, negation, and distinctive words: capitalised or mixed-case
    words not at the start of the question, and words with digits or
    hyphens (product codes, names); Chinese words longer than one character
    that are not question words."""
    text = unicodedata.normalize("NFKC", question)
    numbers = frozenset(n.replace(",", "") for n in _NUMBER.findall(text))
    lowered = text.casefold()
    tokens = set(re.findall(r"[\w'’]+", lowered))
    negated = bool(tokens & _NEGATIONS) or any(
        marker in text for marker in ("不", "没", "未", "除了")
    )
    distinctive: set[str] = set()
    for position, word in enumerate(re.findall(r"[\w\-]+", text)):
        if word.casefold() in FUNCTION_WORDS:
            continue
        if (
            (position > 0 and word[:1].isupper() and word[:1].isascii())
            or any(char.isdigit() for char in word)
            or "-" in word.strip("-")
            or (word.isupper() and len(word) > 1)
        ):
            distinctive.add(word.casefold())
    if any("\u4e00" <= char <= "\u9fff" for char in text):
        from kb.text import segment

        for word in segment(text).split():
            if (
                len(word) > 1
                and all("\u4e00" <= char <= "\u9fff" for char in word)
                and word not in _QUESTION_WORDS_ZH
            ):
                distinctive.add(word)
    return Signature(numbers, negated, frozenset(distinctive))


@dataclass
class CachedAnswer:
    answer: str
    citations: list[dict[str, Any]]
    passages: list[dict[str, Any]]
    question: str
    tier: str = ""


class AnswerCache:
    def __init__(self, client: redis.Redis | None = None) -> None:
        self.redis = client or redis_client()

    # -- reads ----------------------------------------------------------------
    def get(
        self, scope: str, question: str, vector: np.ndarray | None
    ) -> CachedAnswer | None:
        try:
            hit = self._get_exact(scope, question) or (
                self._get_semantic(scope, question, vector)
                if vector is not None
                else None
            )
            result = hit.tier if hit else "miss"
            ANSWER_CACHE_LOOKUPS.labels(result=result).inc()
            self.redis.hincrby(f"{PREFIX}stats", result, 1)
            return hit
        except redis.RedisError:
            return None  # a cache outage costs speed, never answers

    def _get_exact(self, scope: str, question: str) -> CachedAnswer | None:
        raw = self.redis.get(_answer_key(scope, _question_key(normalise(question))))
        if raw is None:
            return None
        return CachedAnswer(**json.loads(raw), tier="exact")

    def _get_semantic(
        self, scope: str, question: str, vector: np.ndarray
    ) -> CachedAnswer | None:
        entries = self.redis.hgetall(_vectors_key(scope))
        if not entries:
            return None
        keys = list(entries)
        records = [json.loads(entries[key]) for key in keys]
        matrix = np.array([record["vector"] for record in records], dtype=np.float32)
        similarities = matrix @ np.asarray(vector, dtype=np.float32)
        wanted = signature(question)
        for index in np.argsort(-similarities):
            if similarities[index] < settings.ANSWER_CACHE_SIMILARITY:
                break
            if not wanted.matches(Signature.from_json(records[index]["signature"])):
                continue
            raw = self.redis.get(_answer_key(scope, _text(keys[index])))
            if raw is not None:
                return CachedAnswer(**json.loads(raw), tier="semantic")
        return None

    # -- writes ---------------------------------------------------------------
    def put(
        self, scope: str, question: str, vector: np.ndarray | None, answer: CachedAnswer
    ) -> None:
        key = _question_key(normalise(question))
        ttl = settings.ANSWER_CACHE_TTL_SECONDS
        payload = {
            "answer": answer.answer,
            "citations": answer.citations,
            "passages": answer.passages,
            "question": question,
        }
        vectors_key = _vectors_key(scope)
        try:
            pipe = self.redis.pipeline()
            pipe.set(_answer_key(scope, key), json.dumps(payload), ex=ttl)
            if vector is not None:
                pipe.hset(
                    vectors_key,
                    key,
                    json.dumps(
                        {
                            "vector": [round(float(v), 5) for v in vector],
                            "signature": signature(question).as_json(),
                        }
                    ),
                )
                pipe.expire(vectors_key, ttl)
                pipe.hlen(vectors_key)
            results = pipe.execute()
            if vector is not None and results[-1] > SEMANTIC_ENTRIES_MAX:
                # Bounded work per lookup: forget the semantic index of a scope
                # that grew too big (exact entries stay).
                self.redis.delete(vectors_key)
        except redis.RedisError:
            return

    # -- admin ----------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        raw = self.redis.hgetall(f"{PREFIX}stats")
        counts = {_text(key): int(value) for key, value in raw.items()}
        return {tier: counts.get(tier, 0) for tier in ("exact", "semantic", "miss")}

    def purge(self) -> int:
        removed = 0
        batch: list[Any] = []
        for key in self.redis.scan_iter(match=f"{PREFIX}*", count=500):
            batch.append(key)
            if len(batch) == 500:
                removed += int(self.redis.delete(*batch))
                batch = []
        if batch:
            removed += int(self.redis.delete(*batch))
        return removed
