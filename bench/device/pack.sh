#!/bin/sh
#  pack.sh: builds the kernel benchmarks here and packs them, with every
#  shared library they need that a bare remote machine may lack, into
#  bench/device/payload/ (git-ignored), for run.sh on the remote machine.
#
#  Left out: the OpenCL ICD loader (libOpenCL.so.1, the remote's own one
#  must find its driver) and glibc's libraries (libc, libm, libpthread,
#  libdl, librt, ld-linux), which must come from the remote's own loader.
#  Kept: libczmq, libzmq and their dependencies, libmsgpackc, libhiredis,
#  libclblast and its C++ runtime (libstdc++, libgcc_s), since the remote
#  may not have these versions.
#
#  Usage (from the repository root): bench/device/pack.sh [BUILD_DIR]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-/tmp/build-bench-pack}
payload="$root/bench/device/payload"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRXQ_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target bench_gemm bench_gemv bench_quantize gemv_probe bench_llm >/dev/null
rm -rf "$payload"
mkdir -p "$payload/lib"
for prog in bench_gemm bench_gemv bench_quantize gemv_probe bench_llm; do
    cp "$build/bin/$prog" "$payload/"
    ldd "$build/bin/$prog" | awk '/=> \// { print $1, $3 }' | while read -r name path; do
        case "$name" in
            libOpenCL.so*|libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*) ;;
            *) cp -L "$path" "$payload/lib/$name" ;;
        esac
    done
done
#  The kernels are embedded in the binaries; ship the sources too, so a
#  run can be repeated with RXQ_KERNEL_DIR after editing one on the remote.
cp -r "$root/kernels" "$payload/kernels-src"
#  gemv_probe reads its sources at run time (--src).
mkdir -p "$payload/src/common" "$payload/src/kernels" "$payload/src/bench"
cp "$root/common/cmn_quant_blocks.h" "$payload/src/common/"
cp "$root/kernels/qmatmul.cl" "$payload/src/kernels/"
cp "$root/bench/gemv_probe.cl" "$payload/src/bench/"
cp "$root/bench/device/run.sh" "$payload/"
(cd "$root" && git describe --always --dirty 2>/dev/null || echo nogit) > "$payload/VERSION"
ls -la "$payload" "$payload/lib"
du -sh "$payload"
