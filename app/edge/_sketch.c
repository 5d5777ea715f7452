/* Quantiles of the merge of stored latency sketches, read straight from their bytes.
 *
 * The compiled twin of app/edge/sketch_codec.py `sketch_quantiles_reference` (the reference;
 * tests/edge/test_sketch_c.py holds the two equal). A graph edge's p50/p95/p99 is read from the
 * stored sketches of every bucket the window merges: in Python that decode-and-merge was a third
 * of a /graph answered from the store (bench/graph.py --no-cache).
 *
 * Stored form (version 1): version byte, varint zero count, varint bin count n, then n pairs
 * (varint zigzag key delta, varint count), keys ascending. This reader accepts only what
 * `LatencySketch.to_bytes` writes: every varint under 2^63, every key after the first strictly
 * above the one before, nothing after the last pair (a sketch with n = 0 ends its reading after
 * n, as the reference's does). For anything else (another version, truncated or trailing bytes,
 * keys out of order, a total over 2^53, a NaN quantile, a bin whose value overflows a double, a
 * part that is not bytes) it returns None
 * and the caller asks the reference, which answers or raises exactly as before.
 *
 * The answer is the reference's, bit for bit: rank = floor(clamp(q, 0, 1) * (total - 1)); a rank
 * inside the zero count is 0.0; else the value of the bin holding the rank,
 * 2 * gamma^key / (gamma + 1), computed with the same libm pow() CPython uses for float ** int.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EXACT ((uint64_t)1 << 53) /* totals a double holds exactly (the reference's float) */

typedef struct {
    int64_t key;
    uint64_t count;
} Bin;

typedef struct {
    Bin *bins;
    Py_ssize_t len, cap;
    uint64_t zero, total;
    int sorted; /* bins ascend by key across every part read so far */
} Merge;

/* Unsigned LEB128 under 2^63 at *pos; 0 when truncated or too long. */
static int read_varint(const unsigned char *data, Py_ssize_t size, Py_ssize_t *pos, uint64_t *out) {
    uint64_t value = 0;
    for (int shift = 0; shift < 63; shift += 7) {
        if (*pos >= size) return 0;
        unsigned char byte = data[(*pos)++];
        uint64_t bits = (uint64_t)(byte & 0x7F);
        value |= bits << shift;
        if (!(byte & 0x80)) {
            *out = value;
            return 1;
        }
    }
    return 0;
}

static int64_t unzigzag(uint64_t n) {
    return (n & 1) ? -(int64_t)((n + 1) >> 1) : (int64_t)(n >> 1);
}

static int add_total(Merge *m, uint64_t count) {
    if (count > MAX_EXACT || m->total > MAX_EXACT - count) return 0;
    m->total += count;
    return 1;
}

/* 1: read; 0: not of the accepted form; -1: out of memory (exception set). */
static int read_part(Merge *m, const unsigned char *data, Py_ssize_t size) {
    Py_ssize_t pos = 1;
    uint64_t zero, n, raw;
    if (size < 1 || data[0] != 1) return 0;
    if (!read_varint(data, size, &pos, &zero) || !read_varint(data, size, &pos, &n)) return 0;
    if (!add_total(m, zero)) return 0;
    m->zero += zero;
    if (n == 0) return 1;
    if (n > (uint64_t)(size - pos)) return 0; /* each pair takes two bytes at least */
    if (m->len + (Py_ssize_t)n > m->cap) {
        Py_ssize_t cap = m->cap ? m->cap : 64;
        while (cap < m->len + (Py_ssize_t)n) cap *= 2;
        Bin *grown = PyMem_Realloc(m->bins, (size_t)cap * sizeof(Bin));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        m->bins = grown;
        m->cap = cap;
    }
    int64_t key = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t count;
        if (!read_varint(data, size, &pos, &raw) || !read_varint(data, size, &pos, &count)) return 0;
        int64_t delta = unzigzag(raw);
        if (i == 0) {
            key = delta;
        } else {
            if (delta <= 0 || key > INT64_MAX - delta) return 0; /* keys strictly ascending */
            key += delta;
        }
        if (!add_total(m, count)) return 0;
        if (m->len && m->bins[m->len - 1].key >= key && i == 0) m->sorted = 0;
        m->bins[m->len].key = key;
        m->bins[m->len].count = count;
        m->len++;
    }
    return pos == size;
}

static int by_key(const void *a, const void *b) {
    int64_t x = ((const Bin *)a)->key, y = ((const Bin *)b)->key;
    return (x > y) - (x < y);
}

static PyObject *quantiles(PyObject *self, PyObject *args) {
    PyObject *parts, *qs;
    double gamma;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOd", &parts, &qs, &gamma)) return NULL;
    PyObject *part_seq = PySequence_Fast(parts, "parts must be a sequence of bytes");
    if (part_seq == NULL) return NULL;
    PyObject *q_seq = PySequence_Fast(qs, "qs must be a sequence of floats");
    if (q_seq == NULL) {
        Py_DECREF(part_seq);
        return NULL;
    }
    Merge m = {NULL, 0, 0, 0, 0, 1};
    PyObject *result = NULL;
    Py_ssize_t n_parts = PySequence_Fast_GET_SIZE(part_seq);
    Py_ssize_t n_qs = PySequence_Fast_GET_SIZE(q_seq);
    for (Py_ssize_t i = 0; i < n_parts; i++) {
        PyObject *part = PySequence_Fast_GET_ITEM(part_seq, i);
        if (!PyBytes_Check(part)) goto fallback;
        int read = read_part(&m, (const unsigned char *)PyBytes_AS_STRING(part),
                             PyBytes_GET_SIZE(part));
        if (read < 0) goto done;
        if (read == 0) goto fallback;
    }
    if (n_parts > 1) {
        /* ascending within each part; across parts only if each starts above the last */
        if (!m.sorted) qsort(m.bins, (size_t)m.len, sizeof(Bin), by_key);
    }
    result = PyTuple_New(n_qs);
    if (result == NULL) goto done;
    for (Py_ssize_t j = 0; j < n_qs; j++) {
        PyObject *item = PySequence_Fast_GET_ITEM(q_seq, j);
        double q = PyFloat_AsDouble(item);
        if (q == -1.0 && PyErr_Occurred()) {
            Py_CLEAR(result);
            goto done;
        }
        PyObject *value;
        if (isnan(q)) {
            Py_CLEAR(result);
            goto fallback;
        }
        if (m.total == 0) {
            value = Py_NewRef(Py_None);
        } else {
            double clamped = q < 0.0 ? 0.0 : (q > 1.0 ? 1.0 : q);
            uint64_t rank = (uint64_t)floor(clamped * (double)(m.total - 1));
            if (rank < m.zero) {
                value = PyFloat_FromDouble(0.0);
            } else {
                uint64_t want = rank - m.zero, seen = 0;
                Py_ssize_t k = 0;
                while (k < m.len - 1 && (seen += m.bins[k].count) <= want) k++;
                double power = pow(gamma, (double)m.bins[k].key);
                if (isinf(power)) { /* float ** int overflows: OverflowError in the reference */
                    Py_CLEAR(result);
                    goto fallback;
                }
                value = PyFloat_FromDouble(2 * power / (gamma + 1));
            }
            if (value == NULL) {
                Py_CLEAR(result);
                goto done;
            }
        }
        PyTuple_SET_ITEM(result, j, value);
    }
    goto done;
fallback:
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(m.bins);
    Py_DECREF(part_seq);
    Py_DECREF(q_seq);
    return result;
}


static void put_varint(unsigned char *out, Py_ssize_t *pos, uint64_t n) {
    while (n > 0x7F) {
        out[(*pos)++] = (unsigned char)((n & 0x7F) | 0x80);
        n >>= 7;
    }
    out[(*pos)++] = (unsigned char)n;
}

#define MAX_KEY_SPAN ((int64_t)1 << 61) /* a later delta's zigzag (2 * delta) stays in 63 bits */

/* merge(a, b) -> bytes | None: app/edge/sketch_codec.py `merge_encoded_reference(a, b)`, the
 * stored form of the two sketches' summed bins, byte for byte; None where a part is not of the
 * form read_part accepts (or the merged keys span more than 2^61), for the reference to answer. */
static PyObject *merge(PyObject *self, PyObject *args) {
    PyObject *a, *b;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO", &a, &b)) return NULL;
    if (!PyBytes_Check(a) || !PyBytes_Check(b)) Py_RETURN_NONE;
    Merge ma = {NULL, 0, 0, 0, 0, 1}, mb = {NULL, 0, 0, 0, 0, 1};
    PyObject *result = NULL;
    unsigned char *out = NULL;
    int read = read_part(&ma, (const unsigned char *)PyBytes_AS_STRING(a), PyBytes_GET_SIZE(a));
    if (read > 0)
        read = read_part(&mb, (const unsigned char *)PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b));
    if (read < 0) goto done;
    if (read == 0 || ma.total > MAX_EXACT - mb.total) goto fallback;
    Py_ssize_t n = ma.len + mb.len; /* at most: equal keys are summed */
    out = PyMem_Malloc((size_t)(21 + 20 * n));
    if (out == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (n) {
        int64_t lo = ma.len && (!mb.len || ma.bins[0].key < mb.bins[0].key) ? ma.bins[0].key
                                                                           : mb.bins[0].key;
        int64_t hi = ma.len && (!mb.len || ma.bins[ma.len - 1].key > mb.bins[mb.len - 1].key)
                         ? ma.bins[ma.len - 1].key
                         : mb.bins[mb.len - 1].key;
        if (hi - lo > MAX_KEY_SPAN || lo < -MAX_KEY_SPAN || lo > MAX_KEY_SPAN) goto fallback;
    }
    /* the bins first (their count is only known after summing equal keys), after room for the
     * head: version byte and two varints of at most 10 bytes each */
    Py_ssize_t pos = 21, bins = 0, i = 0, j = 0;
    int64_t last = 0;
    while (i < ma.len || j < mb.len) {
        int64_t key;
        uint64_t count;
        if (j >= mb.len || (i < ma.len && ma.bins[i].key < mb.bins[j].key)) {
            key = ma.bins[i].key;
            count = ma.bins[i++].count;
        } else if (i >= ma.len || mb.bins[j].key < ma.bins[i].key) {
            key = mb.bins[j].key;
            count = mb.bins[j++].count;
        } else {
            key = ma.bins[i].key;
            count = ma.bins[i++].count + mb.bins[j++].count;
        }
        uint64_t zz = bins == 0 ? (key >= 0 ? (uint64_t)key << 1 : ((uint64_t)(-key) << 1) - 1)
                                : (uint64_t)(key - last) << 1;
        put_varint(out, &pos, zz);
        put_varint(out, &pos, count);
        last = key;
        bins++;
    }
    unsigned char head[21];
    Py_ssize_t head_len = 0;
    head[head_len++] = 1;
    put_varint(head, &head_len, ma.zero + mb.zero);
    put_varint(head, &head_len, (uint64_t)bins);
    memcpy(out + 21 - head_len, head, (size_t)head_len);
    result = PyBytes_FromStringAndSize((const char *)out + 21 - head_len, pos - 21 + head_len);
    goto done;
fallback:
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(out);
    PyMem_Free(ma.bins);
    PyMem_Free(mb.bins);
    return result;
}

static PyMethodDef methods[] = {
    {"quantiles", quantiles, METH_VARARGS,
     "quantiles(parts, qs, gamma) -> tuple | None: sketch_quantiles_reference(parts, qs) of the "
     "stored sketches `parts`, or None for input only the reference reads."},
    {"merge", merge, METH_VARARGS,
     "merge(a, b) -> bytes | None: merge_encoded_reference(a, b) of two stored sketches, or None "
     "for input only the reference reads."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_sketch", "Stored latency sketches read in C (app/edge/_sketch.c).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__sketch(void) { return PyModule_Create(&module); }
