/*  bench_quantize: throughput of the quantization pipeline (wrk_quantize)
 *  on one device, next to the device's copy bandwidth measured in the
 *  same run (wrk_bench_copy, kernels/copy.cl).
 *
 *  Usage: bench_quantize [-d DEVICE] [-t TYPE] [-s MIB] [-c CHUNK_MIB] [-k]
 *    DEVICE  wrk_device selector (default: first GPU, else first device)
 *    TYPE    target type (default q4_0; any wrk_quantize_parse_type name)
 *    MIB     size of the generated F32 model in MiB (default 256)
 *    -k      keep the generated files in /tmp
 *  The model is random F32 weights (4096-value rows, 16 MiB tensors),
 *  written to /tmp with streamed data, quantized to /tmp/...-TYPE.gguf.
 *  Prints GB/s of input (input file bytes / wall time of
 *  wrk_quantize_file, which includes reading, device work, statistics
 *  and writing the output) and the ratio to the copy bandwidth.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <czmq.h>
#include "cmn_codec.h"
#include "cmn_gguf_writer.h"
#include "cmn_quant.h"
#include "wrk_bench.h"
#include "wrk_device.h"
#include "wrk_quantize.h"

#define S_COLS 4096
#define S_ROWS 1024

static int
s_fill (void *arg, void *buf, uint64_t offset, size_t len, cmn_err_t *err)
{
    (void) err;
    uint64_t s = (uint64_t) (uintptr_t) arg * 0x9e3779b97f4a7c15ull + offset;
    float *f = buf;
    for (size_t i = 0; i < len / 4; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        f [i] = (float) ((int64_t) (s >> 40) - (1 << 23)) * (0.05f / (1 << 23));
    }
    return 0;
}

int
main (int argc, char **argv)
{
    const char *sel = NULL, *type_s = "q4_0";
    size_t mib = 256, chunk_mib = 0;
    bool keep = false;
    int opt;
    while ((opt = getopt (argc, argv, "d:t:s:c:k")) != -1) {
        switch (opt) {
            case 'd': sel = optarg; break;
            case 't': type_s = optarg; break;
            case 's': mib = strtoul (optarg, NULL, 10); break;
            case 'c': chunk_mib = strtoul (optarg, NULL, 10); break;
            case 'k': keep = true; break;
            default:
                fprintf (stderr, "usage: bench_quantize [-d DEVICE] [-t TYPE] [-s MIB] [-c CHUNK_MIB] [-k]\n");
                return 2;
        }
    }
    cmn_err_t err = { 0 };
    wrk_quantize_opts_t opts = { .chunk_bytes = chunk_mib << 20 };
    if (wrk_quantize_parse_type (type_s, &opts.type, &err) || opts.type == WRK_QUANTIZE_MIXED) {
        fprintf (stderr, "bench_quantize: %s\n", err.code ? err.msg : "mixed needs a budget");
        return 2;
    }
    wrk_device_t *dev = wrk_device_new (sel, NULL, &err);
    if (!dev) {
        fprintf (stderr, "bench_quantize: %s\n", err.msg);
        return 1;
    }
    char in [128], out [160];
    snprintf (in, sizeof in, "/tmp/bench_quantize-%d.gguf", (int) getpid ());
    snprintf (out, sizeof out, "/tmp/bench_quantize-%d-%s.gguf", (int) getpid (), type_s);
    const size_t tensors = (mib + 15) / 16;
    cmn_gguf_writer_t *w = cmn_gguf_writer_new ();
    int rc = 1;
    for (size_t i = 0; i < tensors && w; i++) {
        char name [64];
        snprintf (name, sizeof name, "blk.%zu.ffn_up.weight", i);
        const int64_t ne [2] = { S_COLS, S_ROWS };
        if (cmn_gguf_writer_add_tensor (w, name, GGML_TYPE_F32, 2, ne, NULL, s_fill,
                                        (void *) (uintptr_t) (i + 1), &err))
            goto done;
    }
    if (!w || cmn_gguf_writer_write_file (w, in, &err))
        goto done;
    //  Copy bandwidth of the same device, same run.
    uint64_t copy_bytes = 256ull << 20, ns [5];
    if (wrk_bench_copy (dev, NULL, &copy_bytes, 5, ns, &err))
        goto done;
    uint64_t best = ns [0];
    for (int i = 1; i < 5; i++)
        if (ns [i] < best)
            best = ns [i];
    const double copy_gbps = 2.0 * (double) copy_bytes / (double) best;
    //  Twice: the first run builds the quantize program (a cold compile
    //  can take seconds on a GPU driver) and reads the model into the page
    //  cache; the second, which is reported, is the steady state.
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    double cold_s = 0;
    for (int run = 0; run < 2; run++) {
        msgpack_sbuffer_clear (&sb);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
        const int64_t t0 = zclock_usecs ();
        if (wrk_quantize_file (dev, in, out, &opts, NULL, NULL, &pk, &err)) {
            msgpack_sbuffer_destroy (&sb);
            goto done;
        }
        if (run == 0)
            cold_s = (double) (zclock_usecs () - t0) / 1e6;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init (&u);
    msgpack_unpack_next (&u, sb.data, sb.size, NULL);
    double gbps = 0, seconds = 0;
    uint64_t in_bytes = 0, out_bytes = 0;
    cmn_codec_get_double (&u.data, "gbps", &gbps, NULL);
    cmn_codec_get_double (&u.data, "seconds", &seconds, NULL);
    double kernel_gbps = 0, kernel_s = 0;
    cmn_codec_get_double (&u.data, "kernel_gbps", &kernel_gbps, NULL);
    cmn_codec_get_double (&u.data, "kernel_seconds", &kernel_s, NULL);
    cmn_codec_get_uint (&u.data, "input_bytes", &in_bytes, NULL);
    cmn_codec_get_uint (&u.data, "output_bytes", &out_bytes, NULL);
    printf ("device        %s / %s\n", wrk_device_info (dev)->platform, wrk_device_info (dev)->name);
    printf ("model         %zu tensors of %dx%d F32, %.1f MB -> %s %.1f MB\n", tensors, S_ROWS,
            S_COLS, in_bytes / 1e6, type_s, out_bytes / 1e6);
    printf ("quantize      %.3f s, %.3f GB/s of input (first, cold run: %.3f s)\n", seconds,
            gbps, cold_s);
    printf ("copy          %.3f GB/s (copy.cl, %llu MiB, best of 5)\n", copy_gbps,
            (unsigned long long) (copy_bytes >> 20));
    printf ("ratio         %.4f of copy bandwidth\n", copy_gbps > 0 ? gbps / copy_gbps : 0);
    printf ("kernels       %.3f s of device time (quantize, dequantize, error), %.3f GB/s "
            "of input, %.4f of copy bandwidth\n", kernel_s, kernel_gbps,
            copy_gbps > 0 ? kernel_gbps / copy_gbps : 0);
    msgpack_unpacked_destroy (&u);
    msgpack_sbuffer_destroy (&sb);
    rc = 0;
done:
    if (rc)
        fprintf (stderr, "bench_quantize: %s\n", err.msg);
    if (!keep) {
        unlink (in);
        unlink (out);
    }
    cmn_gguf_writer_destroy (&w);
    wrk_device_destroy (&dev);
    return rc;
}
