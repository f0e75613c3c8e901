// The in-browser attestation verifier: a port of audits/core/attestation.py `verify` (same
// checks, same order, same reason strings), using only standard browser APIs. No DOM access.
//
// The payload is parsed with our own JSON reader rather than JSON.parse, because JSON.parse
// cannot see what the Python verifier refuses (a duplicate key, a float written as 1.0, an
// integer beyond 2^53 - 1) and must give the same reason for it.

export const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
export const PREDICATE_TYPE = "https://porapp.dev/attestations/reserves/v1";
export const PAYLOAD_TYPE = "application/vnd.in-toto+json";
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MAX_DEPTH = 100;
// Python's int() refuses longer digit strings (sys.int_info.default_max_str_digits).
const MAX_INT_DIGITS = 4300;
// The RFC 8037 A.1 public key, only to learn whether this browser can do Ed25519.
const PROBE_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

export class VerifyError extends Error {
  // kind "invalid": the attestation failed a check; "unsupported": this browser cannot check.
  constructor(reason, kind = "invalid") {
    super(reason);
    this.name = "VerifyError";
    this.reason = reason;
    this.kind = kind;
  }
}

// A JSON number with a fraction or exponent, kept apart from integers as Python keeps float
// apart from int (JSON.parse would make 1.0 an integer).
export class JsonFloat {
  constructor(text) {
    this.text = text;
    this.value = Number(text);
  }
}

const fail = (reason) => {
  throw new VerifyError(reason);
};
const isObject = (v) =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof JsonFloat);
const has = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);
const get = (obj, key, fallback) => (has(obj, key) ? obj[key] : fallback);
const isInt = (v) => (typeof v === "number" && Number.isInteger(v)) || typeof v === "bigint";
const HEX64 = /^[0-9a-f]{64}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

// --- JSON as Python's json.loads reads it ----------------------------------------------------

class NotJson extends Error {}

// `strict` is the payload's reading (floats, NaN/Infinity and duplicate keys refused with the
// Python verifier's reasons); otherwise json.loads's defaults (last duplicate wins).
function readJson(text, strict) {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const value = (depth) => {
    // A lenient read (envelope, JWKS) has no nesting pre-check; keep the JS stack safe.
    if (depth > 1000) throw new NotJson();
    const c = text[i];
    if (c === "{") return object(depth);
    if (c === "[") return array(depth);
    if (c === '"') return string();
    if (text.startsWith("null", i)) return (i += 4), null;
    if (text.startsWith("true", i)) return (i += 4), true;
    if (text.startsWith("false", i)) return (i += 5), false;
    for (const constant of ["NaN", "Infinity", "-Infinity"]) {
      if (text.startsWith(constant, i)) {
        i += constant.length;
        if (strict) fail(`payload contains ${constant}`);
        return new JsonFloat(constant);
      }
    }
    return number();
  };
  const number = () => {
    const m = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;
    m.lastIndex = i;
    const found = m.exec(text);
    if (!found) throw new NotJson();
    i = m.lastIndex;
    if (found[1] !== undefined || found[2] !== undefined) {
      if (strict) fail("payload contains a float (amounts are decimal strings)");
      return new JsonFloat(found[0]);
    }
    if (found[0].replace("-", "").length > MAX_INT_DIGITS) throw new NotJson();
    const big = BigInt(found[0]);
    return big <= MAX_SAFE && big >= -MAX_SAFE ? Number(big) : big;
  };
  const string = () => {
    i++;
    let out = "";
    for (;;) {
      if (i >= text.length) throw new NotJson();
      const c = text[i];
      if (c === '"') return i++, out;
      if (c < " ") throw new NotJson(); // strict=True: raw control characters refused
      if (c !== "\\") {
        out += c;
        i++;
        continue;
      }
      const e = text[i + 1];
      const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
      if (e !== undefined && has(simple, e)) {
        out += simple[e];
        i += 2;
      } else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
        // A high and a low surrogate escape side by side join, as in Python; a lone one stays.
        out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
        i += 6;
      } else {
        throw new NotJson();
      }
    }
  };
  const array = (depth) => {
    i++;
    const out = [];
    ws();
    if (text[i] === "]") return i++, out;
    for (;;) {
      ws();
      out.push(value(depth + 1));
      ws();
      if (text[i] === ",") i++;
      else if (text[i] === "]") return i++, out;
      else throw new NotJson();
    }
  };
  const object = (depth) => {
    i++;
    const pairs = [];
    ws();
    if (text[i] === "}") return i++, Object.create(null);
    for (;;) {
      ws();
      if (text[i] !== '"') throw new NotJson();
      const key = string();
      ws();
      if (text[i] !== ":") throw new NotJson();
      i++;
      ws();
      pairs.push([key, value(depth + 1)]);
      ws();
      if (text[i] === ",") i++;
      else if (text[i] === "}") {
        i++;
        break;
      } else throw new NotJson();
    }
    // Null prototype: a "__proto__" or "constructor" member is data, like any other.
    const out = Object.create(null);
    for (const [key, v] of pairs) out[key] = v;
    if (strict && Object.keys(out).length !== pairs.length) fail("payload has a duplicate object key");
    return out;
  };
  ws();
  const result = value(0);
  ws();
  if (i !== text.length) throw new NotJson();
  return result;
}

// Parse an envelope or JWKS as the Python CLI's json.load does, keeping floats visible as
// JsonFloat (so `"nbf": 1.0` is refused as Python refuses it). Throws VerifyError.
export function parseJson(text, what = "file") {
  try {
    return readJson(text, false);
  } catch (err) {
    if (err instanceof NotJson) throw new VerifyError(`${what} is not JSON`);
    throw err;
  }
}

// --- RFC 8785 canonical JSON -------------------------------------------------------------------

export function canonicalJson(value) {
  const parts = [];
  encode(value, parts, 0);
  return parts.join("");
}

function encodeString(text) {
  if (LONE_SURROGATE.test(text)) fail("text contains a lone surrogate");
  // JSON.stringify escapes exactly what RFC 8785 3.2.2.2 (and Python's json.dumps) escape.
  return JSON.stringify(text);
}

// UTF-16 code unit order (RFC 8785 3.2.3), which is also how JS compares strings.
const byCodeUnits = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

function encode(v, out, depth) {
  if (depth >= MAX_DEPTH) fail("JSON nested too deeply");
  if (v === null) out.push("null");
  else if (v === true) out.push("true");
  else if (v === false) out.push("false");
  else if (isInt(v)) {
    if (typeof v === "bigint" ? v > MAX_SAFE || v < -MAX_SAFE : !Number.isSafeInteger(v)) {
      fail("integer outside the JSON safe range (+-2^53-1)");
    }
    out.push(typeof v === "bigint" ? v.toString() : String(v));
  } else if (typeof v === "number" || v instanceof JsonFloat) {
    fail("floats are not allowed (amounts are decimal strings)");
  } else if (typeof v === "string") out.push(encodeString(v));
  else if (Array.isArray(v)) {
    out.push("[");
    v.forEach((item, n) => {
      if (n) out.push(",");
      encode(item, out, depth + 1);
    });
    out.push("]");
  } else if (typeof v === "object") {
    out.push("{");
    Object.keys(v)
      .sort(byCodeUnits)
      .forEach((key, n) => {
        if (n) out.push(",");
        out.push(encodeString(key), ":");
        encode(v[key], out, depth + 1);
      });
    out.push("}");
  } else {
    fail(`cannot encode ${typeof v} as JSON`);
  }
}

// --- bytes, base64, hashes -------------------------------------------------------------------

const utf8 = new TextEncoder();
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// As Python's _b64decode: standard or URL-safe alphabet, padded or not, anything else refused.
function b64decode(text, what) {
  if (typeof text !== "string" || !BASE64.test(text)) fail(`${what} is not base64`);
  const std = text.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  if (std.length % 4 === 1) fail(`${what} is not base64`);
  const out = new Uint8Array(Math.floor((std.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let n = 0;
  for (const c of std) {
    acc = (acc << 6) | ALPHABET.indexOf(c);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

function b64url(bytes) {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

function subtle() {
  const s = globalThis.crypto && globalThis.crypto.subtle;
  if (!s) {
    throw new VerifyError(
      "this browser offers no Web Crypto here (the page must be served over HTTPS), so it cannot check signatures",
      "unsupported",
    );
  }
  return s;
}

export async function sha256(bytes) {
  return new Uint8Array(await subtle().digest("SHA-256", bytes));
}

async function ed25519Key(raw) {
  return subtle().importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
}

async function requireEd25519() {
  try {
    await ed25519Key(b64decode(PROBE_X, "probe"));
  } catch (err) {
    if (err instanceof VerifyError) throw err;
    throw new VerifyError(
      "this browser cannot check Ed25519 signatures (it needs Chromium 137+, Firefox 129+ or Safari 17+)",
      "unsupported",
    );
  }
}

// --- DSSE and keys ------------------------------------------------------------------------------

// DSSE v1 pre-authentication encoding: "DSSEv1 LEN(type) type LEN(body) body".
export function pae(type, bytes) {
  const typeBytes = utf8.encode(type);
  const head = utf8.encode(`DSSEv1 ${typeBytes.length} `);
  const mid = utf8.encode(` ${bytes.length} `);
  const out = new Uint8Array(head.length + typeBytes.length + mid.length + bytes.length);
  out.set(head, 0);
  out.set(typeBytes, head.length);
  out.set(mid, head.length + typeBytes.length);
  out.set(bytes, head.length + typeBytes.length + mid.length);
  return out;
}

// The RFC 7638 thumbprint of an OKP JWK: base64url(SHA-256 of its required members, sorted).
export async function keyId(jwk) {
  const required = { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return b64url(await sha256(utf8.encode(canonicalJson(required))));
}

export async function payloadDigest(envelope) {
  if (!isObject(envelope) || !has(envelope, "payload")) fail("envelope has no payload");
  return "sha256:" + hex(await sha256(b64decode(envelope.payload, "payload")));
}

export function subjectNamesFor(statement, sha256hex) {
  const wanted = sha256hex.toLowerCase();
  const subjects = isObject(statement) ? get(statement, "subject", []) : [];
  return (Array.isArray(subjects) ? subjects : [])
    .filter((s) => isObject(s) && isObject(get(s, "digest")) && get(s.digest, "sha256") === wanted)
    .map((s) => s.name);
}

function publishedKey(jwks, kid) {
  if (!isObject(jwks) || !Array.isArray(get(jwks, "keys"))) fail("JWKS has no keys list");
  const found = jwks.keys.filter((k) => isObject(k) && get(k, "kid") === kid);
  if (found.length === 0) fail("signing key id is not in the JWKS");
  if (found.length > 1) fail("JWKS lists the signing key id twice");
  return found[0];
}

function publicKeyBytes(jwk) {
  if (get(jwk, "kty") !== "OKP" || get(jwk, "crv") !== "Ed25519") {
    fail("published key is not an OKP Ed25519 key");
  }
  if (get(jwk, "alg", "EdDSA") !== "EdDSA" || get(jwk, "use", "sig") !== "sig") {
    fail("published key is not for EdDSA signatures");
  }
  const x = get(jwk, "x");
  // Only the exact base64url form: another spelling of the same key would change the kid.
  if (typeof x !== "string" || !/^[A-Za-z0-9_-]{43}$/.test(x)) {
    fail("published key x is not 32 bytes of base64url");
  }
  const raw = b64decode(x, "published key x");
  if (b64url(raw) !== x) fail("published key x is not 32 bytes of base64url");
  return raw;
}

// --- times ------------------------------------------------------------------------------------

// RFC 3339 UTC with a Z, as Python's _parse_time: [whole epoch seconds, microseconds].
function parseTime(value, what) {
  const m =
    typeof value === "string" &&
    /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z$/.exec(value);
  const bad = () => fail(`${what} is not an RFC 3339 UTC time (...Z)`);
  if (!m) bad();
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
  if (y < 1 || !days || d < 1 || d > days || h > 23 || mi > 59 || s > 59) bad();
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, s, 0);
  return [date.getTime() / 1000, Number((m[7] || "").padEnd(6, "0"))];
}

const earlier = (a, b) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);

function checkKeyWindow(jwk, when) {
  const [seconds] = when;
  for (const field of ["nbf", "exp"]) {
    if (has(jwk, field) && !isInt(jwk[field])) fail(`published key ${field} is not epoch seconds`);
  }
  // nbf and exp are whole seconds, so the fraction of a second cannot change either answer.
  if (has(jwk, "nbf") && seconds < jwk.nbf) {
    fail("signing key was not yet valid when the attestation was issued");
  }
  if (has(jwk, "exp") && seconds >= jwk.exp) {
    fail("signing key had expired or was revoked when issued");
  }
}

// --- the payload ---------------------------------------------------------------------------------

function nesting(text) {
  const stripped = text.replace(/"(?:[^"\\]|\\[\s\S])*"/g, "");
  let depth = 0;
  let deepest = 0;
  for (const c of stripped) {
    if (c === "[" || c === "{") deepest = Math.max(deepest, ++depth);
    else if (c === "]" || c === "}") depth--;
  }
  return deepest;
}

function parsePayload(payload) {
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(payload);
  } catch {
    fail("payload is not UTF-8");
  }
  if (nesting(text) > MAX_DEPTH) fail("payload JSON nested too deeply");
  let statement;
  try {
    statement = readJson(text, true);
  } catch (err) {
    if (err instanceof NotJson) fail("payload is not JSON");
    throw err;
  }
  let canonical;
  try {
    canonical = canonicalJson(statement);
  } catch (err) {
    if (err instanceof VerifyError) fail(`payload is not canonical JSON: ${err.reason}`);
    throw err;
  }
  const bytes = utf8.encode(canonical);
  if (bytes.length !== payload.length || bytes.some((b, n) => b !== payload[n])) {
    fail("payload is not canonical JSON (RFC 8785)");
  }
  return statement;
}

function checkStatement(statement) {
  if (!isObject(statement) || get(statement, "_type") !== STATEMENT_TYPE) {
    fail(`payload is not an in-toto Statement (${STATEMENT_TYPE})`);
  }
  if (get(statement, "predicateType") !== PREDICATE_TYPE) fail(`predicateType is not ${PREDICATE_TYPE}`);
  const subjects = get(statement, "subject");
  if (!Array.isArray(subjects)) fail("statement subject is not a list");
  for (const subject of subjects) {
    const digest = isObject(subject) ? get(subject, "digest") : undefined;
    if (
      !isObject(digest) ||
      typeof get(subject, "name") !== "string" ||
      typeof get(digest, "sha256") !== "string" ||
      !HEX64.test(digest.sha256)
    ) {
      fail("a subject lacks a name or a sha256 digest");
    }
  }
  const predicate = get(statement, "predicate");
  if (!isObject(predicate)) fail("statement predicate is not an object");
  const sequence = get(predicate, "sequence");
  if (!isInt(sequence) || sequence < 1) fail("predicate sequence is not a positive integer");
  if (typeof get(predicate, "issued_at") !== "string") fail("predicate has no issued_at");
  if (!has(predicate, "previous")) fail("predicate has no previous (null on the first attestation)");
  const prev = predicate.previous;
  if (prev === null && sequence !== 1) fail("only the first attestation (sequence 1) may name no previous");
  if (prev !== null && (typeof prev !== "string" || !DIGEST.test(prev))) {
    fail("predicate previous is not sha256:<64 hex digits>");
  }
  if (prev !== null && sequence === 1) fail("the first attestation (sequence 1) must name no previous");
  return predicate;
}

// --- verify ----------------------------------------------------------------------------------

/**
 * Check a DSSE envelope against a JWKS as audits.core.attestation.verify does.
 * `at` (a Date) replaces the predicate's issued_at for the key window; `previous` is the
 * previous attestation's envelope, to check the chain link. Resolves to
 * {statement, keyid, payloadDigest, checks}; rejects with a VerifyError.
 */
export async function verifyAttestation(envelope, jwks, { previous = null, at = null } = {}) {
  subtle();
  await requireEd25519();
  return verifyOne(envelope, jwks, previous, at);
}

async function verifyOne(envelope, jwks, previous, at) {
  if (!isObject(envelope)) fail("envelope is not a JSON object");
  for (const field of ["payloadType", "payload", "signatures"]) {
    if (!has(envelope, field)) fail(`envelope has no ${field}`);
  }
  if (envelope.payloadType !== PAYLOAD_TYPE) fail(`payloadType is not ${PAYLOAD_TYPE}`);
  const payload = b64decode(envelope.payload, "payload");
  const signatures = envelope.signatures;
  if (!Array.isArray(signatures) || signatures.length !== 1) {
    fail("envelope must carry exactly one signature");
  }
  const entry = signatures[0];
  if (!isObject(entry) || !has(entry, "sig") || !has(entry, "keyid")) fail("signature needs keyid and sig");
  const kid = entry.keyid;
  if (typeof kid !== "string") fail("signature keyid is not text");
  const signature = b64decode(entry.sig, "signature");

  const jwk = publishedKey(jwks, kid);
  const raw = publicKeyBytes(jwk);
  if ((await keyId({ crv: "Ed25519", kty: "OKP", x: jwk.x })) !== kid) {
    fail("key id is not the RFC 7638 thumbprint of the published key");
  }
  let good = false;
  try {
    good = await subtle().verify({ name: "Ed25519" }, await ed25519Key(raw), signature, pae(PAYLOAD_TYPE, payload));
  } catch {
    good = false; // a key WebCrypto will not import cannot have made the signature
  }
  if (!good) fail("signature does not verify with the published key");

  const statement = parsePayload(payload);
  const predicate = checkStatement(statement);
  const issuedAt = parseTime(predicate.issued_at, "predicate issued_at");
  const when = at ? [Math.floor(at.getTime() / 1000), 0] : issuedAt;
  checkKeyWindow(jwk, when);
  const digest = "sha256:" + hex(await sha256(payload));
  const checks = [
    `signature by key ${kid} verifies`,
    "key id is the key's RFC 7638 thumbprint",
    `key valid at ${at ? "the given time" : "issue time"} (${predicate.issued_at})`,
    "payload is canonical JSON (RFC 8785) of an in-toto Statement",
  ];

  if (previous !== null && previous !== undefined) {
    let prev;
    try {
      prev = await verifyOne(previous, jwks, null, null);
    } catch (err) {
      if (err instanceof VerifyError && err.kind === "invalid") {
        fail(`previous attestation: ${err.reason}`);
      }
      throw err;
    }
    const prevPredicate = prev.statement.predicate;
    if (predicate.previous !== prev.payloadDigest) {
      fail("previous digest does not match the previous attestation");
    }
    if (predicate.sequence !== prevPredicate.sequence + 1) {
      fail("sequence does not follow the previous attestation's");
    }
    if (earlier(issuedAt, parseTime(prevPredicate.issued_at, "previous issued_at"))) {
      fail("issued before the previous attestation");
    }
    checks.push(`chain link to #${prevPredicate.sequence} checked (${prev.payloadDigest})`);
  } else if (predicate.previous === null) {
    checks.push("first attestation: no previous");
  } else {
    checks.push("chain link not checked (no previous attestation given)");
  }
  return { statement, keyid: kid, payloadDigest: digest, checks };
}
