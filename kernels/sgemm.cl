/*  sgemm: single-precision matrix multiply, row-major,
 *
 *      C = alpha * A * B + beta * C
 *
 *  A is M x K with row stride lda, B is K x N with row stride ldb, C is
 *  M x N with row stride ldc (all in floats; a_off, b_off, c_off are
 *  element offsets into the buffers). When beta == 0, C is not read, so it
 *  may hold anything (NaN included), as in BLAS.
 *
 *  Two schemes, chosen with -DDIRECT (the per-device tuning table,
 *  worker/wrk_tune.c, picks one):
 *
 *  DIRECT=0 (GPUs): each work-group computes a TSM x TSN tile of C,
 *  walking K in steps of TSK; each step stages a TSM x TSK tile of A
 *  (stored transposed, k-major) and a TSK x TSN tile of B in local memory,
 *  then every work-item accumulates a WPTM x WPTN block of C in registers.
 *  Work-item (tn, tm) owns rows tm + i*RTSM and columns tn + j*RTSN of the
 *  tile, so neighbouring work-items read neighbouring local words. Tiles
 *  that lie wholly inside the matrices load with VW-wide vloads; edge
 *  tiles load element by element with bounds checks and zero fill.
 *
 *  DIRECT=1 (CPUs, PoCL): no local memory and no barrier. Each work-item
 *  owns a WPTM x WPTN block of C made of contiguous columns, kept as
 *  WPTM x (WPTN/VW) floatVW accumulators: per k it loads WPTN/VW vectors
 *  of one B row and broadcasts WPTM scalars of A, which is the register
 *  micro-kernel of CPU BLAS libraries written with OpenCL vector types, so
 *  it does not depend on the compiler vectorising across work-items. A
 *  CPU runtime runs the work-items of a group one after another on one
 *  core: the RTSM work-items of a group that share a column block re-read
 *  the same K x WPTN panel of B, which then comes from that core's cache.
 *  TSK is the unroll depth of the k loop. Rows past M read row M-1 and
 *  columns past N use scalar loads clamped to column N-1; neither is
 *  stored.
 *
 *  Both schemes accumulate each C element as one float sum over k in
 *  increasing order (a fused multiply-add per step in DIRECT=1), so the
 *  error bound of wrk_bench.h holds for every parameter set.
 *
 *  Launch: 2-D, local size (TSN/WPTN, TSM/WPTM), global size
 *  (ceil(N/TSN) * TSN/WPTN, ceil(M/TSM) * TSM/WPTM). Dimension 0 runs
 *  along N.
 *
 *  Tuning parameters (-D overrides; constraints are checked at compile
 *  time):
 *    DIRECT     0 local-memory tiles, 1 direct       0 or 1
 *    TSM, TSN   tile of C per work-group            TSM % WPTM == 0,
 *                                                   TSN % WPTN == 0
 *    TSK        DIRECT=0: depth of one K step       TSK % VW == 0
 *               DIRECT=1: k-loop unroll depth
 *    WPTM, WPTN rows, columns of C per work-item    DIRECT=1: WPTN % VW == 0
 *    VW         vector width of interior loads      1, 2, 4, 8 or 16;
 *                                                   TSN % VW == 0
 *    APAD       floats of padding per row of the    >= 0; 1 avoids bank
 *               transposed A tile (DIRECT=0)        conflicts on its stores
 *  Local memory (DIRECT=0): 4 * TSK * (TSM + APAD + TSN) bytes per group.
 *  Work-group size (TSM/WPTM) * (TSN/WPTN) must not exceed the device's.
 *  Indexes are int: M*lda, K*ldb and M*ldc (plus offsets) must be < 2^31.
 */

#ifndef DIRECT
#define DIRECT 0
#endif
#ifndef TSM
#define TSM 64
#endif
#ifndef TSN
#define TSN 64
#endif
#ifndef TSK
#define TSK 16
#endif
#ifndef WPTM
#define WPTM 4
#endif
#ifndef WPTN
#define WPTN 4
#endif
#ifndef VW
#define VW 4
#endif
#ifndef APAD
#define APAD 1
#endif

#define RTSM (TSM / WPTM)           // work-items along M
#define RTSN (TSN / WPTN)           // work-items along N
#define WGS (RTSM * RTSN)           // work-group size

typedef char sgemm_check_wptm [(TSM % WPTM == 0) ? 1 : -1];
typedef char sgemm_check_wptn [(TSN % WPTN == 0) ? 1 : -1];
typedef char sgemm_check_vw [((VW == 1) + (VW == 2) + (VW == 4) + (VW == 8) + (VW == 16))
                             ? 1 : -1];
typedef char sgemm_check_vwk [(DIRECT == 1 || TSK % VW == 0) ? 1 : -1];
typedef char sgemm_check_vwn [(TSN % VW == 0) ? 1 : -1];
typedef char sgemm_check_apad [(APAD >= 0) ? 1 : -1];
typedef char sgemm_check_direct [(DIRECT == 0 || (DIRECT == 1 && WPTN % VW == 0)) ? 1 : -1];

#define SGEMM_CAT(a, b) a##b
#define SGEMM_XCAT(a, b) SGEMM_CAT (a, b)
#if VW > 1
#define floatW SGEMM_XCAT (float, VW)
#define vloadW SGEMM_XCAT (vload, VW)
#define vstoreW SGEMM_XCAT (vstore, VW)
#endif

#if DIRECT == 0
__kernel __attribute__ ((reqd_work_group_size (RTSN, RTSM, 1)))
void
sgemm (const int M, const int N, const int K, const float alpha,
       __global const float *restrict A, const int a_off, const int lda,
       __global const float *restrict B, const int b_off, const int ldb,
       const float beta,
       __global float *C, const int c_off, const int ldc)
{
    const int tn = get_local_id (0);
    const int tm = get_local_id (1);
    const int tid = tm * RTSN + tn;
    const int n0 = get_group_id (0) * TSN;
    const int m0 = get_group_id (1) * TSM;
    A += a_off;
    B += b_off;
    C += c_off;

    __local float Asub [TSK][TSM + APAD];   // A tile, transposed: [k][row]
    __local float Bsub [TSK][TSN];          // B tile: [k][col]

    float acc [WPTM][WPTN];
    for (int i = 0; i < WPTM; i++)
        for (int j = 0; j < WPTN; j++)
            acc [i][j] = 0.0f;

    //  Whole-tile tests are uniform across the work-group, so the branches
    //  below never split it.
    const bool inside_mn = m0 + TSM <= M && n0 + TSN <= N;

    for (int k0 = 0; k0 < K; k0 += TSK) {
        if (inside_mn && k0 + TSK <= K) {
#if VW > 1
            for (int e = tid; e < TSM * TSK / VW; e += WGS) {
                const int row = e / (TSK / VW);
                const int kk = (e % (TSK / VW)) * VW;
                float t [VW];
                vstoreW (vloadW (0, A + (m0 + row) * lda + k0 + kk), 0, t);
                for (int v = 0; v < VW; v++)
                    Asub [kk + v][row] = t [v];
            }
            for (int e = tid; e < TSN * TSK / VW; e += WGS) {
                const int kk = e / (TSN / VW);
                const int col = (e % (TSN / VW)) * VW;
                vstoreW (vloadW (0, B + (k0 + kk) * ldb + n0 + col), 0, &Bsub [kk][col]);
            }
#else
            for (int e = tid; e < TSM * TSK; e += WGS) {
                const int row = e / TSK;
                const int kk = e % TSK;
                Asub [kk][row] = A [(m0 + row) * lda + k0 + kk];
            }
            for (int e = tid; e < TSN * TSK; e += WGS) {
                const int kk = e / TSN;
                const int col = e % TSN;
                Bsub [kk][col] = B [(k0 + kk) * ldb + n0 + col];
            }
#endif
        }
        else {
            //  Edge tile: zeros outside the matrices add nothing to C.
            for (int e = tid; e < TSM * TSK; e += WGS) {
                const int row = e / TSK;
                const int kk = e % TSK;
                const int gr = m0 + row;
                const int gk = k0 + kk;
                Asub [kk][row] = (gr < M && gk < K) ? A [gr * lda + gk] : 0.0f;
            }
            for (int e = tid; e < TSN * TSK; e += WGS) {
                const int kk = e / TSN;
                const int col = e % TSN;
                const int gk = k0 + kk;
                const int gc = n0 + col;
                Bsub [kk][col] = (gk < K && gc < N) ? B [gk * ldb + gc] : 0.0f;
            }
        }
        barrier (CLK_LOCAL_MEM_FENCE);

        for (int k = 0; k < TSK; k++) {
            float areg [WPTM];
            float breg [WPTN];
            for (int i = 0; i < WPTM; i++)
                areg [i] = Asub [k][tm + i * RTSM];
            for (int j = 0; j < WPTN; j++)
                breg [j] = Bsub [k][tn + j * RTSN];
            for (int i = 0; i < WPTM; i++)
                for (int j = 0; j < WPTN; j++)
                    acc [i][j] += areg [i] * breg [j];
        }
        //  Nobody may overwrite the tiles while others still read them.
        barrier (CLK_LOCAL_MEM_FENCE);
    }

    for (int i = 0; i < WPTM; i++) {
        const int row = m0 + tm + i * RTSM;
        if (row >= M)
            break;
        for (int j = 0; j < WPTN; j++) {
            const int col = n0 + tn + j * RTSN;
            if (col < N) {
                __global float *c = C + row * ldc + col;
                *c = beta == 0.0f ? alpha * acc [i][j] : alpha * acc [i][j] + beta * *c;
            }
        }
    }
}
#endif

#if DIRECT == 1
#define NV (WPTN / VW)              // accumulator vectors per row

#if VW == 1
#define floatW float
#define S_VLOAD(p) (*(p))
#else
#define S_VLOAD(p) vloadW (0, p)
#endif

__kernel __attribute__ ((reqd_work_group_size (RTSN, RTSM, 1)))
void
sgemm (const int M, const int N, const int K, const float alpha,
       __global const float *restrict A, const int a_off, const int lda,
       __global const float *restrict B, const int b_off, const int ldb,
       const float beta,
       __global float *C, const int c_off, const int ldc)
{
    const int n0 = (get_group_id (0) * RTSN + get_local_id (0)) * WPTN;
    const int m0 = (get_group_id (1) * RTSM + get_local_id (1)) * WPTM;
    if (m0 >= M || n0 >= N)
        return;
    A += a_off;
    B += b_off;
    C += c_off;

    //  Rows past M repeat row M-1: their sums are computed and dropped,
    //  which keeps the inner loop free of tests.
    __global const float *arow [WPTM];
    for (int i = 0; i < WPTM; i++)
        arow [i] = A + min (m0 + i, M - 1) * lda;

    floatW acc [WPTM][NV];
    for (int i = 0; i < WPTM; i++)
        for (int j = 0; j < NV; j++)
            acc [i][j] = (floatW) 0.0f;

    if (n0 + WPTN <= N) {
        int k = 0;
        for (; k + TSK <= K; k += TSK) {
            float a [WPTM][TSK];
            for (int i = 0; i < WPTM; i++)
                for (int kk = 0; kk < TSK; kk++)
                    a [i][kk] = arow [i][k + kk];
            for (int kk = 0; kk < TSK; kk++) {
                __global const float *brow = B + (k + kk) * ldb + n0;
                floatW b [NV];
                for (int j = 0; j < NV; j++)
                    b [j] = S_VLOAD (brow + j * VW);
                for (int i = 0; i < WPTM; i++)
                    for (int j = 0; j < NV; j++)
                        acc [i][j] = fma ((floatW) a [i][kk], b [j], acc [i][j]);
            }
        }
        for (; k < K; k++) {
            __global const float *brow = B + k * ldb + n0;
            for (int i = 0; i < WPTM; i++) {
                const float a = arow [i][k];
                for (int j = 0; j < NV; j++)
                    acc [i][j] = fma ((floatW) a, S_VLOAD (brow + j * VW), acc [i][j]);
            }
        }
    }
    else {
        //  Right edge: gather the columns one by one, clamped to N-1.
        for (int k = 0; k < K; k++) {
            __global const float *brow = B + k * ldb;
            float bs [WPTN];
            for (int c = 0; c < WPTN; c++)
                bs [c] = brow [min (n0 + c, N - 1)];
            floatW b [NV];
            for (int j = 0; j < NV; j++) {
#if VW == 1
                b [j] = bs [j];
#else
                b [j] = vloadW (0, bs + j * VW);
#endif
            }
            for (int i = 0; i < WPTM; i++) {
                const float a = arow [i][k];
                for (int j = 0; j < NV; j++)
                    acc [i][j] = fma ((floatW) a, b [j], acc [i][j]);
            }
        }
    }

    for (int i = 0; i < WPTM; i++) {
        const int row = m0 + i;
        if (row >= M)
            break;
        __global float *crow = C + row * ldc + n0;
        float out [WPTN];
        for (int j = 0; j < NV; j++) {
#if VW == 1
            out [j] = acc [i][j];
#else
            vstoreW (acc [i][j], 0, out + j * VW);
#endif
        }
        for (int c = 0; c < WPTN && n0 + c < N; c++)
            crow [c] = beta == 0.0f ? alpha * out [c] : alpha * out [c] + beta * crow [c];
    }
}
#endif

/*  sgemm_peak: the device's fused multiply-add throughput, the ceiling an
 *  SGEMM can approach (bench records divide SGEMM GFLOPS by it). Each
 *  work-item runs 8 independent chains of float16 FMAs for ITERS steps
 *  (enough chains to cover FMA latency on CPUs and GPUs alike) and writes
 *  one sum, so that nothing is optimised away. Flops = 2 * 16 * 8 * ITERS
 *  per work-item. Any NDRange; out [get_global_id (0)] is written.
 */
__kernel void
sgemm_peak (__global float *out, const int iters, const float seed)
{
    float16 a0 = (float16) seed, a1 = a0 + 1.0f, a2 = a0 + 2.0f, a3 = a0 + 3.0f;
    float16 a4 = a0 + 4.0f, a5 = a0 + 5.0f, a6 = a0 + 6.0f, a7 = a0 + 7.0f;
    const float16 m = (float16) 0.999f, c = (float16) 0.001f;
    for (int i = 0; i < iters; i++) {
        a0 = fma (a0, m, c); a1 = fma (a1, m, c); a2 = fma (a2, m, c); a3 = fma (a3, m, c);
        a4 = fma (a4, m, c); a5 = fma (a5, m, c); a6 = fma (a6, m, c); a7 = fma (a7, m, c);
    }
    const float16 s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
    const float8 h = s.lo + s.hi;
    const float4 q = h.lo + h.hi;
    out [get_global_id (0)] = (q.x + q.y) + (q.z + q.w);
}
