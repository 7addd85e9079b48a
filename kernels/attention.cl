/*  attention.cl: causal scaled dot-product attention over a KV cache,
 *  float32, with grouped-query heads and an online ("flash") softmax.
 *
 *  O[h, t, :] = sum_j softmax_j (scale * Q[h, t, :] . K[g, j, :]) V[g, j, :]
 *  over keys j = 0 .. n_past + t (query t sits at position n_past + t and
 *  sees every earlier position and itself), g = h / group.
 *
 *  Q, O [n_q_heads, n_tokens, head_dim]; K, V [n_kv_heads, ctx, head_dim],
 *  row-major float32; group = n_q_heads / n_kv_heads (1 = plain multi-head,
 *  n_q_heads = multi-query). O must not overlap Q, K or V. Q and O may be
 *  a window of a larger batch: query (h, t) sits at q_off + (h * q_rows + t)
 *  * head_dim floats (q_rows >= n_tokens rows between heads), and K, V start
 *  kv_off floats in (one sequence's cache among several).
 *
 *  A work-group owns one (head, query). It walks the keys in chunks of
 *  ATT_WGS: work-item i scores key j0 + i against the query (held in local
 *  memory), the group finds the chunk's max and sum, rescales its running
 *  sum and output by exp (old max - new max), and then work-item i
 *  accumulates output dims i, i + ATT_WGS, ... from the chunk's V rows,
 *  which the group reads row by row (coalesced). Scores are never stored
 *  beyond one chunk, so ctx is unbounded.
 *
 *  NDRange: global (n_tokens * ATT_WGS, n_q_heads), local (ATT_WGS, 1).
 *  Constraints: head_dim a multiple of 4 and <= ATT_MAX_HD; ATT_WGS a power
 *  of two; n_past + n_tokens <= ctx; n_q_heads a multiple of n_kv_heads.
 */

#ifndef ATT_WGS
#define ATT_WGS 64              // work-items per (head, query), power of two
#endif
#ifndef ATT_MAX_HD
#define ATT_MAX_HD 256          // largest head_dim this build accepts
#endif

#if (ATT_WGS & (ATT_WGS - 1)) != 0
#error "ATT_WGS must be a power of two"
#endif
#if ATT_MAX_HD % 4 != 0
#error "ATT_MAX_HD must be a multiple of 4"
#endif

#define ATT_DPT ((ATT_MAX_HD + ATT_WGS - 1) / ATT_WGS)  // output dims per work-item

//  Reduces V over the group (max when IS_MAX, else sum); all get the result.
float
att_reduce (float v, __local float *red, const int is_max)
{
    const int lid = get_local_id (0);
    red [lid] = v;
    barrier (CLK_LOCAL_MEM_FENCE);
    for (int s = ATT_WGS / 2; s > 0; s >>= 1) {
        if (lid < s)
            red [lid] = is_max ? fmax (red [lid], red [lid + s]) : red [lid] + red [lid + s];
        barrier (CLK_LOCAL_MEM_FENCE);
    }
    const float r = red [0];
    barrier (CLK_LOCAL_MEM_FENCE);
    return r;
}

__kernel __attribute__ ((reqd_work_group_size (ATT_WGS, 1, 1))) void
attention_f32 (const __global float *Q, const __global float *K,
               const __global float *V, __global float *O,
               int n_tokens, int head_dim, int ctx, int n_past, int group,
               float scale, int q_rows, ulong q_off, ulong kv_off)
{
    __local float4 q [ATT_MAX_HD / 4];
    __local float p [ATT_WGS];
    __local float red [ATT_WGS];
    const int lid = get_local_id (0);
    const int t = get_group_id (0);
    const int h = get_group_id (1);
    const int hd4 = head_dim / 4;
    const size_t qoff = q_off + ((size_t) h * q_rows + t) * head_dim;
    const __global float *Kh = K + kv_off + (size_t) (h / group) * ctx * head_dim;
    const __global float *Vh = V + kv_off + (size_t) (h / group) * ctx * head_dim;

    //  The scale is folded into the query once.
    for (int d = lid; d < hd4; d += ATT_WGS)
        q [d] = vload4 (d, Q + qoff) * scale;
    barrier (CLK_LOCAL_MEM_FENCE);

    const int n_kv = n_past + t + 1;
    float m = -INFINITY;        // running max of the scores
    float l = 0.0f;             // running sum of exp (score - m)
    float acc [ATT_DPT];        // running output dims lid + k * ATT_WGS
    for (int k = 0; k < ATT_DPT; k++)
        acc [k] = 0.0f;

    for (int j0 = 0; j0 < n_kv; j0 += ATT_WGS) {
        const int j = j0 + lid;
        float score = -INFINITY;
        if (j < n_kv) {
            const __global float *kr = Kh + (size_t) j * head_dim;
            float4 a = 0.0f;
            for (int d = 0; d < hd4; d++)
                a += q [d] * vload4 (d, kr);
            score = (a.x + a.y) + (a.z + a.w);
        }
        //  Key j0 is always valid, so the chunk max is finite.
        const float m_new = fmax (m, att_reduce (score, red, 1));
        const float pj = exp (score - m_new);
        const float alpha = exp (m - m_new);
        p [lid] = pj;
        l = l * alpha + att_reduce (pj, red, 0);
        //  att_reduce's barriers also published p[].
        const int jn = min (ATT_WGS, n_kv - j0);
        for (int k = 0; k < ATT_DPT; k++) {
            const int d = lid + k * ATT_WGS;
            if (d < head_dim) {
                float a = acc [k] * alpha;
                const __global float *vr = Vh + (size_t) j0 * head_dim + d;
                for (int jj = 0; jj < jn; jj++)
                    a += p [jj] * vr [(size_t) jj * head_dim];
                acc [k] = a;
            }
        }
        m = m_new;
        //  Everyone has read p[] before the next chunk overwrites it.
        barrier (CLK_LOCAL_MEM_FENCE);
    }
    for (int k = 0; k < ATT_DPT; k++) {
        const int d = lid + k * ATT_WGS;
        if (d < head_dim)
            O [qoff + d] = acc [k] / l;
    }
}
