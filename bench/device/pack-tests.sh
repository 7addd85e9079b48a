#!/bin/sh
#  pack-tests.sh: builds the kernel tests (tests/kernels/) here in Release
#  and packs them, with the shared libraries a bare remote machine may
#  lack (as pack.sh does), into bench/device/tests-payload/ (git-ignored),
#  with run-tests.sh. On the GPU machine, from the repository root:
#      OUT=$OUT sh bench/device/tests-payload/run-tests.sh NVIDIA
#  runs every kernel test on the first OpenCL device whose "platform /
#  name" contains NVIDIA (RXQ_TEST_DEVICE) and writes each one's output to
#  $OUT.
#
#  Usage (from the repository root): bench/device/pack-tests.sh [BUILD_DIR]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-/tmp/build-kernel-tests}
payload="$root/bench/device/tests-payload"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
tests=$(cd "$root/tests/kernels" && ls test_*.c | sed 's/^test_/kernels_test_/; s/\.c$//')
for t in $tests; do cmake --build "$build" -j2 --target "$t" >/dev/null; done
rm -rf "$payload"
mkdir -p "$payload/lib"
for t in $tests; do
    cp "$build/tests/$t" "$payload/"
    ldd "$build/tests/$t" | awk '/=> \// { print $1, $3 }' | while read -r name path; do
        case "$name" in
            libOpenCL.so*|libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libresolv.so*|ld-linux*) ;;
            *) cp -L "$path" "$payload/lib/$name" ;;
        esac
    done
done
cat > "$payload/run-tests.sh" <<'RUN'
#!/bin/sh
#  Runs every packed kernel test on the device named by $1 (default NVIDIA).
cd "$(dirname "$0")"
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/lib RXQ_TEST_DEVICE=${1:-NVIDIA} RXQ_LOG_LEVEL=warn
status=0
for t in ./kernels_test_*; do
    name=$(basename "$t")
    timeout 240 "$t" > "$OUT/$name.txt" 2>&1 || status=1
    echo "$name: $(grep Synthesis "$OUT/$name.txt")"
    grep -B1 -A3 'Assertion Failed' "$OUT/$name.txt" | head -8
done
exit $status
RUN
chmod +x "$payload/run-tests.sh"
du -sh "$payload"
