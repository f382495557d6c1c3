// The arithmetic limit of this CPU, measured: multiply-add instructions from registers only (24 independent
// accumulators, more than latency × throughput), so nothing but the instruction's issue rate bounds them.
// A GEMM's or a forward's GFLOP/s is then quoted as a fraction of what the core can do at all.
#include "ckernels.h"
#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f,avx512bf16,avx512bw"))) static float bf16_loop(long iterations) {
    __m512 acc[24];
    for (int i = 0; i < 24; i++) acc[i] = _mm512_set1_ps((float)i);
    const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3F803F80), w = (__m512bh)_mm512_set1_epi32(0x3F803F80);  // 1.0 pairs
    for (long i = 0; i < iterations; i++) {
#pragma clang loop unroll(full)
        for (int r = 0; r < 24; r++) {
            acc[r] = _mm512_dpbf16_ps(acc[r], x, w);
            __asm__ volatile("" : "+v"(acc[r]));  // keeps the 24 chains as written
        }
    }
    float s = 0;
    for (int i = 0; i < 24; i++) s += _mm512_reduce_add_ps(acc[i]);
    return s;
}

__attribute__((target("avx512f"))) static float fma_loop(long iterations) {
    __m512 acc[24];
    for (int i = 0; i < 24; i++) acc[i] = _mm512_set1_ps((float)i);
    const __m512 x = _mm512_set1_ps(1.0f), w = _mm512_set1_ps(0.0f);
    for (long i = 0; i < iterations; i++) {
#pragma clang loop unroll(full)
        for (int r = 0; r < 24; r++) {
            acc[r] = _mm512_fmadd_ps(acc[r], x, w);
            __asm__ volatile("" : "+v"(acc[r]));
        }
    }
    float s = 0;
    for (int i = 0; i < 24; i++) s += _mm512_reduce_add_ps(acc[i]);
    return s;
}

double hr_limit_loop(int bf16, long iterations) {
    if (bf16) {
        if (!hr_bf16_fast_available()) return -1;
        (void)bf16_loop(iterations);
        return (double)iterations * 24 * 64;  // 32 bf16 products and 32 adds per instruction
    }
    if (!hr_avx512_available()) return -1;
    (void)fma_loop(iterations);
    return (double)iterations * 24 * 32;  // 16 lanes × (multiply + add)
}
#else
double hr_limit_loop(int bf16, long iterations) { (void)bf16; (void)iterations; return -1; }
#endif
