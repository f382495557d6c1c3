// bf16 GEMM for Headroom: C[M, N] = A[M, K] · B[N, K]ᵀ (+ bias), inputs rounded to bf16 (round to nearest
// even), products accumulated in fp32. B (the weights) is packed once per layer; A (the activations) per call.
//
// Packed B: panels of HR_NR = 32 rows of B; panel j holds, for each k-pair p < ceil(K/2), the 32 rows' elements
// (2p, 2p+1) side by side: [panel][pair][32][2] uint16. Rows past N and the odd column past K are zero.
// Packed A: panels of HR_MR = 12 rows; panel i holds, for each k-pair, the 12 rows' (2p, 2p+1) as one uint32:
// [panel][pair][12] uint32. Rows past M and the odd column past K are zero.
#ifndef HEADROOM_CKernels_H
#define HEADROOM_CKernels_H
#include <stddef.h>
#include <stdint.h>

#define HR_MR 12
#define HR_NR 32

/// Source element types the packers read.
enum hr_dtype { HR_F32 = 0, HR_F16 = 1, HR_BF16 = 2 };

/// 1 when this CPU executes AVX512-BF16 (vdpbf16ps) and the OS saves the AVX-512 state; else 0.
int hr_bf16_fast_available(void);

/// fp32 → bf16, round to nearest even (NaN stays NaN).
uint16_t hr_bf16_round(float x);
/// Rounds `count` floats to bf16 precision in place (the values stay fp32).
void hr_bf16_round_floats(float *x, size_t count);

/// uint16 elements of packed B for N rows and K columns.
size_t hr_bf16_packed_b_count(int N, int K);
/// uint32 elements of packed A for M rows and K columns.
size_t hr_bf16_packed_a_count(int M, int K);

/// Packs rows [n0, n1) of B into `packed` (sized for all N rows); n0 a multiple of HR_NR (rows up to the
/// next multiple of HR_NR past N are zeroed). Element (n, k) is `src[(n − n0)·strideN + k·strideK]` of type
/// `dtype`, so a block of rows or a transposed matrix packs without a copy.
void hr_bf16_pack_b(const void *src, int dtype, ptrdiff_t strideN, ptrdiff_t strideK, int N, int K,
                    int n0, int n1, uint16_t *packed);
/// hr_bf16_pack_b for fp32 rows with unit column stride, using AVX512-BF16 conversions (denormals become zero,
/// as the microkernel treats them anyway); call only when hr_bf16_fast_available().
void hr_bf16_pack_b_fast(const float *src, ptrdiff_t strideN, int N, int K, int n0, int n1, uint16_t *packed);

/// Packs rows [m0, m1) of A `[M, K]` (row stride lda, fp32) into `packed`; m0 a multiple of HR_MR.
void hr_bf16_pack_a(const float *a, ptrdiff_t lda, int M, int K, int m0, int m1, uint32_t *packed);

/// hr_bf16_pack_a with AVX512-BF16 conversions; call only when hr_bf16_fast_available(). Denormal inputs
/// become zero, as the microkernel treats them anyway.
void hr_bf16_pack_a_fast(const float *a, ptrdiff_t lda, int M, int K, int m0, int m1, uint32_t *packed);

/// C rows [0, M), columns [n0, n1) (n0 a multiple of HR_NR) = A · Bᵀ, plus bias[n] when bias is not NULL,
/// plus C's current values when accumulate is 1. The AVX512-BF16 microkernel; call only when
/// hr_bf16_fast_available().
void hr_bf16_gemm_fast(const uint32_t *a, int M, int K, const uint16_t *b, int N, int n0, int n1,
                       const float *bias, int accumulate, float *c, ptrdiff_t ldc);

/// max(0, A · Bᵀ + bias) for C's columns [n0, n1) (n0 a multiple of HR_NR), rounded to bf16 and written straight
/// into packed A of the next GEMM (hr_bf16_pack_a's layout for [M, packedK]), this GEMM's column n being the next
/// one's column column0 + n (column0 even): fc1's epilogue feeding fc2, with no fp32 hidden state in between.
/// Equal to writing C, applying max(0, ·) and hr_bf16_pack_a_fast, except that the packer's scalar tail rounds
/// denormals where this flushes them (vcvtne2ps2bf16). The panels' rows past M are written as zero. Call only
/// when hr_bf16_fast_available().
void hr_bf16_gemm_relu_pack_fast(const uint32_t *a, int M, int K, const uint16_t *b, int N, int n0, int n1,
                                 const float *bias, uint32_t *packed, int packedK, int column0);

/// Rows [n0, n1) of packed B widened to fp32 `[n1 − n0, K]` row-major (the portable path multiplies these).
void hr_bf16_unpack_b(const uint16_t *packed, int N, int K, int n0, int n1, float *out);

/// In place, rows [0, rows) of p (row stride ld): row i keeps columns 0 ..< prefix + i + 1 as their softmax
/// (exp by the runtime's polynomial; a row holding NaN gives NaN) and zeroes the rest. Returns 0 without
/// touching p when this CPU lacks AVX-512 (the caller then runs its scalar loop).
int hr_softmax_causal(float *p, int rows, int prefix, int ld);
/// 1 when this CPU executes AVX-512F and the OS saves its state.
int hr_avx512_available(void);

/// Floats of scratch `hr_attention_causal` needs for T tokens and head size D.
size_t hr_attention_scratch_count(int T, int D);
/// One head of causal attention with no prefix, fp32: out row i (stride ldo) = Σ_{j ≤ i} softmax_j(q_i · k_j)·v_j,
/// q (already scaled), k and v rows of stride ld, T rows, D columns (the softmax as hr_softmax_causal). Products
/// in AVX-512 FMA tiles: at OPT's head sizes a fixed 12 × 32 and 6 × 64 tile beat general GEMM calls, whose
/// packing dominates at K = 64. Returns 0 without touching out when this CPU lacks AVX-512.
int hr_attention_causal(const float *q, const float *k, const float *v, ptrdiff_t ld, int T, int D, float *out, ptrdiff_t ldo,
                        float *scratch);

/// Runs `iterations` × 24 independent multiply-adds from registers on the calling thread (bf16: vdpbf16ps;
/// else fp32 AVX-512 FMA) and returns the floating-point operations done, or −1 when this CPU lacks the
/// instruction. Run on every thread at once and divided by the wall time: the arithmetic limit.
double hr_limit_loop(int bf16, long iterations);

#endif
