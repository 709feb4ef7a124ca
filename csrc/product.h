/*
 * The matrix product of the back-substitution, without BLAS.
 */
#ifndef BNBLIP_PRODUCT_H
#define BNBLIP_PRODUCT_H

#include <stdint.h>

/*
 * out (rows x n) = lam (rows x h) @ w (h x n), all row-major, summing only over
 * the `nlive` rows of w listed in `live` (the other columns of lam are zero).
 * `portable` non-zero selects the portable C99 loop even when a vectorised
 * path exists.
 */
void bn_product(int64_t rows, int64_t h, int64_t n, const double *lam, const double *w,
                const int64_t *live, int64_t nlive, double *out, int portable);

#endif
