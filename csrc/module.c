/*
 * bnblip._ckernels: Python bindings of the C bound-propagation kernels.
 *
 * Every bound function takes the arguments of the Numba kernel of the same name in
 * bnblip/bounds/kernels.py (positionally; weak_duality_kernel is the twin of
 * WeakDuality.sums in bnblip/lp/duality.py), checks them (dtype, C-contiguity,
 * lengths, writability of outputs, consistency of the packed network) and
 * raises TypeError / ValueError with a message naming the argument, then
 * computes with the GIL released.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include "bounds.h"
#include "duality.h"

/* ------------------------------------------------------------ array checks */

/*
 * Check that `obj` is a C-contiguous ndarray of `type` with `length` entries
 * (at least `length` when `at_least`), writable when `writable`; return its
 * data or NULL with an exception set.
 */
static void *array_data(PyObject *obj, const char *name, int type, npy_intp length,
                        int at_least, int writable)
{
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a numpy.ndarray, got %s", name,
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    PyArrayObject *arr = (PyArrayObject *)obj;
    if (PyArray_TYPE(arr) != type) {
        PyErr_Format(PyExc_TypeError, "%s must have dtype %s", name,
                     type == NPY_INT8 ? "int8" : type == NPY_INT64 ? "int64" : "float64");
        return NULL;
    }
    if (PyArray_NDIM(arr) != 1) {
        PyErr_Format(PyExc_ValueError, "%s must be one-dimensional, got %d dimensions", name,
                     PyArray_NDIM(arr));
        return NULL;
    }
    if (!PyArray_IS_C_CONTIGUOUS(arr)) {
        PyErr_Format(PyExc_ValueError, "%s must be C-contiguous", name);
        return NULL;
    }
    npy_intp size = PyArray_DIM(arr, 0);
    if (at_least ? size < length : size != length) {
        PyErr_Format(PyExc_ValueError, "%s must have %s%zd elements, got %zd", name,
                     at_least ? "at least " : "", (Py_ssize_t)length, (Py_ssize_t)size);
        return NULL;
    }
    if (writable && !PyArray_ISWRITEABLE(arr)) {
        PyErr_Format(PyExc_ValueError, "%s must be writable", name);
        return NULL;
    }
    return PyArray_DATA(arr);
}

static const double *input(PyObject *obj, const char *name, npy_intp length)
{
    return array_data(obj, name, NPY_FLOAT64, length, 0, 0);
}

static double *output(PyObject *obj, const char *name, npy_intp length)
{
    return array_data(obj, name, NPY_FLOAT64, length, 0, 1);
}

static int number(PyObject *obj, const char *name, double *value)
{
    *value = PyFloat_AsDouble(obj);
    if (*value == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a real number, got %s", name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    return 0;
}

static int check_nargs(const char *func, Py_ssize_t nargs, Py_ssize_t expected)
{
    if (nargs != expected) {
        PyErr_Format(PyExc_TypeError, "%s takes %zd positional arguments, got %zd", func,
                     expected, nargs);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ packed network */

/* The fields of PackedNetwork, in order. */
enum { F_WIDTHS, F_W_OFF, F_WEIGHTS, F_WEIGHTS_T, F_BIASES, F_B_OFF, F_G_OFF, F_COUNT };

/* Attribute names of the fields, in enum order. */
static const char *const FIELD_ATTRS[F_COUNT] = {"widths", "w_off",  "weights", "weights_t",
                                                 "biases", "b_off", "g_off"};

typedef struct {
    bn_net net;
    PyObject *fields[F_COUNT]; /* owned references, released by release_net */
} held_net;

static void release_net(held_net *held)
{
    for (int f = 0; f < F_COUNT; ++f) {
        Py_CLEAR(held->fields[f]);
    }
}

/* Check that the offsets `off` (layers + 1 entries) advance by `step(k)`. */
static int check_offsets(const int64_t *off, int64_t layers, const int64_t *widths,
                         int kind, const char *name)
{
    if (off[0] != 0) {
        PyErr_Format(PyExc_ValueError, "%s[0] must be 0", name);
        return -1;
    }
    for (int64_t k = 0; k < layers; ++k) {
        int64_t step = kind == F_W_OFF ? widths[k] * widths[k + 1]
                       : kind == F_B_OFF ? widths[k + 1]
                                         : widths[k];
        if (off[k + 1] - off[k] != step) {
            PyErr_Format(PyExc_ValueError, "%s does not match net.widths at layer %lld", name,
                         (long long)k);
            return -1;
        }
    }
    return 0;
}

static const int64_t *int_field(held_net *held, int field, const char *name,
                                npy_intp length)
{
    return array_data(held->fields[field], name, NPY_INT64, length, 0, 0);
}

/* Read and check a PackedNetwork; 0 on success, -1 with an exception set. */
static int unpack_net(PyObject *obj, held_net *held)
{
    memset(held, 0, sizeof(*held));
    /* a PackedNetwork is a tuple of its fields: read them by position (fast) */
    const int positional = PyTuple_Check(obj) && PyTuple_GET_SIZE(obj) == F_COUNT;
    for (int f = 0; f < F_COUNT; ++f) {
        if (positional) {
            held->fields[f] = Py_NewRef(PyTuple_GET_ITEM(obj, f));
            continue;
        }
        held->fields[f] = PyObject_GetAttrString(obj, FIELD_ATTRS[f]);
        if (held->fields[f] == NULL) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "net must be a PackedNetwork (missing field %s)",
                         FIELD_ATTRS[f]);
            return -1;
        }
    }
    PyObject *widths_obj = held->fields[F_WIDTHS];
    if (!PyArray_Check(widths_obj) || PyArray_NDIM((PyArrayObject *)widths_obj) != 1) {
        PyErr_SetString(PyExc_TypeError, "net.widths must be a one-dimensional numpy.ndarray");
        return -1;
    }
    npy_intp count = PyArray_DIM((PyArrayObject *)widths_obj, 0);
    if (count < 2) {
        PyErr_SetString(PyExc_ValueError, "net.widths must have at least 2 entries");
        return -1;
    }
    bn_net *net = &held->net;
    net->layers = count - 1;
    net->widths = int_field(held, F_WIDTHS, "net.widths", count);
    if (net->widths == NULL) {
        return -1;
    }
    for (npy_intp k = 0; k < count; ++k) {
        if (net->widths[k] < 1) {
            PyErr_SetString(PyExc_ValueError, "net.widths must be positive");
            return -1;
        }
    }
    net->w_off = int_field(held, F_W_OFF, "net.w_off", count);
    net->b_off = int_field(held, F_B_OFF, "net.b_off", count);
    net->g_off = int_field(held, F_G_OFF, "net.g_off", count);
    if (net->w_off == NULL || net->b_off == NULL || net->g_off == NULL ||
        check_offsets(net->w_off, net->layers, net->widths, F_W_OFF, "net.w_off") ||
        check_offsets(net->b_off, net->layers, net->widths, F_B_OFF, "net.b_off") ||
        check_offsets(net->g_off, net->layers, net->widths, F_G_OFF, "net.g_off")) {
        return -1;
    }
    npy_intp n_weights = (npy_intp)net->w_off[net->layers];
    net->weights = input(held->fields[F_WEIGHTS], "net.weights", n_weights);
    net->weights_t = input(held->fields[F_WEIGHTS_T], "net.weights_t", n_weights);
    net->biases = input(held->fields[F_BIASES], "net.biases", (npy_intp)net->b_off[net->layers]);
    if (net->weights == NULL || net->weights_t == NULL || net->biases == NULL) {
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ forward kernels */

/* The arguments shared by the two forward kernels. */
typedef struct {
    held_net held;
    const double *x_lo, *x_hi, *prior_lo, *prior_hi;
    const int8_t *phases;
    double rel, absw;
    double *z_lo, *z_hi;
} forward_args;

static int parse_forward(PyObject *const *args, forward_args *fa)
{
    if (unpack_net(args[0], &fa->held)) {
        return -1;
    }
    const bn_net *net = &fa->held.net;
    const npy_intp n = (npy_intp)net->widths[0];
    const npy_intp total = (npy_intp)bn_num_hidden(net);
    fa->x_lo = input(args[1], "x_lo", n);
    fa->x_hi = fa->x_lo ? input(args[2], "x_hi", n) : NULL;
    fa->phases = fa->x_hi ? array_data(args[3], "phases", NPY_INT8, total, 0, 0) : NULL;
    fa->prior_lo = fa->phases ? input(args[4], "prior_lo", total) : NULL;
    fa->prior_hi = fa->prior_lo ? input(args[5], "prior_hi", total) : NULL;
    if (fa->prior_hi == NULL || number(args[6], "rel", &fa->rel) ||
        number(args[7], "absw", &fa->absw)) {
        return -1;
    }
    fa->z_lo = output(args[8], "z_lo", total);
    fa->z_hi = fa->z_lo ? output(args[9], "z_hi", total) : NULL;
    return fa->z_hi == NULL ? -1 : 0;
}

static PyObject *forward_result(int code)
{
    if (code < 0) {
        return PyErr_NoMemory();
    }
    return PyBool_FromLong(code);
}

static PyObject *interval_forward_kernel(PyObject *self, PyObject *const *args,
                                         Py_ssize_t nargs)
{
    (void)self;
    forward_args fa;
    if (check_nargs("interval_forward_kernel", nargs, 10)) {
        return NULL;
    }
    if (parse_forward(args, &fa)) {
        release_net(&fa.held);
        return NULL;
    }
    int code;
    Py_BEGIN_ALLOW_THREADS
    code = bn_interval_forward(&fa.held.net, fa.x_lo, fa.x_hi, fa.phases, fa.prior_lo,
                               fa.prior_hi, fa.rel, fa.absw, fa.z_lo, fa.z_hi);
    Py_END_ALLOW_THREADS
    release_net(&fa.held);
    return forward_result(code);
}

static PyObject *linear_forward(PyObject *const *args, Py_ssize_t nargs, const char *name,
                                int portable)
{
    forward_args fa;
    if (check_nargs(name, nargs, 11)) {
        return NULL;
    }
    if (parse_forward(args, &fa)) {
        release_net(&fa.held);
        return NULL;
    }
    double *work = array_data(args[10], "work", NPY_FLOAT64,
                              (npy_intp)bn_linear_work_size(&fa.held.net), 1, 1);
    if (work == NULL) {
        release_net(&fa.held);
        return NULL;
    }
    int code;
    Py_BEGIN_ALLOW_THREADS
    code = bn_linear_forward(&fa.held.net, fa.x_lo, fa.x_hi, fa.phases, fa.prior_lo,
                             fa.prior_hi, fa.rel, fa.absw, fa.z_lo, fa.z_hi, work, portable);
    Py_END_ALLOW_THREADS
    release_net(&fa.held);
    return forward_result(code);
}

static PyObject *linear_forward_kernel(PyObject *self, PyObject *const *args,
                                       Py_ssize_t nargs)
{
    (void)self;
    return linear_forward(args, nargs, "linear_forward_kernel", 0);
}

static PyObject *linear_forward_portable(PyObject *self, PyObject *const *args,
                                         Py_ssize_t nargs)
{
    (void)self;
    return linear_forward(args, nargs, "_linear_forward_portable", 1);
}

/* ------------------------------------------------------------ other kernels */

static PyObject *derivative_kernel(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (check_nargs("derivative_kernel", nargs, 5)) {
        return NULL;
    }
    if (!PyArray_Check(args[0])) {
        array_data(args[0], "z_lo", NPY_FLOAT64, 0, 0, 0);
        return NULL;
    }
    npy_intp count = PyArray_SIZE((PyArrayObject *)args[0]);
    const double *z_lo = input(args[0], "z_lo", count);
    const double *z_hi = z_lo ? input(args[1], "z_hi", count) : NULL;
    const int8_t *phases = z_hi ? array_data(args[2], "phases", NPY_INT8, count, 0, 0) : NULL;
    double *d_lo = phases ? output(args[3], "d_lo", count) : NULL;
    double *d_hi = d_lo ? output(args[4], "d_hi", count) : NULL;
    if (d_hi == NULL) {
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    bn_derivative((int64_t)count, z_lo, z_hi, phases, d_lo, d_hi);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *backward_interval_kernel(PyObject *self, PyObject *const *args,
                                          Py_ssize_t nargs)
{
    (void)self;
    held_net held;
    if (check_nargs("backward_interval_kernel", nargs, 8)) {
        return NULL;
    }
    if (unpack_net(args[0], &held)) {
        release_net(&held);
        return NULL;
    }
    const bn_net *net = &held.net;
    const npy_intp total = (npy_intp)bn_num_hidden(net);
    const npy_intp grads = (npy_intp)net->g_off[net->layers];
    double rel = 0.0, absw = 0.0;
    const double *c = input(args[1], "c", (npy_intp)net->widths[net->layers]);
    const double *d_lo = c ? input(args[2], "d_lo", total) : NULL;
    const double *d_hi = d_lo ? input(args[3], "d_hi", total) : NULL;
    double *y_lo = NULL, *y_hi = NULL;
    if (d_hi != NULL && !number(args[4], "rel", &rel) && !number(args[5], "absw", &absw)) {
        y_lo = output(args[6], "y_lo", grads);
        y_hi = y_lo ? output(args[7], "y_hi", grads) : NULL;
    }
    if (y_hi == NULL) {
        release_net(&held);
        return NULL;
    }
    int code;
    Py_BEGIN_ALLOW_THREADS
    code = bn_backward_interval(net, c, d_lo, d_hi, rel, absw, y_lo, y_hi);
    Py_END_ALLOW_THREADS
    release_net(&held);
    if (code < 0) {
        return PyErr_NoMemory();
    }
    Py_RETURN_NONE;
}

static PyObject *linear_work_size(PyObject *self, PyObject *net_obj)
{
    (void)self;
    held_net held;
    if (unpack_net(net_obj, &held)) {
        release_net(&held);
        return NULL;
    }
    int64_t size = bn_linear_work_size(&held.net);
    release_net(&held);
    return PyLong_FromLongLong((long long)size);
}

/* ------------------------------------------------------------ weak duality */

static npy_intp array_length(PyObject *obj)
{
    return PyArray_Check(obj) ? PyArray_SIZE((PyArrayObject *)obj) : 0;
}

static PyObject *weak_duality_kernel(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (check_nargs("weak_duality_kernel", nargs, 13)) {
        return NULL;
    }
    bn_dual_lp lp;
    /* cost, row_lower and row_t set the sizes: checked first */
    lp.cost = array_data(args[3], "cost", NPY_FLOAT64, 0, 1, 0);
    lp.row_lower = lp.cost ? array_data(args[10], "row_lower", NPY_FLOAT64, 0, 1, 0) : NULL;
    lp.row_t = lp.row_lower ? array_data(args[5], "row_t", NPY_INT64, 0, 1, 0) : NULL;
    if (lp.row_t == NULL) {
        return NULL;
    }
    lp.num_cols = (int64_t)array_length(args[3]);
    lp.num_rows = (int64_t)array_length(args[10]);
    lp.num_t = (int64_t)array_length(args[5]);
    lp.indptr = array_data(args[0], "indptr", NPY_INT64, (npy_intp)lp.num_cols + 1, 0, 0);
    const npy_intp nnz = lp.indptr ? (npy_intp)lp.indptr[lp.num_cols] : 0;
    if (lp.indptr != NULL && nnz < 0) {
        PyErr_SetString(PyExc_ValueError, "indptr must end with a non-negative count");
        return NULL;
    }
    lp.indices = lp.indptr ? array_data(args[1], "indices", NPY_INT64, nnz, 0, 0) : NULL;
    lp.values = lp.indices ? input(args[2], "values", nnz) : NULL;
    lp.bounded = lp.values ? array_data(args[4], "bounded", NPY_INT8, (npy_intp)lp.num_cols, 0,
                                        0)
                           : NULL;
    lp.col_t = lp.bounded ? array_data(args[6], "col_t", NPY_INT64, (npy_intp)lp.num_t, 0, 0)
                          : NULL;
    lp.row_dual = lp.col_t ? input(args[7], "row_dual", (npy_intp)lp.num_rows) : NULL;
    lp.col_lower = lp.row_dual ? input(args[8], "col_lower", (npy_intp)lp.num_cols) : NULL;
    lp.col_upper = lp.col_lower ? input(args[9], "col_upper", (npy_intp)lp.num_cols) : NULL;
    lp.row_upper = lp.col_upper ? input(args[11], "row_upper", (npy_intp)lp.num_rows) : NULL;
    double *reduced = lp.row_upper ? output(args[12], "reduced", (npy_intp)lp.num_cols) : NULL;
    if (reduced == NULL) {
        return NULL;
    }
    double *y = PyMem_Malloc((size_t)(lp.num_rows > 0 ? lp.num_rows : 1) * sizeof(double));
    if (y == NULL) {
        return PyErr_NoMemory();
    }
    double low, spread;
    int code;
    Py_BEGIN_ALLOW_THREADS
    code = bn_weak_duality(&lp, y, reduced, &low, &spread);
    Py_END_ALLOW_THREADS
    PyMem_Free(y);
    if (code < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "indptr, indices, row_t or col_t hold an index out of range");
        return NULL;
    }
    return Py_BuildValue("(dd)", low, spread);
}

/* ------------------------------------------------------------ module */

static PyMethodDef methods[] = {
    {"interval_forward_kernel", (PyCFunction)(void (*)(void))interval_forward_kernel,
     METH_FASTCALL,
     "interval_forward_kernel(net, x_lo, x_hi, phases, prior_lo, prior_hi, rel, absw, z_lo, "
     "z_hi) -> bool\n\nInterval pre-activation bounds (flat hidden); returns infeasible."},
    {"linear_forward_kernel", (PyCFunction)(void (*)(void))linear_forward_kernel,
     METH_FASTCALL,
     "linear_forward_kernel(net, x_lo, x_hi, phases, prior_lo, prior_hi, rel, absw, z_lo, "
     "z_hi, work) -> bool\n\nLinear bounds intersected with interval bounds; returns "
     "infeasible."},
    {"derivative_kernel", (PyCFunction)(void (*)(void))derivative_kernel, METH_FASTCALL,
     "derivative_kernel(z_lo, z_hi, phases, d_lo, d_hi) -> None\n\nReLU derivative bounds."},
    {"backward_interval_kernel", (PyCFunction)(void (*)(void))backward_interval_kernel,
     METH_FASTCALL,
     "backward_interval_kernel(net, c, d_lo, d_hi, rel, absw, y_lo, y_hi) -> None\n\n"
     "Interval bounds of the gradient quantities (flat backward arrays)."},
    {"_linear_forward_portable", (PyCFunction)(void (*)(void))linear_forward_portable,
     METH_FASTCALL,
     "_linear_forward_portable(...) -> bool\n\nlinear_forward_kernel using only the portable "
     "C99 loops (for tests of the code other CPUs run)."},
    {"weak_duality_kernel", (PyCFunction)(void (*)(void))weak_duality_kernel, METH_FASTCALL,
     "weak_duality_kernel(indptr, indices, values, cost, bounded, row_t, col_t, row_dual, "
     "col_lower, col_upper, row_lower, row_upper, reduced) -> (low, spread)\n\n"
     "Weak-duality sums of a node LP (bnblip.lp.duality.WeakDuality.sums)."},
    {"linear_work_size", linear_work_size, METH_O,
     "linear_work_size(net) -> int\n\nElements linear_forward_kernel needs in work."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "bnblip._ckernels",
    "C twins of the Numba bound-propagation kernels (bnblip.bounds.kernels) and the "
    "weak-duality sums of node LPs (bnblip.lp.duality).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__ckernels(void)
{
    import_array();
    return PyModule_Create(&module);
}
