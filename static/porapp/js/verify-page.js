// The Verify button (attestation detail page) and the check-a-file form (/attestations/verify/).
// The verdict is computed here, in the reader's browser, from the signed bytes and the published
// keys: the server is never asked whether an attestation is valid. Text is only ever written
// with textContent, so nothing from an attestation can become markup.

import { VerifyError, parseJson, sha256, subjectNamesFor, verifyAttestation } from "./dsse-verify.js";

const el = (tag, text, className) => {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
};

async function download(url, what) {
  let response;
  try {
    response = await fetch(url, { credentials: "omit", cache: "no-store", redirect: "error" });
  } catch {
    throw new VerifyError(`could not download the ${what}`, "error");
  }
  if (!response.ok) throw new VerifyError(`could not download the ${what} (HTTP ${response.status})`, "error");
  return parseJson(await response.text(), what);
}

async function readFile(file, what) {
  return parseJson(await file.text(), what);
}

const show = (value) => (value === null || value === undefined ? "none" : String(value));

function renderValid(box, verified, evidence) {
  const predicate = verified.statement.predicate;
  box.append(el("h2", "Valid", "verdict valid"));
  box.append(el("p", "Every check passed in this browser:"));
  const list = el("ul", undefined, "checks");
  for (const check of verified.checks) list.append(el("li", check));
  for (const line of evidence) list.append(el("li", line));
  box.append(list);

  box.append(el("h3", "What was signed"));
  const facts = el("dl", undefined, "facts");
  for (const [term, value] of [
    ["Sequence", predicate.sequence],
    ["Issued at", predicate.issued_at],
    ["Evidence as of", predicate.evidence_as_of],
    ["Previous", predicate.previous],
    ["Payload digest", verified.payloadDigest],
  ]) {
    facts.append(el("dt", term), el("dd", show(value), "mono"));
  }
  box.append(facts);

  const assets = Array.isArray(predicate.assets) ? predicate.assets : [];
  const wrap = el("div", undefined, "table-scroll");
  const table = el("table");
  table.append(el("caption", "Signed figures per asset, read from the verified payload"));
  const head = el("tr");
  for (const name of ["Asset", "Status", "Eligible", "Ratio"]) {
    const th = el("th", name);
    th.scope = "col";
    head.append(th);
  }
  const thead = el("thead");
  thead.append(head);
  table.append(thead);
  const body = el("tbody");
  for (const asset of assets) {
    const row = el("tr");
    const a = asset && typeof asset === "object" ? asset : {};
    const code = el("th", show(a.code));
    code.scope = "row";
    row.append(code, el("td", show(a.status)), el("td", show(a.eligible)), el("td", show(a.ratio), "num"));
    body.append(row);
  }
  table.append(body);
  wrap.append(table);
  box.append(wrap);
}

function renderFailure(box, err) {
  // A check that could not run is no verdict: never say "Invalid" for our own failure.
  const unjudged = !(err instanceof VerifyError) || err.kind !== "invalid";
  if (unjudged) {
    const title = err.kind === "unsupported" ? "Cannot check in this browser" : "Cannot check";
    box.append(el("h2", title, "verdict unknown"));
    box.append(el("p", err instanceof VerifyError ? err.reason : `unexpected error: ${err}`));
    box.append(el("p", "This says nothing about the attestation itself: check it with the offline verifier (python -m audits.verify)."));
    return;
  }
  box.append(el("h2", "Invalid", "verdict invalid"));
  const p = el("p", "Reason: ");
  p.append(el("strong", err.reason, "reason"));
  box.append(p);
}

async function run(box, work) {
  delete box.dataset.verdict;
  box.replaceChildren(el("p", "Checking…"));
  box.setAttribute("aria-busy", "true");
  const result = el("div", undefined, "verify-outcome");
  try {
    const { verified, evidence } = await work();
    renderValid(result, verified, evidence);
    box.dataset.verdict = "valid";
  } catch (err) {
    renderFailure(result, err);
    box.dataset.verdict = err instanceof VerifyError ? err.kind : "error";
  } finally {
    box.removeAttribute("aria-busy");
  }
  box.replaceChildren(result);
}

function wireDetail(section) {
  const button = section.querySelector("#verify-button");
  const box = section.querySelector("#verify-result");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await run(box, async () => {
        const { envelopeUrl, jwksUrl, previousUrl } = section.dataset;
        const [envelope, jwks, previous] = await Promise.all([
          download(envelopeUrl, "envelope"),
          download(jwksUrl, "JWKS"),
          previousUrl ? download(previousUrl, "previous envelope") : null,
        ]);
        return { verified: await verifyAttestation(envelope, jwks, { previous }), evidence: [] };
      });
    } finally {
      button.disabled = false;
      // Disabling the focused button may have dropped focus to the page: give it back.
      if (document.activeElement === document.body) button.focus();
    }
  });
}

async function checkEvidence(files, statement) {
  const lines = [];
  for (const file of files) {
    const digest = Array.from(await sha256(await file.arrayBuffer()), (b) => b.toString(16).padStart(2, "0")).join("");
    const names = subjectNamesFor(statement, digest);
    if (names.length === 0) {
      throw new VerifyError(`evidence file ${JSON.stringify(file.name)} (sha256:${digest}) is not a subject of this attestation`);
    }
    lines.push(`evidence file ${JSON.stringify(file.name)} sha256:${digest} is subject ${names.map((n) => JSON.stringify(n)).join(", ")}`);
  }
  return lines;
}

function wireForm(form) {
  const box = document.getElementById("verify-result");
  const submit = form.querySelector("button[type=submit]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const envelopeFile = form.querySelector("#envelope-file").files[0];
    const previousFile = form.querySelector("#previous-file").files[0];
    const evidenceInput = form.querySelector("#evidence-file");
    const evidenceFiles = evidenceInput ? Array.from(evidenceInput.files) : [];
    if (!envelopeFile) {
      box.replaceChildren(el("p", "Choose an attestation envelope file first."));
      form.querySelector("#envelope-file").focus();
      return;
    }
    submit.disabled = true;
    try {
      await run(box, async () => {
        const [envelope, previous, jwks] = await Promise.all([
          readFile(envelopeFile, "envelope file"),
          previousFile ? readFile(previousFile, "previous envelope file") : null,
          download(form.dataset.jwksUrl, "JWKS"),
        ]);
        const verified = await verifyAttestation(envelope, jwks, { previous });
        return { verified, evidence: await checkEvidence(evidenceFiles, verified.statement) };
      });
    } finally {
      submit.disabled = false;
      if (document.activeElement === document.body) submit.focus();
    }
  });
}

const section = document.getElementById("verify-box");
if (section) wireDetail(section);
const form = document.getElementById("verify-file");
if (form) wireForm(form);
