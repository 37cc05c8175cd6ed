#!/usr/bin/env bash
# Everything that needs a GPU, in one short run for a lent GPU machine (device time is scarce:
# prepare once here, then one `run` call). On this machine first: ../shared/gpu/prepare.sh
# Then, with carry [".gpu"]:   bash .gpu/run.sh bash scripts/gpu_check.sh
# Results land in $OUT (or ./gpu-check): the CUDA tests' outcome, `backends`, the torch/cuda
# benchmark table for docs/benchmarks.md, and an optimize run that distills on CUDA and
# measures on torch/cuda (issue 11's "done when").
set -uo pipefail
out=${OUT:-gpu-check}; mkdir -p "$out"
export QT_QPA_PLATFORM=offscreen
python3 -m paretolab backends > "$out/backends.txt" 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1
timeout 300 python3 -m pytest -q -o addopts= -p no:cacheprovider -x \
  tests/core/test_torch_target.py tests/core/test_prune_distill.py tests/core/test_importance_lowrank.py \
  tests/core/test_measure.py -k "cuda or torch or gpu or taylor" > "$out/tests.txt" 2>&1
echo "tests exit $?" >> "$out/tests.txt"
timeout 120 python3 -m paretolab optimize resources/sample/digits32_resnet.onnx --prune structured:0.5 \
  --distill 2 --backend torch --device cuda --out "$out/variants" --name distilled-on-cuda > "$out/optimize.txt" 2>&1
echo "optimize exit $?" >> "$out/optimize.txt"
cp "$out"/variants/*.metrics.json "$out/" 2>/dev/null
timeout 180 python3 bench/torch_target.py --device cuda --epochs 2 --markdown > "$out/bench_torch_cuda.md" 2>&1
echo "bench exit $?" >> "$out/bench_torch_cuda.md"
timeout 200 python3 bench/torch_target.py --device cuda --backend inductor --epochs 2 --markdown \
  > "$out/bench_inductor_cuda.md" 2>&1
echo "bench exit $?" >> "$out/bench_inductor_cuda.md"
rm -rf "$out/variants"
tail -n 3 "$out"/*.txt "$out"/*.md
