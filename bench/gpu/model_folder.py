"""The model vLLM serves in the GPU run: a float16 safetensors folder made
from a GGUF file (the SmolLM2-135M-Instruct the tests use, or
Qwen2.5-Coder-0.5B-Instruct) (transformers dequantizes
it; needs the ``gguf`` and ``accelerate`` packages), with its tokenizer,
chat template and config. vLLM 0.26 did not load the GGUF file itself
(it read the file as a JSON config), so the run serves this folder.

    python bench/gpu/model_folder.py path/to/model.gguf out/folder
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

gguf, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out)
AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out)
model = AutoModelForCausalLM.from_pretrained(
    gguf.parent, gguf_file=gguf.name, dtype=torch.float16
)
# A GGUF-loaded model refuses save_pretrained; its dequantized tensors are
# written directly. A tied output layer is the embeddings (SmolLM2's GGUF);
# Qwen2.5's GGUF carries its own.
tied = model.config.tie_word_embeddings
weights = {
    name: tensor.detach().to(torch.float16).contiguous().clone()
    for name, tensor in model.state_dict().items()
    if not (tied and name == "lm_head.weight")
}
save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
config = json.loads((out / "config.json").read_text())
# transformers leaves the architecture out of a config read from GGUF.
config["architectures"] = [f"{config['model_type'].title()}ForCausalLM"]
config["torch_dtype"] = "float16"
(out / "config.json").write_text(json.dumps(config, indent=2))
tokenizer = json.loads((out / "tokenizer_config.json").read_text())
# The GPU machine's transformers (5.17) knows the generic class by this name.
tokenizer["tokenizer_class"] = "PreTrainedTokenizerFast"
(out / "tokenizer_config.json").write_text(json.dumps(tokenizer, indent=2))
