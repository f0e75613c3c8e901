/* Optional accelerator for the por-mst-v1 builder: the per-record work in C, SHA-256 from
 * OpenSSL's libcrypto (the library hashlib itself uses).
 *
 * builder.py stays the reference: this module takes the common input shapes and hands
 * anything unusual back to Python by index, so every error message comes from the same code.
 * The output must equal the pure-Python builder's byte for byte (tests/merkle checks it).
 *
 * Builder holds the accounts (records, ids, fingerprints) and lays out level 0; levels()
 * hashes everything above it. Work is split over two threads where it pays.
 *
 * Splitter (at the end) is the liability snapshot file checker: CSV in, one account record
 * stream per asset out (the Builder's input), twin of audits/core/liabilities.py's reference.
 */
#define PY_SSIZE_T_CLEAN
/* OpenSSL 3's one-shot SHA256() fetches the algorithm from a provider on every call, which
 * costs more than hashing these short messages; the SHA256_Init/Update/Final interface is
 * deprecated but direct (and uses the CPU's SHA extensions all the same). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <Python.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASH_LEN 32
#define NONCE_LEN 32
#define AMOUNT_LEN 16

static const char ACCOUNT_PREFIX[] = "por-mst-v1/account";
static const char PAD_PREFIX[] = "por-mst-v1/pad";
#define ACCOUNT_PREFIX_LEN (sizeof(ACCOUNT_PREFIX) - 1)
#define PAD_PREFIX_LEN (sizeof(PAD_PREFIX) - 1)
/* Ids up to this many UTF-8 bytes are hashed from a stack buffer, longer ones piecewise. */
#define MAX_FAST_ID 512

typedef unsigned __int128 u128;

static void sha256(const unsigned char *msg, size_t len, unsigned char *digest) {
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, msg, len);
    SHA256_Final(digest, &ctx);
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

static void put_be64(unsigned char *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = (unsigned char)v; v >>= 8; }
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static u128 get_be128(const unsigned char *p) {
    uint64_t hi, lo;
    memcpy(&hi, p, 8);
    memcpy(&lo, p + 8, 8);
    return ((u128)__builtin_bswap64(hi) << 64) | __builtin_bswap64(lo);
}

static void put_be128(unsigned char *p, u128 v) {
    uint64_t hi = __builtin_bswap64((uint64_t)(v >> 64)), lo = __builtin_bswap64((uint64_t)v);
    memcpy(p, &hi, 8);
    memcpy(p + 8, &lo, 8);
}
#else
static u128 get_be128(const unsigned char *p) {
    u128 v = 0;
    for (int i = 0; i < AMOUNT_LEN; i++) v = (v << 8) | p[i];
    return v;
}

static void put_be128(unsigned char *p, u128 v) {
    for (int i = AMOUNT_LEN - 1; i >= 0; i--) { p[i] = (unsigned char)v; v >>= 8; }
}
#endif

/* ---- two cores ------------------------------------------------------------------------- */

/* Below this many records a second thread costs more than it saves. */
#define THREAD_MIN (1 << 14)

typedef void *(*job_fn)(void *);

/* Run fn(a) on a new thread and fn(b) here; both on this thread if one could not start. */
static void run2(job_fn fn, void *a, void *b) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, fn, a) == 0) {
        fn(b);
        pthread_join(thread, NULL);
    } else {
        fn(a);
        fn(b);
    }
}

/* ---- small pieces ---------------------------------------------------------------------- */

static uint64_t get_be64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

static uint32_t get_be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    return x ^ (x >> 32);
}

/* A seeded 64-bit fingerprint of an id for the duplicate check. Equal fingerprints are
 * only candidates: the ids themselves are compared, so collisions cost time, never
 * correctness, and the per-build random seed keeps anyone from arranging many of them. */
static uint64_t fingerprint(const unsigned char *p, size_t len, uint64_t seed) {
    uint64_t h = mix64(seed ^ (uint64_t)len);
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = mix64(h ^ v);
        p += 8;
        len -= 8;
    }
    uint64_t v = 0;
    if (len) memcpy(&v, p, len);  /* an empty id may sit at the very end of the id buffer */
    return mix64(h ^ v ^ ((uint64_t)len << 56));
}

/* Strict UTF-8, as Python's decoder: no overlong forms, no surrogates, nothing past
 * U+10FFFF. The proof carries the id as a JSON string, so it must decode. */
static int valid_utf8(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c == 0xE0) { need = 2; lo = 0xA0; }
        else if (c == 0xED) { need = 2; hi = 0x9F; }
        else if (c >= 0xE1 && c <= 0xEF) need = 2;
        else if (c == 0xF0) { need = 3; lo = 0x90; }
        else if (c >= 0xF1 && c <= 0xF3) need = 3;
        else if (c == 0xF4) { need = 3; hi = 0x8F; }
        else return 0;
        if (len - i <= need) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t q = 2; q <= need; q++)
            if (s[i + q] < 0x80 || s[i + q] > 0xBF) return 0;
        i += need + 1;
    }
    return 1;
}

/* ---- sorting 64-bit keys ---------------------------------------------------------------- */

typedef struct {
    uint64_t key;
    uint32_t idx;
    uint32_t unused;
} keyed;

static int cmp_key(const void *x, const void *y) {
    uint64_t a = ((const keyed *)x)->key, b = ((const keyed *)y)->key;
    return (a > b) - (a < b);
}

static void insertion_sort(keyed *a, size_t n) {
    for (size_t i = 1; i < n; i++) {
        keyed v = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1].key > v.key) { a[j] = a[j - 1]; j--; }
        a[j] = v;
    }
}

/* Quicksort by key for one bucket (a few hundred entries, in cache). Keys come from SHA-256
 * or a seeded fingerprint, so bad pivots are unlikely; libc's qsort takes over if not. */
static void quick_sort(keyed *a, size_t n, int depth) {
    while (n > 24) {
        if (depth-- == 0) { qsort(a, n, sizeof(keyed), cmp_key); return; }
        size_t m = n / 2, last = n - 1;  /* median of three, moved to a[0]: Hoare's pivot */
        if (a[m].key < a[0].key) { keyed t = a[m]; a[m] = a[0]; a[0] = t; }
        if (a[last].key < a[0].key) { keyed t = a[last]; a[last] = a[0]; a[0] = t; }
        if (a[last].key < a[m].key) { keyed t = a[last]; a[last] = a[m]; a[m] = t; }
        { keyed t = a[m]; a[m] = a[0]; a[0] = t; }
        uint64_t p = a[0].key;
        size_t i = (size_t)-1, j = n;
        for (;;) {
            do i++; while (a[i].key < p);
            do j--; while (a[j].key > p);
            if (i >= j) break;
            keyed t = a[i]; a[i] = a[j]; a[j] = t;
        }
        size_t left = j + 1;  /* [0, left) <= p <= [left, n), both non-empty */
        if (left < n - left) { quick_sort(a, left, depth); a += left; n -= left; }
        else { quick_sort(a + left, n - left, depth); n = left; }
    }
    insertion_sort(a, n);
}

typedef struct {
    const keyed *src;
    keyed *dst;
    size_t lo, hi;   /* entries of src (count and scatter) or buckets (sort) */
    size_t *count;   /* this half's bucket counts, then its write positions */
    const size_t *start;  /* first entry of each bucket in dst (nb + 1 of them) */
    int shift;
    size_t nb;
} bucket_job;

static void *bucket_count(void *arg) {
    bucket_job *j = arg;
    memset(j->count, 0, j->nb * sizeof(size_t));
    for (size_t i = j->lo; i < j->hi; i++) j->count[j->src[i].key >> j->shift]++;
    return NULL;
}

static void *bucket_scatter(void *arg) {
    bucket_job *j = arg;
    for (size_t i = j->lo; i < j->hi; i++) j->dst[j->count[j->src[i].key >> j->shift]++] = j->src[i];
    return NULL;
}

static void *bucket_sort(void *arg) {
    bucket_job *j = arg;
    for (size_t b = j->lo; b < j->hi; b++)
        quick_sort(j->dst + j->start[b], j->start[b + 1] - j->start[b], 64);
    return NULL;
}

/* Sort n keyed entries by key into dst (src is left scrambled-free but unsorted): one
 * scatter by the top bits into buckets of about a hundred entries, each then sorted in
 * cache; both halves on two threads. Equal keys end up adjacent, in no particular order.
 * Returns -1 if out of memory. */
static int sort_keyed(const keyed *src, keyed *dst, size_t n) {
    int bits = 0;
    while (bits < 16 && ((size_t)128 << bits) < n) bits++;
    if (bits == 0) {
        memcpy(dst, src, n * sizeof(keyed));
        quick_sort(dst, n, 64);
        return 0;
    }
    size_t nb = (size_t)1 << bits;
    size_t *c0 = malloc(nb * sizeof(size_t)), *c1 = malloc(nb * sizeof(size_t));
    size_t *start = malloc((nb + 1) * sizeof(size_t));
    if (!c0 || !c1 || !start) { free(c0); free(c1); free(start); return -1; }
    int two = n >= THREAD_MIN;
    bucket_job a = {src, dst, 0, two ? n / 2 : n, c0, start, 64 - bits, nb};
    bucket_job b = {src, dst, two ? n / 2 : n, n, c1, start, 64 - bits, nb};
    run2(bucket_count, &a, &b);
    size_t total = 0;
    for (size_t q = 0; q < nb; q++) {
        start[q] = total;
        size_t x = c0[q], y = c1[q];
        c0[q] = total;
        c1[q] = total + x;
        total += x + y;
    }
    start[nb] = total;
    run2(bucket_scatter, &a, &b);
    a.lo = 0; a.hi = two ? nb / 2 : nb;
    b.lo = a.hi; b.hi = nb;
    run2(bucket_sort, &a, &b);
    free(c0);
    free(c1);
    free(start);
    return 0;
}

/* ---- the builder ------------------------------------------------------------------------- */

/* Builder(k, seed): collects accounts as leaf records account_hash || u128 balances, plus
 * each id (for the duplicate check and its error message), then pads, sorts and lays out
 * level 0. The record's hash slot holds the nonce until the account is hashed.
 *
 * Methods release the GIL for everything that does not touch Python objects, and hash on
 * two threads. One Builder is used by one Python thread at a time. */
typedef struct {
    PyObject_HEAD
    int k;
    size_t rsize;
    uint64_t seed;
    uint64_t key_mask;      /* all ones; tests keep only a few top bits to force ties */
    unsigned char *rec;
    size_t n, cap;          /* accounts held; records (and id slots) allocated */
    unsigned char *ids;     /* every id's UTF-8 bytes, back to back */
    size_t ids_len, ids_cap;
    uint64_t *id_off;       /* id q is ids[id_off[q], id_off[q + 1]) */
    uint64_t *fp;           /* fingerprint of each id */
    uint64_t max_id;        /* longest id taken, in UTF-8 bytes: 2**32-1, lower only in tests */
    int finished;
} Builder;

static int reserve_accounts(Builder *b, size_t extra) {
    if (b->n + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->n + extra) cap *= 2;
    unsigned char *rec = realloc(b->rec, cap * b->rsize);
    if (!rec) return -1;
    b->rec = rec;
    uint64_t *off = realloc(b->id_off, (cap + 1) * sizeof(uint64_t));
    if (!off) return -1;
    b->id_off = off;
    uint64_t *fp = realloc(b->fp, cap * sizeof(uint64_t));
    if (!fp) return -1;
    b->fp = fp;
    b->cap = cap;
    return 0;
}

static int reserve_ids(Builder *b, size_t extra) {
    if (b->ids_len + extra <= b->ids_cap) return 0;
    size_t cap = b->ids_cap ? b->ids_cap : 1 << 16;
    while (cap < b->ids_len + extra) cap *= 2;
    unsigned char *ids = realloc(b->ids, cap);
    if (!ids) return -1;
    b->ids = ids;
    b->ids_cap = cap;
    return 0;
}

/* Append one account whose balances are already in its record; copies id and nonce. */
static void push_account(Builder *b, const char *id, size_t idlen, const char *nonce) {
    memcpy(b->ids + b->ids_len, id, idlen);
    b->ids_len += idlen;
    memcpy(b->rec + b->n * b->rsize, nonce, NONCE_LEN);
    b->n++;
    b->id_off[b->n] = b->ids_len;
}

typedef struct {
    Builder *b;
    size_t lo, hi;
} range_job;

/* account_hash = H(prefix || u32be(len) || id || nonce) over the nonce in the hash slot. */
static void *hash_accounts(void *arg) {
    range_job *j = arg;
    Builder *b = j->b;
    unsigned char msg[ACCOUNT_PREFIX_LEN + 4 + MAX_FAST_ID + NONCE_LEN];
    memcpy(msg, ACCOUNT_PREFIX, ACCOUNT_PREFIX_LEN);
    for (size_t q = j->lo; q < j->hi; q++) {
        const unsigned char *id = b->ids + b->id_off[q];
        size_t len = b->id_off[q + 1] - b->id_off[q];
        unsigned char *slot = b->rec + q * b->rsize;
        b->fp[q] = fingerprint(id, len, b->seed) & b->key_mask;
        put_be32(msg + ACCOUNT_PREFIX_LEN, (uint32_t)len);
        if (len <= MAX_FAST_ID) {
            memcpy(msg + ACCOUNT_PREFIX_LEN + 4, id, len);
            memcpy(msg + ACCOUNT_PREFIX_LEN + 4 + len, slot, NONCE_LEN);
            sha256(msg, ACCOUNT_PREFIX_LEN + 4 + len + NONCE_LEN, slot);
        } else {
            SHA256_CTX ctx;
            SHA256_Init(&ctx);
            SHA256_Update(&ctx, msg, ACCOUNT_PREFIX_LEN + 4);
            SHA256_Update(&ctx, id, len);
            SHA256_Update(&ctx, slot, NONCE_LEN);
            SHA256_Final(slot, &ctx);
        }
    }
    return NULL;
}

/* Hash accounts [lo, b->n); called without the GIL. */
static void hash_new(Builder *b, size_t lo) {
    size_t hi = b->n;
    if (hi - lo < THREAD_MIN) {
        range_job j = {b, lo, hi};
        hash_accounts(&j);
        return;
    }
    range_job x = {b, lo, lo + (hi - lo) / 2}, y = {b, lo + (hi - lo) / 2, hi};
    run2(hash_accounts, &x, &y);
}

static int check_open(Builder *b) {
    if (b->finished) {
        PyErr_SetString(PyExc_RuntimeError, "Builder: already finished");
        return -1;
    }
    return 0;
}

/* feed_tuples(chunk: list, start: int) -> int | None
 *
 * Takes accounts chunk[start:] of the common shape (tuple of exact str, bytes of 32, list
 * or tuple of k exact ints in range). Returns None when all are taken, or the index of the
 * first one this fast path does not handle: Python then checks that account itself (naming
 * the problem, or encoding a legal oddity as a record for feed_records) and calls again
 * from the next. */
static PyObject *feed_tuples(Builder *b, PyObject *args) {
    PyObject *chunk;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "O!n", &PyList_Type, &chunk, &start)) return NULL;
    if (check_open(b) < 0) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(chunk);
    if (start < 0 || start > n) return PyErr_Format(PyExc_ValueError, "bad start");
    if (reserve_accounts(b, (size_t)(n - start)) < 0) return PyErr_NoMemory();
    size_t first = b->n;
    int k = b->k;
    Py_ssize_t i;
    for (i = start; i < n; i++) {
        PyObject *acc = PyList_GET_ITEM(chunk, i);
        if (!PyTuple_CheckExact(acc) || PyTuple_GET_SIZE(acc) != 3) break;
        PyObject *id = PyTuple_GET_ITEM(acc, 0);
        PyObject *nonce = PyTuple_GET_ITEM(acc, 1);
        PyObject *bals = PyTuple_GET_ITEM(acc, 2);
        if (!PyUnicode_CheckExact(id) || !PyBytes_CheckExact(nonce)) break;
        if (PyBytes_GET_SIZE(nonce) != NONCE_LEN) break;
        if (!PyList_CheckExact(bals) && !PyTuple_CheckExact(bals)) break;
        if (PySequence_Fast_GET_SIZE(bals) != k) break;
        Py_ssize_t idlen;
        const char *idu = PyUnicode_AsUTF8AndSize(id, &idlen);
        if (idu == NULL) { PyErr_Clear(); break; }  /* e.g. lone surrogates: Python names it */
        /* The hash's length prefix is 32-bit: a longer id is refused, by Python, by name. */
        if ((uint64_t)idlen > b->max_id) break;
        PyObject **items = PySequence_Fast_ITEMS(bals);
        unsigned char *dst = b->rec + b->n * b->rsize + HASH_LEN;
        int ok = 1;
        for (int j = 0; j < k; j++) {
            PyObject *v = items[j];
            /* Unsigned conversion fails for negatives and for values >= 2**128. */
            if (!PyLong_CheckExact(v) ||
                _PyLong_AsByteArray((PyLongObject *)v, dst + (size_t)AMOUNT_LEN * j, AMOUNT_LEN,
                                    0, 0) < 0) {
                PyErr_Clear();
                ok = 0;
                break;
            }
        }
        if (!ok) break;
        if (reserve_ids(b, (size_t)idlen) < 0) return PyErr_NoMemory();
        push_account(b, idu, (size_t)idlen, PyBytes_AS_STRING(nonce));
    }
    Py_BEGIN_ALLOW_THREADS
    hash_new(b, first);
    Py_END_ALLOW_THREADS
    if (i < n) return PyLong_FromSsize_t(i);
    Py_RETURN_NONE;
}

/* feed_records(data: buffer) -> (consumed, error: None | (field, detail, id: bytes), need)
 *
 * Takes the complete account records at the front of data (the record stream format of
 * docs/proof-format.md: u32be(len(id)) || id || nonce || u128be balances * k) and returns
 * how many bytes they used; a partial record at the end is left for the next call, and
 * `need` is its full size as far as known, so the caller can gather that much first (a
 * corrupt length then costs one large read, not a copy of the growing tail per chunk).
 * Stops at the first bad record and describes it; the accounts before it are taken. */
static PyObject *feed_records(Builder *b, PyObject *args) {
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*", &data)) return NULL;
    if (check_open(b) < 0) { PyBuffer_Release(&data); return NULL; }
    const unsigned char *p = data.buf;
    size_t len = (size_t)data.len, pos = 0, fixed = 4 + NONCE_LEN + (b->rsize - HASH_LEN);
    size_t first = b->n;
    int failed = 0, nomem = 0;
    size_t bad_at = 0, bad_len = 0, need = fixed;
    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        if (len - pos < 4) { need = fixed; break; }
        size_t idlen = get_be32(p + pos);
        need = fixed + idlen;
        if (len - pos < need) break;  /* the rest of this record comes next call */
        const unsigned char *id = p + pos + 4;
        if (!valid_utf8(id, idlen)) { failed = 1; bad_at = pos + 4; bad_len = idlen; break; }
        if (reserve_accounts(b, 1) < 0 || reserve_ids(b, idlen) < 0) { nomem = 1; break; }
        const unsigned char *nonce = id + idlen;
        memcpy(b->rec + b->n * b->rsize + HASH_LEN, nonce + NONCE_LEN, b->rsize - HASH_LEN);
        push_account(b, (const char *)id, idlen, (const char *)nonce);
        pos += fixed + idlen;
    }
    hash_new(b, first);
    Py_END_ALLOW_THREADS
    PyObject *result;
    if (nomem) {
        result = PyErr_NoMemory();
    } else if (failed) {
        result = Py_BuildValue("(n(ssy#)n)", (Py_ssize_t)pos, "id", "not valid UTF-8",
                               (const char *)p + bad_at, (Py_ssize_t)bad_len, (Py_ssize_t)need);
    } else {
        result = Py_BuildValue("(nOn)", (Py_ssize_t)pos, Py_None, (Py_ssize_t)need);
    }
    PyBuffer_Release(&data);
    return result;
}

/* duplicate() -> None | (index, id: bytes)
 *
 * The first repeat in input order: the smallest index whose id already occurred earlier,
 * i.e. the smallest second occurrence over all ids. Fingerprints are sorted so that equal
 * ids end up adjacent; ids are compared in full. A run of equal fingerprints is grouped by
 * comparing each entry with the run's first one only: the entries equal to it are one id
 * (its two smallest indexes noted), the others are kept for another pass. Different ids
 * share a seeded 64-bit fingerprint only by chance, so a run, even of a million copies of
 * one id, almost always takes one pass: linear, where comparing all pairs was quadratic.
 * Should a run still hold several ids after a few passes (many ids colliding: only with
 * the test hook key_bits), the rest of it is sorted by id instead: O(k log k), never k^2. */
#define GROUP_PASSES 4

static int same_id(const Builder *b, size_t i, size_t j) {
    size_t li = b->id_off[i + 1] - b->id_off[i], lj = b->id_off[j + 1] - b->id_off[j];
    return li == lj && (li == 0 || memcmp(b->ids + b->id_off[i], b->ids + b->id_off[j], li) == 0);
}

typedef struct {
    const unsigned char *p;
    size_t len, idx;
} id_ref;

static int cmp_id_bytes(const id_ref *a, const id_ref *b) {
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return a->len ? memcmp(a->p, b->p, a->len) : 0;
}

/* By length, then bytes, then index: equal ids end up adjacent, in input order. */
static int cmp_id_ref(const void *x, const void *y) {
    const id_ref *a = x, *b = y;
    int c = cmp_id_bytes(a, b);
    if (c) return c;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* The smallest second occurrence among entries a[0..n) by sorting them by id, or SIZE_MAX;
 * sets *nomem if out of memory. */
static size_t first_repeat_sorted(const Builder *b, const keyed *a, size_t n, int *nomem) {
    id_ref *refs = malloc(n * sizeof(id_ref));
    if (!refs) { *nomem = 1; return SIZE_MAX; }
    for (size_t x = 0; x < n; x++) {
        size_t i = a[x].idx;
        refs[x] = (id_ref){b->ids + b->id_off[i], b->id_off[i + 1] - b->id_off[i], i};
    }
    qsort(refs, n, sizeof(id_ref), cmp_id_ref);
    size_t best = SIZE_MAX;
    for (size_t x = 1; x < n; x++)  /* a repeat; the smallest one is some id's second */
        if (refs[x].idx < best && cmp_id_bytes(&refs[x - 1], &refs[x]) == 0) best = refs[x].idx;
    free(refs);
    return best;
}

static PyObject *duplicate(Builder *b, PyObject *unused) {
    if (check_open(b) < 0) return NULL;
    size_t n = b->n, best = SIZE_MAX;
    if (n < 2) Py_RETURN_NONE;
    keyed *keys = malloc(n * sizeof(keyed)), *sorted = malloc(n * sizeof(keyed));
    if (!keys || !sorted) { free(keys); free(sorted); return PyErr_NoMemory(); }
    int rc, nomem = 0;
    Py_BEGIN_ALLOW_THREADS
    for (size_t q = 0; q < n; q++) keys[q] = (keyed){b->fp[q], (uint32_t)q, 0};
    rc = sort_keyed(keys, sorted, n);
    for (size_t s = 0; rc == 0 && !nomem && s < n;) {
        size_t e = s + 1;
        while (e < n && sorted[e].key == sorted[s].key) e++;
        size_t m = e;  /* [s, m): entries of the run not yet grouped */
        for (int pass = 0; m - s > 1; pass++) {
            if (pass == GROUP_PASSES) {
                size_t r = first_repeat_sorted(b, sorted + s, m - s, &nomem);
                if (r < best) best = r;
                break;
            }
            size_t rep = sorted[s].idx, first = rep, second = SIZE_MAX, keep = s;
            for (size_t x = s + 1; x < m; x++) {
                size_t j = sorted[x].idx;
                if (!same_id(b, rep, j)) {
                    sorted[keep++] = sorted[x];  /* another id: compacted to the front */
                } else if (j < first) {
                    second = first;
                    first = j;
                } else if (j < second) {
                    second = j;
                }
            }
            if (second < best) best = second;
            m = keep;
        }
        s = e;
    }
    Py_END_ALLOW_THREADS
    free(keys);
    free(sorted);
    if (rc < 0 || nomem) return PyErr_NoMemory();
    if (best == SIZE_MAX) Py_RETURN_NONE;
    return Py_BuildValue("(ny#)", (Py_ssize_t)best, (const char *)b->ids + b->id_off[best],
                         (Py_ssize_t)(b->id_off[best + 1] - b->id_off[best]));
}

typedef struct {
    Builder *b;
    size_t lo, hi;
    const unsigned char *secret;
    size_t secret_len;
    keyed *keys;
    unsigned char *out;
    int failed;
} finish_job;

/* Padding records H(PAD_PREFIX || secret || u64be(i)) || zero balances for leaves lo..hi,
 * where padding leaf i sits at record n + i. */
static void *make_pads(void *arg) {
    finish_job *j = arg;
    size_t mlen = PAD_PREFIX_LEN + j->secret_len + 8, rsize = j->b->rsize;
    unsigned char *msg = malloc(mlen);
    if (!msg) { j->failed = 1; return NULL; }
    memcpy(msg, PAD_PREFIX, PAD_PREFIX_LEN);
    memcpy(msg + PAD_PREFIX_LEN, j->secret, j->secret_len);
    for (size_t q = j->lo; q < j->hi; q++) {
        unsigned char *dst = j->b->rec + q * rsize;
        put_be64(msg + mlen - 8, (uint64_t)(q - j->b->n));
        sha256(msg, mlen, dst);
        memset(dst + HASH_LEN, 0, rsize - HASH_LEN);
    }
    free(msg);
    return NULL;
}

/* Sort key of each record: its account hash's first 8 bytes, big-endian (the bytes' order). */
static void *make_keys(void *arg) {
    finish_job *j = arg;
    for (size_t q = j->lo; q < j->hi; q++)
        j->keys[q] = (keyed){get_be64(j->b->rec + q * j->b->rsize) & j->b->key_mask, (uint32_t)q, 0};
    return NULL;
}

/* Copy records into out in sorted order. */
static void *gather(void *arg) {
    finish_job *j = arg;
    size_t rsize = j->b->rsize;
    for (size_t q = j->lo; q < j->hi; q++)
        memcpy(j->out + q * rsize, j->b->rec + (size_t)j->keys[q].idx * rsize, rsize);
    return NULL;
}

/* Order a run of entries with equal 8-byte keys by the records' full 32-byte hashes. Runs
 * are almost always two long (a 64-bit tie among 16.8M keys: about once per 100,000 builds),
 * so insertion sort; no shared state, as two builds may run on two Python threads. */
static void sort_tied(keyed *a, size_t n, const unsigned char *rec, size_t rsize) {
    for (size_t i = 1; i < n; i++) {
        keyed v = a[i];
        size_t j = i;
        while (j > 0 && memcmp(rec + (size_t)a[j - 1].idx * rsize, rec + (size_t)v.idx * rsize,
                               HASH_LEN) > 0) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
}

static void free_accounts(Builder *b) {
    free(b->rec); b->rec = NULL;
    free(b->ids); b->ids = NULL;
    free(b->id_off); b->id_off = NULL;
    free(b->fp); b->fp = NULL;
}

static void split(finish_job *x, finish_job *y, size_t lo, size_t hi) {
    x->lo = lo;
    x->hi = y->lo = lo + (hi - lo) / 2;
    y->hi = hi;
}

/* finish(pad_secret: bytes, leaf_count: int, out: writable buffer) -> None
 *
 * Adds leaf_count - n padding leaves, sorts all leaf records by account hash (ties on the
 * 8-byte key settled on the full hash) and writes them in order into out: level 0 of the
 * tree file. Frees everything the Builder held; it cannot be fed again. */
static PyObject *finish(Builder *b, PyObject *args) {
    Py_buffer secret, out;
    Py_ssize_t leaf_count;
    if (!PyArg_ParseTuple(args, "y*nw*", &secret, &leaf_count, &out)) return NULL;
    size_t total = (size_t)leaf_count, rsize = b->rsize;
    if (b->finished || leaf_count < 1 || total < b->n || (total & (total - 1)) != 0 ||
        total > UINT32_MAX || (size_t)out.len < total * rsize) {
        PyBuffer_Release(&secret);
        PyBuffer_Release(&out);
        return PyErr_Format(PyExc_ValueError, "finish: bad arguments");
    }
    b->finished = 1;
    free(b->ids); b->ids = NULL;  /* the duplicate check is done: ids are no longer needed */
    free(b->id_off); b->id_off = NULL;
    free(b->fp); b->fp = NULL;
    int nomem = 0;
    Py_BEGIN_ALLOW_THREADS
    unsigned char *rec = realloc(b->rec, total * rsize);
    keyed *keys = malloc(total * sizeof(keyed)), *sorted = malloc(total * sizeof(keyed));
    if (rec) b->rec = rec;
    if (!rec || !keys || !sorted) {
        nomem = 1;
    } else {
        finish_job x = {b, 0, 0, secret.buf, (size_t)secret.len, keys, out.buf, 0};
        finish_job y = x;
        int two = total >= THREAD_MIN;
        split(&x, &y, b->n, total);
        if (two) run2(make_pads, &x, &y);
        else { make_pads(&x); make_pads(&y); }
        split(&x, &y, 0, total);
        if (two) run2(make_keys, &x, &y);
        else { make_keys(&x); make_keys(&y); }
        nomem = x.failed || y.failed || sort_keyed(keys, sorted, total) < 0;
        if (!nomem) {
            for (size_t s = 0; s < total;) {
                size_t e = s + 1;
                while (e < total && sorted[e].key == sorted[s].key) e++;
                if (e - s > 1) sort_tied(sorted + s, e - s, b->rec, rsize);
                s = e;
            }
            x.keys = y.keys = sorted;
            if (two) run2(gather, &x, &y);
            else { gather(&x); gather(&y); }
        }
    }
    free(keys);
    free(sorted);
    free_accounts(b);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&secret);
    PyBuffer_Release(&out);
    if (nomem) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *get_count(Builder *b, void *unused) { return PyLong_FromSize_t(b->n); }

/* Builder(k, seed, key_bits=64, max_id=2**32-1): key_bits < 64 only in tests, to make equal
 * sort keys and colliding id fingerprints common (the paths real hashes almost never take);
 * max_id lower only in tests, to reach the id length limit without 4 GiB ids. */
static int builder_init(Builder *b, PyObject *args, PyObject *kwds) {
    int k, key_bits = 64;
    unsigned long long seed, max_id = UINT32_MAX;
    if (!PyArg_ParseTuple(args, "iK|iK", &k, &seed, &key_bits, &max_id)) return -1;
    if (k < 1 || k > 4096 || key_bits < 1 || key_bits > 64 || max_id > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "Builder: k, key_bits or max_id out of range");
        return -1;
    }
    b->max_id = max_id;
    b->key_mask = key_bits == 64 ? ~(uint64_t)0 : ~(~(uint64_t)0 >> key_bits);
    free_accounts(b);
    b->k = k;
    b->rsize = HASH_LEN + (size_t)AMOUNT_LEN * (size_t)k;
    b->seed = seed;
    b->n = b->cap = b->ids_len = b->ids_cap = 0;
    b->finished = 0;
    /* The id buffer exists from the start: all ids may be empty, and memcpy/memcmp must
     * never see a NULL pointer, even for zero bytes. */
    if (reserve_accounts(b, 1) < 0 || reserve_ids(b, 1) < 0) { PyErr_NoMemory(); return -1; }
    b->id_off[0] = 0;
    return 0;
}

static void builder_dealloc(Builder *b) {
    free_accounts(b);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static PyMethodDef builder_methods[] = {
    {"feed_tuples", (PyCFunction)feed_tuples, METH_VARARGS, "Take accounts of the common shape."},
    {"feed_records", (PyCFunction)feed_records, METH_VARARGS, "Take binary account records."},
    {"duplicate", (PyCFunction)duplicate, METH_NOARGS, "First repeated id, or None."},
    {"finish", (PyCFunction)finish, METH_VARARGS, "Pad, sort and write level 0."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef builder_getset[] = {
    {"count", (getter)get_count, NULL, "Accounts taken so far.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject BuilderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_mstnative.Builder",
    .tp_basicsize = sizeof(Builder),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Collects accounts and lays out level 0 of a por-mst-v1 tree.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)builder_init,
    .tp_dealloc = (destructor)builder_dealloc,
    .tp_methods = builder_methods,
    .tp_getset = builder_getset,
};

/* ---- the levels above the leaves ------------------------------------------------------- */

/* Hash one level of `count` node records (hash || sums) into count/2 parent records.
 * Sets *overflow to the lowest asset index whose subtotal reached 2**128, or leaves it.
 */
static void node_level(const unsigned char *cur, size_t count, int k, size_t rsize,
                       unsigned char *dst, unsigned char *msg, int *overflow) {
    for (size_t i = 0; i < count / 2; i++) {
        const unsigned char *left = cur + 2 * i * rsize, *right = left + rsize;
        unsigned char *rec = dst + i * rsize;
        msg[0] = 0x01;
        memcpy(msg + 1, left, 2 * rsize);
        sha256(msg, 1 + 2 * rsize, rec);
        for (int j = 0; j < k; j++) {
            u128 a = get_be128(left + HASH_LEN + (size_t)AMOUNT_LEN * j);
            u128 s = a + get_be128(right + HASH_LEN + (size_t)AMOUNT_LEN * j);
            if (s < a && (*overflow < 0 || j < *overflow)) *overflow = j;
            put_be128(rec + HASH_LEN + (size_t)AMOUNT_LEN * j, s);
        }
    }
}

/* A leaf as a node-shaped record: H(0x00 || account_hash || balances) || balances. */
static void leaf_node(const unsigned char *rec, size_t rsize, unsigned char *lmsg,
                      unsigned char *dst) {
    lmsg[0] = 0x00;
    memcpy(lmsg + 1, rec, rsize);
    sha256(lmsg, 1 + rsize, dst);
    memcpy(dst + HASH_LEN, rec + HASH_LEN, rsize - HASH_LEN);
}

/* Offset in `out` (levels 1..height, one after another) of level L >= 1. */
static size_t level_offset(size_t total, int level, size_t rsize) {
    size_t off = 0;
    for (int i = 1; i < level; i++) off += (total >> i) * rsize;
    return off;
}

typedef struct {
    const unsigned char *level0;
    unsigned char *out;
    size_t total, first, count, rsize;
    int k;
    int overflow_height, overflow_asset, failed;
} subtree_job;

/* Hash the subtree over leaves [first, first + count) (count >= 2, a power of two, first a
 * multiple of count) up to its own root, writing each level's records in place. */
static void *run_subtree(void *arg) {
    subtree_job *job = arg;
    size_t rsize = job->rsize;
    unsigned char *msg = malloc(1 + 2 * rsize), *lmsg = malloc(1 + rsize);
    if (!msg || !lmsg) { free(msg); free(lmsg); job->failed = 1; return NULL; }
    int overflow = -1, level = 1;
    /* Level 1 straight from pairs of leaves: the leaf level itself is never stored. */
    unsigned char *dst = job->out + level_offset(job->total, 1, rsize) + (job->first / 2) * rsize;
    for (size_t i = 0; i < job->count / 2; i++) {  /* the whole level: lowest asset wins */
        const unsigned char *left = job->level0 + (job->first + 2 * i) * rsize;
        leaf_node(left, rsize, lmsg, msg + 1);
        leaf_node(left + rsize, rsize, lmsg, msg + 1 + rsize);
        unsigned char *rec = dst + i * rsize;
        msg[0] = 0x01;
        sha256(msg, 1 + 2 * rsize, rec);
        for (int j = 0; j < job->k; j++) {
            u128 a = get_be128(msg + 1 + HASH_LEN + (size_t)AMOUNT_LEN * j);
            u128 s = a + get_be128(msg + 1 + rsize + HASH_LEN + (size_t)AMOUNT_LEN * j);
            if (s < a && (overflow < 0 || j < overflow)) overflow = j;
            put_be128(rec + HASH_LEN + (size_t)AMOUNT_LEN * j, s);
        }
    }
    size_t n = job->count / 2;
    while (n > 1 && overflow < 0) {
        const unsigned char *cur = job->out + level_offset(job->total, level, rsize) +
                                   (job->first >> level) * rsize;
        level++;
        dst = job->out + level_offset(job->total, level, rsize) + (job->first >> level) * rsize;
        node_level(cur, n, job->k, rsize, dst, msg, &overflow);
        n /= 2;
    }
    if (overflow >= 0) { job->overflow_height = level; job->overflow_asset = overflow; }
    free(msg);
    free(lmsg);
    return NULL;
}

/* Below this many leaves a second thread costs more than it saves. */
#define THREAD_MIN_LEAVES (1 << 14)

/* levels(level0: buffer, count: int, k: int, out: writable buffer) -> bytes
 *
 * level0 holds `count` (a power of two) sorted leaf records account_hash || balances. Writes
 * levels 1..height, one after another, into out (the tree file's layout) and returns the
 * root record hash || sums. The two halves of the tree are hashed on two threads. Raises
 * OverflowError((height, asset)) for the lowest height, then asset, whose subtotal reached
 * 2**128, as the pure-Python builder reports it.
 */
static PyObject *levels(PyObject *self, PyObject *args) {
    Py_buffer level0, out;
    Py_ssize_t count;
    int k;
    if (!PyArg_ParseTuple(args, "y*niw*", &level0, &count, &k, &out)) return NULL;
    size_t rsize = HASH_LEN + (size_t)AMOUNT_LEN * (size_t)k;
    size_t total = (size_t)count;
    if (k < 1 || count < 1 || (total & (total - 1)) != 0 || (size_t)level0.len < total * rsize ||
        (size_t)out.len < (total - 1) * rsize) {
        PyBuffer_Release(&level0);
        PyBuffer_Release(&out);
        return PyErr_Format(PyExc_ValueError, "levels: bad arguments");
    }
    int height = 0;
    while (((size_t)1 << height) < total) height++;
    PyObject *result = NULL;
    if (total == 1) {  /* a single leaf is the root */
        unsigned char *lmsg = malloc(1 + rsize), *root = malloc(rsize);
        if (lmsg && root) {
            leaf_node(level0.buf, rsize, lmsg, root);
            result = PyBytes_FromStringAndSize((const char *)root, (Py_ssize_t)rsize);
        } else {
            PyErr_NoMemory();
        }
        free(lmsg);
        free(root);
        PyBuffer_Release(&level0);
        PyBuffer_Release(&out);
        return result;
    }
    subtree_job jobs[2];
    int parts = (total >= THREAD_MIN_LEAVES) ? 2 : 1;
    int top_overflow = -1, failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (int p = 0; p < parts; p++) {
        jobs[p] = (subtree_job){level0.buf, out.buf, total, p * (total / parts), total / parts,
                                rsize, k, 0, -1, 0};
    }
    pthread_t thread;
    int threaded = parts == 2 && pthread_create(&thread, NULL, run_subtree, &jobs[1]) == 0;
    run_subtree(&jobs[0]);
    if (parts == 2) {
        if (threaded) pthread_join(thread, NULL);
        else run_subtree(&jobs[1]);
    }
    failed = jobs[0].failed || (parts == 2 && jobs[1].failed);
    if (!failed && parts == 2 && jobs[0].overflow_asset < 0 && jobs[1].overflow_asset < 0) {
        /* The root from the two half-roots. */
        unsigned char *msg = malloc(1 + 2 * rsize);
        if (msg) {
            node_level((unsigned char *)out.buf + level_offset(total, height - 1, rsize), 2, k,
                       rsize, (unsigned char *)out.buf + level_offset(total, height, rsize), msg,
                       &top_overflow);
            free(msg);
        } else {
            failed = 1;
        }
    }
    Py_END_ALLOW_THREADS
    int oh = -1, oa = -1;
    for (int p = 0; p < parts; p++) {
        if (jobs[p].overflow_asset >= 0 &&
            (oh < 0 || jobs[p].overflow_height < oh ||
             (jobs[p].overflow_height == oh && jobs[p].overflow_asset < oa))) {
            oh = jobs[p].overflow_height;
            oa = jobs[p].overflow_asset;
        }
    }
    if (oh < 0 && top_overflow >= 0) { oh = height; oa = top_overflow; }
    if (failed) {
        PyErr_NoMemory();
    } else if (oh >= 0) {
        PyErr_SetObject(PyExc_OverflowError, Py_BuildValue("(ii)", oh, oa));
    } else {
        const char *root = (const char *)out.buf + level_offset(total, height, rsize);
        result = PyBytes_FromStringAndSize(root, (Py_ssize_t)rsize);
    }
    PyBuffer_Release(&level0);
    PyBuffer_Release(&out);
    return result;
}

/* ---- the liability snapshot splitter --------------------------------------------------- */

/* Splitter: the compiled twin of split_snapshot in audits/core/liabilities.py, which is the
 * reference and documents the rules (header, fields, account ids, balances, duplicates,
 * error order and cap). Tests feed both the same files in random chunkings and require the
 * same records and errors.
 *
 * Nothing here is a Python object per row: lines are parsed in place in the caller's chunk
 * (only a line split across chunks is copied, and only its first max_line + 4 bytes: an
 * over-long line is measured, never held), each asset's records collect in one buffer per
 * feed, and the duplicate check keeps 20 bytes per accepted row (the first 16 bytes of its
 * nonce, HMAC-SHA256(secret, id), as the reference keys its dict, and the first line) in an
 * open-addressing table per asset.
 * Errors are kept as C strings, the first max_errors of them, and counted. */

enum { F_LINE, F_HEADER, F_ACCOUNT, F_ASSET, F_BALANCE };
static const char *const FIELD_NAMES[] = {"line", "header", "account_id", "asset", "balance"};
static const char SNAP_HEADER[] = "account_id,asset,balance";
#define SNAP_HEADER_LEN (sizeof(SNAP_HEADER) - 1)
#define DIGEST_KEY 16
#define SLOT_WORDS 5             /* 16 key bytes + the first line (u32), as 32-bit words */
#define SUBTABLES 256            /* per asset, by the key's first byte: each grows on its own,
                                    so growing never holds two copies of the whole table */
#define SHOW_BYTES 64            /* of an unknown asset code, quoted in its error */

typedef struct {
    uint64_t line;
    int field;
    char *msg;
} split_error;

typedef struct {
    uint32_t *slots;  /* cap slots of SLOT_WORDS words; line 0 marks an empty slot */
    size_t cap, n;
} dup_table;          /* an asset has SUBTABLES of them */

typedef struct {
    unsigned char *buf;
    size_t len, cap;
} byte_buf;

typedef struct {
    PyObject_HEAD
    Py_ssize_t k;
    unsigned char **codes;  /* each asset code's UTF-8 */
    size_t *code_len;
    Py_ssize_t *decimals;
    SHA256_CTX hmac_inner, hmac_outer;  /* the HMAC key, absorbed once */
    size_t max_line, max_id, max_errors;
    unsigned char *carry;   /* the start of a line split across chunks */
    size_t carry_cap, carry_stored;
    uint64_t carry_len;     /* its length so far (may exceed what is stored) */
    uint64_t number, rows, error_count;
    uint64_t *accounts;
    u128 *total;            /* never past 2**128 - 1: a row that would take it there is refused */
    dup_table *seen;
    byte_buf *out;
    split_error *errors;
    size_t n_errors, errors_cap;
    int nomem, too_many, finished, busy;
} Splitter;

static void hmac_sha256(const Splitter *s, const unsigned char *msg, size_t len,
                        unsigned char *out) {
    SHA256_CTX ctx = s->hmac_inner;
    unsigned char inner[HASH_LEN];
    SHA256_Update(&ctx, msg, len);
    SHA256_Final(inner, &ctx);
    ctx = s->hmac_outer;
    SHA256_Update(&ctx, inner, HASH_LEN);
    SHA256_Final(out, &ctx);
}

static void add_error(Splitter *s, uint64_t line, int field, const char *fmt, ...) {
    s->error_count++;
    if (s->n_errors >= s->max_errors) return;
    if (s->n_errors == s->errors_cap) {
        size_t cap = s->errors_cap ? s->errors_cap * 2 : 64;
        if (cap > s->max_errors) cap = s->max_errors;
        split_error *e = realloc(s->errors, cap * sizeof(split_error));
        if (!e) { s->nomem = 1; return; }
        s->errors = e;
        s->errors_cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *msg = len < 0 ? NULL : malloc((size_t)len + 1);
    if (!msg) { s->nomem = 1; return; }
    va_start(ap, fmt);
    vsnprintf(msg, (size_t)len + 1, fmt, ap);
    va_end(ap);
    s->errors[s->n_errors++] = (split_error){line, field, msg};
}

static int buf_append(byte_buf *b, const void *data, size_t len) {
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->len + len) cap *= 2;
        unsigned char *p = realloc(b->buf, cap);
        if (!p) return -1;
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, data, len);
    b->len += len;
    return 0;
}

/* The key is a keyed digest (the nonce), so nobody can aim ids at one slot: its bytes 4..7
 * place it in the subtable (any capacity, not only powers of two: growth by half). */
static size_t slot_of(const unsigned char *key, size_t cap) {
    return (size_t)(((uint64_t)get_be32(key + 4) * cap) >> 32);
}

/* 1 and *first set if key was seen (for this asset), else 0 and recorded; -1 if no memory. */
static int seen_before(dup_table *tables, const unsigned char *key, uint32_t line,
                       uint32_t *first) {
    dup_table *t = &tables[key[0]];
    if ((t->n + 1) * 4 > t->cap * 3) {  /* the load stays in [1/2, 3/4]: short probe runs */
        size_t cap = t->cap ? t->cap + t->cap / 2 : 16;
        uint32_t *slots = calloc(cap, SLOT_WORDS * sizeof(uint32_t));
        if (!slots) return -1;
        for (size_t q = 0; q < t->cap; q++) {
            const uint32_t *old = t->slots + q * SLOT_WORDS;
            if (old[4] == 0) continue;
            size_t i = slot_of((const unsigned char *)old, cap);
            while (slots[i * SLOT_WORDS + 4] != 0) i = i + 1 == cap ? 0 : i + 1;
            memcpy(slots + i * SLOT_WORDS, old, SLOT_WORDS * sizeof(uint32_t));
        }
        free(t->slots);
        t->slots = slots;
        t->cap = cap;
    }
    size_t i = slot_of(key, t->cap);
    for (;;) {
        uint32_t *slot = t->slots + i * SLOT_WORDS;
        if (slot[4] == 0) {
            memcpy(slot, key, DIGEST_KEY);
            slot[4] = line;
            t->n++;
            return 0;
        }
        if (memcmp(slot, key, DIGEST_KEY) == 0) {
            *first = slot[4];
            return 1;
        }
        i = i + 1 == t->cap ? 0 : i + 1;
    }
}

/* Python's str.isspace() for one code point (what str.strip() removes). */
static int is_space_cp(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* The code point starting at p (valid UTF-8). */
static uint32_t code_point(const unsigned char *p) {
    if (p[0] < 0x80) return p[0];
    if (p[0] < 0xE0) return ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
    if (p[0] < 0xF0) return ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    return ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
           ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

/* What is wrong with an account id, in the reference's order, or NULL. */
static const char *id_problem(const Splitter *s, const unsigned char *id, size_t len) {
    size_t i;
    for (i = 0; i < len; i++) {  /* bytes.strip(): ASCII whitespace only */
        unsigned char c = id[i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != 0x0B && c != 0x0C) break;
    }
    if (i == len) return "blank";
    if (len > s->max_id) return "long";
    if (!valid_utf8(id, len)) return "not valid UTF-8";
    for (i = 0; i < len; i++) {  /* C0, DEL, and C1 (U+0080..U+009F is C2 80..C2 9F) */
        unsigned char c = id[i];
        if (c < 0x20 || c == 0x7F || (c == 0xC2 && id[i + 1] <= 0x9F))
            return "contains a control character";
    }
    size_t last = len - 1;
    while ((id[last] & 0xC0) == 0x80) last--;
    if (is_space_cp(code_point(id)) || is_space_cp(code_point(id + last)))
        return "has spaces around it";
    return NULL;
}

/* "'code'" as the reference quotes it: printable ASCII, \\ \' and \xhh, at most SHOW_BYTES. */
static void quote_code(const unsigned char *p, size_t len, char *out) {
    static const char hex[] = "0123456789abcdef";
    size_t n = len < SHOW_BYTES ? len : SHOW_BYTES, o = 0;
    out[o++] = '\'';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '\\' || c == '\'') { out[o++] = '\\'; out[o++] = (char)c; }
        else if (c >= 0x20 && c < 0x7F) out[o++] = (char)c;
        else { out[o++] = '\\'; out[o++] = 'x'; out[o++] = hex[c >> 4]; out[o++] = hex[c & 15]; }
    }
    out[o++] = '\'';
    out[o] = 0;
}

#define U128_MAX (~(u128)0)

/* Whole tokens -> smallest units, or the reference's message (with %zd for decimals). */
static const char *parse_amount(const unsigned char *p, size_t len, Py_ssize_t decimals,
                                u128 *value) {
    if (len && p[0] == '-') return "negative balance";
    static const char *const malformed = "not a plain decimal number (digits, optionally one '.')";
    size_t i = 0;
    if (len == 0 || p[0] < '0' || p[0] > '9') return malformed;
    if (p[0] == '0') i = 1;
    else while (i < len && p[i] >= '0' && p[i] <= '9') i++;
    size_t whole = i, frac = 0;
    if (i < len) {
        if (p[i] != '.') return malformed;
        for (i++; i < len; i++, frac++)
            if (p[i] < '0' || p[i] > '9') return malformed;
        if (frac == 0) return malformed;
    }
    if ((Py_ssize_t)frac > decimals) return "more than %zd decimal places";
    u128 v = 0;
    for (size_t q = 0; q < len; q++) {
        if (q == whole) continue;  /* the '.' */
        unsigned d = (unsigned)(p[q] - '0');
        if (v > (U128_MAX - d) / 10) return "too large";
        v = v * 10 + d;
    }
    for (Py_ssize_t pad = decimals - (Py_ssize_t)frac; pad > 0 && v; pad--) {
        if (v > U128_MAX / 10) return "too large";
        v *= 10;
    }
    *value = v;
    return NULL;
}

/* One complete line: stored bytes at p (all of it unless len says it was longer). */
static void split_line(Splitter *s, const unsigned char *p, size_t stored, uint64_t len,
                       const unsigned char *nonce_ready) {
    if (s->number >= UINT32_MAX) { s->too_many = 1; return; }
    uint64_t number = ++s->number;
    if (number == 1 && stored >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3; stored -= 3; len -= 3;
    }
    if (len > s->max_line) {
        add_error(s, number, F_LINE, "longer than %zu bytes", s->max_line);
        return;
    }
    size_t n = stored;
    while (n && p[n - 1] == '\n') n--;
    if (n && p[n - 1] == '\r') n--;
    if (number == 1) {
        if (n != SNAP_HEADER_LEN || memcmp(p, SNAP_HEADER, n) != 0)
            add_error(s, 1, F_HEADER, "expected %s", SNAP_HEADER);
        return;
    }
    s->rows++;
    if (n == 0) { add_error(s, number, F_LINE, "empty line"); return; }
    if (memchr(p, '"', n)) { add_error(s, number, F_LINE, "quoted fields are not supported"); return; }
    size_t commas = 0, cut[2] = {0, 0};
    for (size_t i = 0; i < n; i++)
        if (p[i] == ',') { if (commas < 2) cut[commas] = i; commas++; }
    if (commas != 2) {
        add_error(s, number, F_LINE, "expected 3 fields, found %zu", commas + 1);
        return;
    }
    const unsigned char *id = p, *asset = p + cut[0] + 1, *bal = p + cut[1] + 1;
    size_t id_len = cut[0], asset_len = cut[1] - cut[0] - 1, bal_len = n - cut[1] - 1;
    const char *bad_id = id_problem(s, id, id_len);
    if (bad_id == NULL) {
    } else if (strcmp(bad_id, "long") == 0) {
        add_error(s, number, F_ACCOUNT, "longer than %zu bytes", s->max_id);
    } else {
        add_error(s, number, F_ACCOUNT, "%s", bad_id);
    }
    Py_ssize_t a;
    for (a = 0; a < s->k; a++)
        if (s->code_len[a] == asset_len && memcmp(s->codes[a], asset, asset_len) == 0) break;
    if (a == s->k) {
        char shown[SHOW_BYTES * 4 + 3];
        quote_code(asset, asset_len, shown);
        if (asset_len > SHOW_BYTES)
            add_error(s, number, F_ASSET, "unknown asset %s... (%zu bytes)", shown, asset_len);
        else
            add_error(s, number, F_ASSET, "unknown asset %s", shown);
        return;
    }
    u128 amount = 0;
    const char *bad_amount = parse_amount(bal, bal_len, s->decimals[a], &amount);
    if (bad_amount) {
        add_error(s, number, F_BALANCE, bad_amount, s->decimals[a]);
        return;
    }
    if (bad_id) return;
    /* The nonce is a keyed digest of the id: its first 16 bytes are the duplicate key. */
    unsigned char nonce[HASH_LEN];
    if (nonce_ready) memcpy(nonce, nonce_ready, HASH_LEN);
    else hmac_sha256(s, id, id_len, nonce);
    uint32_t first = 0;
    int seen = seen_before(s->seen + (size_t)a * SUBTABLES, nonce, (uint32_t)number, &first);
    if (seen < 0) { s->nomem = 1; return; }
    if (seen) {
        add_error(s, number, F_ACCOUNT, "duplicate of line %u for %.*s", (unsigned)first,
                  (int)s->code_len[a], (const char *)s->codes[a]);
        return;
    }
    if (s->total[a] + amount < amount) {  /* the tree's root sum must fit its 16 bytes */
        add_error(s, number, F_BALANCE, "takes the %.*s total past 2**128 - 1 units",
                  (int)s->code_len[a], (const char *)s->codes[a]);
        return;
    }
    if (s->error_count == 0) {  /* a rejected file's records would only be discarded */
        unsigned char head[4], tail[NONCE_LEN + AMOUNT_LEN];
        put_be32(head, (uint32_t)id_len);
        memcpy(tail, nonce, NONCE_LEN);
        put_be128(tail + NONCE_LEN, amount);
        byte_buf *o = &s->out[a];
        if (buf_append(o, head, 4) < 0 || buf_append(o, id, id_len) < 0 ||
            buf_append(o, tail, sizeof tail) < 0)
            s->nomem = 1;
    }
    s->accounts[a]++;
    s->total[a] += amount;
}

/* Lines are split AHEAD at a time after look_ahead has hashed their ids and prefetched their
 * duplicate-table slots: the table is far bigger than the caches, and waiting for each slot
 * in turn was most of the time a row took. */
#define AHEAD 16

typedef struct {
    const unsigned char *p;
    size_t n;
    int ready;                    /* nonce holds HMAC(secret, bytes before the first comma) */
    unsigned char nonce[HASH_LEN];
} ahead;

/* What split_line would hash for this line, if it may get that far; a hint, never a check. */
static void look_ahead(Splitter *s, ahead *e) {
    e->ready = 0;
    if (e->n > s->max_line) return;
    const unsigned char *c1 = memchr(e->p, ',', e->n);
    if (!c1 || (size_t)(c1 - e->p) > s->max_id) return;
    const unsigned char *asset = c1 + 1, *end = e->p + e->n;
    const unsigned char *c2 = memchr(asset, ',', (size_t)(end - asset));
    if (!c2) return;
    size_t asset_len = (size_t)(c2 - asset);
    Py_ssize_t a;
    for (a = 0; a < s->k; a++)
        if (s->code_len[a] == asset_len && memcmp(s->codes[a], asset, asset_len) == 0) break;
    if (a == s->k) return;
    hmac_sha256(s, e->p, (size_t)(c1 - e->p), e->nonce);
    e->ready = 1;
    const dup_table *t = &s->seen[(size_t)a * SUBTABLES + e->nonce[0]];
    if (t->cap) __builtin_prefetch(t->slots + slot_of(e->nonce, t->cap) * SLOT_WORDS);
}

/* Everything in data: complete lines are split in place, a partial one is carried over. */
static void split_data(Splitter *s, const unsigned char *p, size_t len) {
    const unsigned char *end = p + len;
    if (s->carry_len && p < end) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t take = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        size_t room = s->carry_cap - s->carry_stored, keep = take < room ? take : room;
        memcpy(s->carry + s->carry_stored, p, keep);
        s->carry_stored += keep;
        s->carry_len += take;
        p += take;
        if (!nl) return;
        split_line(s, s->carry, s->carry_stored, s->carry_len, NULL);
        s->carry_len = s->carry_stored = 0;
    }
    ahead queue[AHEAD];
    size_t head = 0, count = 0;
    while (!s->nomem && !s->too_many) {
        while (count < AHEAD && p < end) {
            const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl) break;
            ahead *e = &queue[(head + count) % AHEAD];
            e->p = p;
            e->n = (size_t)(nl - p) + 1;
            look_ahead(s, e);
            count++;
            p = nl + 1;
        }
        if (count == 0) break;
        ahead *e = &queue[head];
        split_line(s, e->p, e->n, e->n, e->ready ? e->nonce : NULL);
        head = (head + 1) % AHEAD;
        count--;
    }
    if (p < end && !s->nomem && !s->too_many) {  /* a line that goes on in the next chunk */
        size_t take = (size_t)(end - p), keep = take < s->carry_cap ? take : s->carry_cap;
        memcpy(s->carry, p, keep);
        s->carry_stored = keep;
        s->carry_len = take;
    }
}

static int splitter_enter(Splitter *s) {
    if (!s->carry) {  /* __init__ never ran, or failed */
        PyErr_SetString(PyExc_RuntimeError, "Splitter: not initialized");
        return -1;
    }
    if (s->finished || s->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        s->finished ? "Splitter: already finished" : "Splitter: in use");
        return -1;
    }
    s->busy = 1;
    return 0;
}

/* Raise for a failure inside the split; the Splitter is unusable after it. */
static int splitter_failed(Splitter *s) {
    if (s->nomem) { s->finished = 1; PyErr_NoMemory(); return -1; }
    if (s->too_many) {
        s->finished = 1;
        PyErr_SetString(PyExc_ValueError, "snapshot file has more than 4294967294 lines");
        return -1;
    }
    return 0;
}

/* This feed's records per asset, as bytes; the buffers are emptied. */
static PyObject *take_records(Splitter *s) {
    PyObject *list = PyList_New(s->k);
    if (!list) return NULL;
    for (Py_ssize_t a = 0; a < s->k; a++) {
        PyObject *b = PyBytes_FromStringAndSize((const char *)s->out[a].buf,
                                                (Py_ssize_t)s->out[a].len);
        if (!b) { Py_DECREF(list); return NULL; }
        PyList_SET_ITEM(list, a, b);
        s->out[a].len = 0;
    }
    return list;
}

/* feed(chunk: buffer) -> list[bytes]: the records (per asset, in the order of the codes)
 * of the complete lines now read. A chunk may end anywhere, even inside a line. */
static PyObject *splitter_feed(Splitter *s, PyObject *args) {
    Py_buffer chunk;
    if (!PyArg_ParseTuple(args, "y*", &chunk)) return NULL;
    if (splitter_enter(s) < 0) { PyBuffer_Release(&chunk); return NULL; }
    Py_BEGIN_ALLOW_THREADS
    split_data(s, chunk.buf, (size_t)chunk.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&chunk);
    s->busy = 0;
    if (splitter_failed(s) < 0) return NULL;
    return take_records(s);
}

static PyObject *totals_list(Splitter *s) {
    PyObject *list = PyList_New(s->k);
    if (!list) return NULL;
    for (Py_ssize_t a = 0; a < s->k; a++) {
        unsigned char be[AMOUNT_LEN];
        put_be128(be, s->total[a]);
        PyObject *v = _PyLong_FromByteArray(be, sizeof be, 0, 0);
        if (!v) { Py_DECREF(list); return NULL; }
        PyList_SET_ITEM(list, a, v);
    }
    return list;
}

/* finish() -> (records, rows, accounts, totals, errors, error_count): the last line (one
 * without a final newline), then the whole-file checks. errors are (line, field, message)
 * tuples, the first max_errors; lists are per asset in the order of the codes. */
static PyObject *splitter_finish(Splitter *s, PyObject *unused) {
    if (splitter_enter(s) < 0) return NULL;
    if (s->carry_len) {
        split_line(s, s->carry, s->carry_stored, s->carry_len, NULL);
        s->carry_len = s->carry_stored = 0;
    }
    s->busy = 0;
    if (splitter_failed(s) < 0) return NULL;
    s->finished = 1;
    if (s->number == 0)
        add_error(s, 1, F_HEADER, "empty file; expected %s", SNAP_HEADER);
    else if (s->number == 1 && s->error_count == 0)
        add_error(s, 2, F_LINE, "no rows: a snapshot with no accounts is stated, not uploaded");
    if (s->nomem) return PyErr_NoMemory();
    PyObject *records = take_records(s), *accounts = PyList_New(s->k), *totals = totals_list(s);
    PyObject *errors = PyList_New((Py_ssize_t)s->n_errors), *result = NULL;
    if (!records || !accounts || !totals || !errors) goto done;
    for (Py_ssize_t a = 0; a < s->k; a++) {
        PyObject *v = PyLong_FromUnsignedLongLong(s->accounts[a]);
        if (!v) goto done;
        PyList_SET_ITEM(accounts, a, v);
    }
    for (size_t e = 0; e < s->n_errors; e++) {
        PyObject *t = Py_BuildValue("(Kss)", (unsigned long long)s->errors[e].line,
                                    FIELD_NAMES[s->errors[e].field], s->errors[e].msg);
        if (!t) goto done;
        PyList_SET_ITEM(errors, (Py_ssize_t)e, t);
    }
    result = Py_BuildValue("(OKOOOK)", records, (unsigned long long)s->rows, accounts, totals,
                           errors, (unsigned long long)s->error_count);
done:
    Py_XDECREF(records);
    Py_XDECREF(accounts);
    Py_XDECREF(totals);
    Py_XDECREF(errors);
    return result;
}

static void splitter_free(Splitter *s) {
    for (Py_ssize_t a = 0; a < s->k; a++) {
        if (s->codes) free(s->codes[a]);
        if (s->seen)
            for (size_t t = 0; t < SUBTABLES; t++) free(s->seen[(size_t)a * SUBTABLES + t].slots);
        if (s->out) free(s->out[a].buf);
    }
    for (size_t e = 0; e < s->n_errors; e++) free(s->errors[e].msg);
    free(s->codes); free(s->code_len); free(s->decimals); free(s->accounts);
    free(s->total); free(s->seen); free(s->out); free(s->errors);
    free(s->carry);
    s->codes = NULL; s->code_len = NULL; s->decimals = NULL; s->accounts = NULL;
    s->total = NULL; s->seen = NULL; s->out = NULL; s->errors = NULL;
    s->carry = NULL;
    s->k = 0;
    s->n_errors = s->errors_cap = 0;
}

/* Splitter(codes: list[str], decimals: list[int], secret: bytes, max_line, max_id,
 * max_errors): the limits come from the reference module, so both read one set. */
static int splitter_init(Splitter *s, PyObject *args, PyObject *kwds) {
    PyObject *codes, *decimals;
    Py_buffer secret;
    Py_ssize_t max_line, max_id, max_errors;
    if (!PyArg_ParseTuple(args, "O!O!y*nnn", &PyList_Type, &codes, &PyList_Type, &decimals,
                          &secret, &max_line, &max_id, &max_errors))
        return -1;
    if (s->busy) {
        PyBuffer_Release(&secret);
        PyErr_SetString(PyExc_RuntimeError, "Splitter: in use");
        return -1;
    }
    splitter_free(s);
    Py_ssize_t k = PyList_GET_SIZE(codes);
    int rc = -1;
    if (PyList_GET_SIZE(decimals) != k || max_line < 1 || max_id < 1 || max_errors < 0 ||
        secret.len < 16) {
        PyErr_SetString(PyExc_ValueError, "Splitter: bad arguments");
        goto out;
    }
    size_t n = k ? (size_t)k : 1;
    s->codes = calloc(n, sizeof(unsigned char *));
    s->code_len = calloc(n, sizeof(size_t));
    s->decimals = calloc(n, sizeof(Py_ssize_t));
    s->accounts = calloc(n, sizeof(uint64_t));
    s->total = calloc(n, sizeof(u128));
    s->seen = calloc(n * SUBTABLES, sizeof(dup_table));
    s->out = calloc(n, sizeof(byte_buf));
    s->carry_cap = (size_t)max_line + 4;  /* room for a BOM and the line end past the limit */
    s->carry = malloc(s->carry_cap);
    if (!s->codes || !s->code_len || !s->decimals || !s->accounts || !s->total || !s->seen || !s->out || !s->carry) {
        PyErr_NoMemory();
        goto out;
    }
    s->k = k;
    for (Py_ssize_t a = 0; a < k; a++) {
        Py_ssize_t len;
        const char *utf8 = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(codes, a), &len);
        if (!utf8) goto out;
        s->codes[a] = malloc(len ? (size_t)len : 1);
        if (!s->codes[a]) { PyErr_NoMemory(); goto out; }
        memcpy(s->codes[a], utf8, (size_t)len);
        s->code_len[a] = (size_t)len;
        s->decimals[a] = PyLong_AsSsize_t(PyList_GET_ITEM(decimals, a));
        if (s->decimals[a] == -1 && PyErr_Occurred()) goto out;
        if (s->decimals[a] < 0) {
            PyErr_SetString(PyExc_ValueError, "Splitter: negative decimals");
            goto out;
        }
    }
    /* HMAC-SHA256 (RFC 2104) with the key's two padded blocks absorbed here, once. */
    unsigned char key[64] = {0}, block[64];
    if (secret.len > 64) sha256(secret.buf, (size_t)secret.len, key);
    else memcpy(key, secret.buf, (size_t)secret.len);
    for (int i = 0; i < 64; i++) block[i] = key[i] ^ 0x36;
    SHA256_Init(&s->hmac_inner);
    SHA256_Update(&s->hmac_inner, block, 64);
    for (int i = 0; i < 64; i++) block[i] = key[i] ^ 0x5C;
    SHA256_Init(&s->hmac_outer);
    SHA256_Update(&s->hmac_outer, block, 64);
    s->max_line = (size_t)max_line;
    s->max_id = (size_t)max_id;
    s->max_errors = (size_t)max_errors;
    s->carry_stored = 0;
    s->carry_len = s->number = s->rows = s->error_count = 0;
    s->nomem = s->too_many = s->finished = 0;
    rc = 0;
out:
    PyBuffer_Release(&secret);
    if (rc < 0) { splitter_free(s); s->finished = 1; }
    return rc;
}

static void splitter_dealloc(Splitter *s) {
    splitter_free(s);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyMethodDef splitter_methods[] = {
    {"feed", (PyCFunction)splitter_feed, METH_VARARGS, "Split the complete lines read so far."},
    {"finish", (PyCFunction)splitter_finish, METH_NOARGS, "The last line, then the result."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SplitterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_mstnative.Splitter",
    .tp_basicsize = sizeof(Splitter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Checks a liability snapshot CSV and splits it into account records per asset.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)splitter_init,
    .tp_dealloc = (destructor)splitter_dealloc,
    .tp_methods = splitter_methods,
};

static PyMethodDef methods[] = {
    {"levels", levels, METH_VARARGS, "Hash every level above the leaves; return the root."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_mstnative", NULL, -1, methods};

PyMODINIT_FUNC PyInit__mstnative(void) {
    if (PyType_Ready(&BuilderType) < 0 || PyType_Ready(&SplitterType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&BuilderType);
    if (PyModule_AddObject(m, "Builder", (PyObject *)&BuilderType) < 0) {
        Py_DECREF(&BuilderType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&SplitterType);
    if (PyModule_AddObject(m, "Splitter", (PyObject *)&SplitterType) < 0) {
        Py_DECREF(&SplitterType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
