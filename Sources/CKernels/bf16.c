// bf16 packing and GEMM; see include/ckernels.h for the layouts. The microkernel is a 12 × 32 tile of fp32
// accumulators (24 zmm; 8 rows measured 1–4% slower) updated with vdpbf16ps: per k-pair, two 32-lane loads of B and one broadcast of A per
// row. With its operands in L2 that loop runs at the instruction's limit (2 per cycle per core, measured); what
// the GEMM loses is memory latency, so the tile prefetches: its C lines for writing as it starts (without it
// the tile's stores wait on their read-for-ownership: up to 8% at 2048³), its A panel 128 pairs ahead and its
// B panel 16 pairs ahead into L1, and a share of the next B panel into L2 (cold weights stream from DRAM once
// per pass).
// Blocking: a B panel of up to KC pairs (K ≤ 8192, every OPT ≤ 6.7B projection, in one block: C tiles are then
// written once; splitting K in two measured 3–6% slower at fc2's shape) serves every row panel of an MC block
// (8 panels, 96 rows of A: 384 KB at K = 2048, kept in L2 beside the B panel; the A prefetch covers larger K).
#include "ckernels.h"
#include <string.h>
#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
#include <cpuid.h>
#endif

#define KC_PAIRS 4096
#define MC_PANELS 8
#ifndef NC_BYTES
#define NC_BYTES (4 << 20)
#endif

#if defined(__x86_64__)
int hr_avx512_available(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 16))) return 0;  // avx512f
    // The OS must save the opmask and zmm state (XCR0 bits 1, 2, 5, 6, 7).
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;         // osxsave
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 0xE6) == 0xE6;
}

int hr_bf16_fast_available(void) {
    unsigned a, b, c, d;
    if (!hr_avx512_available() || !__get_cpuid_count(7, 0, &a, &b, &c, &d) || a < 1) return 0;  // leaf 7 subleaf 1 exists
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5));                          // avx512_bf16
}
#else
int hr_bf16_fast_available(void) { return 0; }
#endif

uint16_t hr_bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

void hr_bf16_round_floats(float *x, size_t count) {
    for (size_t i = 0; i < count; i++) {
        uint32_t u = (uint32_t)hr_bf16_round(x[i]) << 16;
        memcpy(&x[i], &u, 4);
    }
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu, u;
    if (exp == 0x1F) u = sign | 0x7F800000u | (man << 13);
    else if (exp != 0) u = sign | ((exp + 112) << 23) | (man << 13);
    else if (man == 0) u = sign;
    else {  // subnormal half: normalise
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400u));
        u = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3FFu) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t element_bf16(const void *src, int dtype, ptrdiff_t index) {
    switch (dtype) {
    case HR_F32: return hr_bf16_round(((const float *)src)[index]);
    case HR_F16: return hr_bf16_round(half_to_float(((const uint16_t *)src)[index]));
    default: return ((const uint16_t *)src)[index];
    }
}

static inline int pairs_of(int K) { return (K + 1) / 2; }

size_t hr_bf16_packed_b_count(int N, int K) {
    return (size_t)((N + HR_NR - 1) / HR_NR) * HR_NR * (size_t)pairs_of(K) * 2;
}

size_t hr_bf16_packed_a_count(int M, int K) {
    return (size_t)((M + HR_MR - 1) / HR_MR) * HR_MR * (size_t)pairs_of(K);
}

void hr_bf16_pack_b(const void *src, int dtype, ptrdiff_t strideN, ptrdiff_t strideK, int N, int K,
                    int n0, int n1, uint16_t *packed) {
    const int Kp = pairs_of(K);
    uint16_t row[Kp * 2 > 0 ? Kp * 2 : 1];
    for (int n = n0; n < n1 || n % HR_NR != 0; n++) {
        const int panel = n / HR_NR, j = n % HR_NR;
        if (n < N) {
            const ptrdiff_t base = (ptrdiff_t)(n - n0) * strideN;
            if (dtype == HR_F32 && strideK == 1) {
                const float *r = (const float *)src + base;
                for (int k = 0; k < K; k++) row[k] = hr_bf16_round(r[k]);
            } else {
                for (int k = 0; k < K; k++) row[k] = element_bf16(src, dtype, base + k * strideK);
            }
            if (K % 2) row[K] = 0;
        } else {
            memset(row, 0, sizeof(uint16_t) * Kp * 2);
        }
        uint32_t *out = (uint32_t *)packed + (size_t)panel * Kp * HR_NR + j;
        for (int p = 0; p < Kp; p++) out[(size_t)p * HR_NR] = (uint32_t)row[2 * p] | ((uint32_t)row[2 * p + 1] << 16);
    }
}

void hr_bf16_pack_a(const float *a, ptrdiff_t lda, int M, int K, int m0, int m1, uint32_t *packed) {
    const int Kp = pairs_of(K);
    for (int m = m0; m < m1 || m % HR_MR != 0; m++) {
        uint32_t *out = packed + (size_t)(m / HR_MR) * Kp * HR_MR + m % HR_MR;
        if (m >= M) {
            for (int p = 0; p < Kp; p++) out[(size_t)p * HR_MR] = 0;
            continue;
        }
        const float *r = a + m * lda;
        for (int p = 0; p < K / 2; p++)
            out[(size_t)p * HR_MR] = (uint32_t)hr_bf16_round(r[2 * p]) | ((uint32_t)hr_bf16_round(r[2 * p + 1]) << 16);
        if (K % 2) out[(size_t)(Kp - 1) * HR_MR] = hr_bf16_round(r[K - 1]);
    }
}

void hr_bf16_unpack_b(const uint16_t *packed, int N, int K, int n0, int n1, float *out) {
    const int Kp = pairs_of(K);
    for (int n = n0; n < n1 && n < N; n++) {
        const uint16_t *panel = packed + (size_t)(n / HR_NR) * Kp * HR_NR * 2 + (n % HR_NR) * 2;
        float *r = out + (size_t)(n - n0) * K;
        for (int k = 0; k < K; k++) {
            uint32_t u = (uint32_t)panel[(size_t)(k / 2) * HR_NR * 2 + (k & 1)] << 16;
            memcpy(&r[k], &u, 4);
        }
    }
}

#if defined(__x86_64__)
#define TARGET __attribute__((target("avx512f,avx512bw,avx512bf16,prfchw")))

/// hr_bf16_pack_a with vcvtne2ps2bf16 (round to nearest even; like the microkernel, it treats denormal inputs
/// as zero). Sixteen pairs of eight rows at a time, transposed through a small tile.
TARGET void hr_bf16_pack_a_fast(const float *a, ptrdiff_t lda, int M, int K, int m0, int m1, uint32_t *packed) {
    const int Kp = pairs_of(K), full = K / 32;
    for (int mp = m0 / HR_MR; mp * HR_MR < m1; mp++) {
        uint32_t *out = packed + (size_t)mp * Kp * HR_MR;
        const int rows = M - mp * HR_MR < HR_MR ? M - mp * HR_MR : HR_MR;
        if (rows < HR_MR) {  // the last, partial panel: the portable packer
            hr_bf16_pack_a(a, lda, M, K, mp * HR_MR, M, packed);
            continue;
        }
        uint32_t tile[HR_MR][16] __attribute__((aligned(64)));
        for (int q = 0; q < full; q++) {
            for (int r = 0; r < HR_MR; r++) {
                const float *src = a + (ptrdiff_t)(mp * HR_MR + r) * lda + q * 32;
                __m512i v = (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + 16), _mm512_loadu_ps(src));
                _mm512_store_si512((void *)tile[r], v);
            }
            uint32_t *o = out + (size_t)q * 16 * HR_MR;
            for (int p = 0; p < 16; p++)
                for (int r = 0; r < HR_MR; r++) o[p * HR_MR + r] = tile[r][p];
        }
        for (int r = 0; r < HR_MR; r++) {  // the columns past the last full 32
            const float *src = a + (ptrdiff_t)(mp * HR_MR + r) * lda;
            for (int p = full * 16; p < K / 2; p++)
                out[(size_t)p * HR_MR + r] = (uint32_t)hr_bf16_round(src[2 * p]) | ((uint32_t)hr_bf16_round(src[2 * p + 1]) << 16);
            if (K % 2) out[(size_t)(Kp - 1) * HR_MR + r] = hr_bf16_round(src[K - 1]);
        }
    }
}

/// hr_bf16_pack_b for fp32 rows (strideK 1) with vcvtne2ps2bf16: per panel, 16 pairs of 32 rows at a time,
/// transposed through a tile; tails by the portable packer.
TARGET void hr_bf16_pack_b_fast(const float *src, ptrdiff_t strideN, int N, int K, int n0, int n1, uint16_t *packed) {
    const int Kp = pairs_of(K), full = K / 32;
    int n = n0;
    for (; n + HR_NR <= n1 && n + HR_NR <= N; n += HR_NR) {
        uint32_t *out = (uint32_t *)packed + (size_t)(n / HR_NR) * Kp * HR_NR;
        uint32_t tile[HR_NR][16] __attribute__((aligned(64)));
        for (int q = 0; q < full; q++) {
            for (int j = 0; j < HR_NR; j++) {
                const float *r = src + (ptrdiff_t)(n - n0 + j) * strideN + q * 32;
                _mm512_store_si512((void *)tile[j], (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(r + 16), _mm512_loadu_ps(r)));
            }
            uint32_t *o = out + (size_t)q * 16 * HR_NR;
            for (int p = 0; p < 16; p++)
                for (int j = 0; j < HR_NR; j++) o[p * HR_NR + j] = tile[j][p];
        }
        for (int j = 0; j < HR_NR; j++) {  // columns past the last full 32
            const float *r = src + (ptrdiff_t)(n - n0 + j) * strideN;
            for (int p = full * 16; p < K / 2; p++)
                out[(size_t)p * HR_NR + j] = (uint32_t)hr_bf16_round(r[2 * p]) | ((uint32_t)hr_bf16_round(r[2 * p + 1]) << 16);
            if (K % 2) out[(size_t)(Kp - 1) * HR_NR + j] = hr_bf16_round(r[K - 1]);
        }
    }
    if (n < n1 || n % HR_NR != 0)
        hr_bf16_pack_b(src + (ptrdiff_t)(n - n0) * strideN, HR_F32, strideN, 1, N, K, n, n1, packed);
}

/// c tile [rows ≤ HR_MR, cols ≤ 32] (+)= Σ over kc pairs. init: 0 zero, 1 bias, 2 load c, 3 load c + bias.
/// With `pk`, the tile goes there instead of to c: max(0, ·) rounded to bf16 as one row panel's 16 pairs of
/// packed A (12 × 16 uint32, contiguous; rows past `rows` and columns past `cols` zero). `l2` (up to kc · 16
/// bytes, or NULL) is fetched into L2 along the way: a share of the next B panel.
TARGET static void kernel_tile(int kc, const uint32_t *a, const uint16_t *b, float *c, ptrdiff_t ldc,
                               int rows, int cols, const float *bias, int init, uint32_t *pk, const char *l2, size_t l2_bytes) {
    const __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1);
    const __mmask16 m1 = cols >= 32 ? 0xFFFF : cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1) : 0;
    __m512 acc[HR_MR][2];
    __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
    if (init & 1) { b0 = _mm512_maskz_loadu_ps(m0, bias); b1 = _mm512_maskz_loadu_ps(m1, bias + 16); }
#pragma clang loop unroll(full)
    for (int r = 0; r < HR_MR; r++) {
        if ((init & 2) && r < rows) {
            acc[r][0] = _mm512_add_ps(b0, _mm512_maskz_loadu_ps(m0, c + r * ldc));
            acc[r][1] = _mm512_add_ps(b1, _mm512_maskz_loadu_ps(m1, c + r * ldc + 16));
        } else {
            acc[r][0] = b0;
            acc[r][1] = b1;
        }
    }
    if (pk) {  // the tile's 768 bytes of packed output, for writing
#pragma clang loop unroll(full)
        for (int l = 0; l < HR_MR; l++) __builtin_prefetch(pk + 16 * l, 1, 3);
    } else {
#pragma clang loop unroll(full)
        for (int r = 0; r < HR_MR; r++) {  // this tile's C lines, for writing (past a row's end: harmless, never faults)
            if (r < rows) {
                __builtin_prefetch(c + r * ldc, 1, 3);
                __builtin_prefetch(c + r * ldc + 16, 1, 3);
            }
        }
    }
    for (int p = 0; p < kc; p++) {
        // Ahead in A and B (past a panel's end: the next panel's start, or nothing; prefetches never fault).
        _mm_prefetch((const char *)(b + (size_t)(p + 16) * 64), _MM_HINT_T0);
        _mm_prefetch((const char *)(b + (size_t)(p + 16) * 64 + 32), _MM_HINT_T0);
        if ((p & 3) == 0 && (size_t)p * 16 < l2_bytes) _mm_prefetch(l2 + (size_t)p * 16, _MM_HINT_T1);
        if ((p & 3) == 0) {  // four pairs of A are 192 bytes: three lines
            _mm_prefetch((const char *)(a + (size_t)(p + 128) * HR_MR), _MM_HINT_T0);
            _mm_prefetch((const char *)(a + (size_t)(p + 128) * HR_MR + 16), _MM_HINT_T0);
            _mm_prefetch((const char *)(a + (size_t)(p + 128) * HR_MR + 32), _MM_HINT_T0);
        }
        const __m512bh w0 = (__m512bh)_mm512_loadu_si512((const void *)(b + (size_t)p * 64));
        const __m512bh w1 = (__m512bh)_mm512_loadu_si512((const void *)(b + (size_t)p * 64 + 32));
#pragma clang loop unroll(full)
        for (int r = 0; r < HR_MR; r++) {
            const __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[(size_t)p * HR_MR + r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, w0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, w1);
        }
    }
    if (pk) {
        // Row r's 32 columns → 16 pairs (vcvtne2ps2bf16 puts its second operand in the low half), transposed
        // into the panel's [pair][row] order through a small tile.
        uint32_t tile[HR_MR][16] __attribute__((aligned(64)));
        const __m512 zero = _mm512_setzero_ps();
#pragma clang loop unroll(full)
        for (int r = 0; r < HR_MR; r++) {
            const __m512 lo = r < rows ? _mm512_maskz_max_ps(m0, acc[r][0], zero) : zero;
            const __m512 hi = r < rows ? _mm512_maskz_max_ps(m1, acc[r][1], zero) : zero;
            _mm512_store_si512((void *)tile[r], (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
        const int pairs = (cols + 1) / 2;
        for (int q = 0; q < pairs; q++)
#pragma clang loop unroll(full)
            for (int r = 0; r < HR_MR; r++) pk[q * HR_MR + r] = tile[r][q];
        return;
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < HR_MR; r++) {
        if (r < rows) {
            _mm512_mask_storeu_ps(c + r * ldc, m0, acc[r][0]);
            _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc[r][1]);
        }
    }
}

/// The blocked GEMM behind both entry points: tiles to C, or (pk) to packed A of the next GEMM with `pk_pairs`
/// pairs per panel, this GEMM's column n being its column column0 + n. ReLU needs the whole sum, so then K is
/// one block.
TARGET static void gemm_blocked(const uint32_t *a, int M, int K, const uint16_t *b, int n0, int n1,
                                const float *bias, int accumulate, float *c, ptrdiff_t ldc,
                                uint32_t *pk, int pk_pairs, int column0) {
    const int Kp = pairs_of(K), Mpanels = (M + HR_MR - 1) / HR_MR, kc_max = pk ? Kp : KC_PAIRS;
    for (int kc0 = 0; kc0 < Kp; kc0 += kc_max) {
        const int kc = Kp - kc0 < kc_max ? Kp - kc0 : kc_max;
        const int init = (kc0 > 0 || accumulate ? 2 : 0) | (kc0 == 0 && bias ? 1 : 0);
        // B in blocks of about NC_BYTES (kept in L3 while every row block passes over them), so a wide B (the
        // LM head's 50272 rows) is read from memory once instead of once per row block.
        const int nc = HR_NR * (NC_BYTES / (kc * HR_NR * 4) > 1 ? NC_BYTES / (kc * HR_NR * 4) : 1);
        for (int nb = n0; nb < n1; nb += nc) {
            const int nb1 = nb + nc < n1 ? nb + nc : n1;
            for (int mc0 = 0; mc0 < Mpanels; mc0 += MC_PANELS) {
                const int mc1 = mc0 + MC_PANELS < Mpanels ? mc0 + MC_PANELS : Mpanels;
                for (int n = nb; n < nb1; n += HR_NR) {
                    const uint16_t *bp = b + ((size_t)(n / HR_NR) * Kp + kc0) * HR_NR * 2;
                    const int cols = n1 - n < HR_NR ? n1 - n : HR_NR;
                    for (int mp = mc0; mp < mc1; mp++) {
                        const int rows = M - mp * HR_MR < HR_MR ? M - mp * HR_MR : HR_MR;
                        uint32_t *tile_pk = pk ? pk + ((size_t)mp * pk_pairs + (size_t)(column0 + n) / 2) * HR_MR : NULL;
                        // This tile's share of the next B panel, fetched into L2 while it computes: the panel's
                        // first tile then finds it there instead of in L3 or DRAM (+1–4% over opt-1.3b's shapes).
                        const size_t share = (size_t)kc * HR_NR * 4 / (size_t)(mc1 - mc0);
                        const char *next = n + HR_NR < nb1 ? (const char *)(bp + (size_t)Kp * HR_NR * 2) + (size_t)(mp - mc0) * share : NULL;
                        kernel_tile(kc, a + ((size_t)mp * Kp + kc0) * HR_MR, bp, c + (size_t)mp * HR_MR * ldc + n, ldc,
                                    rows, cols, bias ? bias + n : NULL, init, tile_pk, next, next ? share : 0);
                    }
                }
            }
        }
    }
}

TARGET void hr_bf16_gemm_fast(const uint32_t *a, int M, int K, const uint16_t *b, int N, int n0, int n1,
                              const float *bias, int accumulate, float *c, ptrdiff_t ldc) {
    if (n1 > N) n1 = N;
    if (pairs_of(K) == 0) {  // empty sum: C = bias (+ C)
        for (int m = 0; m < M; m++)
            for (int n = n0; n < n1; n++) c[m * ldc + n] = (accumulate ? c[m * ldc + n] : 0) + (bias ? bias[n] : 0);
        return;
    }
    gemm_blocked(a, M, K, b, n0, n1, bias, accumulate, c, ldc, NULL, 0, 0);
}

TARGET void hr_bf16_gemm_relu_pack_fast(const uint32_t *a, int M, int K, const uint16_t *b, int N, int n0, int n1,
                                        const float *bias, uint32_t *packed, int packedK, int column0) {
    if (n1 > N) n1 = N;
    if (pairs_of(K) == 0) {  // empty sum: relu(bias), through the portable packer a row at a time
        float row[HR_NR];
        for (int m = 0; m < M; m++)
            for (int n = n0; n < n1; n += HR_NR) {
                const int cols = n1 - n < HR_NR ? n1 - n : HR_NR;
                for (int j = 0; j < cols; j++) row[j] = bias && bias[n + j] > 0 ? bias[n + j] : 0;
                for (int j = 0; j < cols; j += 2) {
                    const uint32_t lo = hr_bf16_round(row[j]), hi = j + 1 < cols ? hr_bf16_round(row[j + 1]) : 0;
                    packed[((size_t)(m / HR_MR) * pairs_of(packedK) + (size_t)(column0 + n + j) / 2) * HR_MR + m % HR_MR] = lo | hi << 16;
                }
            }
        return;
    }
    gemm_blocked(a, M, K, b, n0, n1, bias, 0, NULL, 0, packed, pairs_of(packedK), column0);
}

#else  // not x86-64: only the portable paths exist; the fast entry points are never called (availability is 0)

void hr_bf16_pack_a_fast(const float *a, ptrdiff_t lda, int M, int K, int m0, int m1, uint32_t *packed) {
    hr_bf16_pack_a(a, lda, M, K, m0, m1, packed);
}
void hr_bf16_pack_b_fast(const float *src, ptrdiff_t strideN, int N, int K, int n0, int n1, uint16_t *packed) {
    hr_bf16_pack_b(src, HR_F32, strideN, 1, N, K, n0, n1, packed);
}
void hr_bf16_gemm_fast(const uint32_t *a, int M, int K, const uint16_t *b, int N, int n0, int n1,
                       const float *bias, int accumulate, float *c, ptrdiff_t ldc) {
    (void)a; (void)M; (void)K; (void)b; (void)N; (void)n0; (void)n1; (void)bias; (void)accumulate; (void)c; (void)ldc;
}
void hr_bf16_gemm_relu_pack_fast(const uint32_t *a, int M, int K, const uint16_t *b, int N, int n0, int n1,
                                 const float *bias, uint32_t *packed, int packedK, int column0) {
    (void)a; (void)M; (void)K; (void)b; (void)N; (void)n0; (void)n1; (void)bias; (void)packed; (void)packedK; (void)column0;
}
int hr_avx512_available(void) { return 0; }
#endif
