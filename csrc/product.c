/*
 * Matrix product of the back-substitution (see product.h).
 *
 * Portable path (C99): row by row, out_r = sum over live i of lam[r, i] * w_i,
 * an axpy over contiguous rows of w that the compiler vectorises.
 *
 * On x86-64 with GCC or Clang a second path is compiled for AVX2 with fused
 * multiply-add and chosen at run time when the CPU has both: the output is
 * computed in register tiles of 4 rows x 8 columns, columns outermost, so a
 * block of 8 columns of w stays in L1 cache while every row block passes over
 * it.  Both paths sum each entry in the order of `live`; they differ only in
 * rounding (fused or not), as BLAS does, and the bounds are widened for it.
 */
#include "product.h"

#include <string.h>

/* Portable path: out rows one at a time. */
static void product_plain(int64_t rows, int64_t h, int64_t n, const double *lam,
                          const double *w, const int64_t *live, int64_t nlive, double *out)
{
    for (int64_t r = 0; r < rows; ++r) {
        const double *l = lam + r * h;
        double *o = out + r * n;
        memset(o, 0, sizeof(double) * (size_t)n);
        for (int64_t t = 0; t < nlive; ++t) {
            const int64_t i = live[t];
            const double la = l[i];
            const double *wr = w + i * n;
            for (int64_t b = 0; b < n; ++b) {
                o[b] += la * wr[b];
            }
        }
    }
}

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define BN_HAVE_FUSED 1
#include <immintrin.h>

#define FUSED __attribute__((target("avx2,fma")))

/* Rows r0 .. r0+3, columns c0 .. c0+7 of out. */
FUSED static void fused_tile(int64_t h, int64_t n, const double *lam, const double *w,
                             const int64_t *live, int64_t nlive, double *out, int64_t r0,
                             int64_t c0)
{
    __m256d a00 = _mm256_setzero_pd(), a01 = _mm256_setzero_pd();
    __m256d a10 = _mm256_setzero_pd(), a11 = _mm256_setzero_pd();
    __m256d a20 = _mm256_setzero_pd(), a21 = _mm256_setzero_pd();
    __m256d a30 = _mm256_setzero_pd(), a31 = _mm256_setzero_pd();
    const double *l0 = lam + r0 * h;
    const double *l1 = l0 + h;
    const double *l2 = l1 + h;
    const double *l3 = l2 + h;
    for (int64_t t = 0; t < nlive; ++t) {
        const int64_t i = live[t];
        const double *wr = w + i * n + c0;
        const __m256d w0 = _mm256_loadu_pd(wr);
        const __m256d w1 = _mm256_loadu_pd(wr + 4);
        __m256d b = _mm256_broadcast_sd(l0 + i);
        a00 = _mm256_fmadd_pd(b, w0, a00);
        a01 = _mm256_fmadd_pd(b, w1, a01);
        b = _mm256_broadcast_sd(l1 + i);
        a10 = _mm256_fmadd_pd(b, w0, a10);
        a11 = _mm256_fmadd_pd(b, w1, a11);
        b = _mm256_broadcast_sd(l2 + i);
        a20 = _mm256_fmadd_pd(b, w0, a20);
        a21 = _mm256_fmadd_pd(b, w1, a21);
        b = _mm256_broadcast_sd(l3 + i);
        a30 = _mm256_fmadd_pd(b, w0, a30);
        a31 = _mm256_fmadd_pd(b, w1, a31);
    }
    double *o = out + r0 * n + c0;
    _mm256_storeu_pd(o, a00);
    _mm256_storeu_pd(o + 4, a01);
    _mm256_storeu_pd(o + n, a10);
    _mm256_storeu_pd(o + n + 4, a11);
    _mm256_storeu_pd(o + 2 * n, a20);
    _mm256_storeu_pd(o + 2 * n + 4, a21);
    _mm256_storeu_pd(o + 3 * n, a30);
    _mm256_storeu_pd(o + 3 * n + 4, a31);
}

/* Lane masks selecting the first `cw` (< 8) of 8 columns, as two halves of 4. */
FUSED static void column_masks(int64_t cw, __m256i *low, __m256i *high)
{
    const __m256i lanes = _mm256_set_epi64x(3, 2, 1, 0);
    *low = _mm256_cmpgt_epi64(_mm256_set1_epi64x(cw), lanes);
    *high = _mm256_cmpgt_epi64(_mm256_set1_epi64x(cw - 4), lanes);
}

/* Rows r0 .. r0+3, the first cw (< 8) columns from c0 (right edge of out). */
FUSED static void fused_tile_masked(int64_t h, int64_t n, const double *lam, const double *w,
                                    const int64_t *live, int64_t nlive, double *out,
                                    int64_t r0, int64_t c0, int64_t cw)
{
    __m256i m0, m1;
    column_masks(cw, &m0, &m1);
    __m256d a00 = _mm256_setzero_pd(), a01 = _mm256_setzero_pd();
    __m256d a10 = _mm256_setzero_pd(), a11 = _mm256_setzero_pd();
    __m256d a20 = _mm256_setzero_pd(), a21 = _mm256_setzero_pd();
    __m256d a30 = _mm256_setzero_pd(), a31 = _mm256_setzero_pd();
    const double *l0 = lam + r0 * h;
    const double *l1 = l0 + h;
    const double *l2 = l1 + h;
    const double *l3 = l2 + h;
    for (int64_t t = 0; t < nlive; ++t) {
        const int64_t i = live[t];
        const double *wr = w + i * n + c0;
        const __m256d w0 = _mm256_maskload_pd(wr, m0);
        const __m256d w1 = _mm256_maskload_pd(wr + 4, m1);
        __m256d b = _mm256_broadcast_sd(l0 + i);
        a00 = _mm256_fmadd_pd(b, w0, a00);
        a01 = _mm256_fmadd_pd(b, w1, a01);
        b = _mm256_broadcast_sd(l1 + i);
        a10 = _mm256_fmadd_pd(b, w0, a10);
        a11 = _mm256_fmadd_pd(b, w1, a11);
        b = _mm256_broadcast_sd(l2 + i);
        a20 = _mm256_fmadd_pd(b, w0, a20);
        a21 = _mm256_fmadd_pd(b, w1, a21);
        b = _mm256_broadcast_sd(l3 + i);
        a30 = _mm256_fmadd_pd(b, w0, a30);
        a31 = _mm256_fmadd_pd(b, w1, a31);
    }
    double *o = out + r0 * n + c0;
    _mm256_maskstore_pd(o, m0, a00);
    _mm256_maskstore_pd(o + 4, m1, a01);
    _mm256_maskstore_pd(o + n, m0, a10);
    _mm256_maskstore_pd(o + n + 4, m1, a11);
    _mm256_maskstore_pd(o + 2 * n, m0, a20);
    _mm256_maskstore_pd(o + 2 * n + 4, m1, a21);
    _mm256_maskstore_pd(o + 3 * n, m0, a30);
    _mm256_maskstore_pd(o + 3 * n + 4, m1, a31);
}

/* One row r, columns c0 .. c0+cw-1 (cw <= 8; bottom edge of out). */
FUSED static void fused_row(int64_t h, int64_t n, const double *lam, const double *w,
                            const int64_t *live, int64_t nlive, double *out, int64_t r,
                            int64_t c0, int64_t cw)
{
    __m256i m0, m1;
    column_masks(cw, &m0, &m1);
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    const double *l = lam + r * h;
    for (int64_t t = 0; t < nlive; ++t) {
        const int64_t i = live[t];
        const double *wr = w + i * n + c0;
        const __m256d b = _mm256_broadcast_sd(l + i);
        a0 = _mm256_fmadd_pd(b, _mm256_maskload_pd(wr, m0), a0);
        a1 = _mm256_fmadd_pd(b, _mm256_maskload_pd(wr + 4, m1), a1);
    }
    _mm256_maskstore_pd(out + r * n + c0, m0, a0);
    _mm256_maskstore_pd(out + r * n + c0 + 4, m1, a1);
}

FUSED static void product_fused(int64_t rows, int64_t h, int64_t n, const double *lam,
                                const double *w, const int64_t *live, int64_t nlive,
                                double *out)
{
    const int64_t rows4 = rows - rows % 4;
    for (int64_t c0 = 0; c0 < n; c0 += 8) {
        const int64_t cw = n - c0 < 8 ? n - c0 : 8;
        for (int64_t r0 = 0; r0 < rows4; r0 += 4) {
            if (cw == 8) {
                fused_tile(h, n, lam, w, live, nlive, out, r0, c0);
            } else {
                fused_tile_masked(h, n, lam, w, live, nlive, out, r0, c0, cw);
            }
        }
        for (int64_t r = rows4; r < rows; ++r) {
            fused_row(h, n, lam, w, live, nlive, out, r, c0, cw);
        }
    }
}

static int cpu_has_fused(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

void bn_product(int64_t rows, int64_t h, int64_t n, const double *lam, const double *w,
                const int64_t *live, int64_t nlive, double *out, int portable)
{
    (void)portable;
#ifdef BN_HAVE_FUSED
    if (!portable && cpu_has_fused()) {
        product_fused(rows, h, n, lam, w, live, nlive, out);
        return;
    }
#endif
    product_plain(rows, h, n, lam, w, live, nlive, out);
}
