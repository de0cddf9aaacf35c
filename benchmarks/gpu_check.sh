#!/usr/bin/env bash
# The GPU checks in one run: the CUDA tests, the speed benchmark and a profile on the GPU, the
# 5-seed protocol of chapter 7 on the GPU, and data-parallel training under torchrun on every
# GPU present (issue 18).
#
#   bash benchmarks/gpu_check.sh OUTDIR
#
# Needs a CUDA GPU, and TESS where emoser.data finds it (EMOSER_TESS_DIR; the benchmark uses YAF
# happy and sad only). Writes nvidia-smi.txt, pytest-gpu.log, bench.log, gpu.json, profile.log,
# gpu-profile.json, seeds-gpu.log and torchrun.log to OUTDIR; a failing step does not stop the
# next one. Keep it inside a lent machine's budget: about 8 minutes on an H100.
# Copy gpu.json to benchmarks/results/gpu-<name>.json: chapter 8 plots what it finds there.
set -u
out=${1:?usage: bash benchmarks/gpu_check.sh OUTDIR}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
status=0

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv \
    | tee "$out/nvidia-smi.txt"
"$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))" \
    | tee -a "$out/nvidia-smi.txt"

echo "=== CUDA tests"
"$py" -m pytest -q -p no:cacheprovider -m gpu tests/test_model.py tests/test_lstm.py tests/test_speed.py \
    tests/test_train.py tests/test_original.py 2>&1 | tee "$out/pytest-gpu.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

echo "=== benchmark"
"$py" benchmarks/training_speed.py --device cuda --epochs 4 --out "$out/gpu.json" \
    --variants original,default,float64-default,torch-lstm,float64-torch-lstm,previous-default,no-wavefront,unfused-lstm,to-target \
    2>&1 | tee "$out/bench.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

echo "=== profile of one default epoch"
"$py" benchmarks/training_speed.py --device cuda --profile --out "$out/gpu-profile.json" 2>&1 \
    | tee "$out/profile.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

echo "=== chapter 7's protocol on the GPU: 5 seeds, the course recipe (>= 99 % mean expected)"
"$py" - <<'PY' 2>&1 | tee "$out/seeds-gpu.log"
import emoser
data = emoser.data.load_tess(emotions=("happy", "sad"), speakers=("YAF",))
spread = emoser.experiments.run_seeds(data, range(5), recipe=emoser.training.RECIPE, device="cuda")
print(emoser.experiments.seed_table(spread, seconds=True))
PY
[ "${PIPESTATUS[0]}" = 0 ] || status=1

echo "=== data-parallel training: torchrun on every GPU (NCCL), then predict in one process"
gpus=$("$py" -c "import torch; print(torch.cuda.device_count())")
"$py" -m torch.distributed.run --standalone --nproc_per_node="$gpus" -m emoser train \
    --device cuda --out "$out/ddp.pt" --no-progress 2>&1 | tee "$out/torchrun.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
wav=$(find "${EMOSER_TESS_DIR:-.}" -name 'YAF_back_happy.wav' | head -n 1)
[ -n "$wav" ] && "$py" -m emoser predict "$wav" --checkpoint "$out/ddp.pt" 2>&1 \
    | tee -a "$out/torchrun.log"
exit $status
