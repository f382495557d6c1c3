// fp32 attention kernels (AVX-512F): the causal softmax and one head's causal attention. They live in this C
// target beside the bf16 GEMM because Swift cannot express their AVX-512 reductions and masks; both are fp32
// and serve fp32 and bf16 models alike.
#include "ckernels.h"
#include <string.h>
#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f")))

// ---- Causal softmax rows (fp32): the attention's softmax, vectorized -------------------------------------

/// e^x for the softmax after subtracting the row maximum: the same Cody–Waite reduction and degree-6 Taylor
/// polynomial as the runtime's scalar fastExp, sixteen lanes at a time; below −87 gives 0, NaN stays NaN.
TARGET static inline __m512 exp16(__m512 x) {
    const __m512 c = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(c, _mm512_set1_ps(1.442695041f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 r = _mm512_add_ps(_mm512_sub_ps(c, _mm512_mul_ps(n, _mm512_set1_ps(0.693359375f))), _mm512_mul_ps(n, _mm512_set1_ps(2.12194440e-4f)));
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f / 120));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f / 24));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f / 6));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(0.5f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f));
    const __m512 scale = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
    __m512 y = _mm512_mul_ps(p, scale);
    y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_LT_OQ), _mm512_setzero_ps());
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

/// row[j] = e^(row[j] − max) for j < valid (the softmax's numerators, in place); returns their sum. A row
/// holding NaN gives NaN throughout.
TARGET static inline float softmax_numerators(float *row, int valid) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    __mmask16 nan = 0;
    for (int j = 0; j < valid; j += 16) {
        const __mmask16 k = valid - j >= 16 ? 0xFFFF : (__mmask16)((1u << (valid - j)) - 1);
        const __m512 v = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), k, row + j);
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        m = _mm512_max_ps(m, v);
    }
    const __m512 mx = _mm512_set1_ps(nan ? NAN : _mm512_reduce_max_ps(m));
    __m512 s = _mm512_setzero_ps();
    for (int j = 0; j < valid; j += 16) {
        const __mmask16 k = valid - j >= 16 ? 0xFFFF : (__mmask16)((1u << (valid - j)) - 1);
        const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, row + j), mx));
        _mm512_mask_storeu_ps(row + j, k, e);
        s = _mm512_add_ps(s, _mm512_maskz_mov_ps(k, e));
    }
    return _mm512_reduce_add_ps(s);
}

TARGET static void softmax_rows_avx512(float *p, int rows, int prefix, int ld) {
    for (int i = 0; i < rows; i++) {
        float *row = p + (size_t)i * ld;
        const int valid = prefix + i + 1;
        const __m512 inverse = _mm512_set1_ps(1.0f / softmax_numerators(row, valid));
        for (int j = 0; j < valid; j += 16) {
            const __mmask16 k = valid - j >= 16 ? 0xFFFF : (__mmask16)((1u << (valid - j)) - 1);
            _mm512_mask_storeu_ps(row + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, row + j), inverse));
        }
        if (valid < ld) memset(row + valid, 0, sizeof(float) * (size_t)(ld - valid));
    }
}

int hr_softmax_causal(float *p, int rows, int prefix, int ld) {
    static int avx512 = -1;
    if (avx512 < 0) avx512 = hr_avx512_available();
    if (!avx512) return 0;
    softmax_rows_avx512(p, rows, prefix, ld);
    return 1;
}

// ---- One head's causal attention (fp32) -----------------------------------------------------------------

/// s [rows ≤ 12, up to 32 columns from j0] = q rows · kt columns, kt [D, ldk] (k transposed, zero past T).
__attribute__((target("avx512f"), always_inline)) static inline void qk_tile(const float *q, ptrdiff_t ld, const float *kt, int ldk, int D,
                                                              int rows, int j0, float *s, int lds) {
    __m512 acc[12][2];
#pragma clang loop unroll(full)
    for (int r = 0; r < 12; r++) { acc[r][0] = _mm512_setzero_ps(); acc[r][1] = _mm512_setzero_ps(); }
    for (int d = 0; d < D; d++) {
        const __m512 k0 = _mm512_loadu_ps(kt + (size_t)d * ldk + j0), k1 = _mm512_loadu_ps(kt + (size_t)d * ldk + j0 + 16);
#pragma clang loop unroll(full)
        for (int r = 0; r < 12; r++) {
            if (r < rows) {
                const __m512 x = _mm512_set1_ps(q[r * ld + d]);
                acc[r][0] = _mm512_fmadd_ps(x, k0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(x, k1, acc[r][1]);
            }
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < 12; r++) {
        if (r < rows) {
            _mm512_storeu_ps(s + (size_t)r * lds + j0, acc[r][0]);
            _mm512_storeu_ps(s + (size_t)r * lds + j0 + 16, acc[r][1]);
        }
    }
}

/// out [rows ≤ 6, 64 columns from c0, masked to D] = (p rows [.., 0 ..< J] · v rows) · inv[row].
__attribute__((target("avx512f"), always_inline)) static inline void pv_tile(const float *p, int ldp, const float *v, ptrdiff_t ld, int J,
                                                              int rows, int c0, int D, const float *inv, float *out, ptrdiff_t ldo) {
    __mmask16 m[4];
    for (int c = 0; c < 4; c++) {
        const int left = D - c0 - 16 * c;
        m[c] = left >= 16 ? 0xFFFF : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
    }
    __m512 acc[6][4];
#pragma clang loop unroll(full)
    for (int r = 0; r < 6; r++)
#pragma clang loop unroll(full)
        for (int c = 0; c < 4; c++) acc[r][c] = _mm512_setzero_ps();
    for (int j = 0; j < J; j++) {
        __m512 w[4];
#pragma clang loop unroll(full)
        for (int c = 0; c < 4; c++) w[c] = _mm512_maskz_loadu_ps(m[c], v + (size_t)j * ld + c0 + 16 * c);
#pragma clang loop unroll(full)
        for (int r = 0; r < 6; r++) {
            if (r < rows) {
                const __m512 x = _mm512_set1_ps(p[(size_t)r * ldp + j]);
#pragma clang loop unroll(full)
                for (int c = 0; c < 4; c++) acc[r][c] = _mm512_fmadd_ps(x, w[c], acc[r][c]);
            }
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < 6; r++)
        if (r < rows)
#pragma clang loop unroll(full)
            for (int c = 0; c < 4; c++)
                _mm512_mask_storeu_ps(out + (size_t)r * ldo + c0 + 16 * c, m[c], _mm512_mul_ps(acc[r][c], _mm512_set1_ps(inv[r])));
}

__attribute__((target("avx512f"))) static void attention_head(const float *q, const float *k, const float *v, ptrdiff_t ld,
                                                              int T, int D, float *out, ptrdiff_t ldo, float *scratch) {
    const int ldk = (T + 31) / 32 * 32;
    float *kt = scratch, *s = scratch + (size_t)D * ldk;
    // kᵀ sixteen keys at a time: their rows stay in L1 while each d writes one line of kt (a plain d-major walk
    // of the strided rows took as long as both products).
    for (int j0 = 0; j0 < ldk; j0 += 16) {
        const int n = T - j0 < 16 ? (T - j0 > 0 ? T - j0 : 0) : 16;
        for (int d = 0; d < D; d++) {
            float *o = kt + (size_t)d * ldk + j0;
            for (int j = 0; j < n; j++) o[j] = k[(size_t)(j0 + j) * ld + d];
            for (int j = n; j < 16; j++) o[j] = 0;
        }
    }
    for (int i0 = 0; i0 < T; i0 += 12) {
        const int rows = T - i0 < 12 ? T - i0 : 12, last = i0 + rows;  // row i needs keys 0 ..< i + 1
        for (int j0 = 0; j0 < last; j0 += 32) {  // full tiles with a constant row count, so the row tests fold away
            if (rows == 12) qk_tile(q + (size_t)i0 * ld, ld, kt, ldk, D, 12, j0, s + (size_t)i0 * ldk, ldk);
            else qk_tile(q + (size_t)i0 * ld, ld, kt, ldk, D, rows, j0, s + (size_t)i0 * ldk, ldk);
        }
    }
    // Softmax numerators in place, 1/sum per row kept for the products' end (no pass that scales the row); keys
    // past a row's last are zeroed only as far as its 6-row block reads.
    float *inv = s + (size_t)T * ldk;
    for (int i = 0; i < T; i++) {
        float *row = s + (size_t)i * ldk;
        const int valid = i + 1, end = (i / 6 + 1) * 6 < T ? (i / 6 + 1) * 6 : T;
        inv[i] = 1.0f / softmax_numerators(row, valid);
        for (int j = valid; j < end; j++) row[j] = 0;
    }
    for (int i0 = 0; i0 < T; i0 += 6) {
        const int rows = T - i0 < 6 ? T - i0 : 6;
        for (int c0 = 0; c0 < D; c0 += 64) {
            if (rows == 6) pv_tile(s + (size_t)i0 * ldk, ldk, v, ld, i0 + rows, 6, c0, D, inv + i0, out + (size_t)i0 * ldo, ldo);
            else pv_tile(s + (size_t)i0 * ldk, ldk, v, ld, i0 + rows, rows, c0, D, inv + i0, out + (size_t)i0 * ldo, ldo);
        }
    }
}

size_t hr_attention_scratch_count(int T, int D) { return (size_t)(D + T) * (size_t)((T + 31) / 32 * 32) + (size_t)T; }

int hr_attention_causal(const float *q, const float *k, const float *v, ptrdiff_t ld, int T, int D, float *out, ptrdiff_t ldo,
                        float *scratch) {
    static int avx512 = -1;
    if (avx512 < 0) avx512 = hr_avx512_available();
    if (!avx512) return 0;
    attention_head(q, k, v, ld, T, D, out, ldo, scratch);
    return 1;
}

#else  // not x86-64: the callers' scalar and BLAS loops run (these report 0)

int hr_softmax_causal(float *p, int rows, int prefix, int ld) { (void)p; (void)rows; (void)prefix; (void)ld; return 0; }
size_t hr_attention_scratch_count(int T, int D) { return (size_t)(D + T) * (size_t)((T + 31) / 32 * 32) + (size_t)T; }
int hr_attention_causal(const float *q, const float *k, const float *v, ptrdiff_t ld, int T, int D, float *out, ptrdiff_t ldo,
                        float *scratch) {
    (void)q; (void)k; (void)v; (void)ld; (void)T; (void)D; (void)out; (void)ldo; (void)scratch;
    return 0;
}
#endif
