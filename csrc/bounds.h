/*
 * Bound-propagation kernels on a packed network (pure C99, no Python).
 *
 * C twins of the Numba kernels in bnblip/bounds/kernels.py: same arguments,
 * same relaxations, same widening, same order of floating-point operations
 * except inside the matrix products of the back-substitution (Numba calls BLAS
 * there, these kernels use their own blocked loop).
 */
#ifndef BNBLIP_BOUNDS_H
#define BNBLIP_BOUNDS_H

#include <stddef.h>
#include <stdint.h>

/* Phase codes of fixed ReLU decisions (bnblip.bounds.interval). */
#define BN_ACTIVE 1
#define BN_INACTIVE (-1)

/* A network of `layers` affine layers as flat arrays (see PackedNetwork). */
typedef struct {
    int64_t layers;          /* L: widths has L + 1 entries */
    const int64_t *widths;   /* (n, h_1, ..., h_{L-1}, m) */
    const int64_t *w_off;    /* start of W_k in weights / weights_t, L + 1 entries */
    const int64_t *b_off;    /* start of b_k in biases and flat hidden arrays */
    const int64_t *g_off;    /* start of y_i in flat backward arrays */
    const double *weights;   /* every W_k (out x in) row-major, back to back */
    const double *weights_t; /* every W_k^T row-major, back to back */
    const double *biases;    /* every b_k, back to back */
} bn_net;

/* Length of flat hidden arrays. */
int64_t bn_num_hidden(const bn_net *net);

/* Elements linear_forward needs in `work` (what linear_workspace allocates). */
int64_t bn_linear_work_size(const bn_net *net);

/*
 * Interval pre-activation bounds into z_lo / z_hi (flat hidden).
 * Returns 1 when the node is infeasible, 0 when not, -1 when out of memory.
 */
int bn_interval_forward(const bn_net *net, const double *x_lo, const double *x_hi,
                        const int8_t *phases, const double *prior_lo,
                        const double *prior_hi, double rel, double absw,
                        double *z_lo, double *z_hi);

/*
 * Linear (back-substituted) bounds intersected with interval bounds; `work`
 * holds at least bn_linear_work_size(net) doubles.  `portable` non-zero uses
 * only the portable C99 loops (for tests; the default picks vectorised code
 * when the CPU has it).  Same return codes.
 */
int bn_linear_forward(const bn_net *net, const double *x_lo, const double *x_hi,
                      const int8_t *phases, const double *prior_lo,
                      const double *prior_hi, double rel, double absw,
                      double *z_lo, double *z_hi, double *work, int portable);

/* ReLU derivative bounds in {0, 1} for `count` hidden neurons. */
void bn_derivative(int64_t count, const double *z_lo, const double *z_hi,
                   const int8_t *phases, double *d_lo, double *d_hi);

/*
 * Interval bounds of the backward quantities y_0 .. y_{L-1} (flat backward
 * arrays) for the output functional c.  Returns 0, or -1 when out of memory.
 */
int bn_backward_interval(const bn_net *net, const double *c, const double *d_lo,
                         const double *d_hi, double rel, double absw,
                         double *y_lo, double *y_hi);

#endif
