/*
 * Weak-duality sums of a node LP (twin of WeakDuality.sums in
 * bnblip/lp/duality.py): for row multipliers y, moved to the signs their
 * rows admit (an objective row's to [cost of its t, 0]), and reduced costs
 * r = cost - A^T y,
 *   low    = sum_i min(y_i rl_i, y_i ru_i) + sum_j min(r_j l_j, r_j u_j)
 *   spread = the magnitudes of every term summed (for the rounding allowance).
 * A^T is given in CSR form, one row per LP column (node coefficients in place).
 */
#ifndef BNBLIP_DUALITY_H
#define BNBLIP_DUALITY_H

#include <stdint.h>

typedef struct {
    int64_t num_rows, num_cols, num_t;
    const int64_t *indptr;  /* num_cols + 1 */
    const int64_t *indices; /* indptr[num_cols], each in [0, num_rows) */
    const double *values;   /* indptr[num_cols] */
    const double *cost;     /* num_cols */
    const int8_t *bounded;  /* num_cols: non-zero where the column must be bounded */
    const int64_t *row_t;   /* num_t objective rows ... */
    const int64_t *col_t;   /* ... and their t columns */
    const double *row_dual; /* num_rows */
    const double *col_lower, *col_upper; /* num_cols */
    const double *row_lower, *row_upper; /* num_rows */
} bn_dual_lp;

/*
 * Fill y (num_rows scratch) and reduced (num_cols); set *low and *spread.
 * *low is -inf when there is no bound (a column that must be bounded is not,
 * or a multiplier meets an infinite bound).  Returns 0, or -1 when an index is
 * out of range (nothing is then read out of bounds).
 */
int bn_weak_duality(const bn_dual_lp *lp, double *y, double *reduced, double *low,
                    double *spread);

#endif
