#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py: one table, under 8 minutes on one CUDA GPU), with the machine
# printed first. Arguments go to the script, e.g. `--device cpu` or `--json rows.json`.
#   bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv
fi
exec timeout 540 "$PY" benchmarks/gpu_check.py "$@"
