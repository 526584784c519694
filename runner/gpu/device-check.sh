#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds runner/gpu/capacity.cu with nvcc and runs the device
# check (runner/gpu/device-check.ts: the GPU solver against the CPU reference byte for byte,
# then a full-size challenge timed against the catalog's deadlines and checked by the
# platform's verifier). Needs nvcc and cuBLAS, Node 18+ as $NODE (default `node`), and
# runner/dist/device-check.js (`node runner/gpu/build-device-check.ts`). Writes the report to
# $OUT/device-check.txt (default /tmp) and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
node=${NODE:-node}
out=${OUT:-/tmp}
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv
nvcc --version | tail -n 2
nvcc -O3 -std=c++17 -arch=native -o /tmp/capacity runner/gpu/capacity.cu -lcublasLt
"$node" runner/dist/device-check.js --solver /tmp/capacity --out "$out/device-check.txt"
