#!/usr/bin/env bash
# One prepared GPU check (run on a CUDA machine from the repo root; writes under ${OUT:-gpu_out}):
#  1. torchrun + NCCL: token-flow trains on a small digits-rotate zoo on the GPU (1 process,
#     backend nccl), beside the same run on the CPU with gloo; final loss and held-out accuracy.
#  2. benchmarks/scale.py for token-flow at ~10k, ~100k and ~1M weights, fitted on the GPU and on
#     the CPU of the same machine (1 torch thread), time and memory per size.
# Needs a zoo at gpu_carry/zoo: weightspace zoo build --out gpu_carry/zoo --tasks 32 --heldout 8 --init shared
set -uo pipefail
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'nccl', torch.cuda.nccl.version() if torch.cuda.is_available() else None)"
for dev in cuda cpu; do
  backend=$([ "$dev" = cuda ] && echo nccl || echo gloo)
  start=$(date +%s.%N)
  python3 -m torch.distributed.run --standalone --nproc_per_node=1 -m weightspace.distributed.train_generator \
      gpu_carry/zoo --generator token-flow --condition descriptor --out "$OUT/gen_$dev" --backend "$backend" \
      --quiet device=$dev steps=600 2>&1 | tail -2
  echo "torchrun $dev/$backend wall $(python3 -c "import time; print(round(time.time() - $start, 1))") s"
  python3 -c "import json; c = json.load(open('$OUT/gen_$dev/card.json')); f = json.load(open('$OUT/gen_$dev/config.json'))['fit_info']; print('$dev', c['heldout'], 'processes', c['processes'], 'final_loss', f.get('final_loss'), 'fit_seconds', f.get('seconds', f.get('fit_seconds')))" 2>&1 | tail -1
done
for dev in cuda cpu; do
  python3 benchmarks/scale.py --generators token-flow --epochs 2 --device $dev --json 2>&1 | tee "$OUT/scale_$dev.txt" | tail -14
done
