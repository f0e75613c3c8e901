// The in-browser proof verifier: a port of audits/core/merkle/proof.py `verify_proof` and of
// audits/core/bundle.py (`check_bundle`, `check_attested`), with the same checks in the same
// order and the same reason strings (a parity test runs both on the same proofs). Amounts are
// BigInt; hashes are WebCrypto SHA-256. No DOM access.
//
// Objects come from dsse-verify.js's parseJson, which reads JSON as Python's json.loads does
// (floats kept apart as JsonFloat, large integers as BigInt, null-prototype objects).

import { JsonFloat, VerifyError } from "./dsse-verify.js";

export const FORMAT = "por-mst-v1";
export const BUNDLE_FORMAT = "por-bundle-v1";
const AMOUNT_LIMIT = 1n << 128n;
const MAX_HEIGHT = 64;
const DEC = /^(?:0|[1-9][0-9]{0,38})$/;
const HEX64 = /^[0-9a-f]{64}$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const ACCOUNT_PREFIX = new TextEncoder().encode("por-mst-v1/account");

export class BundleError extends Error {
  constructor(reason) {
    super(reason);
    this.name = "BundleError";
    this.reason = reason;
  }
}

class Invalid extends Error {}
const invalid = (reason) => {
  throw new Invalid(reason);
};

const has = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);
const get = (obj, key) => (has(obj, key) ? obj[key] : undefined);
const isObject = (v) =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof JsonFloat);
// Python's `type(v) is int`: a JSON integer (bool and float are not).
const isInt = (v) => (typeof v === "number" && Number.isInteger(v)) || typeof v === "bigint";
const pyRepr = (text) => `'${text}'`;

function obj(value, what) {
  if (!isObject(value)) invalid(`${what} must be an object`);
  return value;
}

function hex32(value, what) {
  if (typeof value !== "string" || !HEX64.test(value)) invalid(`${what} must be 64 lowercase hex digits`);
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(value.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function amounts(value, k, what) {
  if (!Array.isArray(value) || value.length !== k) invalid(`${what} must be a list of ${k} decimal strings`);
  return value.map((v, j) => {
    if (typeof v !== "string" || !DEC.test(v)) {
      invalid(`${what}[${j}] must be a canonical non-negative decimal string`);
    }
    const n = BigInt(v);
    if (n >= AMOUNT_LIMIT) invalid(`${what}[${j}] out of range (>= 2**128)`);
    return n;
  });
}

const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function u128(n) {
  const out = new Uint8Array(16);
  for (let i = 15; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

function u32be(n) {
  return new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

async function sha256(bytes) {
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  if (!subtle) {
    // No verdict: the bundle was never judged.
    throw new VerifyError("this browser offers no Web Crypto here (the page must be served over HTTPS), so it cannot check proofs", "unsupported");
  }
  return new Uint8Array(await subtle.digest("SHA-256", bytes));
}

export async function accountHash(id, nonce) {
  const idBytes = new TextEncoder().encode(id);
  return sha256(concat([ACCOUNT_PREFIX, u32be(idBytes.length), idBytes, nonce]));
}

const equalBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

async function check(proof) {
  proof = obj(proof, "proof");
  if (get(proof, "format") !== FORMAT) invalid(`format must be ${pyRepr(FORMAT)}`);
  const snapshot = get(proof, "snapshot");
  if (typeof snapshot !== "string") invalid("snapshot must be a string");
  const assetsIn = get(proof, "assets");
  if (!Array.isArray(assetsIn) || assetsIn.length === 0) invalid("assets must be a non-empty list");
  const assets = assetsIn.map((a, j) => {
    a = obj(a, `assets[${j}]`);
    const code = get(a, "code");
    const dec = get(a, "decimals");
    if (typeof code !== "string" || !isInt(dec) || !(dec >= 0 && dec <= 255)) {
      invalid(`assets[${j}] needs a string code and integer decimals 0..255`);
    }
    return [code, Number(dec)];
  });
  const k = assets.length;
  const root = obj(get(proof, "root"), "root");
  const rootHash = hex32(get(root, "hash"), "root.hash");
  const rootSums = amounts(get(root, "sums"), k, "root.sums");
  const leaf = obj(get(proof, "leaf"), "leaf");
  const index = get(leaf, "index");
  const ah = hex32(get(leaf, "account_hash"), "leaf.account_hash");
  const balances = amounts(get(leaf, "balances"), k, "leaf.balances");
  const path = get(proof, "path");
  if (!Array.isArray(path) || path.length > MAX_HEIGHT) {
    invalid(`path must be a list of at most ${MAX_HEIGHT} siblings`);
  }
  if (!isInt(index) || BigInt(index) < 0n || BigInt(index) >= 1n << BigInt(path.length)) {
    invalid(`leaf.index must be an integer in [0, 2**${path.length})`);
  }
  let accountId = null;
  if (has(proof, "account")) {
    const acc = obj(proof.account, "account");
    accountId = get(acc, "id");
    if (typeof accountId !== "string") invalid("account.id must be a string");
    const nonce = hex32(get(acc, "nonce"), "account.nonce");
    if (LONE_SURROGATE.test(accountId)) invalid("account.id is not valid UTF-8 text");
    if (!equalBytes(await accountHash(accountId, nonce), ah)) {
      invalid("leaf.account_hash does not match account id and nonce");
    }
  }
  const result = {
    valid: false,
    reason: "",
    snapshot,
    assets,
    accountId,
    balances,
    rootHash: toHex(rootHash),
    rootSums,
  };
  const bits = BigInt(index);
  let h = await sha256(concat([new Uint8Array([0]), ah, ...balances.map(u128)]));
  let sums = balances;
  for (let i = 0; i < path.length; i++) {
    const sib = obj(path[i], `path[${i}]`);
    const sh = hex32(get(sib, "hash"), `path[${i}].hash`);
    const ss = amounts(get(sib, "sums"), k, `path[${i}].sums`);
    const mine = concat([h, ...sums.map(u128)]);
    const theirs = concat([sh, ...ss.map(u128)]);
    const [left, right] = (bits >> BigInt(i)) & 1n ? [theirs, mine] : [mine, theirs];
    h = await sha256(concat([new Uint8Array([1]), left, right]));
    sums = sums.map((s, j) => s + ss[j]);
    if (sums.some((s) => s >= AMOUNT_LIMIT)) {
      return { ...result, reason: `subtotal at height ${i + 1} overflows u128` };
    }
  }
  if (!equalBytes(h, rootHash)) return { ...result, reason: "recomputed root hash differs from root.hash" };
  if (sums.some((s, j) => s !== rootSums[j])) {
    return { ...result, reason: "recomputed root sums differ from root.sums" };
  }
  return { ...result, valid: true };
}

/**
 * Check one por-mst-v1 proof against its own root, as verify_proof does. Resolves to
 * {valid, reason, snapshot, assets: [[code, decimals]], accountId, balances, rootHash, rootSums}
 * (amounts BigInt); never rejects for a bad proof.
 */
export async function verifyProof(proof) {
  try {
    return await check(proof);
  } catch (err) {
    if (err instanceof Invalid) return { valid: false, reason: err.message };
    throw err;
  }
}

function snapshotId(bundle) {
  const snapshot = get(bundle, "snapshot");
  if (!isObject(snapshot) || !has(snapshot, "id")) throw new BundleError("bundle snapshot must be an object with an id");
  const id = snapshot.id;
  if (!isInt(id) && typeof id !== "string") throw new BundleError("bundle snapshot id must be an integer or a string");
  return String(id);
}

/**
 * Recompute every proof of a por-bundle-v1 bundle from its account block, as check_bundle
 * does. Resolves to {snapshotId, accountId, asOf, proofs: [{number, result}]}; rejects with a
 * BundleError naming the first failed check.
 */
export async function checkBundle(bundle) {
  if (!isObject(bundle)) throw new BundleError("bundle must be a JSON object");
  if (get(bundle, "format") !== BUNDLE_FORMAT) throw new BundleError(`bundle format must be ${pyRepr(BUNDLE_FORMAT)}`);
  const snapshot = snapshotId(bundle);
  const account = get(bundle, "account");
  if (
    !isObject(account) ||
    typeof get(account, "id") !== "string" ||
    typeof get(account, "nonce") !== "string" ||
    !HEX64.test(account.nonce)
  ) {
    throw new BundleError("bundle account must have a string id and a 64-hex-digit nonce");
  }
  const proofs = get(bundle, "proofs");
  if (!Array.isArray(proofs) || proofs.length === 0) throw new BundleError("bundle proofs must be a non-empty list");
  const mine = { id: account.id, nonce: account.nonce };
  const checked = [];
  const seen = new Set();
  for (let n = 1; n <= proofs.length; n++) {
    const proof = proofs[n - 1];
    if (!isObject(proof)) throw new BundleError(`proof ${n}: must be an object`);
    const theirs = has(proof, "account") ? proof.account : mine;
    if (!isObject(theirs) || get(theirs, "id") !== mine.id || get(theirs, "nonce") !== mine.nonce) {
      throw new BundleError(`proof ${n}: its account differs from the bundle's`);
    }
    const copy = Object.assign(Object.create(null), proof, { account: mine });
    const result = await verifyProof(copy);
    if (!result.valid) throw new BundleError(`proof ${n}: ${result.reason}`);
    for (const [code] of result.assets) {
      if (seen.has(code)) throw new BundleError(`proof ${n}: asset ${code} has an earlier proof`);
      seen.add(code);
    }
    checked.push({ number: n, result });
  }
  const asOf = isObject(bundle.snapshot) ? get(bundle.snapshot, "as_of") : undefined;
  return { snapshotId: snapshot, accountId: account.id, asOf: typeof asOf === "string" ? asOf : null, proofs: checked };
}

function attested(predicate, code) {
  const assets = isObject(predicate) ? get(predicate, "assets") : undefined;
  const found = (Array.isArray(assets) ? assets : []).filter((a) => isObject(a) && get(a, "code") === code);
  if (found.length !== 1 || !isObject(get(found[0], "liabilities"))) {
    throw new BundleError(`${code}: the attestation states no liabilities for this asset`);
  }
  return found[0].liabilities;
}

function amount(value) {
  if (isInt(value) && BigInt(value) >= 0n) return BigInt(value);
  if (typeof value === "string" && DEC.test(value)) return BigInt(value);
  return null;
}

/**
 * Every checked proof's root is the one the attestation's predicate names for its asset and
 * this snapshot, as check_attested does. Returns [{code, decimals, balance, total, rootHash}].
 */
export function checkAttested(snapshot, checked, predicate) {
  const out = [];
  for (const { result: r } of checked) {
    r.assets.forEach(([code, decimals], j) => {
      const liabilities = attested(predicate, code);
      const named = get(liabilities, "snapshot");
      if ((!isInt(named) && typeof named !== "string") || String(named) !== snapshot) {
        throw new BundleError(`${code}: the attestation's liabilities are of another snapshot, not snapshot ${snapshot}`);
      }
      if (get(liabilities, "root_hash") !== r.rootHash) {
        throw new BundleError(`${code}: the proof's root is not the root attested for snapshot ${snapshot}`);
      }
      if (amount(get(liabilities, "root_sum_units")) !== r.rootSums[j]) {
        throw new BundleError(`${code}: the proof's total differs from the total attested for snapshot ${snapshot}`);
      }
      out.push({ code, decimals, balance: r.balances[j], total: r.rootSums[j], rootHash: r.rootHash });
    });
  }
  return out;
}

// `value` smallest units in whole tokens, exactly, without trailing zeros (as plain_amount).
export function plainAmount(value, decimals) {
  if (decimals === 0) return value.toString();
  const scale = 10n ** BigInt(decimals);
  const digits = (value % scale).toString().padStart(decimals, "0").replace(/0+$/, "");
  const whole = (value / scale).toString();
  return digits ? `${whole}.${digits}` : whole;
}
