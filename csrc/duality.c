/* Weak-duality sums of a node LP; see duality.h. */
#include "duality.h"

#include <math.h>

/* min(dual * lower, dual * upper), 0 when dual is 0 (even against an infinite
 * bound), NaN when either product is NaN (so that it gives no bound). */
static double dual_term(double dual, double lower, double upper)
{
    if (dual == 0.0) {
        return 0.0;
    }
    double a = dual * lower, b = dual * upper;
    if (isnan(a) || isnan(b)) {
        return NAN;
    }
    return a < b ? a : b;
}

static int indices_in_range(const bn_dual_lp *lp)
{
    if (lp->indptr[0] != 0) {
        return 0;
    }
    for (int64_t j = 0; j < lp->num_cols; ++j) {
        if (lp->indptr[j + 1] < lp->indptr[j]) {
            return 0;
        }
    }
    for (int64_t p = 0; p < lp->indptr[lp->num_cols]; ++p) {
        if (lp->indices[p] < 0 || lp->indices[p] >= lp->num_rows) {
            return 0;
        }
    }
    for (int64_t k = 0; k < lp->num_t; ++k) {
        if (lp->row_t[k] < 0 || lp->row_t[k] >= lp->num_rows || lp->col_t[k] < 0 ||
            lp->col_t[k] >= lp->num_cols) {
            return 0;
        }
    }
    return 1;
}

/* y moved to the signs its rows admit, the objective rows' to [cost_t, 0] (cost_t
 * where t has no upper bound, so that t's reduced cost is 0 or of the right sign). */
static void signed_dual(const bn_dual_lp *lp, double *y)
{
    for (int64_t i = 0; i < lp->num_rows; ++i) {
        double v = lp->row_dual[i];
        if (!isfinite(lp->row_upper[i]) && v < 0.0) {
            v = 0.0;
        }
        if (!isfinite(lp->row_lower[i]) && v > 0.0) {
            v = 0.0;
        }
        y[i] = v;
    }
    for (int64_t k = 0; k < lp->num_t; ++k) {
        const int64_t i = lp->row_t[k];
        const double least = lp->cost[lp->col_t[k]];
        y[i] = isfinite(lp->col_upper[lp->col_t[k]]) ? (y[i] < least ? least : y[i]) : least;
    }
}

int bn_weak_duality(const bn_dual_lp *lp, double *y, double *reduced, double *low,
                    double *spread)
{
    *low = -INFINITY;
    *spread = 0.0;
    if (!indices_in_range(lp)) {
        return -1;
    }
    for (int64_t j = 0; j < lp->num_cols; ++j) {
        reduced[j] = NAN; /* as left when there is no bound */
    }
    for (int64_t j = 0; j < lp->num_cols; ++j) {
        if (lp->bounded[j] && !(isfinite(lp->col_lower[j]) && isfinite(lp->col_upper[j]))) {
            return 0;
        }
    }
    signed_dual(lp, y);
    double sum = 0.0, mag = 0.0;
    for (int64_t i = 0; i < lp->num_rows; ++i) {
        const double term = dual_term(y[i], lp->row_lower[i], lp->row_upper[i]);
        sum += term;
        mag += fabs(term);
    }
    for (int64_t j = 0; j < lp->num_cols; ++j) {
        double r = lp->cost[j], scale = fabs(lp->cost[j]);
        for (int64_t p = lp->indptr[j]; p < lp->indptr[j + 1]; ++p) {
            const double prod = lp->values[p] * y[lp->indices[p]];
            r -= prod;
            scale += fabs(prod);
        }
        reduced[j] = r;
        const double term = dual_term(r, lp->col_lower[j], lp->col_upper[j]);
        sum += term;
        mag += fabs(term);
        if (lp->bounded[j]) {
            const double lo = fabs(lp->col_lower[j]), hi = fabs(lp->col_upper[j]);
            mag += scale * (lo > hi ? lo : hi);
        }
    }
    if (isfinite(sum)) {
        *low = sum;
        *spread = mag;
    }
    return 0;
}
