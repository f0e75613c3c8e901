"""Custodian Ed25519 keys and detached statement signatures."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from audits.core.custodian_signatures import (
    InvalidPublicKey,
    InvalidSignatureHeader,
    SignatureRejected,
    key_id,
    load_public_key,
    parse_signature_header,
    verify_detached,
    verify_signature_header,
)

SEED = bytes(range(32))
PRIVATE = Ed25519PrivateKey.from_private_bytes(SEED)
PUBLIC = PRIVATE.public_key()
RAW = PUBLIC.public_bytes(Encoding.Raw, PublicFormat.Raw)
DATA = b"isin,quantity,account,balance_type\nUS0378331005,10,A,settled\n"


def header_for(data: bytes, private: Ed25519PrivateKey = PRIVATE) -> str:
    raw_pub = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return f"{key_id(raw_pub)}:{base64.b64encode(private.sign(data)).decode()}"


def test_key_id_is_first_16_hex_of_sha256_of_raw_key():
    assert key_id(RAW) == hashlib.sha256(RAW).hexdigest()[:16]
    assert len(key_id(RAW)) == 16
    with pytest.raises(InvalidPublicKey, match="32 bytes, got 31"):
        key_id(RAW[:31])


@pytest.mark.parametrize(
    "text",
    [
        PUBLIC.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode(),
        PUBLIC.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode() + " custodian@host",
        RAW.hex(),
        RAW.hex().upper(),
        base64.b64encode(RAW).decode(),
        base64.b64encode(RAW).decode().rstrip("="),
        base64.urlsafe_b64encode(RAW).decode(),
        base64.b64encode(
            PUBLIC.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        ).decode(),
        "\n  " + RAW.hex() + "  \n",
    ],
)
def test_load_public_key_accepts_common_forms(text):
    assert load_public_key(text) == RAW


def test_load_public_key_errors_are_clear():
    ec_pem = (
        generate_private_key(SECP256R1())
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    private_pem = PRIVATE.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    cases = {
        "": "empty",
        ec_pem: r"an EC \(ECDSA\) key; an Ed25519 key is required",
        private_pem: "PRIVATE key",
        "-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----": "cannot be read",
        base64.b64encode(RAW[:20]).decode(): "decodes to 20 bytes",
        "not a key at all!": "not PEM, OpenSSH, 64 hex characters or base64",
    }
    for text, fragment in cases.items():
        with pytest.raises(InvalidPublicKey, match=fragment):
            load_public_key(text)


def test_parse_signature_header():
    signature = PRIVATE.sign(DATA)
    header = f"{key_id(RAW)}:{base64.b64encode(signature).decode()}"
    assert parse_signature_header(header) == (key_id(RAW), signature)
    # Surrounding spaces and an upper-case key id are tolerated.
    encoded = base64.b64encode(signature).decode()
    assert parse_signature_header(f" {key_id(RAW).upper()}:{encoded} ") == (key_id(RAW), signature)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("no-colon-here", "no ':' found"),
        ("abc:" + base64.b64encode(bytes(64)).decode(), "not 16 hex characters"),
        ("0123456789abcdef:***not base64***", "not valid base64"),
        ("0123456789abcdef:" + base64.b64encode(bytes(63)).decode(), "decodes to 63 bytes"),
        ("0123456789abcdef:" + base64.b64encode(bytes(65)).decode(), "decodes to 65 bytes"),
        ("0123456789abcdef:", "decodes to 0 bytes"),
    ],
)
def test_parse_signature_header_errors(value, fragment):
    with pytest.raises(InvalidSignatureHeader, match=fragment):
        parse_signature_header(value)


def test_verify_detached_rejects_wrong_key_and_wrong_lengths():
    signature = PRIVATE.sign(DATA)
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert verify_detached(RAW, signature, DATA)
    assert not verify_detached(other, signature, DATA)
    assert not verify_detached(RAW, signature[:63], DATA)
    with pytest.raises(InvalidPublicKey):
        verify_detached(RAW + b"\0", signature, DATA)


def test_verify_signature_header_picks_the_key_by_id():
    other = Ed25519PrivateKey.generate()
    other_raw = other.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    keys = [other_raw, RAW]
    assert verify_signature_header(header_for(DATA), keys, DATA) == key_id(RAW)
    assert verify_signature_header(header_for(DATA, other), keys, DATA) == key_id(other_raw)
    with pytest.raises(SignatureRejected, match="not registered"):
        verify_signature_header(header_for(DATA), [other_raw], DATA)
    with pytest.raises(SignatureRejected, match="does not match the uploaded file"):
        verify_signature_header(header_for(DATA), keys, DATA + b"\n")
    with pytest.raises(InvalidSignatureHeader):
        verify_signature_header("garbage", keys, DATA)


@settings(max_examples=100, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), data=st.binary(max_size=4096))
def test_any_signed_bytes_verify(seed, data):
    private = Ed25519PrivateKey.from_private_bytes(seed)
    raw_pub = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert verify_detached(raw_pub, private.sign(data), data)
    keyid, signature = parse_signature_header(header_for(data, private))
    assert keyid == key_id(raw_pub) and verify_detached(raw_pub, signature, data)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    data=st.binary(min_size=1, max_size=1024),
    bit=st.integers(min_value=0),
    in_signature=st.booleans(),
)
def test_any_single_bit_flip_fails(seed, data, bit, in_signature):
    private = Ed25519PrivateKey.from_private_bytes(seed)
    raw_pub = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signature = private.sign(data)
    target = bytearray(signature if in_signature else data)
    bit %= len(target) * 8
    target[bit // 8] ^= 1 << (bit % 8)
    if in_signature:
        assert not verify_detached(raw_pub, bytes(target), data)
    else:
        assert not verify_detached(raw_pub, signature, bytes(target))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_openssl_recipe_from_the_docs(tmp_path):
    """The commands in docs/statement-formats.md produce a header this module accepts."""
    statement = tmp_path / "statement.csv"
    statement.write_bytes(DATA)

    def run(*args: str) -> bytes:
        return subprocess.run(args, cwd=tmp_path, check=True, capture_output=True).stdout

    run("openssl", "genpkey", "-algorithm", "ed25519", "-out", "custodian-key.pem")
    run("openssl", "pkey", "-in", "custodian-key.pem", "-pubout", "-out", "custodian-pub.pem")
    run(
        "openssl", "pkeyutl", "-sign", "-inkey", "custodian-key.pem", "-rawin",
        "-in", "statement.csv", "-out", "statement.sig",
    )  # fmt: skip
    der = run("openssl", "pkey", "-pubin", "-in", "custodian-pub.pem", "-outform", "DER")
    openssl_key_id = hashlib.sha256(der[-32:]).hexdigest()[:16]
    signature_b64 = base64.b64encode((tmp_path / "statement.sig").read_bytes()).decode()

    public = load_public_key((tmp_path / "custodian-pub.pem").read_text())
    assert key_id(public) == openssl_key_id
    header = f"{openssl_key_id}:{signature_b64}"
    assert verify_signature_header(header, [public], DATA) == openssl_key_id
