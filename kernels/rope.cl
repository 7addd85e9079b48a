/*  rope.cl: rotary position embedding, llama "normal" and GPT-NeoX modes.
 *
 *  For token t at position p = pos[t], head h, and pair i < n_dims / 2,
 *  theta = p * freq_base^(-2i / n_dims) rotates the pair (a, b):
 *      a' = a cos theta - b sin theta,   b' = a sin theta + b cos theta
 *  mode 0 ("normal", llama): the pair is elements (2i, 2i + 1);
 *  mode 2 ("neox"):          the pair is elements (i, i + n_dims / 2).
 *  (ggml's mode numbers.) Elements n_dims .. head_dim - 1 are copied.
 *
 *  Element d of (token t, head h) is x[t * xs_tok + h * xs_head + d] and
 *  y[t * ys_tok + h * ys_head + d] (strides in floats), so one launch can
 *  rotate in place (y = x, same strides), or write the rotated values
 *  into another layout: [n_heads, n_tokens, head_dim] for attention, or a
 *  KV cache [n_heads, ctx, head_dim] at row n_past (pass y with that
 *  offset folded into the buffer, or use a sub-buffer). pos: int32 [n_tokens].
 *
 *  NDRange: global (head_dim / 2, n_heads, n_tokens), local NULL or any.
 *  Constraints: head_dim and n_dims even, 2 <= n_dims <= head_dim; x and y
 *  either the same memory with the same strides or not overlapping.
 */

__kernel void
rope_f32 (const __global float *x, int xs_tok, int xs_head,
          __global float *y, int ys_tok, int ys_head,
          const __global int *pos, int head_dim, int n_dims, float freq_base,
          int mode)
{
    const int i = get_global_id (0);
    const int h = get_global_id (1);
    const int t = get_global_id (2);
    if (2 * i >= head_dim)
        return;
    x += (size_t) t * xs_tok + (size_t) h * xs_head;
    y += (size_t) t * ys_tok + (size_t) h * ys_head;
    const int half_dims = n_dims / 2;
    if (i >= half_dims) {
        //  Pass-through tail: work-item i copies two elements past n_dims.
        const int d = n_dims + 2 * (i - half_dims);
        const float a = x [d], b = x [d + 1];
        y [d] = a;
        y [d + 1] = b;
        return;
    }
    const int i0 = mode == 2 ? i : 2 * i;
    const int i1 = mode == 2 ? i + half_dims : 2 * i + 1;
    const float theta = (float) pos [t] * pow (freq_base, -(float) (2 * i) / (float) n_dims);
    float c;
    const float s = sincos (theta, &c);
    const float a = x [i0], b = x [i1];
    y [i0] = a * c - b * s;
    y [i1] = a * s + b * c;
}
