// The "check your balance" page (/proofs/verify/): the user's proof bundle is checked here,
// in their browser, against the signed attestation and the published keys. The bundle never
// leaves the page; the server is only asked for the attestation envelope and the JWKS, and
// never for a verdict. Text is only ever written with textContent.

import { VerifyError, parseJson, verifyAttestation } from "./dsse-verify.js";
import { BundleError, checkAttested, checkBundle, plainAmount } from "./mst-verify.js";

const el = (tag, text, className) => {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
};

// A check that failed: `step` says which of the page's checks it was.
class Failed extends Error {
  constructor(step, reason, kind = "invalid") {
    super(reason);
    this.step = step;
    this.reason = reason;
    this.kind = kind;
  }
}

async function download(url, what) {
  let response;
  try {
    response = await fetch(url, { credentials: "omit", cache: "no-store", redirect: "error" });
  } catch {
    throw new Failed(`Downloading the ${what}`, `could not download the ${what}`, "error");
  }
  if (!response.ok) {
    throw new Failed(`Downloading the ${what}`, `could not download the ${what} (HTTP ${response.status})`, "error");
  }
  try {
    return parseJson(await response.text(), what);
  } catch (err) {
    throw new Failed(`Downloading the ${what}`, err.reason || String(err), "error");
  }
}

// The attestation the bundle names (by its sequence number only: the bundle cannot send the
// page anywhere else), or the latest one.
function envelopeUrl(form, bundle) {
  const ref = bundle && typeof bundle === "object" ? bundle.attestation : null;
  const sequence = ref && typeof ref === "object" ? ref.sequence : null;
  if (Number.isSafeInteger(sequence) && sequence > 0) {
    return [`${form.dataset.attestationsUrl}${sequence}/envelope.json`, `attestation #${sequence}`];
  }
  return [form.dataset.latestUrl, "latest attestation"];
}

async function check(form, text) {
  let bundle;
  try {
    bundle = parseJson(text, "bundle");
  } catch (err) {
    throw new Failed("Reading the bundle", err instanceof VerifyError ? err.reason : String(err));
  }
  let checked;
  try {
    checked = await checkBundle(bundle);
  } catch (err) {
    if (err instanceof BundleError) throw new Failed("Recomputing your proofs", err.reason);
    if (err instanceof VerifyError) throw new Failed("Recomputing your proofs", err.reason, err.kind);
    throw err;
  }
  const [url, which] = envelopeUrl(form, bundle);
  const [envelope, jwks] = await Promise.all([download(url, which), download(form.dataset.jwksUrl, "published keys")]);
  let verified;
  try {
    verified = await verifyAttestation(envelope, jwks);
  } catch (err) {
    if (err instanceof VerifyError) {
      const kind = err.kind === "invalid" ? "invalid" : err.kind;
      throw new Failed("Verifying the signed attestation", `attestation: ${err.reason}`, kind);
    }
    throw err;
  }
  let included;
  try {
    included = checkAttested(checked.snapshotId, checked.proofs, verified.statement.predicate);
  } catch (err) {
    if (err instanceof BundleError) {
      throw new Failed("Comparing your roots with the attested ones", err.reason);
    }
    throw err;
  }
  return { checked, verified, included };
}

function renderValid(box, { checked, verified, included }) {
  const predicate = verified.statement.predicate;
  box.append(el("h2", "Included", "verdict valid"));
  for (const item of included) {
    const balance = plainAmount(item.balance, item.decimals);
    const total = plainAmount(item.total, item.decimals);
    box.append(
      el(
        "p",
        `Your ${balance} ${item.code} are included in total liabilities of ${total} ${item.code}, ` +
          `attested on ${predicate.issued_at} by key ${verified.keyid} (attestation #${predicate.sequence}).`,
        "sentence",
      ),
    );
  }
  box.append(el("p", "Every check passed in this browser:"));
  const list = el("ul", undefined, "checks");
  list.append(
    el("li", `account hash recomputed from your account id and nonce (${checked.proofs.length} proof${checked.proofs.length === 1 ? "" : "s"})`),
    el("li", "each leaf recomputed from your balances, and the path up to its root"),
    ...verified.checks.map((c) => el("li", c)),
    el("li", `every root and total is the one attested for snapshot ${checked.snapshotId}`),
  );
  box.append(list);

  const wrap = el("div", undefined, "table-scroll");
  const table = el("table", undefined, "balances");
  table.append(el("caption", `Your balances in snapshot ${checked.snapshotId}${checked.asOf ? ` as of ${checked.asOf}` : ""}`));
  const head = el("tr");
  for (const name of ["Asset", "Your balance", "Total liabilities"]) {
    const th = el("th", name);
    th.scope = "col";
    head.append(th);
  }
  const thead = el("thead");
  thead.append(head);
  const body = el("tbody");
  for (const item of included) {
    const row = el("tr");
    const code = el("th", item.code);
    code.scope = "row";
    row.append(
      code,
      el("td", plainAmount(item.balance, item.decimals), "num"),
      el("td", plainAmount(item.total, item.decimals), "num"),
    );
    body.append(row);
  }
  table.append(thead, body);
  wrap.append(table);
  box.append(wrap);
  const roots = el("dl", undefined, "facts");
  for (const item of included) roots.append(el("dt", `${item.code} root`), el("dd", item.rootHash, "mono hex"));
  roots.append(el("dt", "Attestation payload"), el("dd", verified.payloadDigest, "mono hex"));
  box.append(roots);
}

function renderFailure(box, err) {
  if (!(err instanceof Failed) || err.kind !== "invalid") {
    const title = err.kind === "unsupported" ? "Cannot check in this browser" : "Cannot check";
    box.append(el("h2", title, "verdict unknown"));
    box.append(el("p", err instanceof Failed ? err.reason : `unexpected error: ${err}`));
    box.append(el("p", "This says nothing about your balance itself: check the bundle with the offline verifier (python -m audits.verify BUNDLE.json --attestation … --keys …)."));
    return;
  }
  box.append(el("h2", "Not verified", "verdict invalid"));
  const step = el("p", "Failed check: ");
  step.append(el("strong", err.step, "step"));
  box.append(step);
  const p = el("p", "Reason: ");
  p.append(el("strong", err.reason, "reason"));
  box.append(p);
}

function wire(form) {
  const box = document.getElementById("verify-result");
  const area = form.querySelector("#bundle-text");
  const file = form.querySelector("#bundle-file");
  const zone = form.querySelector("#bundle-drop");
  const submit = form.querySelector("button[type=submit]");

  const load = async (chosen) => {
    if (chosen) area.value = await chosen.text();
  };
  file.addEventListener("change", () => load(file.files[0]));
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    await load(event.dataTransfer.files[0]);
    area.focus();
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!area.value.trim()) {
      delete box.dataset.verdict;
      box.replaceChildren(el("p", "Paste your bundle or choose its file first."));
      area.focus();
      return;
    }
    submit.disabled = true;
    delete box.dataset.verdict;
    box.setAttribute("aria-busy", "true");
    box.replaceChildren(el("p", "Checking…"));
    const result = el("div", undefined, "verify-outcome");
    try {
      renderValid(result, await check(form, area.value));
      box.dataset.verdict = "valid";
    } catch (err) {
      renderFailure(result, err);
      box.dataset.verdict = err instanceof Failed ? err.kind : "error";
    } finally {
      box.removeAttribute("aria-busy");
      submit.disabled = false;
      if (document.activeElement === document.body) submit.focus();
    }
    box.replaceChildren(result);
  });
}

const form = document.getElementById("proof-form");
if (form) wire(form);
