/*
 * Bound-propagation kernels on a packed network (see bounds.h).
 *
 * Each function mirrors the Numba function of the same name in
 * bnblip/bounds/kernels.py statement by statement, so that the interval,
 * derivative and backward kernels give bit-identical results and the linear
 * kernel differs only by the rounding of its matrix products.
 */
#include "bounds.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "product.h"
#include "rows.h"

/*
 * The elementwise loops of the interval layers vectorise 4 wide with AVX; GCC
 * on x86-64 Linux compiles them twice and picks the copy at load time.  Lanes
 * compute exactly the scalar operations (no FMA: AVX lacks it), so the copies
 * agree bit for bit.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define BN_AVX_CLONES __attribute__((target_clones("avx", "default")))
#else
#define BN_AVX_CLONES
#endif

/* Python's max(a, b) / min(a, b): keep the first argument on ties. */
static inline double py_max(double a, double b) { return b > a ? b : a; }
static inline double py_min(double a, double b) { return b < a ? b : a; }

int64_t bn_num_hidden(const bn_net *net) { return net->b_off[net->layers - 1]; }

/* Largest entry of widths[first .. last - 1] (0 when empty). */
static int64_t max_width(const bn_net *net, int64_t first, int64_t last)
{
    int64_t best = 0;
    for (int64_t k = first; k < last; ++k) {
        if (net->widths[k] > best) {
            best = net->widths[k];
        }
    }
    return best;
}

int64_t bn_linear_work_size(const bn_net *net)
{
    if (net->layers < 2) {
        return 0;
    }
    int64_t rows = 2 * max_width(net, 1, net->layers);
    int64_t cols = max_width(net, 0, net->layers);
    return 2 * rows * cols;
}

/* Interval bound of layer k from post-activation bounds [plo, phi]. */
BN_AVX_CLONES static void interval_layer(const bn_net *net, int64_t k, const double *plo,
                           const double *phi, double rel, double absw, double *z_lo,
                           double *z_hi, double *mag, double *restrict cen,
                           double *restrict rad)
{
    const int64_t n_in = net->widths[k];
    const int64_t h = net->widths[k + 1];
    const int64_t bo = net->b_off[k];
    const double *wt = net->weights_t + net->w_off[k];
    double *restrict mg = mag + bo;
    for (int64_t r = 0; r < h; ++r) {
        cen[r] = 0.0;
        rad[r] = 0.0;
        mg[r] = 0.0;
    }
    for (int64_t q = 0; q < n_in; ++q) {
        const double mq = 0.5 * (plo[q] + phi[q]);
        const double rq = 0.5 * (phi[q] - plo[q]);
        if (mq == 0.0 && rq == 0.0) {
            continue;
        }
        const double amq = fabs(mq);
        const double *restrict row = wt + q * h;
        for (int64_t r = 0; r < h; ++r) {
            const double w = row[r];
            const double aw = fabs(w);
            cen[r] += w * mq;
            rad[r] += aw * rq;
            mg[r] += aw * amq;
        }
    }
    for (int64_t r = 0; r < h; ++r) {
        const double b = net->biases[bo + r];
        const double center = cen[r] + b;
        const double m = mg[r] + rad[r] + fabs(b);
        const double widen = rel * m + absw;
        z_lo[bo + r] = center - rad[r] - widen;
        z_hi[bo + r] = center + rad[r] + widen;
        mg[r] = m;
    }
}

/*
 * Intersect layer k with the prior, apply its phases, set the post-activation
 * bounds; returns whether a phase is contradicted or a lower bound exceeds its
 * upper bound.
 */
static int settle_layer(const bn_net *net, int64_t k, const int8_t *phases,
                        const double *prior_lo, const double *prior_hi, double *z_lo,
                        double *z_hi, double *plo, double *phi)
{
    const int64_t bo = net->b_off[k];
    int infeasible = 0;
    for (int64_t r = 0; r < net->widths[k + 1]; ++r) {
        const int64_t i = bo + r;
        const int8_t ph = phases[i];
        double lo = py_max(z_lo[i], prior_lo[i]);
        double hi = py_min(z_hi[i], prior_hi[i]);
        if (lo > hi || (ph == BN_ACTIVE && hi < 0.0) || (ph == BN_INACTIVE && lo > 0.0)) {
            infeasible = 1;
        }
        if (ph == BN_ACTIVE) {
            lo = py_max(lo, 0.0);
        } else if (ph == BN_INACTIVE) {
            hi = py_min(hi, 0.0);
        }
        z_lo[i] = lo;
        z_hi[i] = hi;
        if (ph == BN_INACTIVE) {
            plo[r] = 0.0;
            phi[r] = 0.0;
        } else {
            plo[r] = py_max(lo, 0.0);
            phi[r] = py_max(hi, 0.0);
        }
    }
    return infeasible;
}

int bn_interval_forward(const bn_net *net, const double *x_lo, const double *x_hi,
                        const int8_t *phases, const double *prior_lo,
                        const double *prior_hi, double rel, double absw,
                        double *z_lo, double *z_hi)
{
    const int64_t depth = net->layers - 1;
    const int64_t width = max_width(net, 0, net->layers);
    const int64_t total = bn_num_hidden(net);
    double *scratch = malloc(sizeof(double) * (size_t)(4 * width + total + 1));
    if (scratch == NULL) {
        return -1;
    }
    double *plo = scratch;
    double *phi = plo + width;
    double *cen = phi + width;
    double *rad = cen + width;
    double *mag = rad + width;
    memcpy(plo, x_lo, sizeof(double) * (size_t)net->widths[0]);
    memcpy(phi, x_hi, sizeof(double) * (size_t)net->widths[0]);
    int infeasible = 0;
    for (int64_t k = 0; k < depth; ++k) {
        interval_layer(net, k, plo, phi, rel, absw, z_lo, z_hi, mag, cen, rad);
        infeasible |= settle_layer(net, k, phases, prior_lo, prior_hi, z_lo, z_hi, plo, phi);
    }
    free(scratch);
    return infeasible;
}

/* ReLU relaxation of layer k (bnblip.bounds.linear.relu_relaxation). */
static void relax_layer(const bn_net *net, int64_t k, const int8_t *phases,
                        const double *z_lo, const double *z_hi, double *up_slope,
                        double *up_icpt, double *lo_slope)
{
    const int64_t bo = net->b_off[k];
    for (int64_t r = 0; r < net->widths[k + 1]; ++r) {
        const int64_t i = bo + r;
        const int8_t ph = phases[i];
        const double lo = z_lo[i];
        const double hi = z_hi[i];
        up_icpt[i] = 0.0;
        if (ph == BN_ACTIVE || (ph != BN_INACTIVE && lo >= 0.0)) {
            up_slope[i] = 1.0;
            lo_slope[i] = 1.0;
        } else if (ph == BN_INACTIVE || hi <= 0.0) {
            up_slope[i] = 0.0;
            lo_slope[i] = 0.0;
        } else {
            const double s = hi / (hi - lo);
            up_slope[i] = s;
            up_icpt[i] = -s * lo;
            lo_slope[i] = hi >= -lo ? 1.0 : 0.0;
        }
    }
}

/*
 * Neurons of layer k whose relaxation is not identically zero, as indices into
 * the layer; returns their count.  The other columns of a relaxed coefficient
 * matrix are zero and are left out of the products.
 */
static int64_t live_neurons(const bn_net *net, int64_t k, const double *up_slope,
                            const double *lo_slope, int64_t *live)
{
    const int64_t bo = net->b_off[k];
    int64_t count = 0;
    for (int64_t r = 0; r < net->widths[k + 1]; ++r) {
        if (up_slope[bo + r] != 0.0 || lo_slope[bo + r] != 0.0) {
            live[count++] = r;
        }
    }
    return count;
}

/* The scratch vectors of the linear kernel. */
typedef struct {
    double *mag, *up_slope, *up_icpt, *lo_slope; /* flat hidden */
    double *cst, *err, *acc;                    /* one per coefficient row */
    double *mid, *rad, *amr;                    /* input box: centre, radius, |centre|+radius */
    int64_t *live, *live_count;                 /* flat hidden; per hidden layer */
    int portable;                               /* portable C99 loops only */
} linear_state;

/*
 * Scale `lam` (rows x h_j, coefficients of a_j) in place into coefficients of
 * z_j: positive coefficients take the upper relaxation, negative ones the
 * lower; the intercepts and lam @ b_j go into cst, |lam| @ mag_j into err.
 */
static void relax_rows(const bn_net *net, int64_t j, int64_t rows, double *lam,
                       const linear_state *st)
{
    const int64_t bo = net->b_off[j];
    bn_relax_rows(rows, net->widths[j + 1], lam, st->up_slope + bo, st->lo_slope + bo,
                  st->up_icpt + bo, st->mag + bo, net->biases + bo, st->cst, st->err,
                  st->portable);
}

/*
 * Concretise the 2 h_k rows of `lam` (coefficients of the input) over the box
 * and intersect them into layer k.
 */
static void concretise(const bn_net *net, int64_t k, double rel, double absw,
                       const double *lam, const linear_state *st, double *z_lo,
                       double *z_hi)
{
    const int64_t h = net->widths[k + 1];
    const int64_t rows = 2 * h;
    const int64_t bo = net->b_off[k];
    bn_box_sums(rows, net->widths[0], lam, st->mid, st->rad, st->amr, st->acc, st->err,
                st->portable);
    for (int64_t r = 0; r < rows; ++r) {
        const double bound = st->acc[r] + st->cst[r] + (rel * st->err[r] + absw);
        if (r < h) {
            z_hi[bo + r] = py_min(z_hi[bo + r], bound);
        } else {
            z_lo[bo + r - h] = py_max(z_lo[bo + r - h], -bound);
        }
    }
}

/*
 * Linear bound of layer k >= 1 intersected into z_lo / z_hi.  The coefficient
 * matrix [W_k; -W_k] (upper bounds of z_k and -z_k) is relaxed and multiplied
 * through the layers below, alternating between the two halves of `work`.
 */
static void back_substitute(const bn_net *net, int64_t k, double rel, double absw,
                            double *z_lo, double *z_hi, const linear_state *st,
                            double *work)
{
    const int64_t h = net->widths[k + 1];
    const int64_t n_in = net->widths[k];
    const int64_t rows = 2 * h;
    const int64_t bo = net->b_off[k];
    const double *w_k = net->weights + net->w_off[k];
    double *halves[2] = {work, work + bn_linear_work_size(net) / 2};
    double *lam = halves[0];
    for (int64_t r = 0; r < h; ++r) {
        const double b = net->biases[bo + r];
        st->cst[r] = b;
        st->cst[h + r] = -b;
        st->err[r] = st->mag[bo + r];
        st->err[h + r] = st->mag[bo + r];
        for (int64_t q = 0; q < n_in; ++q) {
            lam[r * n_in + q] = w_k[r * n_in + q];
            lam[(h + r) * n_in + q] = -w_k[r * n_in + q];
        }
    }
    int side = 0;
    for (int64_t j = k - 1; j >= 0; --j) {
        relax_rows(net, j, rows, lam, st);
        double *out = halves[1 - side];
        bn_product(rows, net->widths[j + 1], net->widths[j], lam,
                   net->weights + net->w_off[j], st->live + net->b_off[j],
                   st->live_count[j], out, st->portable);
        lam = out;
        side = 1 - side;
    }
    concretise(net, k, rel, absw, lam, st, z_lo, z_hi);
}

int bn_linear_forward(const bn_net *net, const double *x_lo, const double *x_hi,
                      const int8_t *phases, const double *prior_lo,
                      const double *prior_hi, double rel, double absw,
                      double *z_lo, double *z_hi, double *work, int portable)
{
    const int64_t depth = net->layers - 1;
    const int64_t total = bn_num_hidden(net);
    const int64_t width = max_width(net, 0, net->layers);
    const int64_t rows = 2 * max_width(net, 1, net->layers);
    const int64_t n = net->widths[0];
    const size_t doubles = (size_t)(4 * width + 4 * total + 3 * rows + 3 * n + 1);
    const size_t ints = (size_t)(total + depth + 1);
    double *scratch = malloc(sizeof(double) * doubles + sizeof(int64_t) * ints);
    if (scratch == NULL) {
        return -1;
    }
    double *plo = scratch;
    double *phi = plo + width;
    double *cen = phi + width;
    double *rad = cen + width;
    linear_state st;
    st.portable = portable;
    st.mag = rad + width;
    st.up_slope = st.mag + total;
    st.up_icpt = st.up_slope + total;
    st.lo_slope = st.up_icpt + total;
    st.cst = st.lo_slope + total;
    st.err = st.cst + rows;
    st.acc = st.err + rows;
    st.mid = st.acc + rows;
    st.rad = st.mid + n;
    st.amr = st.rad + n;
    st.live = (int64_t *)(scratch + doubles);
    st.live_count = st.live + total;
    for (int64_t q = 0; q < n; ++q) {
        st.mid[q] = 0.5 * (x_lo[q] + x_hi[q]);
        st.rad[q] = 0.5 * (x_hi[q] - x_lo[q]);
        st.amr[q] = fabs(st.mid[q]) + st.rad[q];
    }
    memcpy(plo, x_lo, sizeof(double) * (size_t)n);
    memcpy(phi, x_hi, sizeof(double) * (size_t)n);
    int infeasible = 0;
    for (int64_t k = 0; k < depth; ++k) {
        interval_layer(net, k, plo, phi, rel, absw, z_lo, z_hi, st.mag, cen, rad);
        if (k > 0) {
            back_substitute(net, k, rel, absw, z_lo, z_hi, &st, work);
        }
        infeasible |= settle_layer(net, k, phases, prior_lo, prior_hi, z_lo, z_hi, plo, phi);
        relax_layer(net, k, phases, z_lo, z_hi, st.up_slope, st.up_icpt, st.lo_slope);
        st.live_count[k] = live_neurons(net, k, st.up_slope, st.lo_slope,
                                        st.live + net->b_off[k]);
        const int64_t bo = net->b_off[k];
        for (int64_t i = bo; i < bo + net->widths[k + 1]; ++i) {
            st.mag[i] = py_max(st.mag[i], py_max(fabs(z_lo[i]), fabs(z_hi[i])));
        }
    }
    free(scratch);
    return infeasible;
}

void bn_derivative(int64_t count, const double *z_lo, const double *z_hi,
                   const int8_t *phases, double *d_lo, double *d_hi)
{
    for (int64_t i = 0; i < count; ++i) {
        const int8_t ph = phases[i];
        if (ph == BN_INACTIVE || z_hi[i] <= 0.0) {
            d_lo[i] = 0.0;
            d_hi[i] = 0.0;
        } else if (ph == BN_ACTIVE || z_lo[i] >= 0.0) {
            d_lo[i] = 1.0;
            d_hi[i] = 1.0;
        } else {
            d_lo[i] = 0.0;
            d_hi[i] = 1.0;
        }
    }
}

/* y = W_k^T u for u in [u_lo, u_hi], into y_lo / y_hi from g_off[k]. */
BN_AVX_CLONES static void transpose_interval(const bn_net *net, int64_t k, const double *u_lo,
                               const double *u_hi, double rel, double absw, double *y_lo,
                               double *y_hi, double *restrict cen, double *restrict rad,
                               double *restrict mag)
{
    const int64_t h = net->widths[k + 1];
    const int64_t n_in = net->widths[k];
    const int64_t go = net->g_off[k];
    const double *w_k = net->weights + net->w_off[k];
    for (int64_t q = 0; q < n_in; ++q) {
        cen[q] = 0.0;
        rad[q] = 0.0;
        mag[q] = 0.0;
    }
    for (int64_t r = 0; r < h; ++r) {
        const double mr = 0.5 * (u_lo[r] + u_hi[r]);
        const double rr = 0.5 * (u_hi[r] - u_lo[r]);
        if (mr == 0.0 && rr == 0.0) {
            continue;
        }
        const double amr = fabs(mr);
        const double *restrict row = w_k + r * n_in;
        for (int64_t q = 0; q < n_in; ++q) {
            const double w = row[q];
            const double aw = fabs(w);
            cen[q] += w * mr;
            rad[q] += aw * rr;
            mag[q] += aw * amr;
        }
    }
    for (int64_t q = 0; q < n_in; ++q) {
        const double widen = rel * (mag[q] + rad[q]) + absw;
        y_lo[go + q] = cen[q] - rad[q] - widen;
        y_hi[go + q] = cen[q] + rad[q] + widen;
    }
}

int bn_backward_interval(const bn_net *net, const double *c, const double *d_lo,
                         const double *d_hi, double rel, double absw,
                         double *y_lo, double *y_hi)
{
    const int64_t layers = net->layers;
    const int64_t width = max_width(net, 0, layers + 1);
    double *scratch = malloc(sizeof(double) * (size_t)(5 * width));
    if (scratch == NULL) {
        return -1;
    }
    double *u_lo = scratch;
    double *u_hi = u_lo + width;
    double *cen = u_hi + width;
    double *rad = cen + width;
    double *mag = rad + width;
    transpose_interval(net, layers - 1, c, c, rel, absw, y_lo, y_hi, cen, rad, mag);
    for (int64_t k = layers - 2; k >= 0; --k) {
        const int64_t go = net->g_off[k + 1];
        const int64_t bo = net->b_off[k];
        for (int64_t r = 0; r < net->widths[k + 1]; ++r) {
            const double a = d_lo[bo + r] * y_lo[go + r];
            const double b = d_lo[bo + r] * y_hi[go + r];
            const double e = d_hi[bo + r] * y_lo[go + r];
            const double f = d_hi[bo + r] * y_hi[go + r];
            u_lo[r] = py_min(py_min(a, b), py_min(e, f));
            u_hi[r] = py_max(py_max(a, b), py_max(e, f));
        }
        transpose_interval(net, k, u_lo, u_hi, rel, absw, y_lo, y_hi, cen, rad, mag);
    }
    free(scratch);
    return 0;
}
