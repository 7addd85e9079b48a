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
 *  When WPTM and WPTN are multiples of 4, work-item (tn, tm) owns groups
 *  of 4 consecutive rows (4*RTSM apart) and of 4 consecutive columns
 *  (4*RTSN apart) and reads each group with one float4 local load;
 *  otherwise it owns rows tm + i*RTSM and columns tn + j*RTSN and reads
 *  words. Either way neighbouring work-items read neighbouring local
 *  words. Tiles that lie wholly inside M and N load with VW-wide vloads
 *  into registers one K step ahead (the loads of step k+1 are in flight
 *  while step k's products run); edge tiles and the last partial K step
 *  load element by element with bounds checks and zero fill.
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
 *    APAD       padding per row of the transposed   >= 0; 1 avoids bank
 *               A tile (DIRECT=0), in floats, or    conflicts on its stores
 *               float4 with float4 local reads
 *  Local memory (DIRECT=0): 4 * TSK * (TSM + APAD * LV + TSN) bytes per
 *  group, LV = 4 when WPTM and WPTN are multiples of 4, else 1.
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

//  Checked by the preprocessor, so a bad combination fails the build with
//  its reason (the host clamps and validates before it gets here).
#if TSM % WPTM != 0
#error "TSM must be a multiple of WPTM"
#endif
#if TSN % WPTN != 0
#error "TSN must be a multiple of WPTN"
#endif
#if VW != 1 && VW != 2 && VW != 4 && VW != 8 && VW != 16
#error "VW must be 1, 2, 4, 8 or 16"
#endif
#if DIRECT != 1 && TSK % VW != 0
#error "TSK must be a multiple of VW"
#endif
#if TSN % VW != 0
#error "TSN must be a multiple of VW"
#endif
#if APAD < 0
#error "APAD must not be negative"
#endif
#if DIRECT != 0 && !(DIRECT == 1 && WPTN % VW == 0)
#error "DIRECT=1 needs WPTN a multiple of VW"
#endif

#define SGEMM_CAT(a, b) a##b
#define SGEMM_XCAT(a, b) SGEMM_CAT (a, b)
#if VW > 1
#define floatW SGEMM_XCAT (float, VW)
#define vloadW SGEMM_XCAT (vload, VW)
#define vstoreW SGEMM_XCAT (vstore, VW)
#endif

#if DIRECT == 0
//  Local reads: when WPTM and WPTN are multiples of 4 (LV = 4), work-item
//  (tn, tm) owns WPTM/4 groups of 4 consecutive rows, 4*RTSM rows apart,
//  and WPTN/4 groups of 4 consecutive columns, 4*RTSN apart, and reads
//  each group with one float4 local load: 2 x 4 loads per k step for an
//  8 x 8 block instead of 16. A warp's float4 loads of a B row are then
//  consecutive (no bank conflicts) and its loads of an A column are
//  broadcasts. Otherwise (LV = 1) it owns rows tm + i*RTSM and columns
//  tn + j*RTSN and reads words. APAD pads each row of the transposed A
//  tile by APAD * LV floats, so float4 rows stay 16-byte aligned.
#if WPTM % 4 == 0 && WPTN % 4 == 0
#define LV 4
#define floatL float4
#else
#define LV 1
#define floatL float
#endif
#define ASTR (TSM + APAD * LV)      // floats per k row of the A tile
#define NA ((TSM * TSK / VW + WGS - 1) / WGS)   // A vectors each item stages
#define NB ((TSN * TSK / VW + WGS - 1) / WGS)   // B vectors each item stages
#if VW == 1
#define floatW float
#define SG_LOAD(p) (*(p))
#else
#define SG_LOAD(p) vloadW (0, p)
#endif

//  Values of the A and B tiles at k0 (wholly inside the matrices) that
//  this work-item stages, loaded into PA and PB: vector e of A is row
//  e / (TSK/VW), columns (e % (TSK/VW)) * VW.., vector e of B is row
//  e / (TSN/VW), columns (e % (TSN/VW)) * VW...
#define SG_FETCH(k0) do {                                                   \
    for (int q = 0; q < NA; q++) {                                          \
        const int e = tid + q * WGS;                                        \
        if (NA * WGS == TSM * TSK / VW || e < TSM * TSK / VW)               \
            pa [q] = SG_LOAD (A + (m0 + e / (TSK / VW)) * lda + (k0)        \
                              + (e % (TSK / VW)) * VW);                     \
    }                                                                       \
    for (int q = 0; q < NB; q++) {                                          \
        const int e = tid + q * WGS;                                        \
        if (NB * WGS == TSN * TSK / VW || e < TSN * TSK / VW)               \
            pb [q] = SG_LOAD (B + ((k0) + e / (TSN / VW)) * ldb + n0        \
                              + (e % (TSN / VW)) * VW);                     \
    }                                                                       \
} while (0)

//  One K step of products from the staged tiles: per k, this work-item's
//  WPTM values of A and WPTN of B, then WPTM x WPTN fused multiply-adds.
#if LV == 4
#define SG_OPERANDS(k)                                                      \
    for (int a = 0; a < WPTM / 4; a++)                                      \
        vstore4 (Asub [(k) * (ASTR / 4) + a * RTSM + tm], 0, areg + 4 * a); \
    for (int b = 0; b < WPTN / 4; b++)                                      \
        vstore4 (Bsub [(k) * (TSN / 4) + b * RTSN + tn], 0, breg + 4 * b);
#else
#define SG_OPERANDS(k)                                                      \
    for (int a = 0; a < WPTM; a++)                                          \
        areg [a] = As [(k) * ASTR + a * RTSM + tm];                         \
    for (int b = 0; b < WPTN; b++)                                          \
        breg [b] = Bs [(k) * TSN + b * RTSN + tn];
#endif
#define SG_PRODUCTS() do {                                                  \
    for (int k = 0; k < TSK; k++) {                                         \
        float areg [WPTM], breg [WPTN];                                     \
        SG_OPERANDS (k)                                                     \
        for (int i = 0; i < WPTM; i++)                                      \
            for (int j = 0; j < WPTN; j++)                                  \
                acc [i][j] = fma (areg [i], breg [j], acc [i][j]);          \
    }                                                                       \
} while (0)

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

    //  A tile, transposed ([k][row], ASTR floats per k), and B tile
    //  ([k][col]), declared as floatL so that vector reads are aligned.
    __local floatL Asub [TSK * ASTR / LV];
    __local floatL Bsub [TSK * TSN / LV];
    __local float *As = (__local float *) Asub;
    __local float *Bs = (__local float *) Bsub;

    float acc [WPTM][WPTN];
    for (int i = 0; i < WPTM; i++)
        for (int j = 0; j < WPTN; j++)
            acc [i][j] = 0.0f;

    //  Whole-tile tests are uniform across the work-group, so the branches
    //  below never split it.
    const bool inside_mn = m0 + TSM <= M && n0 + TSN <= N;
    //  Interior tiles: whole K steps with vector loads, each step's global
    //  loads issued (into registers) before the previous step's products,
    //  so that they overlap. The rest of K, and edge tiles, below.
    const int k_whole = inside_mn ? K / TSK * TSK : 0;
    if (k_whole > 0) {
        floatW pa [NA], pb [NB];
        SG_FETCH (0);
        for (int k0 = 0; k0 < k_whole; k0 += TSK) {
            for (int q = 0; q < NA; q++) {
                const int e = tid + q * WGS;
                if (NA * WGS == TSM * TSK / VW || e < TSM * TSK / VW) {
                    const int row = e / (TSK / VW);
                    const int kk = (e % (TSK / VW)) * VW;
#if VW == 1
                    As [kk * ASTR + row] = pa [q];
#else
                    float t [VW];
                    vstoreW (pa [q], 0, t);
                    for (int v = 0; v < VW; v++)
                        As [(kk + v) * ASTR + row] = t [v];
#endif
                }
            }
            for (int q = 0; q < NB; q++) {
                const int e = tid + q * WGS;
                if (NB * WGS == TSN * TSK / VW || e < TSN * TSK / VW) {
                    const int kk = e / (TSN / VW);
                    const int col = (e % (TSN / VW)) * VW;
#if VW == 1
                    Bs [kk * TSN + col] = pb [q];
#else
                    vstoreW (pb [q], 0, Bs + kk * TSN + col);
#endif
                }
            }
            barrier (CLK_LOCAL_MEM_FENCE);
            if (k0 + TSK < k_whole)
                SG_FETCH (k0 + TSK);
            SG_PRODUCTS ();
            //  Nobody may overwrite the tiles while others still read them.
            barrier (CLK_LOCAL_MEM_FENCE);
        }
    }
    for (int k0 = k_whole; k0 < K; k0 += TSK) {
        //  Edge tile: zeros outside the matrices add nothing to C.
        for (int e = tid; e < TSM * TSK; e += WGS) {
            const int row = e / TSK;
            const int kk = e % TSK;
            const int gr = m0 + row;
            const int gk = k0 + kk;
            As [kk * ASTR + row] = (gr < M && gk < K) ? A [gr * lda + gk] : 0.0f;
        }
        for (int e = tid; e < TSN * TSK; e += WGS) {
            const int kk = e / TSN;
            const int col = e % TSN;
            const int gk = k0 + kk;
            const int gc = n0 + col;
            Bs [kk * TSN + col] = (gk < K && gc < N) ? B [gk * ldb + gc] : 0.0f;
        }
        barrier (CLK_LOCAL_MEM_FENCE);
        SG_PRODUCTS ();
        barrier (CLK_LOCAL_MEM_FENCE);
    }

    for (int i = 0; i < WPTM; i++) {
        const int row = m0 + ((i / LV) * RTSM + tm) * LV + i % LV;
        if (row >= M)
            continue;
        for (int j = 0; j < WPTN; j++) {
            const int col = n0 + ((j / LV) * RTSN + tn) * LV + j % LV;
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
