/* emoser's fused CPU kernels (chapter 8, "Fused kernels in C"): the LSTM recurrence with its
   backward pass through time, block 1 of the CNN front-end with its backward pass, and the
   ReLU + max pooling of the later blocks. The same equations as emoser/speed.py, with all the
   element-wise work of a step (or of a frame) in one loop instead of one PyTorch call each.
   emoser/native.py compiles this file once per precision (-DREAL=float, -DREAL=double) and
   calls it through ctypes; tests/test_native.py checks every function against the PyTorch code
   it replaces.

   Every kernel runs on the calling thread. Two threads started per call measured no faster in
   training on a 2-core machine: right after each of its own parallel operations, PyTorch's
   worker thread keeps the other core busy waiting for the next one. */
#include <stdlib.h>
#include <tgmath.h>
#include <stddef.h>
#include <string.h>

#ifndef REAL
#define REAL float
#endif
typedef REAL real;
/* The vector registers the compiler may use for this build: width and how many rows of the
   matrix product keep their 4·RB sums in them (RB·4 sums + 4 of B + 1 of A must fit: 32
   registers with AVX-512, 16 with AVX or with SSE2, the x86-64 baseline). Any width gives the
   same results: every sum is taken over k in the same order. */
#if defined(__AVX512F__)
#define BYTES 64
#define RB 5
#elif defined(__AVX__)
#define BYTES 32
#define RB 2
#else
#define BYTES 16
#define RB 2
#endif
#ifdef GEMM_RB  /* only for measuring other row blocks */
#undef RB
#define RB GEMM_RB
#endif
#define V ((int)(BYTES / sizeof(real)))         /* numbers per vector */
typedef real vec __attribute__((vector_size(BYTES)));
/* block 1 keeps its weights and sums in registers, one register per vector */
#define W ((int)(BYTES / sizeof(real)))
typedef real rvec __attribute__((vector_size(BYTES)));
typedef __typeof__((rvec){0} >= (rvec){0}) mvec;  /* comparison results: all bits set or none */
static inline rvec rload(const real *p) { rvec v; memcpy(&v, p, sizeof v); return v; }
static inline void rstore(real *p, rvec v) { memcpy(p, &v, sizeof v); }
static inline rvec pick(mvec m, rvec a, rvec b) { return (rvec)(((mvec)a & m) | ((mvec)b & ~m)); }
static inline rvec keep(mvec m, rvec a) { return (rvec)((mvec)a & m); }
/* NaN as PyTorch treats it (tests/test_native.py checks it): torch.maximum and max pooling
   return NaN when either side is NaN, clamp_min (ReLU) keeps a NaN, and a comparison with a
   NaN is false. `e >= o ? e : o` would return o when e is NaN, `x > 0 ? x : 0` would return 0:
   both drop the NaN. These helpers keep it. Built without -ffast-math, so that the compiler
   may not assume that there are no NaNs or infinities. */
static inline real max_nan(real e, real o) { return e >= o || e != e ? e : o; }
static inline real relu_nan(real x) { return x < 0 ? 0 : x; }
static inline rvec vmax_nan(rvec e, rvec o) { return pick((e >= o) | (e != e), e, o); }
static inline rvec vrelu_nan(rvec x) { return keep(~(x < 0), x); }
/* the 0/1 factor of a mask, multiplied as the PyTorch code does (0 · inf and 0 · NaN are NaN) */
static inline rvec ones(mvec m) { return keep(m, (rvec){0} + 1); }

static inline vec load(const real *p) { vec v; memcpy(&v, p, sizeof v); return v; }
static inline void store(real *p, vec v) { memcpy(p, &v, sizeof v); }

/* Rows r0 .. r0+RB-1 of C (n×J, row stride ldc) += A (row stride lda) · B (K×J contiguous),
   columns 0 .. jv-1 in blocks of 4 vectors; RB·4 accumulators stay in registers. */
#define GEMM_ROWS(NAME, RB)                                                                  \
    static void gemm_rows_##NAME(int r0, int K, int J, int jv, const real *A, int lda,           \
                               const real *B, real *C, int ldc) {                              \
        for (int j0 = 0; j0 < jv; j0 += 4 * V) {                                               \
            vec acc[RB][4];                                                                    \
            for (int r = 0; r < RB; r++)                                                       \
                for (int q = 0; q < 4; q++) acc[r][q] = load(C + (size_t)(r0 + r) * ldc + j0 + q * V); \
            for (int k = 0; k < K; k++) {                                                      \
                const real *b = B + (size_t)k * J + j0;                                        \
                vec b0 = load(b), b1 = load(b + V), b2 = load(b + 2 * V), b3 = load(b + 3 * V);\
                for (int r = 0; r < RB; r++) {                                                 \
                    real a = A[(size_t)(r0 + r) * lda + k];                                    \
                    acc[r][0] += a * b0; acc[r][1] += a * b1;                                  \
                    acc[r][2] += a * b2; acc[r][3] += a * b3;                                  \
                }                                                                              \
            }                                                                                  \
            for (int r = 0; r < RB; r++)                                                       \
                for (int q = 0; q < 4; q++) store(C + (size_t)(r0 + r) * ldc + j0 + q * V, acc[r][q]); \
        }                                                                                      \
    }
GEMM_ROWS(block, RB)
GEMM_ROWS(1, 1)

/* C (n×J, row stride ldc) += A (n×K, row stride lda) · B (K×J, contiguous). */
static void gemm_acc(int n, int K, int J, const real *A, int lda, const real *B, real *C, int ldc) {
    int jv = J - J % (4 * V), r0 = 0;
    for (; r0 + RB <= n; r0 += RB) gemm_rows_block(r0, K, J, jv, A, lda, B, C, ldc);
    for (; r0 < n; r0++) gemm_rows_1(r0, K, J, jv, A, lda, B, C, ldc);
    for (int r = 0; r < n; r++)
        for (int k = 0; k < K; k++) {
            real a = A[(size_t)r * lda + k];
            for (int j = jv; j < J; j++) C[(size_t)r * ldc + j] += a * B[(size_t)k * J + j];
        }
}

/* σ(x) without overflow: exp of -|x| only, so 1 + e lies in [1, 2]. The textbook 1 / (1 + exp(-x))
   overflows to inf for x < -88 in float32 (1 / inf is 0, but the overflow costs time). σ(±inf)
   is 1 and 0, σ(NaN) is NaN, as torch.sigmoid. A choice between two numbers, then one product
   (1·s is s): the loop over a row stays free of branches, so it is vectorized. */
static inline real sigmoid(real x) {
    real e = exp(-fabs(x)), s = 1 / (1 + e);
    return (x >= 0 ? (real)1 : e) * s;
}

/* ----------------------------------------------------------------------------------------
   The LSTM (emoser.speed._recurrence_forward, _recurrence_backward). acts: steps×n×4W, gates
   [i | f | o | g] each W wide (the input part in, the activations out); w: W×4W; h_hist,
   c_hist: (steps+1)×n×W with the initial state in row 0; tanh_c: steps×n×W. With layers > 1
   the W columns are `layers` blocks of a wavefront: block l starts at step l, zero before.
   ---------------------------------------------------------------------------------------- */
int lstm_forward(real *acts, const real *w, real *h_hist, real *c_hist, real *tanh_c,
                 int steps, int n, int width, int layers) {
    int hid = width / layers, four = 4 * width;
    size_t nw = (size_t)n * width;
    for (int t = 0; t < steps; t++) {
        real *z = acts + (size_t)t * n * four;
        const real *h = h_hist + t * nw, *c = c_hist + t * nw;
        real *h1 = h_hist + (t + 1) * nw, *c1 = c_hist + (t + 1) * nw, *tc = tanh_c + t * nw;
        gemm_acc(n, width, four, h, width, w, z, four);
        for (int r = 0; r < n; r++) {
            real *zr = z + (size_t)r * four;
            for (int u = 0; u < 3 * width; u++) zr[u] = sigmoid(zr[u]);
            for (int u = 3 * width; u < four; u++) zr[u] = tanh(zr[u]);
            const real *cr = c + (size_t)r * width;
            real *c1r = c1 + (size_t)r * width, *h1r = h1 + (size_t)r * width, *tcr = tc + (size_t)r * width;
            for (int u = 0; u < width; u++) c1r[u] = zr[width + u] * cr[u] + zr[u] * zr[3 * width + u];
            for (int u = 0; u < width; u++) tcr[u] = tanh(c1r[u]);
            for (int u = 0; u < width; u++) h1r[u] = zr[2 * width + u] * tcr[u];
            if (t < layers - 1) {
                int from = (t + 1) * hid;
                memset(c1r + from, 0, sizeof(real) * (width - from));
                memset(h1r + from, 0, sizeof(real) * (width - from));
            }
        }
    }
    return 0;
}

/* Backward through time. grad_h (steps×n×W) is changed in place; grad_c: NULL or steps×n×W;
   w_t: 4W×W; grad_z (steps×n×4W) receives the gradient of the gate pre-activations, dc (n×W)
   that of the initial c. */
int lstm_backward(const real *acts, const real *w_t, const real *c_hist, const real *tanh_c,
                  real *grad_h, const real *grad_c, real *grad_z, real *dc,
                  int steps, int n, int width, int layers) {
    int hid = width / layers, four = 4 * width;
    size_t nw = (size_t)n * width;
    for (int t = steps - 1; t >= 0; t--) {
        real *dh = grad_h + t * nw, *gz = grad_z + (size_t)t * n * four;
        const real *a = acts + (size_t)t * n * four, *cp = c_hist + t * nw, *tc = tanh_c + t * nw;
        const real *gc = grad_c ? grad_c + t * nw : NULL;
        if (t < steps - 1) {
            gemm_acc(n, four, width, gz + (size_t)n * four, four, w_t, dh, width);
            const real *fn = a + (size_t)n * four;
            for (int r = 0; r < n; r++)
                for (int u = 0; u < width; u++)
                    dc[r * width + u] = dc[r * width + u] * fn[(size_t)r * four + width + u] + (gc ? gc[r * width + u] : 0);
        } else {
            for (size_t e = 0; e < nw; e++) dc[e] = gc ? gc[e] : 0;
        }
        for (int r = 0; r < n; r++) {
            const real *ar = a + (size_t)r * four, *dhr = dh + (size_t)r * width;
            const real *cpr = cp + (size_t)r * width, *tcr = tc + (size_t)r * width;
            real *gr = gz + (size_t)r * four, *dcr = dc + (size_t)r * width;
            for (int u = 0; u < width; u++) {
                real i = ar[u], f = ar[width + u], o = ar[2 * width + u], g = ar[3 * width + u];
                real tcu = tcr[u], d = dcr[u] + dhr[u] * o * (1 - tcu * tcu);
                dcr[u] = d;
                gr[u] = d * g * i * (1 - i);
                gr[width + u] = d * cpr[u] * f * (1 - f);
                gr[2 * width + u] = dhr[u] * tcu * o * (1 - o);
                gr[3 * width + u] = d * i * (1 - g * g);
            }
            if (t < layers - 1) {
                int from = (t + 1) * hid;
                for (int q = 0; q < 4; q++) memset(gr + q * width + from, 0, sizeof(real) * (width - from));
                memset(dcr + from, 0, sizeof(real) * (width - from));
            }
        }
    }
    for (int r = 0; r < n; r++)
        for (int u = 0; u < width; u++) dc[r * width + u] *= acts[(size_t)r * four + width + u];
    return 0;
}

/* ----------------------------------------------------------------------------------------
   Block 1 of the front-end (emoser.speed._FrontendGemm, block 1): average pooling 2/2 of the
   first `samples` samples of each frame, conv outputs 2q (window avg[4q .. 4q+K)) and 2q+1
   (avg[4q+2 .. 4q+2+K)), and the ReLU of their maximum into pooled position q of frame f at
   slots[(q/2)·s_r + (q%2)·s_j + f·s_f + c]. The backward pass recomputes the two outputs
   (cheaper than storing which one won: block 1 is limited by memory traffic, not arithmetic);
   forward and backward compute them with the same operations in the same order.
   ---------------------------------------------------------------------------------------- */
/* avg[0 .. len): average pooling of the frame's first `samples` samples, zero past them */
static void average_pool(const real *x, int samples, real *avg, int len) {
    int half = samples / 2;
    for (int p = 0; p < len; p++) avg[p] = p < half ? (x[2 * p] + x[2 * p + 1]) * (real)0.5 : 0;
}

/* The even and odd conv outputs of channel c for windows we and wo (the scalar code for the
   channels past the last whole vector). */
static inline void outputs_1(int c, int C, int K, const real *wt, const real *bias, const real *we,
                             const real *wo, real *e, real *o) {
    real ze = bias[c], zo = bias[c];
    for (int k = 0; k < K; k++) { ze += wt[(size_t)k * C + c] * we[k]; zo += wt[(size_t)k * C + c] * wo[k]; }
    *e = ze; *o = zo;
}

enum { MAX_K = 16 };  /* kernels up to 16 taps keep their weights in registers */

/* wt: K×C (the kernel, transposed; K <= 16); bias: C. Returns 0, -1 when memory ran out, -2
   for a kernel of more than 16 taps. */
int block1_forward(const real *frames, int m, int d, int samples, int K, int C, int positions,
                   const real *wt, const real *bias, real *slots, long s_r, long s_j, long s_f) {
    int len = 4 * (positions - 1) + 2 + K, cv = C - C % W;
    if (K > MAX_K) return -2;
    real *avg = malloc(sizeof(real) * (size_t)len);
    if (!avg) return -1;
    for (int f = 0; f < m; f++) {
        average_pool(frames + (size_t)f * d, samples, avg, len);
        real *base = slots + f * s_f;
        for (int c = 0; c < cv; c += W) {  /* W channels at a time, all positions */
            rvec w[MAX_K], b = rload(bias + c);
            for (int k = 0; k < K; k++) w[k] = rload(wt + (size_t)k * C + c);
            for (int q = 0; q < positions; q++) {
                const real *we = avg + 4 * q, *wo = we + 2;
                rvec e = b, o = b;
                for (int k = 0; k < K; k++) { e += w[k] * we[k]; o += w[k] * wo[k]; }
                rvec mx = vmax_nan(e, o);  /* ties: the even one, as max_pool1d */
                rstore(base + (q / 2) * s_r + (q % 2) * s_j + c, vrelu_nan(mx));
            }
        }
        for (int c = cv; c < C; c++)
            for (int q = 0; q < positions; q++) {
                real e, o;
                outputs_1(c, C, K, wt, bias, avg + 4 * q, avg + 4 * q + 2, &e, &o);
                base[(q / 2) * s_r + (q % 2) * s_j + c] = relu_nan(max_nan(e, o));
            }
    }
    free(avg);
    return 0;
}

/* The gradient of block 1's kernel and bias into grad_wt ((K+1)×C: dW transposed, then db),
   from the gradient of the pooled outputs (grad_slots, laid out as slots). The two conv
   outputs are recomputed with the operations of block1_forward, in the same order, so the
   same side wins. Returns as block1_forward. */
int block1_backward(const real *frames, int m, int d, int samples, int K, int C, int positions,
                    const real *wt, const real *bias, const real *grad_slots, long s_r, long s_j,
                    long s_f, real *grad_wt) {
    int len = 4 * (positions - 1) + 2 + K, cv = C - C % W;
    if (K > MAX_K) return -2;
    real *avg = malloc(sizeof(real) * (size_t)len);
    if (!avg) return -1;
    for (int e = 0; e < (K + 1) * C; e++) grad_wt[e] = 0;
    for (int f = 0; f < m; f++) {
        average_pool(frames + (size_t)f * d, samples, avg, len);
        const real *base = grad_slots + f * s_f;
        for (int c = 0; c < cv; c += W) {
            rvec w[MAX_K], dw[MAX_K], b = rload(bias + c), db = rload(grad_wt + (size_t)K * C + c);
            for (int k = 0; k < K; k++) {
                w[k] = rload(wt + (size_t)k * C + c);
                dw[k] = rload(grad_wt + (size_t)k * C + c);
            }
            for (int q = 0; q < positions; q++) {
                const real *we = avg + 4 * q, *wo = we + 2;
                rvec e = b, o = b;
                for (int k = 0; k < K; k++) { e += w[k] * we[k]; o += w[k] * wo[k]; }
                rvec mx = vmax_nan(e, o);
                /* ReLU, then the even output (e >= o: false for a NaN, as torch.ge) or the odd:
                   multiplied by 0 or 1, as the PyTorch code does */
                rvec g = rload(base + (q / 2) * s_r + (q % 2) * s_j + c) * ones(mx > 0);
                rvec ge = g * ones(e >= o), go = g - ge;
                db += g;
                for (int k = 0; k < K; k++) dw[k] += ge * we[k] + go * wo[k];
            }
            for (int k = 0; k < K; k++) rstore(grad_wt + (size_t)k * C + c, dw[k]);
            rstore(grad_wt + (size_t)K * C + c, db);
        }
        for (int c = cv; c < C; c++)
            for (int q = 0; q < positions; q++) {
                const real *we = avg + 4 * q, *wo = we + 2;
                real e, o;
                outputs_1(c, C, K, wt, bias, we, wo, &e, &o);
                real mx = max_nan(e, o);
                real g = base[(q / 2) * s_r + (q % 2) * s_j + c] * (real)(mx > 0);
                real ge = g * (real)(e >= o), go = g - ge;
                grad_wt[(size_t)K * C + c] += g;
                for (int k = 0; k < K; k++) grad_wt[(size_t)k * C + c] += ge * we[k] + go * wo[k];
            }
    }
    free(avg);
    return 0;
}

/* ----------------------------------------------------------------------------------------
   ReLU + max pooling 2/2 of blocks 2, 3, ... (emoser.speed._pool_into, _unpool_from): the
   conv output z is position-major, (2P·M) × C with row q·M + f for output q of frame f.
   Pooled position p of frame f goes to slots[(p/2)·s_r + (p%2)·s_j + f·s_f + c], which side
   won to take_left[(p·M + f)·C + c] (1: the even output, ties included). One pass instead of
   three (forward) or four (backward) PyTorch operations; the same arithmetic, so the same bits.
   ---------------------------------------------------------------------------------------- */
int pool_forward(const real *z, int pooled, int m, int C, real *slots, long s_r, long s_j,
                 long s_f, real *take_left) {
    for (int p = 0; p < pooled; p++)
        for (int f = 0; f < m; f++) {
            const real *restrict e = z + ((size_t)2 * p * m + f) * C;
            const real *restrict o = e + (size_t)m * C;
            real *restrict out = slots + (p / 2) * s_r + (p % 2) * s_j + f * s_f;
            real *restrict tl = take_left + ((size_t)p * m + f) * C;
            for (int c = 0; c < C; c++) {
                tl[c] = e[c] >= o[c] ? 1 : 0;
                out[c] = relu_nan(max_nan(e[c], o[c]));
            }
        }
    return 0;
}

/* grad_slots is laid out as slots; grad_z ((2P·M) × C) receives the gradient of z. */
int pool_backward(const real *grad_slots, const real *slots, long s_r, long s_j, long s_f,
                  const real *take_left, int pooled, int m, int C, real *grad_z) {
    for (int p = 0; p < pooled; p++)
        for (int f = 0; f < m; f++) {
            size_t at = (p / 2) * s_r + (p % 2) * s_j + f * s_f;
            const real *restrict g = grad_slots + at, *restrict out = slots + at;
            const real *restrict tl = take_left + ((size_t)p * m + f) * C;
            real *restrict left = grad_z + ((size_t)2 * p * m + f) * C;
            real *restrict right = left + (size_t)m * C;
            for (int c = 0; c < C; c++) {
                real kept = g[c] * (out[c] > 0 ? 1 : 0);  /* ReLU: none where clipped */
                left[c] = kept * tl[c];
                right[c] = kept - left[c];
            }
        }
    return 0;
}
