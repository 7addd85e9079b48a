#!/bin/sh
#  sweep.sh: parameter sweeps for the GEMV and SGEMM kernels on the remote
#  GPU (same payload and conventions as run.sh). Each configuration runs
#  in its own process with --options; outputs go to $OUT/sweep_*.txt and
#  a summary is printed. Meant for choosing the shipped tuning rows.
#  GEMV_CFGS entries are W:R or W:R:U (QMM_WGS, GEMV_ROWS, GEMV_UNIT);
#  SWEEP_BUDGET_S (default 0: none) skips the configurations that would
#  start after that many seconds.
set -u
here=$(cd "$(dirname "$0")" && pwd)
payload="$here/payload"
[ -d "$payload" ] || payload="$here"
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
sel=${RXQ_BENCH_DEVICE:-NVIDIA}
export LD_LIBRARY_PATH="$payload/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export RXQ_LOG_LEVEL=${RXQ_LOG_LEVEL:-warn}
gemv_cfgs=${GEMV_CFGS:-"64:1 64:4 128:2 128:4 128:8 256:2 256:4 256:8"}
gemv_shapes=${GEMV_SHAPES:-4096x4096,16384x16384}
gemm_cfgs=${GEMM_CFGS:-"128,128,16,8,8,4,1 128,128,8,8,8,4,1 128,128,32,8,8,4,1 64,128,16,8,8,4,1 128,64,16,8,8,4,1 64,64,16,4,4,4,1 64,64,16,8,8,4,1"}
gemm_sizes=${GEMM_SIZES:-1024,2048,3072,4096}
start=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv 2>&1 | tail -1
budget=${SWEEP_BUDGET_S:-0}
for c in $gemv_cfgs; do
    w=${c%%:*}; r=${c#*:}; u=0
    case "$r" in *:*) u=${r#*:}; r=${r%%:*} ;; esac
    f="$OUT/sweep_gemv.txt"
    if [ "$budget" -gt 0 ] && [ $(( $(date +%s) - start )) -ge "$budget" ]; then
        echo "== gemv QMM_WGS=$w GEMV_ROWS=$r GEMV_UNIT=$u skipped (budget)" >> "$f"
        continue
    fi
    echo "== gemv QMM_WGS=$w GEMV_ROWS=$r GEMV_UNIT=$u" >> "$f"
    timeout 60 "$payload/bench_gemv" --device "$sel" \
        --options "-DQMM_WGS=$w -DGEMV_ROWS=$r -DGEMV_UNIT=$u" \
        --shapes "$gemv_shapes" --reps 30 --copy-mb 1024 --rotate-mb 1024 >> "$f" 2>&1
    echo "   rc=$? t=$(( $(date +%s) - start ))" >> "$f"
done
for c in $gemm_cfgs; do
    set -- $(echo "$c" | tr ',' ' ')
    o="-DDIRECT=0 -DTSM=$1 -DTSN=$2 -DTSK=$3 -DWPTM=$4 -DWPTN=$5 -DVW=$6 -DAPAD=$7"
    f="$OUT/sweep_gemm.txt"
    echo "== gemm $o" >> "$f"
    timeout 60 "$payload/bench_gemm" --device "$sel" --options "$o" --sizes "$gemm_sizes" \
        --reps 5 >> "$f" 2>&1
    echo "   rc=$? t=$(( $(date +%s) - start ))" >> "$f"
done
echo "===== gemv"
grep -E "^==|^copy|^q[0-9]|rc=" "$OUT/sweep_gemv.txt"
echo "===== gemm"
grep -E "^==|^ +[0-9]+ |rc=|bench_gemm:" "$OUT/sweep_gemm.txt"
