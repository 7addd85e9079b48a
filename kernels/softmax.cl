/*  softmax.cl: numerically stable row softmax with scale and causal mask.
 *
 *  softmax_rows: y[r, j] = exp (s x[r, j] - M) / sum_j' exp (s x[r, j'] - M)
 *  over the unmasked columns j of row r, M their maximum; masked columns
 *  get exactly 0.
 *
 *  x, y [rows, n] float32 row-major; y may be x. scale s is applied before
 *  the maximum is taken. Causal mask: when q_len > 0, row r is query
 *  (r % q_len) at position n_past + r % q_len (rows are heads x queries,
 *  as attention scores are laid out), and column j is masked when
 *  j > n_past + r % q_len. q_len = 0 masks nothing. Columns holding -inf
 *  contribute 0 (additive masks from elsewhere work); a row whose
 *  unmasked entries are all -inf gives NaN, as the math does.
 *
 *  One pass keeps a running (max, sum) per work-item, rescaling the sum
 *  when the max grows (the "online softmax"); the group merges the pairs,
 *  and a second pass writes the normalised values.
 *
 *  NDRange: global rows * SOFTMAX_WGS, local SOFTMAX_WGS (one group per
 *  row). Constraints: SOFTMAX_WGS a power of two; n >= 1; n_past >= 0.
 */

#ifndef SOFTMAX_WGS
#define SOFTMAX_WGS 256         // work-items per row, power of two
#endif

#if (SOFTMAX_WGS & (SOFTMAX_WGS - 1)) != 0
#error "SOFTMAX_WGS must be a power of two"
#endif

//  Merges running pair (m2, s2) into (m, s). A max of -inf means "nothing
//  seen yet": exp (-inf - -inf) would be NaN, so that case is skipped.
void
softmax_merge (float *m, float *s, float m2, float s2)
{
    if (m2 == -INFINITY)
        return;
    if (*m == -INFINITY) {
        *m = m2;
        *s = s2;
    }
    else if (m2 > *m) {
        *s = *s * exp (*m - m2) + s2;
        *m = m2;
    }
    else
        *s += s2 * exp (m2 - *m);
}

__kernel __attribute__ ((reqd_work_group_size (SOFTMAX_WGS, 1, 1))) void
softmax_rows (const __global float *x, __global float *y, int n, float scale,
              int q_len, int n_past)
{
    __local float red_m [SOFTMAX_WGS];
    __local float red_s [SOFTMAX_WGS];
    const int lid = get_local_id (0);
    const int row = get_group_id (0);
    const size_t off = (size_t) row * n;
    x += off;
    y += off;
    //  Last unmasked column.
    const int last = q_len > 0 ? min (n - 1, n_past + row % q_len) : n - 1;

    float m = -INFINITY, s = 0.0f;
    for (int j = lid; j <= last; j += SOFTMAX_WGS)
        softmax_merge (&m, &s, x [j] * scale, 1.0f);
    red_m [lid] = m;
    red_s [lid] = s;
    barrier (CLK_LOCAL_MEM_FENCE);
    for (int k = SOFTMAX_WGS / 2; k > 0; k >>= 1) {
        if (lid < k) {
            float mm = red_m [lid], ss = red_s [lid];
            softmax_merge (&mm, &ss, red_m [lid + k], red_s [lid + k]);
            red_m [lid] = mm;
            red_s [lid] = ss;
        }
        barrier (CLK_LOCAL_MEM_FENCE);
    }
    const float M = red_m [0];
    const float S = red_s [0];
    for (int j = lid; j < n; j += SOFTMAX_WGS)
        y [j] = j <= last ? exp (x [j] * scale - M) / S : 0.0f;
}
