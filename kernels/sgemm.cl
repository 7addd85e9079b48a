/*  sgemm: single-precision matrix multiply, row-major,
 *
 *      C = alpha * A * B + beta * C
 *
 *  A is M x K with row stride lda, B is K x N with row stride ldb, C is
 *  M x N with row stride ldc (all in floats; a_off, b_off, c_off are
 *  element offsets into the buffers). When beta == 0, C is not read, so it
 *  may hold anything (NaN included), as in BLAS.
 *
 *  Scheme: each work-group computes a TSM x TSN tile of C, walking K in
 *  steps of TSK; each step stages a TSM x TSK tile of A (stored transposed,
 *  k-major) and a TSK x TSN tile of B in local memory, then every
 *  work-item accumulates a WPTM x WPTN block of C in registers. Work-item
 *  (tn, tm) owns rows tm + i*RTSM and columns tn + j*RTSN of the tile, so
 *  neighbouring work-items read neighbouring local words. Tiles that lie
 *  wholly inside the matrices load with VW-wide vloads; edge tiles load
 *  element by element with bounds checks and zero fill, so M, N and K are
 *  arbitrary (>= 1).
 *
 *  Launch: 2-D, local size (TSN/WPTN, TSM/WPTM), global size
 *  (ceil(N/TSN) * TSN/WPTN, ceil(M/TSM) * TSM/WPTM). Dimension 0 runs
 *  along N.
 *
 *  Tuning parameters (-D overrides; constraints are checked at compile
 *  time):
 *    TSM, TSN   tile of C per work-group            TSM % WPTM == 0,
 *                                                   TSN % WPTN == 0
 *    TSK        depth of one K step                 TSK % VW == 0
 *    WPTM, WPTN rows, columns of C per work-item
 *    VW         vector width of interior loads      1, 2, 4, 8 or 16;
 *                                                   TSN % VW == 0
 *    APAD       floats of padding per row of the    >= 0; 1 avoids bank
 *               transposed A tile                   conflicts on its stores
 *  Local memory: 4 * TSK * (TSM + APAD + TSN) bytes per work-group.
 *  Work-group size (TSM/WPTM) * (TSN/WPTN) must not exceed the device's.
 *  Indexes are int: M*lda, K*ldb and M*ldc (plus offsets) must be < 2^31.
 */

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
typedef char sgemm_check_vwk [(TSK % VW == 0) ? 1 : -1];
typedef char sgemm_check_vwn [(TSN % VW == 0) ? 1 : -1];
typedef char sgemm_check_apad [(APAD >= 0) ? 1 : -1];

#define SGEMM_CAT(a, b) a##b
#define SGEMM_XCAT(a, b) SGEMM_CAT (a, b)
#if VW > 1
#define floatW SGEMM_XCAT (float, VW)
#define vloadW SGEMM_XCAT (vload, VW)
#define vstoreW SGEMM_XCAT (vstore, VW)
#endif

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
