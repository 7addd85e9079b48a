#!/bin/sh
#  run.sh: runs the kernel benchmarks on the remote GPU machine from the
#  repository root, with bench/device/payload/ (made by pack.sh) carried.
#  Writes every output to $OUT/ (default ./out) and prints a summary.
#  Total time is kept under 5 minutes: each step has a timeout.
#
#  Selection: the first OpenCL device whose "platform / name" contains
#  $RXQ_BENCH_DEVICE (default "NVIDIA"); PoCL is also measured briefly at
#  small sizes when present, for comparison.
set -u
here=$(cd "$(dirname "$0")" && pwd)
payload="$here/payload"
[ -d "$payload" ] || payload="$here"        # run.sh copied into the payload
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
sel=${RXQ_BENCH_DEVICE:-NVIDIA}
export LD_LIBRARY_PATH="$payload/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export RXQ_LOG_LEVEL=${RXQ_LOG_LEVEL:-warn}

step () {   # step NAME TIMEOUT_S COMMAND...: runs, logs to $OUT/NAME.txt
    name=$1; limit=$2; shift 2
    echo "== $name: $*" | tee -a "$OUT/run.log"
    start=$(date +%s)
    timeout "$limit" "$@" > "$OUT/$name.txt" 2> "$OUT/$name.err"
    rc=$?
    echo "   rc=$rc in $(( $(date +%s) - start )) s" | tee -a "$OUT/run.log"
    tail -n 12 "$OUT/$name.txt"
    [ $rc -eq 0 ] || tail -n 5 "$OUT/$name.err"
    return 0
}

{
    echo "date: $(date -u)"; uname -a
    echo "payload version: $(cat "$payload/VERSION" 2>/dev/null)"
    ldd --version 2>&1 | head -1
    for b in bench_gemm bench_gemv bench_quantize; do echo "--- ldd $b"; ldd "$payload/$b"; done
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv
    command -v clinfo >/dev/null && clinfo -l
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

#  Device list: bench_gemv with a bad selector lists what exists.
"$payload/bench_gemv" --device "no-such-device-listing" > "$OUT/devices.txt" 2>&1
cat "$OUT/devices.txt"

#  1. SGEMM on the GPU with the shipped NVIDIA row, then a tuning search
#     (40 s) and the same sizes with the winner.
step gemm_gpu 75 "$payload/bench_gemm" --device "$sel" --sizes 1024,2048,3072,4096 --reps 5
step gemm_gpu_tuned 110 "$payload/bench_gemm" --device "$sel" --sizes 1024,2048,4096 --reps 5 --tune 40000
#  2. Quantized GEMV against the copy bandwidth (rotating over 1 GiB of
#     weights, so the 50 MB L2 does not hold them).
#     Model shapes (launch-bound on a 4 TB/s GPU: 9 MB take 2 us) and
#     large ones (150-290 MB per matrix).
step gemv_gpu 150 "$payload/bench_gemv" --device "$sel" --shapes 4096x4096,11008x4096,4096x11008,16384x16384,32768x8192 --reps 50 --copy-mb 1024 --rotate-mb 1024
#  2b. What bounds the GEMV: the shipped kernel next to bare reads of
#      its weights and other layouts and decodes (bench/gemv_probe.c).
step gemv_probe 120 "$payload/gemv_probe" --device "$sel" --src "$payload/src"
#  3. Quantize throughput (GB/s of input) next to the copy bandwidth, on a
#     generated 1 GiB model, for a simple and a K-quant type.
step quant_q4_0 60 "$payload/bench_quantize" -d "$sel" -t q4_0 -s 1024
step quant_q4_k 60 "$payload/bench_quantize" -d "$sel" -t q4_k -s 512
#  4. PoCL on the same host, small, when present.
if grep -qi "portable" "$OUT/devices.txt"; then
    step gemm_pocl 30 "$payload/bench_gemm" --device "Portable" --sizes 1024 --reps 3
fi

echo
echo "===== summary ($OUT) ====="
grep -h "^device:" "$OUT/gemm_gpu.txt" 2>/dev/null | head -1
for f in gemm_gpu gemm_gpu_tuned gemv_gpu quant_q4_0 quant_q4_k gemm_pocl; do
    [ -f "$OUT/$f.txt" ] || continue
    echo "--- $f"
    grep -E "^ *[0-9]+ |^q[0-9]|^copy|^summary|^tuned|^ours:|GB/s" "$OUT/$f.txt"
done
