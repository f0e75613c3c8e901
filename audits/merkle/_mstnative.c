/* Optional accelerator for the por-mst-v1 builder: the per-record loops in C, SHA-256 from
 * OpenSSL's libcrypto (the library hashlib itself uses).
 *
 * builder.py stays the reference: this module handles only the common input shapes and hands
 * anything unusual back to Python by index, so every error message comes from the same code.
 * The output must equal the pure-Python builder's byte for byte (tests/merkle checks it).
 */
#define PY_SSIZE_T_CLEAN
/* OpenSSL 3's one-shot SHA256() fetches the algorithm from a provider on every call, which
 * costs more than hashing these short messages; the SHA256_Init/Update/Final interface is
 * deprecated but direct (and uses the CPU's SHA extensions all the same). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <Python.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HASH_LEN 32
#define NONCE_LEN 32
#define AMOUNT_LEN 16

static const char ACCOUNT_PREFIX[] = "por-mst-v1/account";
static const char PAD_PREFIX[] = "por-mst-v1/pad";
#define ACCOUNT_PREFIX_LEN (sizeof(ACCOUNT_PREFIX) - 1)
#define PAD_PREFIX_LEN (sizeof(PAD_PREFIX) - 1)
/* Ids up to this many UTF-8 bytes are hashed from a stack buffer; longer ones go to Python. */
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

/* ingest(chunk: list, start: int, k: int, out: writable buffer) -> int | None
 *
 * Writes the leaf record account_hash || u128 balances of chunk[start:] into out at the
 * matching positions. Returns None when done, or the index of the first account this fast
 * path does not handle (wrong shape or type, long id, amount out of range): Python then
 * takes the careful path for that one account and calls again from the next.
 *
 * Two passes: with the GIL, check each account and note where its id and nonce bytes are
 * (the chunk list keeps those immutable objects alive); then, without the GIL, hash them, so
 * Python's duplicate-id check can run on the other core meanwhile.
 */
typedef struct {
    const char *id;
    const char *nonce;
    Py_ssize_t idlen;
} account_ref;

static PyObject *ingest(PyObject *self, PyObject *args) {
    PyObject *chunk;
    Py_ssize_t start;
    int k;
    Py_buffer out;
    if (!PyArg_ParseTuple(args, "O!niw*", &PyList_Type, &chunk, &start, &k, &out)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(chunk);
    size_t rsize = HASH_LEN + (size_t)AMOUNT_LEN * (size_t)k;
    if (k < 1 || start < 0 || start > n || (size_t)out.len < (size_t)n * rsize) {
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "ingest: bad arguments");
        return NULL;
    }
    account_ref *refs = malloc(sizeof(account_ref) * (size_t)(n - start + 1));
    if (refs == NULL) {
        PyBuffer_Release(&out);
        return PyErr_NoMemory();
    }
    Py_ssize_t i;
    for (i = start; i < n; i++) {
        unsigned char *dst = (unsigned char *)out.buf + (size_t)i * rsize;
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
        if (idlen > MAX_FAST_ID) break;
        PyObject **items = PySequence_Fast_ITEMS(bals);
        int ok = 1;
        for (int j = 0; j < k; j++) {
            PyObject *b = items[j];
            /* Unsigned conversion fails for negatives and for values >= 2**128. */
            if (!PyLong_CheckExact(b) ||
                _PyLong_AsByteArray((PyLongObject *)b, dst + HASH_LEN + (size_t)AMOUNT_LEN * j,
                                    AMOUNT_LEN, 0, 0) < 0) {
                PyErr_Clear();
                ok = 0;
                break;
            }
        }
        if (!ok) break;
        refs[i - start] = (account_ref){idu, PyBytes_AS_STRING(nonce), idlen};
    }
    Py_ssize_t stop = i;
    Py_BEGIN_ALLOW_THREADS
    unsigned char msg[ACCOUNT_PREFIX_LEN + 4 + MAX_FAST_ID + NONCE_LEN];
    memcpy(msg, ACCOUNT_PREFIX, ACCOUNT_PREFIX_LEN);
    for (Py_ssize_t q = start; q < stop; q++) {
        const account_ref *r = &refs[q - start];
        put_be32(msg + ACCOUNT_PREFIX_LEN, (uint32_t)r->idlen);
        memcpy(msg + ACCOUNT_PREFIX_LEN + 4, r->id, (size_t)r->idlen);
        memcpy(msg + ACCOUNT_PREFIX_LEN + 4 + r->idlen, r->nonce, NONCE_LEN);
        sha256(msg, ACCOUNT_PREFIX_LEN + 4 + (size_t)r->idlen + NONCE_LEN,
               (unsigned char *)out.buf + (size_t)q * rsize);
    }
    Py_END_ALLOW_THREADS
    free(refs);
    PyBuffer_Release(&out);
    if (stop < n) return PyLong_FromSsize_t(stop);
    Py_RETURN_NONE;
}

/* pads(secret: bytes, first: int, count: int, k: int, out: writable buffer) -> None
 * Padding records H(PAD_PREFIX || secret || u64be(i)) || zero balances for i in
 * [first, first + count).
 */
static PyObject *pads(PyObject *self, PyObject *args) {
    Py_buffer secret, out;
    unsigned long long first, count;
    int k;
    if (!PyArg_ParseTuple(args, "y*KKiw*", &secret, &first, &count, &k, &out)) return NULL;
    size_t rsize = HASH_LEN + (size_t)AMOUNT_LEN * (size_t)k;
    size_t mlen = PAD_PREFIX_LEN + (size_t)secret.len + 8;
    unsigned char *msg = NULL;
    if (k < 1 || (size_t)out.len < count * rsize || (msg = malloc(mlen)) == NULL) {
        PyBuffer_Release(&secret);
        PyBuffer_Release(&out);
        return PyErr_Format(PyExc_ValueError, "pads: bad arguments");
    }
    memcpy(msg, PAD_PREFIX, PAD_PREFIX_LEN);
    memcpy(msg + PAD_PREFIX_LEN, secret.buf, (size_t)secret.len);
    unsigned char *dst = out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (unsigned long long i = 0; i < count; i++, dst += rsize) {
        put_be64(msg + mlen - 8, first + i);
        sha256(msg, mlen, dst);
        memset(dst + HASH_LEN, 0, rsize - HASH_LEN);
    }
    Py_END_ALLOW_THREADS
    free(msg);
    PyBuffer_Release(&secret);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

typedef struct {
    uint64_t key; /* the account hash's first 8 bytes, big-endian: same order as the bytes */
    uint32_t idx;
    uint32_t unused;
} keyed;

static const unsigned char *tie_base;
static size_t tie_rsize;

static int cmp_tied(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    return memcmp(tie_base + (size_t)x->idx * tie_rsize, tie_base + (size_t)y->idx * tie_rsize,
                  HASH_LEN);
}

/* Sort n records of rsize bytes by their leading 32-byte hash: an LSD radix sort of 8-byte
 * key prefixes (four 16-bit passes), full comparison only where prefixes tie, then the
 * records are permuted in place (no second copy of the tree's largest level). */
static int sort_in_place(unsigned char *base, size_t n, size_t rsize) {
    keyed *a = malloc(n * sizeof(keyed)), *b = malloc(n * sizeof(keyed));
    size_t *counts = malloc(65536 * sizeof(size_t));
    unsigned char *tmp = malloc(rsize);
    if (!a || !b || !counts || !tmp) { free(a); free(b); free(counts); free(tmp); return -1; }
    for (size_t i = 0; i < n; i++) {
        const unsigned char *r = base + i * rsize;
        uint64_t key = 0;
        for (int q = 0; q < 8; q++) key = (key << 8) | r[q];
        a[i].key = key;
        a[i].idx = (uint32_t)i;
    }
    for (int shift = 0; shift < 64; shift += 16) {
        memset(counts, 0, 65536 * sizeof(size_t));
        for (size_t i = 0; i < n; i++) counts[(a[i].key >> shift) & 0xFFFF]++;
        size_t total = 0;
        for (size_t d = 0; d < 65536; d++) { size_t c = counts[d]; counts[d] = total; total += c; }
        for (size_t i = 0; i < n; i++) b[counts[(a[i].key >> shift) & 0xFFFF]++] = a[i];
        keyed *t = a; a = b; b = t;
    }
    free(b);
    free(counts);
    tie_base = base;
    tie_rsize = rsize;
    for (size_t i = 0; i < n;) {
        size_t e = i + 1;
        while (e < n && a[e].key == a[i].key) e++;
        if (e - i > 1) qsort(a + i, e - i, sizeof(keyed), cmp_tied);
        i = e;
    }
    /* Apply the permutation (new[i] = old[a[i].idx]) cycle by cycle. */
    for (size_t s0 = 0; s0 < n; s0++) {
        if (a[s0].idx == UINT32_MAX || a[s0].idx == s0) continue;
        memcpy(tmp, base + s0 * rsize, rsize);
        size_t j = s0;
        for (;;) {
            size_t k = a[j].idx;
            a[j].idx = UINT32_MAX;
            if (k == s0) { memcpy(base + j * rsize, tmp, rsize); break; }
            memcpy(base + j * rsize, base + k * rsize, rsize);
            j = k;
        }
    }
    free(a);
    free(tmp);
    return 0;
}

/* sort(records: writable buffer, rsize: int) -> None: sort fixed-size records by their
 * leading 32-byte account hash (ascending bytes, as the spec orders leaves).
 */
static PyObject *sort_records(PyObject *self, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t rsize;
    if (!PyArg_ParseTuple(args, "w*n", &buf, &rsize)) return NULL;
    size_t n = rsize > 0 ? (size_t)buf.len / (size_t)rsize : 0;
    if (rsize < HASH_LEN || buf.len % rsize != 0 || n >= UINT32_MAX) {
        PyBuffer_Release(&buf);
        return PyErr_Format(PyExc_ValueError, "sort: bad record size or count");
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = sort_in_place(buf.buf, n, (size_t)rsize);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    if (rc < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

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

static PyMethodDef methods[] = {
    {"ingest", ingest, METH_VARARGS, "Hash and pack accounts into leaf records."},
    {"pads", pads, METH_VARARGS, "Padding leaf records."},
    {"sort", sort_records, METH_VARARGS, "Sort records by account hash."},
    {"levels", levels, METH_VARARGS, "Hash every level above the leaves; return the root."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_mstnative", NULL, -1, methods};

PyMODINIT_FUNC PyInit__mstnative(void) { return PyModule_Create(&module); }
