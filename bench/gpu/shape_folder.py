"""A model folder with Qwen2.5-7B-Instruct's shape and no weights, for the
GPU run: its config (the compose ``gpu`` profile's default model) and the
Qwen2.5 tokenizer, taken from a Qwen2.5 GGUF file that is already here
(the default model's). vLLM serves it with ``--load-format dummy``, which
fills the weights with random values on the GPU: the answers are noise, but
prefill, decode and scheduling cost what the real 7B model costs, and the
15 GB of real weights never has to be carried onto the machine.

    python bench/gpu/shape_folder.py path/to/qwen2.5.gguf out/folder
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from transformers import AutoTokenizer

# Qwen/Qwen2.5-7B-Instruct's config.json, as published.
QWEN2_5_7B_INSTRUCT = {
    "architectures": ["Qwen2ForCausalLM"],
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "hidden_act": "silu",
    "hidden_size": 3584,
    "initializer_range": 0.02,
    "intermediate_size": 18944,
    "max_position_embeddings": 32768,
    "max_window_layers": 28,
    "model_type": "qwen2",
    "num_attention_heads": 28,
    "num_hidden_layers": 28,
    "num_key_value_heads": 4,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": None,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 152064,
}

gguf, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out)
(out / "config.json").write_text(json.dumps(QWEN2_5_7B_INSTRUCT, indent=2))
tokenizer = json.loads((out / "tokenizer_config.json").read_text())
# The GPU machine's transformers (5.17) knows the generic class by this name.
tokenizer["tokenizer_class"] = "PreTrainedTokenizerFast"
(out / "tokenizer_config.json").write_text(json.dumps(tokenizer, indent=2))
