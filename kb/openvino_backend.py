"""The OpenVINO backend of ``kb.embedding.LocalEmbedder``: a
sentence-transformers model (transformer, mean or CLS pooling, Dense layers)
converted in memory and run on the CPU's cores. Imported only when that
backend is tried."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from kb.embedding import EmbeddingError, normalised

# OpenVINO pads every text of a batch to the longest one; texts are sorted by
# length first, and small batches measured fastest on CPU (71 chunks/s at 8-16
# against 65 at 64 on the 2-core test machine).
OPENVINO_BATCH_SIZE = 8
# A search query is padded up to the first of these token counts and run by a
# model compiled for that fixed shape (each on first use: 0.2 s and 35 MB).
# Measured on SciFact's 300 questions (mean 23 tokens), interleaved with the
# model of any shape: 4.9 instead of 7.0 ms of CPU a query when other work has
# just evicted the CPU's caches, as a search's SQL does; 3.7-4.0 instead of
# 4.3-4.5 ms warm. Longer queries take the model of any shape.
OPENVINO_QUERY_TOKEN_BUCKETS = (16, 32, 64)


def _bucket(length: int) -> int | None:
    """The fixed length a lone text of ``length`` tokens is padded to, or
    None past the last."""
    return next((b for b in OPENVINO_QUERY_TOKEN_BUCKETS if b >= length), None)


def _bidirectional_masks(config: Any, attention_mask: Any) -> dict[str, Any] | None:
    """For an encoder made from Gemma 3 (EmbeddingGemma), the attention masks
    of its two kinds of layer, made with plain tensor operations: the ones
    transformers builds go through ``vmap``, which tracing cannot follow.
    Every token sees every real token; in sliding-window layers, only those
    closer than the window. A padding position also sees itself, so that its
    row (dropped by pooling) is never empty. None for other models."""
    if not getattr(config, "use_bidirectional_attention", False):
        return None
    import torch

    length = attention_mask.shape[1]
    positions = torch.arange(length, device=attention_mask.device)
    distance = (positions[:, None] - positions[None, :]).abs()
    itself = distance == 0
    real = attention_mask.bool()[:, None, None, :]
    masks = {"full_attention": real | itself}
    if getattr(config, "sliding_window", None):
        masks["sliding_attention"] = (
            real & (distance < config.sliding_window)
        ) | itself
    return masks


class OpenVinoModel:
    """The sentence-transformers model (transformer plus mean or CLS pooling)
    converted to OpenVINO in memory; texts are tokenized by the model's own
    tokenizer, sorted by length and run in small batches."""

    def __init__(
        self, model: Any, precision: str, threads: int, lone_text_threads: int = 1
    ) -> None:
        import openvino
        import torch

        self._lone_text_threads = max(1, lone_text_threads)

        modules = list(model)
        pooling = (
            getattr(modules[1], "pooling_mode", None) if len(modules) > 1 else None
        )
        extra = modules[2:]
        if extra and type(extra[-1]).__name__ == "Normalize":
            extra = extra[:-1]
        if (
            type(modules[0]).__name__ != "Transformer"
            or pooling not in ("mean", "cls")
            or any(type(module).__name__ != "Dense" for module in extra)
        ):
            raise EmbeddingError(
                "only a transformer with mean or CLS pooling, then Dense layers, "
                "can run on OpenVINO"
            )
        self._tokenizer = model.tokenizer
        self._max_length = int(model.max_seq_length)
        transformer = modules[0].auto_model
        # EmbeddingGemma's two projections after pooling (768 -> 3072 -> 768).
        dense_layers = torch.nn.ModuleList(
            torch.nn.Sequential(module.linear, module.activation_function)
            for module in extra
        )

        class Pooled(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.transformer = transformer
                self.dense_layers = dense_layers

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                masks = _bidirectional_masks(transformer.config, attention_mask)
                hidden = self.transformer(
                    input_ids=input_ids,
                    attention_mask=attention_mask if masks is None else masks,
                ).last_hidden_state
                if pooling == "cls":
                    pooled = hidden[:, 0]
                else:
                    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                for layer in self.dense_layers:
                    pooled = layer(pooled)
                return pooled

        example = self._tokenizer(
            ["a short example", "a somewhat longer example sentence for tracing"],
            padding=True,
            return_tensors="pt",
        )
        dynamic = [-1, -1]
        with warnings.catch_warnings():
            # Tracing warns about Python branches on shapes; the quality gate
            # checks the converted model on texts of several lengths.
            warnings.simplefilter("ignore")
            converted = openvino.convert_model(
                Pooled().eval(),
                example_input={
                    "input_ids": example["input_ids"],
                    "attention_mask": example["attention_mask"],
                },
                input=[
                    ("input_ids", dynamic, openvino.Type.i64),
                    ("attention_mask", dynamic, openvino.Type.i64),
                ],
            )
        core = openvino.Core()
        self._core, self._converted, self._precision = core, converted, precision
        self._single: dict[int | None, Any] = {}
        self._pad_token_id = int(self._tokenizer.pad_token_id or 0)
        if precision == "bf16" and "BF16" not in core.get_property(
            "CPU", "OPTIMIZATION_CAPABILITIES"
        ):
            raise EmbeddingError("this CPU has no native bf16 for OpenVINO")
        # One stream per core, each one thread, fed asynchronously: the next
        # batch is tokenized while the cores run the previous ones.
        self._compiled = core.compile_model(
            converted,
            "CPU",
            {
                "INFERENCE_PRECISION_HINT": precision,
                "PERFORMANCE_HINT": "THROUGHPUT",
                "NUM_STREAMS": max(1, threads),
                "INFERENCE_NUM_THREADS": max(1, threads),
            },
        )
        self._streams = int(self._compiled.get_property("NUM_STREAMS"))
        self._queue = openvino.AsyncInferQueue(self._compiled, self._streams)
        self._queue.set_callback(self._collect)
        self._outputs: dict[int, np.ndarray] = {}

    def _collect(self, request: Any, start: int) -> None:
        self._outputs[start] = request.get_output_tensor(0).data.copy()

    def _tokens(self, texts: list[str]) -> dict[str, np.ndarray]:
        tokens = self._tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self._max_length,
            return_tensors="np",
        )
        return {
            "input_ids": tokens["input_ids"].astype(np.int64),
            "attention_mask": tokens["attention_mask"].astype(np.int64),
        }

    def _encode_one(self, text: str) -> np.ndarray:
        """A lone text (a search query): one synchronous request, on one
        thread unless ``lone_text_threads`` says more (5.5 ms of CPU per
        query instead of 8.2 through the throughput queue, whose streams
        hand the work between threads), by a model compiled for its
        padded length when it is short (OPENVINO_QUERY_TOKEN_BUCKETS).
        Padding is masked out, as in a batch, so the vector is the same."""
        tokens = self._tokens([text])
        length = tokens["input_ids"].shape[1]
        bucket = _bucket(length)
        if bucket is not None and bucket > length:
            extra = ((0, 0), (0, bucket - length))
            tokens = {
                "input_ids": np.pad(
                    tokens["input_ids"], extra, constant_values=self._pad_token_id
                ),
                "attention_mask": np.pad(tokens["attention_mask"], extra),
            }
        output = self._single_request(bucket).infer(tokens)
        return normalised(next(iter(output.values())))

    def warm_up(self) -> None:
        """Compile and run once the model for every length a lone text may
        have (each bucket, and any length past them), which would otherwise
        happen on the first text of each: seconds apiece for a large model."""
        for length in (
            *OPENVINO_QUERY_TOKEN_BUCKETS,
            OPENVINO_QUERY_TOKEN_BUCKETS[-1] + 1,
        ):
            tokens = {
                "input_ids": np.full((1, length), self._pad_token_id, dtype=np.int64),
                "attention_mask": np.ones((1, length), dtype=np.int64),
            }
            self._single_request(_bucket(length)).infer(tokens)

    def _single_request(self, length: int | None) -> Any:
        """The request for one text of ``length`` tokens (None: any length),
        compiled for latency on first use."""
        if length not in self._single:
            model = self._converted
            if length is not None:
                model = model.clone()
                model.reshape({"input_ids": [1, length], "attention_mask": [1, length]})
            compiled = self._core.compile_model(
                model,
                "CPU",
                {
                    "INFERENCE_PRECISION_HINT": self._precision,
                    "PERFORMANCE_HINT": "LATENCY",
                    "NUM_STREAMS": 1,
                    "INFERENCE_NUM_THREADS": self._lone_text_threads,
                },
            )
            self._single[length] = compiled.create_infer_request()
        return self._single[length]

    def encode(self, texts: list[str]) -> np.ndarray:
        """Not re-entrant: the embedder's lock serialises callers."""
        if len(texts) == 1:
            return self._encode_one(texts[0])
        order = np.argsort([-len(text) for text in texts], kind="stable")
        self._outputs = {}
        queue = self._queue
        # A few texts (the passages the answer reader reads) are spread over
        # the streams: one batch runs on one core.
        batch = max(1, min(OPENVINO_BATCH_SIZE, -(-len(texts) // self._streams)))
        for start in range(0, len(texts), batch):
            rows = order[start : start + batch]
            queue.start_async(self._tokens([texts[row] for row in rows]), start)
        queue.wait_all()
        # Batches in start order are the texts in ``order``; put them back.
        in_order = np.concatenate(
            [self._outputs[start] for start in sorted(self._outputs)]
        )
        result = np.empty_like(in_order)
        result[order] = in_order
        return normalised(result)
