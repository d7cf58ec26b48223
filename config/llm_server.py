"""llama-cpp-python's OpenAI-compatible server, started with llama.cpp's
"extra buffer types" (repacked and AMX weight layouts) turned off.

With them on, llama.cpp as bundled in llama-cpp-python 0.3.36 crashes
(SIGSEGV) on the first decode of more than one token on CPUs with AMX
(e.g. Sapphire Rapids): every chat prompt. The server has no option for it,
so the model's default parameters are wrapped before the server starts.
``LLM_WEIGHT_REPACK=1`` turns them back on where they work.
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any


def _without_extra_buffer_types() -> None:
    import llama_cpp
    import llama_cpp.llama_cpp as bindings

    original = bindings.llama_model_default_params

    def model_params() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    # llama.py reads it from the bindings module; the package re-exports it.
    bindings.llama_model_default_params = model_params
    llama_cpp.llama_model_default_params = model_params


def main() -> None:
    if os.environ.get("LLM_WEIGHT_REPACK") != "1":
        _without_extra_buffer_types()
    sys.argv = ["llama_cpp.server", *sys.argv[1:]]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
