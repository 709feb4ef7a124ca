/*
 * Row kernels of the back-substitution: relaxing coefficient rows and summing
 * them over the input box (`portable` non-zero selects the portable C99 code
 * even when a vectorised path exists).  Each row is processed in column order with
 * separate multiply and add (no fused multiply-add), exactly as the Numba
 * kernels do, so the results are bit-identical to theirs.
 */
#ifndef BNBLIP_ROWS_H
#define BNBLIP_ROWS_H

#include <stdint.h>

/*
 * Scale lam (rows x cols, coefficients of a_j) in place into coefficients of
 * z_j: a positive entry times up[i] (adding entry * icpt[i] to the row's
 * constant), a non-positive one times lo[i]; then add scaled * bias[i] to the
 * constant and |entry| * mag[i] to the error.  cst[r] / err[r] receive the
 * row's sums.
 */
void bn_relax_rows(int64_t rows, int64_t cols, double *lam, const double *up,
                   const double *lo, const double *icpt, const double *mag,
                   const double *bias, double *cst, double *err, int portable);

/*
 * For each row of lam (rows x n): acc[r] = sum_q lam[r,q] mid[q] + |lam[r,q]| rad[q]
 * and err[r] += sum_q |lam[r,q]| amr[q] (summed into err[r] term by term).
 */
void bn_box_sums(int64_t rows, int64_t n, const double *lam, const double *mid,
                 const double *rad, const double *amr, double *acc, double *err,
                 int portable);

#endif
