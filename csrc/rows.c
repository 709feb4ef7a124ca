/*
 * Row kernels of the back-substitution (see rows.h).
 *
 * Portable path: four rows at a time so that their sums run in parallel.  On
 * x86-64 with GCC or Clang an AVX path (chosen at run time) holds the four rows
 * in the lanes of a vector: blocks of 4 x 4 entries are transposed in
 * registers so that each step handles one column of four rows.  Lanes compute
 * exactly the scalar operations (AVX has no fused multiply-add; the file is
 * built with -ffp-contract=off), so both paths give the same bits.
 */
#include "rows.h"

#include <math.h>
#include <string.h>

/* cond ? a : b without a branch (the sign of a coefficient is unpredictable). */
static inline double pick(int cond, double a, double b)
{
    uint64_t ua, ub;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    const uint64_t mask = (uint64_t)0 - (uint64_t)(cond != 0);
    const uint64_t bits = (ua & mask) | (ub & ~mask);
    double out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

/*
 * One entry x relaxed in place.  Branch-free form of the Numba loop, which
 * skips zero entries: a zero entry, or the -0.0 added for a non-positive one,
 * leaves every finite double unchanged (c and e start at +0).
 */
static inline void relax_one(double *x, double up, double lo, double icpt, double mg,
                             double bias, double *c, double *e)
{
    const double value = *x;
    const int positive = value > 0.0;
    const double scaled = value * pick(positive, up, lo);
    *e += fabs(value) * mg;
    *c += pick(positive, value * icpt, -0.0);
    *c += scaled * bias;
    *x = scaled;
}

/* Columns first .. cols-1 of `count` rows from p[0]; c / e hold their running sums. */
static void relax_tail(int64_t count, double *const *p, int64_t first, int64_t cols,
                       const double *up, const double *lo, const double *icpt,
                       const double *mag, const double *bias, double *c, double *e)
{
    for (int64_t i = first; i < cols; ++i) {
        for (int64_t a = 0; a < count; ++a) {
            relax_one(p[a] + i, up[i], lo[i], icpt[i], mag[i], bias[i], c + a, e + a);
        }
    }
}

static void relax_plain(int64_t rows, int64_t cols, double *lam, const double *up,
                        const double *lo, const double *icpt, const double *mag,
                        const double *bias, double *cst, double *err)
{
    for (int64_t r = 0; r < rows; r += 4) {
        const int64_t count = rows - r < 4 ? rows - r : 4;
        double *p[4];
        double c[4] = {0.0, 0.0, 0.0, 0.0};
        double e[4] = {0.0, 0.0, 0.0, 0.0};
        for (int64_t a = 0; a < count; ++a) {
            p[a] = lam + (r + a) * cols;
        }
        relax_tail(count, p, 0, cols, up, lo, icpt, mag, bias, c, e);
        for (int64_t a = 0; a < count; ++a) {
            cst[r + a] += c[a];
            err[r + a] += e[a];
        }
    }
}

/* Row sums of `count` rows from p[0], columns first .. n-1, into a / e. */
static void box_tail(int64_t count, const double *const *p, int64_t first, int64_t n,
                     const double *mid, const double *rad, const double *amr, double *a,
                     double *e)
{
    for (int64_t q = first; q < n; ++q) {
        for (int64_t k = 0; k < count; ++k) {
            const double coef = p[k][q];
            const double acoef = fabs(coef);
            a[k] += coef * mid[q] + acoef * rad[q];
            e[k] += acoef * amr[q];
        }
    }
}

static void box_plain(int64_t rows, int64_t n, const double *lam, const double *mid,
                      const double *rad, const double *amr, double *acc, double *err)
{
    for (int64_t r = 0; r < rows; r += 4) {
        const int64_t count = rows - r < 4 ? rows - r : 4;
        const double *p[4];
        double a[4] = {0.0, 0.0, 0.0, 0.0};
        double e[4];
        for (int64_t k = 0; k < count; ++k) {
            p[k] = lam + (r + k) * n;
            e[k] = err[r + k];
        }
        box_tail(count, p, 0, n, mid, rad, amr, a, e);
        for (int64_t k = 0; k < count; ++k) {
            acc[r + k] = a[k];
            err[r + k] = e[k];
        }
    }
}

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define BN_HAVE_AVX 1
#include <immintrin.h>

#define AVX __attribute__((target("avx")))

/* In-place transpose of the 4 x 4 block held in v[0..3] (one row each). */
AVX static inline void transpose4(__m256d *v)
{
    const __m256d t0 = _mm256_unpacklo_pd(v[0], v[1]);
    const __m256d t1 = _mm256_unpackhi_pd(v[0], v[1]);
    const __m256d t2 = _mm256_unpacklo_pd(v[2], v[3]);
    const __m256d t3 = _mm256_unpackhi_pd(v[2], v[3]);
    v[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    v[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    v[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    v[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

AVX static inline __m256d absolute(__m256d v)
{
    return _mm256_andnot_pd(_mm256_set1_pd(-0.0), v);
}

AVX static void relax_avx(int64_t rows, int64_t cols, double *lam, const double *up,
                          const double *lo, const double *icpt, const double *mag,
                          const double *bias, double *cst, double *err)
{
    const int64_t rows4 = rows - rows % 4;
    const int64_t cols4 = cols - cols % 4;
    const __m256d zero = _mm256_setzero_pd();
    const __m256d minus_zero = _mm256_set1_pd(-0.0);
    for (int64_t r = 0; r < rows4; r += 4) {
        double *p[4] = {lam + r * cols, lam + (r + 1) * cols, lam + (r + 2) * cols,
                        lam + (r + 3) * cols};
        __m256d c = zero, e = zero;
        for (int64_t i0 = 0; i0 < cols4; i0 += 4) {
            __m256d v[4];
            for (int k = 0; k < 4; ++k) {
                v[k] = _mm256_loadu_pd(p[k] + i0);
            }
            transpose4(v);
            for (int k = 0; k < 4; ++k) {
                const int64_t i = i0 + k;
                const __m256d value = v[k];
                const __m256d positive = _mm256_cmp_pd(value, zero, _CMP_GT_OQ);
                const __m256d slope = _mm256_blendv_pd(_mm256_set1_pd(lo[i]),
                                                       _mm256_set1_pd(up[i]), positive);
                const __m256d scaled = _mm256_mul_pd(value, slope);
                e = _mm256_add_pd(e, _mm256_mul_pd(absolute(value), _mm256_set1_pd(mag[i])));
                const __m256d term = _mm256_mul_pd(value, _mm256_set1_pd(icpt[i]));
                c = _mm256_add_pd(c, _mm256_blendv_pd(minus_zero, term, positive));
                c = _mm256_add_pd(c, _mm256_mul_pd(scaled, _mm256_set1_pd(bias[i])));
                v[k] = scaled;
            }
            transpose4(v);
            for (int k = 0; k < 4; ++k) {
                _mm256_storeu_pd(p[k] + i0, v[k]);
            }
        }
        double cs[4], es[4];
        _mm256_storeu_pd(cs, c);
        _mm256_storeu_pd(es, e);
        relax_tail(4, p, cols4, cols, up, lo, icpt, mag, bias, cs, es);
        for (int k = 0; k < 4; ++k) {
            cst[r + k] += cs[k];
            err[r + k] += es[k];
        }
    }
    relax_plain(rows - rows4, cols, lam + rows4 * cols, up, lo, icpt, mag, bias, cst + rows4,
                err + rows4);
}

AVX static void box_avx(int64_t rows, int64_t n, const double *lam, const double *mid,
                        const double *rad, const double *amr, double *acc, double *err)
{
    const int64_t rows4 = rows - rows % 4;
    const int64_t n4 = n - n % 4;
    for (int64_t r = 0; r < rows4; r += 4) {
        const double *p[4] = {lam + r * n, lam + (r + 1) * n, lam + (r + 2) * n,
                              lam + (r + 3) * n};
        __m256d a = _mm256_setzero_pd();
        __m256d e = _mm256_loadu_pd(err + r);
        for (int64_t q0 = 0; q0 < n4; q0 += 4) {
            __m256d v[4];
            for (int k = 0; k < 4; ++k) {
                v[k] = _mm256_loadu_pd(p[k] + q0);
            }
            transpose4(v);
            for (int k = 0; k < 4; ++k) {
                const int64_t q = q0 + k;
                const __m256d coef = v[k];
                const __m256d acoef = absolute(coef);
                const __m256d term = _mm256_add_pd(_mm256_mul_pd(coef, _mm256_set1_pd(mid[q])),
                                                   _mm256_mul_pd(acoef, _mm256_set1_pd(rad[q])));
                a = _mm256_add_pd(a, term);
                e = _mm256_add_pd(e, _mm256_mul_pd(acoef, _mm256_set1_pd(amr[q])));
            }
        }
        double as[4], es[4];
        _mm256_storeu_pd(as, a);
        _mm256_storeu_pd(es, e);
        box_tail(4, p, n4, n, mid, rad, amr, as, es);
        for (int k = 0; k < 4; ++k) {
            acc[r + k] = as[k];
            err[r + k] = es[k];
        }
    }
    box_plain(rows - rows4, n, lam + rows4 * n, mid, rad, amr, acc + rows4, err + rows4);
}

static int cpu_has_avx(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx");
}
#endif

void bn_relax_rows(int64_t rows, int64_t cols, double *lam, const double *up,
                   const double *lo, const double *icpt, const double *mag,
                   const double *bias, double *cst, double *err, int portable)
{
    (void)portable;
#ifdef BN_HAVE_AVX
    if (!portable && cpu_has_avx()) {
        relax_avx(rows, cols, lam, up, lo, icpt, mag, bias, cst, err);
        return;
    }
#endif
    relax_plain(rows, cols, lam, up, lo, icpt, mag, bias, cst, err);
}

void bn_box_sums(int64_t rows, int64_t n, const double *lam, const double *mid,
                 const double *rad, const double *amr, double *acc, double *err,
                 int portable)
{
    (void)portable;
#ifdef BN_HAVE_AVX
    if (!portable && cpu_has_avx()) {
        box_avx(rows, n, lam, mid, rad, amr, acc, err);
        return;
    }
#endif
    box_plain(rows, n, lam, mid, rad, amr, acc, err);
}
