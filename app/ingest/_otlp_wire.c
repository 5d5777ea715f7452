/* OTLP ExportTraceServiceRequest wire format -> app.domain.Span, in one pass over the bytes.
 *
 * The compiled twin of app/ingest/otlp_decode.py (the reference; tests/ingest/
 * test_decoder_differential.py holds the two equal). It keeps the reference's semantics byte for
 * byte, including the ones that come from upb, the protobuf runtime the reference parses with:
 *
 * - The request is parsed through the reference's lean schema (otlp_decode._lean_request_class):
 *   Request{1: ResourceSpans}, ResourceSpans{1: Resource, 2 and 1000: ScopeSpans},
 *   Resource{1: bytes attributes}, ScopeSpans{2: Span}, Span{1, 2, 4: bytes ids, 5: string name,
 *   6: int32 kind, 7, 8: fixed64 times, 9: bytes attributes, 15: Status}, Status{3: int32 code}.
 *   A known field with another wire type is an unknown field; unknown fields are skipped by wire
 *   type; a repeated singular field keeps its last value; a repeated message field (resource,
 *   status) merges.
 * - Malformed means what upb (upb/wire/decode.c) calls kUpb_DecodeStatus_Malformed: a varint over
 *   10 bytes, a tag over 5 bytes or 32 bits, field number 0, wire type 6 or 7, a length of 2^31-1
 *   or more or past the enclosing message, an end-group tag outside its group, a group left open,
 *   groups nested deeper than 100 levels (Python protobuf's recursion limit). Span.name must be
 *   UTF-8 ("String field had bad UTF-8"); everything else is bytes at this stage.
 * - Attributes are then read exactly as otlp_decode.read_pb_attributes reads them: the Envoy
 *   layout (key first, one short string value) straight from the bytes, anything else through a
 *   full KeyValue parse (UTF-8 checked in every nested string, depth limit 100).
 *
 * A request is walked resource by resource; spans are built as they are read. On any error the
 * built spans are dropped and the request is walked once more, in wire order, only to name the
 * first error as upb would (the fast walk visits a resource's fields in the reference's order,
 * not the wire's). The GIL is held throughout; nothing here keeps state between calls except the
 * Decoder's configuration and its string memo.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 100
#define TAG_ILS ((1000u << 3) | 2u) /* ResourceSpans.instrumentation_library_spans (pre-OTLP 0.19) */
#define N_SLOTS 11
#define N_REASONS 10
#define KEY_TABLE_SIZE 256 /* power of two, > 2x the kept keys */
#define MEMO_SIZE 8192     /* power of two */
#define MEMO_MAX_ENTRIES 4096
#define MEMO_MAX_BYTES 256

enum { ST_OK = 0, ST_MALFORMED, ST_BAD_UTF8, ST_PYERR };
enum { VALUE_NONE = 0, VALUE_STRING, VALUE_BOOL, VALUE_INT, VALUE_DOUBLE, VALUE_OTHER };
/* Indices into the reasons tuple the wrapper passes (app/ingest/otlp_wire.py REASONS). */
enum {
    R_TRACE_ID = 0, R_SPAN_ID, R_PARENT_ID, R_END_BEFORE_START, R_START_BEFORE_2000, R_FUTURE,
    R_ATTR_UTF8, R_ATTR_MALFORMED, R_RESOURCE_ATTR_UTF8, R_RESOURCE_ATTR_MALFORMED
};

typedef struct {
    const uint8_t *p;
    size_t n;
} Slice;

typedef struct {
    Slice *items;
    size_t len, cap;
} SliceVec;

/* What read_attributes does with one encoded KeyValue: read `value` as the string of `entry`'s
 * key (the Envoy layout), or parse `raw` whole (entry NULL). KeyValues that keep nothing get no
 * step. */
typedef struct {
    const struct KeyEntry *entry;
    const uint8_t *value;
    size_t n;
    Slice raw;
} AttrStep;

typedef struct {
    AttrStep *items;
    size_t cap;
} AttrSteps;

typedef struct KeyEntry {
    const char *bytes; /* UTF-8 of the key, owned by `key` */
    Py_ssize_t len;
    PyObject *key; /* the canonical (interned) key object */
    int interned;  /* the value is interned (otlp_decode.INTERNED_VALUES) */
} KeyEntry;

typedef struct {
    KeyEntry *slots[KEY_TABLE_SIZE];
    KeyEntry *entries;
    Py_ssize_t count;
} KeyTable;

typedef struct {
    uint64_t hash;
    size_t n;
    char *bytes; /* NULL: empty slot */
    PyObject *text;
} MemoEntry;

typedef struct {
    PyObject_HEAD
    PyTypeObject *span_type;
    Py_ssize_t offsets[N_SLOTS];
    PyObject *kinds[6];
    PyObject *reasons[N_REASONS];
    PyObject *empty_text;
    KeyTable span_keys, resource_keys;
    const KeyEntry *service_name; /* in resource_keys */
    uint64_t min_start_ns;
    MemoEntry *memo; /* interned strings by their UTF-8: span names and repeating values */
    size_t memo_entries;
} Decoder;

typedef struct {
    Decoder *dec;
    PyObject *spans;
    Py_ssize_t max_attributes;
    uint64_t max_end_ns;
    Py_ssize_t counts[N_REASONS];
    int order[N_REASONS], n_order;
    SliceVec resource_attrs, scopes, ils, span_attrs;
    AttrSteps steps;
} Ctx;

typedef struct {
    Slice trace_id, span_id, parent_id, name;
    int32_t kind, status_code;
    uint64_t start_ns, end_ns;
    size_t attr_total;
} SpanFields;

static PyObject *WireError;

/* ---- wire primitives: every read is bounded by `end`; none reads past it ---- */

static inline int read_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
    const uint8_t *p = *pp;
    uint64_t value = 0;
    for (int i = 0; i < 10; i++) {
        if (p >= end) return 0;
        uint8_t byte = *p++;
        value |= (uint64_t)(byte & 0x7f) << (7 * i); /* bits past 64 drop, as in upb */
        if (!(byte & 0x80)) {
            *pp = p;
            *out = value;
            return 1;
        }
    }
    return 0;
}

static inline int read_tag(const uint8_t **pp, const uint8_t *end, uint32_t *tag) {
    const uint8_t *start = *pp;
    uint64_t value;
    if (start < end && *start < 0x80) {
        *tag = *start;
        *pp = start + 1;
        return 1;
    }
    if (!read_varint(pp, end, &value) || *pp - start > 5 || value > UINT32_MAX) return 0;
    *tag = (uint32_t)value;
    return 1;
}

static inline int read_size(const uint8_t **pp, const uint8_t *end, size_t *n) {
    uint64_t value;
    if (!read_varint(pp, end, &value) || value >= INT32_MAX) return 0;
    if (value > (uint64_t)(end - *pp)) return 0;
    *n = (size_t)value;
    return 1;
}

static inline int read_delimited(const uint8_t **pp, const uint8_t *end, Slice *out) {
    size_t n;
    if (!read_size(pp, end, &n)) return 0;
    out->p = *pp;
    out->n = n;
    *pp += n;
    return 1;
}

static inline uint64_t load_fixed64(const uint8_t *p) {
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--) value = (value << 8) | p[i];
    return value;
}

static int skip_field(const uint8_t **pp, const uint8_t *end, uint32_t tag, int level);

/* An unknown group: fields up to the end-group tag of the same number. `level` is the group's
 * own nesting level (the top message is level 0). */
static int skip_group(const uint8_t **pp, const uint8_t *end, uint32_t number, int level) {
    if (*pp >= end || level > MAX_DEPTH) return ST_MALFORMED;
    for (;;) {
        uint32_t tag;
        if (*pp >= end || !read_tag(pp, end, &tag)) return ST_MALFORMED;
        if ((tag & 7) == 4) return (tag >> 3) == number ? ST_OK : ST_MALFORMED;
        int status = skip_field(pp, end, tag, level);
        if (status) return status;
    }
}

/* Skips one field whose tag was read, inside a message at nesting level `level`. */
static int skip_field(const uint8_t **pp, const uint8_t *end, uint32_t tag, int level) {
    uint32_t number = tag >> 3;
    switch (tag & 7) {
        case 0: {
            uint64_t value;
            if (!read_varint(pp, end, &value)) return ST_MALFORMED;
            break;
        }
        case 1:
            if (end - *pp < 8) return ST_MALFORMED;
            *pp += 8;
            break;
        case 2: {
            size_t n;
            if (!read_size(pp, end, &n)) return ST_MALFORMED;
            *pp += n;
            break;
        }
        case 3:
            if (number == 0) return ST_MALFORMED;
            return skip_group(pp, end, number, level + 1);
        case 5:
            if (end - *pp < 4) return ST_MALFORMED;
            *pp += 4;
            break;
        default: /* 4 (end group) is the caller's; 6 and 7 do not exist */
            return ST_MALFORMED;
    }
    return number == 0 ? ST_MALFORMED : ST_OK;
}

static int utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t chunk;
            memcpy(&chunk, s + i, 8);
            if (!(chunk & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF; /* bounds of the second byte (Unicode Table 3-7) */
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return 0;
        }
        if (n - i <= need) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
        }
        i += need + 1;
    }
    return 1;
}

/* ---- the error path: the first error in wire order, as upb names it ---- */

enum { M_REQUEST, M_RESOURCE_SPANS, M_RESOURCE, M_SCOPE_SPANS, M_SPAN, M_STATUS };

static int validate(const uint8_t *p, const uint8_t *end, int message, int level) {
    while (p < end) {
        uint32_t tag;
        if (!read_tag(&p, end, &tag) || (tag & 7) == 4) return ST_MALFORMED;
        int sub = -1, is_string = 0;
        switch (message) {
            case M_REQUEST:
                if (tag == 0x0a) sub = M_RESOURCE_SPANS;
                break;
            case M_RESOURCE_SPANS:
                if (tag == 0x0a) sub = M_RESOURCE;
                else if (tag == 0x12 || tag == TAG_ILS) sub = M_SCOPE_SPANS;
                break;
            case M_SCOPE_SPANS:
                if (tag == 0x12) sub = M_SPAN;
                break;
            case M_SPAN:
                if (tag == 0x7a) sub = M_STATUS;
                else if (tag == 0x2a) is_string = 1;
                break;
            default:
                break;
        }
        int status;
        if (sub >= 0 || is_string) {
            Slice field;
            if (!read_delimited(&p, end, &field)) return ST_MALFORMED;
            if (is_string) {
                status = utf8_valid(field.p, field.n) ? ST_OK : ST_BAD_UTF8;
            } else {
                status = validate(field.p, field.p + field.n, sub, level + 1);
            }
        } else {
            status = skip_field(&p, end, tag, level);
        }
        if (status) return status;
    }
    return ST_OK;
}

/* ---- growable slice arrays ---- */

static int push_slice(SliceVec *vec, Slice slice) {
    if (vec->len == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 64;
        Slice *items = PyMem_Realloc(vec->items, cap * sizeof(Slice));
        if (!items) {
            PyErr_NoMemory();
            return ST_PYERR;
        }
        vec->items = items;
        vec->cap = cap;
    }
    vec->items[vec->len++] = slice;
    return ST_OK;
}

/* ---- kept keys and the string memo ---- */

/* Keys and memoised values are short and few: a hash of the length and the first and last
 * eight bytes is enough (collisions are settled by memcmp), and costs the same at any length. */
static inline uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t head = 0, tail = 0;
    if (n >= 8) {
        memcpy(&head, p, 8);
        memcpy(&tail, p + n - 8, 8);
    } else {
        memcpy(&head, p, n);
    }
    uint64_t h = (head * 0x9E3779B97F4A7C15ull) ^ (tail * 0xC2B2AE3D27D4EB4Full) ^ n;
    return h ^ (h >> 29) ^ (h >> 47);
}

static const KeyEntry *find_key(const KeyTable *table, const uint8_t *p, size_t n) {
    size_t i = (size_t)hash_bytes(p, n) & (KEY_TABLE_SIZE - 1);
    for (;;) {
        const KeyEntry *entry = table->slots[i];
        if (!entry) return NULL;
        if ((size_t)entry->len == n && memcmp(entry->bytes, p, n) == 0) return entry;
        i = (i + 1) & (KEY_TABLE_SIZE - 1);
    }
}

static void clear_memo(Decoder *dec) {
    if (!dec->memo) return;
    for (size_t i = 0; i < MEMO_SIZE; i++) {
        MemoEntry *entry = &dec->memo[i];
        if (entry->bytes) {
            PyMem_Free(entry->bytes);
            entry->bytes = NULL;
            Py_CLEAR(entry->text);
        }
    }
    dec->memo_entries = 0;
}

static MemoEntry *memo_probe(Decoder *dec, uint64_t hash, const uint8_t *p, size_t n) {
    size_t i = (size_t)hash & (MEMO_SIZE - 1);
    for (;;) {
        MemoEntry *entry = &dec->memo[i];
        if (!entry->bytes) return entry;
        if (entry->hash == hash && entry->n == n && memcmp(entry->bytes, p, n) == 0) return entry;
        i = (i + 1) & (MEMO_SIZE - 1);
    }
}

/* A new reference to the str of (possibly invalid) UTF-8 bytes; NULL with UnicodeDecodeError or
 * MemoryError set. Interned strings come from, and go to, the memo. */
static PyObject *make_text(Decoder *dec, const uint8_t *p, size_t n, int interned) {
    if (!interned) return PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, NULL);
    if (n == 0) return Py_NewRef(dec->empty_text);
    uint64_t hash = 0;
    if (n <= MEMO_MAX_BYTES) {
        hash = hash_bytes(p, n);
        MemoEntry *entry = memo_probe(dec, hash, p, n);
        if (entry->bytes) return Py_NewRef(entry->text);
    }
    PyObject *text = PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, NULL);
    if (!text) return NULL;
    PyUnicode_InternInPlace(&text);
    if (n > MEMO_MAX_BYTES) return text;
    if (dec->memo_entries >= MEMO_MAX_ENTRIES) {
        clear_memo(dec); /* full: emptied at once, as app.hot_path.BoundedMemo is */
    }
    /* Probed again: making `text` may have run a collection, and any Python code with it. */
    MemoEntry *slot = memo_probe(dec, hash, p, n);
    if (slot->bytes) return text;
    char *copy = PyMem_Malloc(n);
    if (!copy) return text; /* not remembered; still correct */
    memcpy(copy, p, n);
    slot->hash = hash;
    slot->n = n;
    slot->bytes = copy;
    slot->text = Py_NewRef(text);
    dec->memo_entries++;
    return text;
}

/* ---- the reference's attribute rules ---- */

typedef struct {
    Slice key;
    int has_key;
    int kind; /* VALUE_* of the last oneof member read */
    Slice text;
    uint64_t number;
} KeyValueFields;

static int parse_any_value(const uint8_t *p, const uint8_t *end, int level, KeyValueFields *out);
static int parse_key_value(const uint8_t *p, const uint8_t *end, int level, KeyValueFields *out);

/* ArrayValue{1: AnyValue} and KeyValueList{1: KeyValue}: only checked. */
static int parse_value_list(const uint8_t *p, const uint8_t *end, int level, int of_key_values) {
    while (p < end) {
        uint32_t tag;
        if (!read_tag(&p, end, &tag) || (tag & 7) == 4) return ST_MALFORMED;
        if (tag == 0x0a) {
            Slice item;
            KeyValueFields ignored = {0};
            if (!read_delimited(&p, end, &item) || level + 1 > MAX_DEPTH) return ST_MALFORMED;
            int status = of_key_values
                             ? parse_key_value(item.p, item.p + item.n, level + 1, &ignored)
                             : parse_any_value(item.p, item.p + item.n, level + 1, &ignored);
            if (status) return status;
        } else if (skip_field(&p, end, tag, level)) {
            return ST_MALFORMED;
        }
    }
    return ST_OK;
}

/* opentelemetry.proto.common.v1.AnyValue, merged into `out` (a repeated `value` merges). */
static int parse_any_value(const uint8_t *p, const uint8_t *end, int level, KeyValueFields *out) {
    while (p < end) {
        uint32_t tag;
        Slice field;
        uint64_t number;
        if (!read_tag(&p, end, &tag) || (tag & 7) == 4) return ST_MALFORMED;
        switch (tag) {
            case 0x0a: /* string_value */
                if (!read_delimited(&p, end, &field) || !utf8_valid(field.p, field.n))
                    return ST_MALFORMED;
                out->kind = VALUE_STRING;
                out->text = field;
                break;
            case 0x10: /* bool_value */
            case 0x18: /* int_value */
            case 0x40: /* string_value_strindex */
                if (!read_varint(&p, end, &number)) return ST_MALFORMED;
                out->kind = tag == 0x10 ? VALUE_BOOL : tag == 0x18 ? VALUE_INT : VALUE_OTHER;
                out->number = number;
                break;
            case 0x21: /* double_value */
                if (end - p < 8) return ST_MALFORMED;
                out->kind = VALUE_DOUBLE;
                out->number = load_fixed64(p);
                p += 8;
                break;
            case 0x2a: /* array_value */
            case 0x32: /* kvlist_value */
                if (!read_delimited(&p, end, &field) || level + 1 > MAX_DEPTH) return ST_MALFORMED;
                if (parse_value_list(field.p, field.p + field.n, level + 1, tag == 0x32))
                    return ST_MALFORMED;
                out->kind = VALUE_OTHER;
                break;
            case 0x3a: /* bytes_value */
                if (!read_delimited(&p, end, &field)) return ST_MALFORMED;
                out->kind = VALUE_OTHER;
                break;
            default:
                if (skip_field(&p, end, tag, level)) return ST_MALFORMED;
        }
    }
    return ST_OK;
}

/* opentelemetry.proto.common.v1.KeyValue{1: key, 2: value, 3: key_strindex}. */
static int parse_key_value(const uint8_t *p, const uint8_t *end, int level, KeyValueFields *out) {
    while (p < end) {
        uint32_t tag;
        Slice field;
        if (!read_tag(&p, end, &tag) || (tag & 7) == 4) return ST_MALFORMED;
        if (tag == 0x0a) {
            if (!read_delimited(&p, end, &field) || !utf8_valid(field.p, field.n))
                return ST_MALFORMED;
            out->key = field;
            out->has_key = 1;
        } else if (tag == 0x12) {
            if (!read_delimited(&p, end, &field) || level + 1 > MAX_DEPTH) return ST_MALFORMED;
            if (parse_any_value(field.p, field.p + field.n, level + 1, out)) return ST_MALFORMED;
        } else if (skip_field(&p, end, tag, level)) {
            return ST_MALFORMED;
        }
    }
    return ST_OK;
}

/* otlp_decode._read_slow: a KeyValue through the generated class. */
static int read_slow(Decoder *dec, const KeyTable *table, Slice raw, PyObject *into, int *reason,
                     int malformed) {
    KeyValueFields kv = {0};
    if (parse_key_value(raw.p, raw.p + raw.n, 0, &kv)) {
        *reason = malformed;
        return ST_OK;
    }
    const KeyEntry *entry = kv.has_key ? find_key(table, kv.key.p, kv.key.n) : NULL;
    if (!entry) return ST_OK;
    PyObject *value;
    switch (kv.kind) {
        case VALUE_STRING:
            value = make_text(dec, kv.text.p, kv.text.n, entry->interned);
            break;
        case VALUE_BOOL:
            value = Py_NewRef(kv.number ? Py_True : Py_False);
            break;
        case VALUE_INT:
            value = PyLong_FromLongLong((long long)(int64_t)kv.number);
            break;
        case VALUE_DOUBLE: {
            double real;
            memcpy(&real, &kv.number, sizeof real);
            value = PyFloat_FromDouble(real);
            break;
        }
        default:
            return ST_OK; /* arrays, kvlists, bytes: nothing correlation reads */
    }
    if (!value) return ST_PYERR;
    int failed = PyDict_SetItem(into, entry->key, value);
    Py_DECREF(value);
    return failed ? ST_PYERR : ST_OK;
}

#if PY_VERSION_HEX < 0x030E0000
#define NEW_DICT(n) _PyDict_NewPresized(n) /* sized once: no resize while it fills */
#else
#define NEW_DICT(n) PyDict_New()
#endif

/* otlp_decode.read_pb_attributes: the kept attributes of the first `max_attributes` encoded
 * KeyValues. `*reason` is set (and the dict abandoned) when one is bad, as BadAttribute is. */
static int read_attributes(Decoder *dec, const KeyTable *table, const SliceVec *raws, size_t total,
                           Py_ssize_t max_attributes, int utf8_reason, int malformed_reason,
                           AttrSteps *steps, PyObject **out, int *reason) {
    size_t count = total; /* Python's raws[:max_attributes] */
    if (max_attributes >= 0) {
        if ((size_t)max_attributes < count) count = (size_t)max_attributes;
    } else {
        size_t dropped = (size_t)(-(max_attributes + 1)) + 1; /* no overflow at PY_SSIZE_T_MIN */
        count = dropped >= total ? 0 : total - dropped;
    }
    if (count > steps->cap) {
        AttrStep *items = PyMem_Realloc(steps->items, count * sizeof(AttrStep));
        if (!items) {
            PyErr_NoMemory();
            return ST_PYERR;
        }
        steps->items = items;
        steps->cap = count;
    }
    size_t n_steps = 0;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *b = raws->items[i].p;
        size_t n = raws->items[i].n;
        AttrStep *step = &steps->items[n_steps];
        step->entry = NULL;
        step->raw = raws->items[i];
        if (n < 2) continue; /* raw[1] is an IndexError: an empty KeyValue */
        size_t key_end = (size_t)b[1] + 2;
        const KeyEntry *entry = NULL;
        if (b[0] == 0x0a && n >= key_end) entry = find_key(table, b + 2, b[1]);
        if (!entry) {
            if (b[0] != 0x0a) n_steps++; /* keys not kept are skipped unless out of order */
            continue;
        }
        size_t rest = n - key_end;
        const uint8_t *v = b + key_end;
        /* The reference's chained test; an IndexError (a short KeyValue) keeps nothing. */
        if (rest == 0) continue;
        n_steps++;
        if (v[0] != 0x12) continue;
        if (rest == 1) goto none;
        if ((size_t)v[1] + 2 != rest) continue;
        if (rest == 2) goto none;
        if (v[2] != 0x0a) continue;
        if (rest == 3) goto none;
        if ((size_t)v[3] + 4 != rest) continue;
        step->entry = entry;
        step->value = v + 4;
        step->n = rest - 4;
        continue;
    none:
        n_steps--;
    }
    PyObject *attributes = NEW_DICT((Py_ssize_t)n_steps);
    if (!attributes) return ST_PYERR;
    *reason = -1;
    for (size_t i = 0; i < n_steps && *reason < 0; i++) {
        const AttrStep *step = &steps->items[i];
        if (!step->entry) {
            if (read_slow(dec, table, step->raw, attributes, reason, malformed_reason))
                goto error;
            continue;
        }
        PyObject *value = make_text(dec, step->value, step->n, step->entry->interned);
        if (!value) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) goto error;
            PyErr_Clear();
            *reason = utf8_reason;
            break;
        }
        int failed = PyDict_SetItem(attributes, step->entry->key, value);
        Py_DECREF(value);
        if (failed) goto error;
    }
    if (*reason >= 0) {
        Py_DECREF(attributes);
        *out = NULL;
        return ST_OK;
    }
    *out = attributes;
    return ST_OK;
error:
    Py_DECREF(attributes);
    return ST_PYERR;
}

/* ---- spans ---- */

static void add_rejection(Ctx *ctx, int reason, Py_ssize_t n) {
    if (ctx->counts[reason] == 0) ctx->order[ctx->n_order++] = reason;
    ctx->counts[reason] += n;
}

static int parse_status(const uint8_t *p, const uint8_t *end, int32_t *code) {
    while (p < end) {
        uint32_t tag;
        if (!read_tag(&p, end, &tag) || (tag & 7) == 4) return ST_MALFORMED;
        if (tag == 0x18) {
            uint64_t value;
            if (!read_varint(&p, end, &value)) return ST_MALFORMED;
            *code = (int32_t)(uint32_t)value;
        } else if (skip_field(&p, end, tag, 4)) {
            return ST_MALFORMED;
        }
    }
    return ST_OK;
}

static int parse_span(Ctx *ctx, const uint8_t *p, const uint8_t *end, SpanFields *span) {
    memset(span, 0, sizeof *span);
    ctx->span_attrs.len = 0;
    while (p < end) {
        uint32_t tag;
        Slice field;
        uint64_t value;
        if (!read_tag(&p, end, &tag) || (tag & 7) == 4) return ST_MALFORMED;
        switch (tag) {
            case 0x0a:
                if (!read_delimited(&p, end, &span->trace_id)) return ST_MALFORMED;
                break;
            case 0x12:
                if (!read_delimited(&p, end, &span->span_id)) return ST_MALFORMED;
                break;
            case 0x22:
                if (!read_delimited(&p, end, &span->parent_id)) return ST_MALFORMED;
                break;
            case 0x2a:
                if (!read_delimited(&p, end, &span->name)) return ST_MALFORMED;
                if (!utf8_valid(span->name.p, span->name.n)) return ST_BAD_UTF8;
                break;
            case 0x30:
                if (!read_varint(&p, end, &value)) return ST_MALFORMED;
                span->kind = (int32_t)(uint32_t)value;
                break;
            case 0x39:
            case 0x41:
                if (end - p < 8) return ST_MALFORMED;
                *(tag == 0x39 ? &span->start_ns : &span->end_ns) = load_fixed64(p);
                p += 8;
                break;
            case 0x4a:
                if (!read_delimited(&p, end, &field)) return ST_MALFORMED;
                /* Only the first max_attributes are ever read (all, for the rare negative). */
                if (ctx->max_attributes < 0 || span->attr_total < (size_t)ctx->max_attributes) {
                    if (push_slice(&ctx->span_attrs, field)) return ST_PYERR;
                }
                span->attr_total++;
                break;
            case 0x7a:
                if (!read_delimited(&p, end, &field)) return ST_MALFORMED;
                if (parse_status(field.p, field.p + field.n, &span->status_code))
                    return ST_MALFORMED;
                break;
            default:
                if (skip_field(&p, end, tag, 3)) return ST_MALFORMED;
        }
    }
    return ST_OK;
}

static int is_zero(Slice s) {
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i]) return 0;
    }
    return 1;
}

/* otlp_decode.span_problem: the reason index, or -1 when the span is fine. */
static int span_problem(const Ctx *ctx, const SpanFields *span, Slice parent) {
    if (span->trace_id.n != 16 || is_zero(span->trace_id)) return R_TRACE_ID;
    if (span->span_id.n != 8 || is_zero(span->span_id)) return R_SPAN_ID;
    if (parent.n != 0 && parent.n != 8) return R_PARENT_ID;
    if (span->end_ns < span->start_ns) return R_END_BEFORE_START;
    if (span->start_ns < ctx->dec->min_start_ns) return R_START_BEFORE_2000;
    if (span->end_ns > ctx->max_end_ns) return R_FUTURE;
    return -1;
}

static inline void set_slot(PyObject *obj, Py_ssize_t offset, PyObject *value) {
    *(PyObject **)((char *)obj + offset) = value; /* steals `value` */
}

static int build_span(Ctx *ctx, const SpanFields *span, PyObject *service, PyObject *resource) {
    Decoder *dec = ctx->dec;
    Slice parent = span->parent_id;
    if (parent.n == 8 && is_zero(parent)) parent.n = 0; /* all-zero parent: no parent */
    int problem = span_problem(ctx, span, parent);
    if (problem >= 0) {
        add_rejection(ctx, problem, 1);
        return ST_OK;
    }
    PyObject *attributes;
    int reason;
    if (read_attributes(dec, &dec->span_keys, &ctx->span_attrs, span->attr_total,
                        ctx->max_attributes, R_ATTR_UTF8, R_ATTR_MALFORMED, &ctx->steps, &attributes,
                        &reason))
        return ST_PYERR;
    if (!attributes) {
        add_rejection(ctx, reason, 1);
        return ST_OK;
    }
    PyObject *obj = dec->span_type->tp_alloc(dec->span_type, 0);
    if (!obj) {
        Py_DECREF(attributes);
        return ST_PYERR;
    }
    const Py_ssize_t *at = dec->offsets;
    /* Every slot is set (NULL on a failed allocation: the object is then dropped whole). */
    set_slot(obj, at[0], PyBytes_FromStringAndSize((const char *)span->trace_id.p, 16));
    set_slot(obj, at[1], PyBytes_FromStringAndSize((const char *)span->span_id.p, 8));
    set_slot(obj, at[2], PyBytes_FromStringAndSize((const char *)parent.p, (Py_ssize_t)parent.n));
    int kind = span->kind >= 0 && span->kind < 6 ? span->kind : 0;
    set_slot(obj, at[3], Py_NewRef(dec->kinds[kind]));
    set_slot(obj, at[4], make_text(dec, span->name.p, span->name.n, 1));
    set_slot(obj, at[5], PyLong_FromUnsignedLongLong(span->start_ns));
    set_slot(obj, at[6], PyLong_FromUnsignedLongLong(span->end_ns));
    set_slot(obj, at[7], Py_NewRef(service));
    set_slot(obj, at[8], Py_NewRef(span->status_code == 2 ? Py_True : Py_False));
    set_slot(obj, at[9], attributes);
    set_slot(obj, at[10], Py_NewRef(resource));
    for (int i = 0; i < N_SLOTS; i++) {
        if (!*(PyObject **)((char *)obj + at[i])) {
            Py_DECREF(obj);
            return ST_PYERR;
        }
    }
    int failed = PyList_Append(ctx->spans, obj);
    Py_DECREF(obj);
    return failed ? ST_PYERR : ST_OK;
}

/* One ScopeSpans: its spans built (resource != NULL) or counted as rejected for the resource. */
static int decode_scope(Ctx *ctx, Slice scope, PyObject *service, PyObject *resource,
                        int resource_reason) {
    const uint8_t *p = scope.p, *end = scope.p + scope.n;
    while (p < end) {
        uint32_t tag;
        if (!read_tag(&p, end, &tag) || (tag & 7) == 4) return ST_MALFORMED;
        if (tag != 0x12) {
            if (skip_field(&p, end, tag, 2)) return ST_MALFORMED;
            continue;
        }
        Slice field;
        SpanFields span;
        if (!read_delimited(&p, end, &field)) return ST_MALFORMED;
        int status = parse_span(ctx, field.p, field.p + field.n, &span);
        if (status) return status;
        if (!resource) {
            add_rejection(ctx, resource_reason, 1);
        } else if ((status = build_span(ctx, &span, service, resource))) {
            return status;
        }
    }
    return ST_OK;
}

static int decode_resource_spans(Ctx *ctx, const uint8_t *p, const uint8_t *end) {
    Decoder *dec = ctx->dec;
    ctx->resource_attrs.len = ctx->scopes.len = ctx->ils.len = 0;
    while (p < end) {
        uint32_t tag;
        Slice field;
        if (!read_tag(&p, end, &tag) || (tag & 7) == 4) return ST_MALFORMED;
        if (tag == 0x0a) { /* Resource (repeated: merged, so its attributes add up) */
            if (!read_delimited(&p, end, &field)) return ST_MALFORMED;
            const uint8_t *q = field.p, *q_end = field.p + field.n;
            while (q < q_end) {
                Slice attribute;
                if (!read_tag(&q, q_end, &tag) || (tag & 7) == 4) return ST_MALFORMED;
                if (tag == 0x0a) {
                    if (!read_delimited(&q, q_end, &attribute)) return ST_MALFORMED;
                    if (push_slice(&ctx->resource_attrs, attribute)) return ST_PYERR;
                } else if (skip_field(&q, q_end, tag, 2)) {
                    return ST_MALFORMED;
                }
            }
        } else if (tag == 0x12 || tag == TAG_ILS) {
            if (!read_delimited(&p, end, &field)) return ST_MALFORMED;
            if (push_slice(tag == 0x12 ? &ctx->scopes : &ctx->ils, field)) return ST_PYERR;
        } else if (skip_field(&p, end, tag, 1)) {
            return ST_MALFORMED;
        }
    }
    PyObject *resource;
    int reason;
    if (read_attributes(dec, &dec->resource_keys, &ctx->resource_attrs, ctx->resource_attrs.len,
                        ctx->max_attributes, R_RESOURCE_ATTR_UTF8, R_RESOURCE_ATTR_MALFORMED,
                        &ctx->steps, &resource, &reason))
        return ST_PYERR;
    PyObject *service = NULL;
    if (resource) {
        PyObject *name = PyDict_GetItemWithError(resource, dec->service_name->key);
        if (name) {
            service = PyObject_Str(name);
        } else if (!PyErr_Occurred()) {
            service = Py_NewRef(dec->empty_text);
        }
        if (!service) {
            Py_DECREF(resource);
            return ST_PYERR;
        }
    }
    int status = ST_OK;
    /* scope_spans first, then instrumentation_library_spans, as the reference lists them. */
    for (int pass = 0; pass < 2 && !status; pass++) {
        const SliceVec *list = pass == 0 ? &ctx->scopes : &ctx->ils;
        for (size_t i = 0; i < list->len && !status; i++) {
            status = decode_scope(ctx, list->items[i], service, resource, reason);
        }
    }
    Py_XDECREF(service);
    Py_XDECREF(resource);
    return status;
}

static int decode_request(Ctx *ctx, const uint8_t *p, const uint8_t *end) {
    while (p < end) {
        uint32_t tag;
        if (!read_tag(&p, end, &tag) || (tag & 7) == 4) return ST_MALFORMED;
        if (tag == 0x0a) {
            Slice field;
            if (!read_delimited(&p, end, &field)) return ST_MALFORMED;
            int status = decode_resource_spans(ctx, field.p, field.p + field.n);
            if (status) return status;
        } else if (skip_field(&p, end, tag, 0)) {
            return ST_MALFORMED;
        }
    }
    return ST_OK;
}

/* ---- the Python type ---- */

static PyObject *Decoder_decode(Decoder *self, PyObject *args) {
    Py_buffer body;
    Py_ssize_t max_attributes;
    PyObject *max_end;
    if (!PyArg_ParseTuple(args, "y*nO!:decode", &body, &max_attributes, &PyLong_Type, &max_end))
        return NULL;
    Ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.dec = self;
    ctx.max_attributes = max_attributes;
    ctx.max_end_ns = PyLong_AsUnsignedLongLong(max_end);
    PyObject *result = NULL;
    if (ctx.max_end_ns == (uint64_t)-1 && PyErr_Occurred()) goto done;
    ctx.spans = PyList_New(0);
    if (!ctx.spans) goto done;
    const uint8_t *start = body.buf, *end = start + body.len;
    int status = decode_request(&ctx, start, end);
    if (status == ST_PYERR) goto done;
    if (status != ST_OK) {
        /* Name the first error in wire order; the fast walk's own finding if they disagree. */
        int first = validate(start, end, M_REQUEST, 0);
        status = first != ST_OK ? first : status;
        PyErr_SetString(WireError, status == ST_BAD_UTF8 ? "String field had bad UTF-8"
                                                         : "Wire format was corrupt");
        goto done;
    }
    PyObject *reasons = PyDict_New();
    if (!reasons) goto done;
    for (int i = 0; i < ctx.n_order; i++) {
        PyObject *count = PyLong_FromSsize_t(ctx.counts[ctx.order[i]]);
        if (!count || PyDict_SetItem(reasons, self->reasons[ctx.order[i]], count)) {
            Py_XDECREF(count);
            Py_DECREF(reasons);
            goto done;
        }
        Py_DECREF(count);
    }
    result = PyTuple_Pack(2, ctx.spans, reasons);
    Py_DECREF(reasons);
done:
    Py_XDECREF(ctx.spans);
    PyMem_Free(ctx.resource_attrs.items);
    PyMem_Free(ctx.scopes.items);
    PyMem_Free(ctx.ils.items);
    PyMem_Free(ctx.span_attrs.items);
    PyMem_Free(ctx.steps.items);
    PyBuffer_Release(&body);
    return result;
}

static void free_keys(KeyTable *table) {
    for (Py_ssize_t i = 0; i < table->count; i++) Py_XDECREF(table->entries[i].key);
    PyMem_Free(table->entries);
    memset(table, 0, sizeof *table);
}

/* keys: tuple of (str, bool interned); every key under 128 bytes of UTF-8. */
static int load_keys(KeyTable *table, PyObject *keys) {
    if (!PyTuple_Check(keys) || PyTuple_GET_SIZE(keys) > KEY_TABLE_SIZE / 2) {
        PyErr_SetString(PyExc_TypeError, "keys: a tuple of at most 128 (str, bool) pairs");
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(keys);
    table->entries = PyMem_Calloc(n ? (size_t)n : 1, sizeof(KeyEntry));
    if (!table->entries) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(keys, i), *key;
        int interned;
        if (!PyTuple_Check(item) || !PyArg_ParseTuple(item, "Up:keys", &key, &interned)) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "keys: (str, bool) pairs");
            return -1;
        }
        Py_ssize_t len;
        const char *bytes = PyUnicode_AsUTF8AndSize(key, &len);
        if (!bytes) return -1;
        if (len >= 128) {
            PyErr_SetString(PyExc_ValueError, "a kept key must be under 128 bytes");
            return -1;
        }
        KeyEntry *entry = &table->entries[i];
        entry->key = Py_NewRef(key);
        table->count = i + 1;
        entry->bytes = bytes;
        entry->len = len;
        entry->interned = interned;
        size_t slot = (size_t)hash_bytes((const uint8_t *)bytes, (size_t)len) & (KEY_TABLE_SIZE - 1);
        while (table->slots[slot]) slot = (slot + 1) & (KEY_TABLE_SIZE - 1);
        table->slots[slot] = entry;
    }
    return 0;
}

static int Decoder_init(Decoder *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"span_type", "slots", "kinds", "span_keys", "resource_keys",
                            "service_key", "reasons", "min_start_ns", NULL};
    PyObject *span_type, *slots, *kinds, *span_keys, *resource_keys, *service_key, *reasons;
    unsigned long long min_start_ns;
    if (self->span_type) {
        PyErr_SetString(PyExc_RuntimeError, "Decoder is configured once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!O!O!O!UO!K:Decoder", names, &PyType_Type,
                                     &span_type, &PyTuple_Type, &slots, &PyTuple_Type, &kinds,
                                     &PyTuple_Type, &span_keys, &PyTuple_Type, &resource_keys,
                                     &service_key, &PyTuple_Type, &reasons, &min_start_ns))
        return -1;
    if (PyTuple_GET_SIZE(slots) != N_SLOTS || PyTuple_GET_SIZE(kinds) != 6 ||
        PyTuple_GET_SIZE(reasons) != N_REASONS) {
        PyErr_SetString(PyExc_ValueError, "expected 11 slots, 6 kinds and 10 reasons");
        return -1;
    }
    /* Each slot's offset from its member descriptor: what `Span.<slot>.__set__` writes. */
    for (int i = 0; i < N_SLOTS; i++) {
        PyObject *descr = PyObject_GetAttr(span_type, PyTuple_GET_ITEM(slots, i));
        if (!descr) return -1;
        int ok = Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
                 ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX &&
                 !(((PyMemberDescrObject *)descr)->d_member->flags & READONLY);
        if (ok) self->offsets[i] = ((PyMemberDescrObject *)descr)->d_member->offset;
        Py_DECREF(descr);
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "%R is not an object slot", PyTuple_GET_ITEM(slots, i));
            return -1;
        }
    }
    self->span_type = (PyTypeObject *)Py_NewRef(span_type);
    for (int i = 0; i < 6; i++) self->kinds[i] = Py_NewRef(PyTuple_GET_ITEM(kinds, i));
    for (int i = 0; i < N_REASONS; i++) {
        PyObject *reason = PyTuple_GET_ITEM(reasons, i);
        if (!PyUnicode_Check(reason)) {
            PyErr_SetString(PyExc_TypeError, "reasons must be str");
            return -1;
        }
        self->reasons[i] = Py_NewRef(reason);
    }
    self->empty_text = PyUnicode_FromStringAndSize(NULL, 0);
    if (!self->empty_text) return -1;
    self->min_start_ns = min_start_ns;
    if (load_keys(&self->span_keys, span_keys) || load_keys(&self->resource_keys, resource_keys))
        return -1;
    Py_ssize_t len;
    const char *bytes = PyUnicode_AsUTF8AndSize(service_key, &len);
    if (!bytes) return -1;
    self->service_name = find_key(&self->resource_keys, (const uint8_t *)bytes, (size_t)len);
    if (!self->service_name) {
        PyErr_SetString(PyExc_ValueError, "service_key is not a resource key");
        return -1;
    }
    self->memo = PyMem_Calloc(MEMO_SIZE, sizeof(MemoEntry));
    if (!self->memo) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int Decoder_traverse(Decoder *self, visitproc visit, void *arg) {
    Py_VISIT(self->span_type);
    for (int i = 0; i < 6; i++) Py_VISIT(self->kinds[i]);
    return 0;
}

static int Decoder_clear(Decoder *self) {
    Py_CLEAR(self->span_type);
    for (int i = 0; i < 6; i++) Py_CLEAR(self->kinds[i]);
    for (int i = 0; i < N_REASONS; i++) Py_CLEAR(self->reasons[i]);
    Py_CLEAR(self->empty_text);
    free_keys(&self->span_keys);
    free_keys(&self->resource_keys);
    self->service_name = NULL;
    clear_memo(self);
    PyMem_Free(self->memo);
    self->memo = NULL;
    return 0;
}

static void Decoder_dealloc(Decoder *self) {
    PyObject_GC_UnTrack(self);
    Decoder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Decoder_memo_size(Decoder *self, PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromSize_t(self->memo_entries);
}

static PyMethodDef Decoder_methods[] = {
    {"decode", (PyCFunction)Decoder_decode, METH_VARARGS,
     "decode(body, max_attributes, max_end_ns) -> (spans, {reason: count})\n\n"
     "Raises WireError (upb's status text) when the body is not a lean export request."},
    {"memo_size", (PyCFunction)Decoder_memo_size, METH_NOARGS,
     "Interned strings remembered (bounded)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "app.ingest._otlp_wire.Decoder",
    .tp_basicsize = sizeof(Decoder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "An OTLP trace export decoder configured with the Span type and the kept keys.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Decoder_init,
    .tp_dealloc = (destructor)Decoder_dealloc,
    .tp_traverse = (traverseproc)Decoder_traverse,
    .tp_clear = (inquiry)Decoder_clear,
    .tp_methods = Decoder_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "app.ingest._otlp_wire",
    .m_doc = "OTLP trace export wire format -> Span, compiled (see app/ingest/otlp_wire.py).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__otlp_wire(void) {
    if (PyType_Ready(&DecoderType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    WireError = PyErr_NewExceptionWithDoc("app.ingest._otlp_wire.WireError",
                                          "The body is not an ExportTraceServiceRequest.",
                                          PyExc_ValueError, NULL);
    if (!WireError || PyModule_AddObjectRef(m, "WireError", WireError) < 0 ||
        PyModule_AddObjectRef(m, "Decoder", (PyObject *)&DecoderType) < 0) {
        Py_XDECREF(WireError);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
