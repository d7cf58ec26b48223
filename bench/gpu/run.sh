#!/usr/bin/env bash
# On the GPU machine, from the repository root, once every part has arrived
# in $CARRY: reassemble, install beside the image's torch, serve SmolLM2 with
# vLLM, and run bench/gpu/vllm_client.py. Everything lands in $OUT.
set -uo pipefail
CARRY=${CARRY:-/tmp/carry}
: "${OUT:?OUT must name the folder for results}"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1
if [ ! -d /tmp/bundle/wheels ]; then
  mkdir -p /tmp/bundle && cat "$CARRY"/part-* | tar -xf - -C /tmp/bundle || exit 1
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site /tmp/bundle/wheels/*.whl || exit 1
fi
# The larger model's parts (prepare.sh with QWEN=1), when they came too.
if ls "$CARRY"/qpart-* >/dev/null 2>&1 && [ ! -d /tmp/bundle/qwen ]; then
  cat "$CARRY"/qpart-* | tar -xf - -C /tmp/bundle || exit 1
fi
MODEL=${MODEL:-/tmp/bundle/model}
# A folder without weights (shape_folder.py) is served with random ones.
LOAD_ARGS=()
ls "$MODEL"/*.safetensors >/dev/null 2>&1 || LOAD_ARGS=(--load-format dummy)
export PYTHONPATH=/tmp/site
python3 -c 'import vllm, torch; print("vllm", vllm.__version__, "torch", torch.__version__)' || exit 1
# vLLM 0.26 imports flashinfer for its sampler check; its own sampler is
# kept, so flashinfer's kernels are never compiled.
export VLLM_USE_FLASHINFER_SAMPLER=0
MAX_LEN=${MAX_LEN:-8192}
# RESTART=1 stops the server this script started, to try other flags.
if [ "${RESTART:-0}" = 1 ] && [ -f /tmp/vllm.pid ]; then
  kill -- "-$(cat /tmp/vllm.pid)" 2>/dev/null
  for _ in $(seq 1 60); do
    curl -fsS http://127.0.0.1:8000/health >/dev/null 2>&1 || break; sleep 1
  done
  sleep 3
fi
if ! curl -fsS http://127.0.0.1:8000/health >/dev/null 2>&1; then
  setsid python3 -m vllm.entrypoints.openai.api_server --model "$MODEL" \
    --served-model-name archivist-llm --max-model-len "$MAX_LEN" \
    --gpu-memory-utilization "${GPU_MEMORY_UTILIZATION:-0.4}" --dtype "${DTYPE:-float16}" \
    --port 8000 "${LOAD_ARGS[@]}" "${VLLM_SCHEDULING:---no-async-scheduling}" \
    ${VLLM_EXTRA_ARGS:-} > /tmp/vllm.log 2>&1 < /dev/null &
  SERVER=$!
  echo "$SERVER" > /tmp/vllm.pid
  for _ in $(seq 1 300); do
    curl -fsS http://127.0.0.1:8000/health >/dev/null 2>&1 && break
    sleep 1; kill -0 "$SERVER" 2>/dev/null || break
  done
fi
curl -fsS http://127.0.0.1:8000/health || { tail -80 /tmp/vllm.log; exit 1; }
nvidia-smi --query-gpu=name,memory.used --format=csv > "$OUT/gpu.txt"
# SERVE_ONLY=1 stops here, the server up: a larger model's start and the
# client's run then each fit one command.
[ "${SERVE_ONLY:-0}" = 1 ] && { grep -E "Loading|compile|graph" /tmp/vllm.log | tail -8; exit 0; }
timeout "${CLIENT_TIMEOUT:-400}" python3 bench/gpu/vllm_client.py --model archivist-llm \
  --max-model-len "$MAX_LEN" --out "$OUT" ${CLIENT_ARGS:-} 2>&1 | tail -120
cp /tmp/vllm.log "$OUT/vllm.log"; grep -E "Aborted|abort|ERROR" /tmp/vllm.log | tail -20
