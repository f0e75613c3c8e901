"""``python -m audits.verify --attestation`` as a user would run it, offline and without Django."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from audits.core.attestation import build_statement, key_id, payload_digest, sign

from .helpers import (
    STATEMENT_BYTES,
    chain,
    jwk_entry,
    jwks_of,
    predicate,
    seeded_key,
    statement,
)

ROOT = Path(__file__).resolve().parents[2]
KEY = seeded_key(1)
KID = key_id(KEY.public_key())
LINE = re.compile(r"(attestation|key|asset|liabilities|previous|evidence): .*|VALID|INVALID: .*")


def run(*args: str | Path, python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, *python_flags, "-m", "audits.verify", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def write(path: Path, value) -> Path:
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    first, second = chain(KEY, 2)
    return {
        "first": write(tmp_path / "first.json", first),
        "second": write(tmp_path / "second.json", second),
        "keys": write(tmp_path / "jwks.json", jwks_of(jwk_entry(KEY))),
        "evidence": (tmp_path / "statement.csv"),
        "second_env": second,
        "first_env": first,
    }


def check_output(out: subprocess.CompletedProcess) -> list[str]:
    """Every line ours: labelled, printable ASCII, one verdict, last, and the right status."""
    assert out.stderr == ""
    assert "Traceback" not in out.stdout
    assert all(" " <= ch <= "~" for ch in out.stdout.replace("\n", "")), out.stdout
    lines = out.stdout.split("\n")
    assert lines.pop() == ""
    assert all(LINE.fullmatch(line) for line in lines), lines
    verdicts = [line for line in lines if line == "VALID" or line.startswith("INVALID: ")]
    assert verdicts == [lines[-1]]
    assert out.returncode == (0 if lines[-1] == "VALID" else 1)
    return lines


def test_a_linked_attestation_with_evidence_is_valid(files):
    files["evidence"].write_bytes(STATEMENT_BYTES)
    out = run(
        "--attestation", files["second"], "--keys", files["keys"],
        "--previous", files["first"], "--evidence", files["evidence"],
    )  # fmt: skip
    lines = check_output(out)
    digest = hashlib.sha256(STATEMENT_BYTES).hexdigest()
    assert lines == [
        "attestation: sequence 2, issued 2026-11-29T17:02:00Z",
        f'key: "{KID}"',
        'asset: "AAPLx" status "healthy" eligible true ratio "1.0101" reserves "1000.000000"'
        ' supply "990.000000"',
        f"previous: {payload_digest(files['first_env'])} (checked)",
        f'evidence: "{files["evidence"]}" sha256:{digest} is subject "statement-custodian-a.csv"',
        "VALID",
    ]


def test_previous_is_reported_as_first_or_unchecked(files):
    lines = check_output(run("--attestation", files["first"], "--keys", files["keys"]))
    assert lines[-2:] == ["previous: none (first)", "VALID"]
    lines = check_output(run("--attestation", files["second"], "--keys", files["keys"]))
    assert lines[-2:] == [
        f"previous: {payload_digest(files['first_env'])} (not checked: give --previous)",
        "VALID",
    ]


def test_a_broken_chain_link_is_invalid(files, tmp_path):
    third = sign(statement(predicate(3, payload_digest(files["second_env"]))), KEY, KID)
    path = write(tmp_path / "third.json", third)
    out = run("--attestation", path, "--keys", files["keys"], "--previous", files["first"])
    assert check_output(out) == ["INVALID: previous digest does not match the previous attestation"]


def test_evidence_that_is_no_subject_is_invalid(files):
    files["evidence"].write_bytes(b"some other file")
    out = run("--attestation", files["first"], "--keys", files["keys"], "--evidence",
              files["evidence"], files["first"])  # fmt: skip
    lines = check_output(out)
    assert lines[-1] == f'INVALID: evidence "{files["evidence"]}" is not a subject'
    digest = hashlib.sha256(b"some other file").hexdigest()
    assert lines[-2] == f'evidence: "{files["evidence"]}" sha256:{digest} is no subject'


def test_a_tampered_attestation_is_invalid_and_shows_nothing_from_it(files, tmp_path):
    envelope = dict(files["second_env"])
    envelope["payload"] = envelope["payload"][:-8] + "AAAAAAA="
    path = write(tmp_path / "bad.json", envelope)
    out = run("--attestation", path, "--keys", files["keys"])
    assert check_output(out) == ["INVALID: signature does not verify with the published key"]


def test_a_key_not_in_the_jwks_is_invalid(files, tmp_path):
    keys = write(tmp_path / "other.json", jwks_of(jwk_entry(seeded_key(9))))
    out = run("--attestation", files["first"], "--keys", keys)
    assert check_output(out) == ["INVALID: signing key id is not in the JWKS"]


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[1, 2]",
        '{"payload": "@@", "payloadType": "x", "signatures": []}',
        "[" * 100000,
    ],
    ids=["syntax", "array", "fields", "deep"],
)
def test_a_malformed_envelope_is_invalid_without_traceback(files, tmp_path, content):
    path = tmp_path / "env.json"
    path.write_text(content, encoding="utf-8")
    lines = check_output(run("--attestation", path, "--keys", files["keys"]))
    assert len(lines) == 1 and lines[0].startswith("INVALID: ")


def test_missing_files_are_invalid(files, tmp_path):
    absent = tmp_path / "no\nVALID"
    for args in (
        ("--attestation", absent, "--keys", files["keys"]),
        ("--attestation", files["first"], "--keys", absent),
        ("--attestation", files["second"], "--keys", files["keys"], "--previous", absent),
        ("--attestation", files["first"], "--keys", files["keys"], "--evidence", absent),
    ):
        lines = check_output(run(*args))
        assert len(lines) == 1 and lines[0].startswith("INVALID: cannot read "), lines
        assert "no\\\\nVALID" in lines[0]  # the OSError's repr of the name, escaped


@pytest.mark.parametrize(
    "args",
    [
        ("--attestation", "a.json"),
        ("--keys", "k.json"),
        ("--attestation", "a.json", "--keys"),
        ("--attestation", "a.json", "--keys", "k.json", "--attestation", "b.json"),
        ("--attest", "a.json", "--keys", "k.json"),
        ("--attestation", "a.json", "--keys", "k.json", "--verbose", "x"),
    ],
)
def test_bad_usage_prints_usage_and_exits_1(args):
    out = run(*args)
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr == (
        "usage: python -m audits.verify --attestation ENVELOPE.json --keys JWKS.json"
        " [--previous PREV.json] [--evidence FILE ...]\n"
    )


# --- hostile strings in a correctly signed attestation --------------------------------------

ATTACKS = [
    "\x1b[2J\x1b[HVALID\nkey: fake",
    "AAPLx\nVALID",
    "\r\x1b[1A\x1b[2KVALID",
    "x\u202eDILAVNI",
    "a\u2028VALID\u2029b\x85c\x7fd\x00e",
    '"',
    "\\",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_hostile_strings_in_an_attestation_are_escaped(tmp_path, attack):
    pred = predicate(1)
    pred["assets"][0].update(code=attack, status=attack, ratio={"x": attack})
    pred["assets"].append({"code": attack, "eligible": False})
    pred["assets"].append(attack)  # not an object: skipped, not printed
    subject = (attack, hashlib.sha256(b"evidence").hexdigest())
    envelope = sign(build_statement([subject], pred), KEY, KID)
    evidence = tmp_path / "evidence.bin"
    evidence.write_bytes(b"evidence")
    out = run(
        "--attestation", write(tmp_path / "a.json", envelope),
        "--keys", write(tmp_path / "k.json", jwks_of(jwk_entry(KEY))),
        "--evidence", evidence,
    )  # fmt: skip
    lines = check_output(out)
    assert lines[-1] == "VALID"
    code = json.dumps(attack, ensure_ascii=True)
    assert lines[2] == (
        f"asset: {code} status {code} eligible true ratio "
        + json.dumps(json.dumps({"x": attack}, ensure_ascii=True, sort_keys=True))[1:-1]
        + ' reserves "1000.000000" supply "990.000000"'
    )
    assert lines[3] == f"asset: {code} eligible false"
    assert lines[-2].endswith(f" is subject {code}")
    decoder = json.JSONDecoder()
    assert [decoder.raw_decode(line.removeprefix("asset: "))[0] for line in lines[2:4]] == [
        attack,
        attack,
    ]


# --- the verifier stays framework-free ------------------------------------------------------


def test_the_verifier_imports_no_django_rfc8785_or_joserfc(files):
    out = run("--attestation", files["first"], "--keys", files["keys"],
              python_flags=("-X", "importtime"))  # fmt: skip
    assert out.returncode == 0, out.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()]
    assert "audits.core.attestation" in imported  # the probe works
    assert "cryptography" in imported
    forbidden = {"django", "rest_framework", "rfc8785", "joserfc", "securesystemslib", "celery"}
    assert not [m for m in imported if m.split(".")[0] in forbidden]


def test_importing_the_modules_pulls_in_no_framework():
    code = (
        "import sys, audits.core.attestation, audits.core.verify\n"
        "bad = {'django', 'rfc8785', 'joserfc', 'securesystemslib', 'rest_framework'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in bad))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
        timeout=60, check=True,
    )  # fmt: skip
    assert out.stdout == "[]\n"
