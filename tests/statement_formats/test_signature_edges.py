"""Edges of custodian key loading and signature headers, pinned by mutation testing.

Each test stands at an exact edge a surviving mutant showed untested: a key of the right length
but the wrong curve, a private key hidden after a public one, the exact wording a custodian
reads when a key or header is refused.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric import ed448, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

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

PRIVATE = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
RAW = PRIVATE.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
PEM = PRIVATE.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
PRIVATE_PEM = PRIVATE.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
DATA = b"isin,quantity,account,balance_type\n"
X25519_PUBLIC = x25519.X25519PrivateKey.from_private_bytes(bytes(range(32))).public_key()


def refusal(text: str) -> str:
    with pytest.raises(InvalidPublicKey) as info:
        load_public_key(text)
    return str(info.value)


def header_refusal(value: str) -> str:
    with pytest.raises(InvalidSignatureHeader) as info:
        parse_signature_header(value)
    return str(info.value)


def test_an_x25519_key_of_the_same_44_bytes_is_not_an_ed25519_key():
    # X25519 and Ed25519 SubjectPublicKeyInfo are both 44 bytes; only the OID differs. A key
    # for key agreement must not register as a signing key.
    der = X25519_PUBLIC.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert len(der) == 44
    assert refusal(base64.b64encode(der).decode()) == (
        "the base64 public key decodes to 44 bytes; an Ed25519 public key is 32 bytes"
    )


def test_any_44_byte_blob_is_refused_and_the_ed25519_der_is_accepted():
    ed_der = PRIVATE.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert load_public_key(base64.b64encode(ed_der).decode()) == RAW
    blob = bytes(12) + RAW  # the right length with a prefix that is not Ed25519's
    assert "decodes to 44 bytes" in refusal(base64.b64encode(blob).decode())
    # The Ed25519 prefix on a blob one byte short or long is not a DER key either.
    assert "decodes to 43 bytes" in refusal(base64.b64encode(ed_der[:-1]).decode())
    assert "decodes to 45 bytes" in refusal(base64.b64encode(ed_der + b"\0").decode())


def test_other_key_types_are_named_in_the_refusal():
    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    ed448_pem = (
        ed448.Ed448PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    x25519_pem = X25519_PUBLIC.public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    ).decode()
    assert refusal(rsa_pem) == "this is an RSA key; an Ed25519 key is required"
    assert refusal(ed448_pem) == "this is an Ed448 key; an Ed25519 key is required"
    # A type without a friendly name is named by its class, never left out.
    assert refusal(x25519_pem) == "this is X25519PublicKey key; an Ed25519 key is required"


def test_a_private_key_is_refused_even_after_a_public_key():
    # Fails on the old code, which read the public key and ignored the private one pasted
    # after it: that private key has leaked and its owner must be told.
    expected = "this is a PRIVATE key; send only the public key (openssl pkey -pubout)"
    assert refusal(PRIVATE_PEM) == expected
    assert refusal(PEM + PRIVATE_PEM) == expected
    assert refusal(PRIVATE_PEM + PEM) == expected
    ssh_public = PRIVATE.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
    ssh_private = PRIVATE.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
    assert refusal(ssh_public.decode() + " me\n" + ssh_private.decode()) == expected
    assert load_public_key(PEM) == RAW


def test_exact_wording_of_key_refusals():
    assert refusal("  \n ") == "the public key is empty"
    assert refusal("not a key!") == (
        "the public key is not PEM, OpenSSH, 64 hex characters or base64"
    )
    assert refusal("ssh-ed25519 AAAA-not-base64").startswith(
        "the OpenSSH public key cannot be read: "
    )
    assert refusal("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").startswith(
        "the PEM public key cannot be read: "
    )


def test_base64_may_be_wrapped_over_lines_and_url_safe():
    text = base64.b64encode(RAW).decode()
    assert load_public_key(text[:20] + "\n  " + text[20:]) == RAW
    # The url-safe alphabet with only '-' (or only '_') in it.
    minus_only = next(
        bytes([i]) * 32
        for i in range(256)
        if "-" in base64.urlsafe_b64encode(bytes([i]) * 32).decode()
        and "_" not in base64.urlsafe_b64encode(bytes([i]) * 32).decode()
    )
    underscore_only = next(
        bytes([i]) * 32
        for i in range(256)
        if "_" in base64.urlsafe_b64encode(bytes([i]) * 32).decode()
        and "-" not in base64.urlsafe_b64encode(bytes([i]) * 32).decode()
    )
    for raw in (minus_only, underscore_only):
        assert load_public_key(base64.urlsafe_b64encode(raw).decode()) == raw


def test_exact_wording_of_header_refusals():
    keyid = key_id(RAW)
    signature = base64.b64encode(PRIVATE.sign(DATA)).decode()
    assert header_refusal("abc") == (
        "X-Statement-Signature must be '<keyid>:<base64 signature>'; no ':' found"
    )
    assert header_refusal(f"xyz:{signature}") == (
        "the key id 'xyz' is not 16 hex characters "
        "(first 16 hex characters of SHA-256 of the raw public key)"
    )
    assert header_refusal(f"{keyid}:not*base64") == "the signature is not valid base64"
    # The key id ends at the first ':'; anything after belongs to the signature.
    assert header_refusal(f"{keyid}:{signature}:{signature}") == (
        "the signature is not valid base64"
    )
    assert header_refusal(f"{keyid}:" + base64.b64encode(bytes(63)).decode()) == (
        "the signature decodes to 63 bytes; an Ed25519 signature is 64 bytes"
    )


def test_exact_wording_of_signature_rejections():
    other = Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    other_raw = other.public_bytes(Encoding.Raw, PublicFormat.Raw)
    header = f"{key_id(RAW)}:{base64.b64encode(PRIVATE.sign(DATA)).decode()}"
    with pytest.raises(SignatureRejected) as info:
        verify_signature_header(header, [other_raw], DATA)
    assert str(info.value) == f"key id {key_id(RAW)} is not registered for this custodian"
    with pytest.raises(SignatureRejected) as info:
        verify_signature_header(header, [RAW], DATA + b"x")
    assert str(info.value) == (
        f"the signature by key {key_id(RAW)} does not match the uploaded file "
        "(file changed after signing, or signed with another key)"
    )


def test_a_key_of_the_wrong_length_is_named_by_its_length():
    with pytest.raises(InvalidPublicKey) as info:
        verify_detached(RAW[:31], PRIVATE.sign(DATA), DATA)
    assert str(info.value) == "an Ed25519 public key is 32 bytes, got 31"
    with pytest.raises(InvalidPublicKey) as info:
        key_id(RAW + b"\0")
    assert str(info.value) == "an Ed25519 public key is 32 bytes, got 33"
