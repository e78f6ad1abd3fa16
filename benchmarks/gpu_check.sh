#!/usr/bin/env bash
# The one prepared GPU check (issue "Speed and quality", item 5), for a session lent the device machine.
# Here, first:  mkdir -p .data && cp ../shared/data/tinyshakespeare.txt .data/ && echo /.data/ >> .git/info/exclude
# (plus wheels for what the machine lacks, see the device README), then:
#   run(command="bash benchmarks/gpu_check.sh", carry=[".data", ".whl"], timeout_s=540)
# Everything lands in $OUT: the figures (gpu.jsonl) and a checkpoint trained on the GPU, which this
# machine then samples on the CPU:  rnn-tui sample <files_at>/gpu-run --length 200
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
export PYTHONUNBUFFERED=1
[ -d .whl ] && python3 -m pip install -q --no-index --no-deps .whl/*.whl
python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
{
  # 1. throughput of the default GPU preset (bf16, cuDNN) against the plain fp32 nn.LSTM loop, same run
  python3 benchmarks/throughput.py --steps 30 --rounds 2 --quality-steps 200
  # 2. time to val <= 1.47 on tinyshakespeare with the GPU defaults (eval events carry the elapsed steps)
  python3 -m rnn_tui train --data .data/tinyshakespeare.txt --max-minutes 3 --eval-every 50 --json \
      --checkpoint-dir "$OUT" --run-name gpu-run | grep -E '"(eval|done)"'
} 2>&1 | tee "$OUT/gpu.jsonl"
rm -rf "$OUT/gpu-run/best" "$OUT/gpu-run/optimizer.safetensors"  # the weights are what comes back
