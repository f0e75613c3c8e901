"""Custodian Ed25519 keys and detached statement signatures.

A custodian registers one or more Ed25519 public keys. An upload may carry a detached signature
of the exact uploaded bytes in the header `X-Statement-Signature: <keyid>:<base64 signature>`,
where keyid = key_id(public key) identifies which registered key signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
    load_ssh_public_key,
)

SIGNATURE_HEADER = "X-Statement-Signature"
PUBLIC_KEY_LENGTH = 32
SIGNATURE_LENGTH = 64
KEY_ID_LENGTH = 16
# DER SubjectPublicKeyInfo for Ed25519 is this 12-byte prefix followed by the 32-byte key.
_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
_KEY_ID_RE = re.compile(rf"[0-9a-f]{{{KEY_ID_LENGTH}}}")
_HEX_KEY_RE = re.compile(rf"[0-9a-fA-F]{{{2 * PUBLIC_KEY_LENGTH}}}")


class InvalidPublicKey(ValueError):
    """The text is not an Ed25519 public key in a supported form."""


class InvalidSignatureHeader(ValueError):
    """The X-Statement-Signature header is malformed."""


class SignatureRejected(ValueError):
    """The signature header is well-formed but does not verify (reason in the message)."""


def key_id(public_key_raw: bytes) -> str:
    """Key id: the first 16 hex characters of SHA-256 over the 32 raw public key bytes."""
    if len(public_key_raw) != PUBLIC_KEY_LENGTH:
        raise InvalidPublicKey(
            f"an Ed25519 public key is {PUBLIC_KEY_LENGTH} bytes, got {len(public_key_raw)}"
        )
    return hashlib.sha256(public_key_raw).hexdigest()[:KEY_ID_LENGTH]


def load_public_key(text: str) -> bytes:
    """Raw 32-byte Ed25519 key from PEM (SubjectPublicKeyInfo), OpenSSH, hex or base64 text."""
    value = text.strip()
    if not value:
        raise InvalidPublicKey("the public key is empty")
    if "PRIVATE KEY" in value:
        # Refuse rather than derive: a private key pasted here has leaked into our system,
        # also when it follows a public key (PEM and OpenSSH loaders read only the first key).
        raise InvalidPublicKey(
            "this is a PRIVATE key; send only the public key (openssl pkey -pubout)"
        )
    if value.startswith("-----BEGIN"):
        try:
            # "ascii" -> "ASCII" is an equivalent mutant (codec names ignore case).
            key = load_pem_public_key(value.encode("ascii"))  # pragma: no mutate
        except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
            raise InvalidPublicKey(f"the PEM public key cannot be read: {exc}") from None
        return _raw_ed25519(key)
    if value.startswith("ssh-"):
        try:
            key = load_ssh_public_key(value.encode("ascii"))  # pragma: no mutate (as above)
        except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
            raise InvalidPublicKey(f"the OpenSSH public key cannot be read: {exc}") from None
        return _raw_ed25519(key)
    if _HEX_KEY_RE.fullmatch(value):
        return bytes.fromhex(value)
    try:
        decoded = _b64decode(value)
    except ValueError:
        raise InvalidPublicKey(
            "the public key is not PEM, OpenSSH, 64 hex characters or base64"
        ) from None
    if len(decoded) == len(_SPKI_PREFIX) + PUBLIC_KEY_LENGTH and decoded.startswith(_SPKI_PREFIX):
        return decoded[len(_SPKI_PREFIX) :]  # base64 of a DER public key
    if len(decoded) != PUBLIC_KEY_LENGTH:
        raise InvalidPublicKey(
            f"the base64 public key decodes to {len(decoded)} bytes; an Ed25519 public key is "
            f"{PUBLIC_KEY_LENGTH} bytes"
        )
    return decoded


def _raw_ed25519(key: object) -> bytes:
    if not isinstance(key, Ed25519PublicKey):
        kinds = {
            rsa.RSAPublicKey: "an RSA",
            ec.EllipticCurvePublicKey: "an EC (ECDSA)",
            ed448.Ed448PublicKey: "an Ed448",
        }
        kind = next((v for k, v in kinds.items() if isinstance(key, k)), type(key).__name__)
        raise InvalidPublicKey(f"this is {kind} key; an Ed25519 key is required")
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _b64decode(value: str) -> bytes:
    compact = "".join(value.split())
    padded = compact + "=" * (-len(compact) % 4)
    # Equivalent mutant: the condition forced true (altchars map only '-' and '_', which
    # standard base64 never contains), so the line is excluded from mutation.
    alphabet = b"-_" if ("-" in compact or "_" in compact) else None  # pragma: no mutate
    try:
        return base64.b64decode(padded, altchars=alphabet, validate=True)
    except (binascii.Error, ValueError):
        # pragma: no mutate start (equivalent: every caller replaces this message with its own)
        raise ValueError("not base64") from None
        # pragma: no mutate end


def parse_signature_header(value: str) -> tuple[str, bytes]:
    """Split `<keyid>:<base64 signature>` into (keyid, 64 signature bytes)."""
    keyid, sep, encoded = value.strip().partition(":")
    if not sep:
        raise InvalidSignatureHeader(
            f"{SIGNATURE_HEADER} must be '<keyid>:<base64 signature>'; no ':' found"
        )
    keyid = keyid.strip().lower()
    if not _KEY_ID_RE.fullmatch(keyid):
        raise InvalidSignatureHeader(
            f"the key id {keyid!r} is not {KEY_ID_LENGTH} hex characters "
            "(first 16 hex characters of SHA-256 of the raw public key)"
        )
    try:
        signature = _b64decode(encoded)
    except ValueError:
        raise InvalidSignatureHeader("the signature is not valid base64") from None
    if len(signature) != SIGNATURE_LENGTH:
        raise InvalidSignatureHeader(
            f"the signature decodes to {len(signature)} bytes; an Ed25519 signature is "
            f"{SIGNATURE_LENGTH} bytes"
        )
    return keyid, signature


def verify_detached(public_key_raw: bytes, signature: bytes, raw: bytes) -> bool:
    """True if `signature` is a valid Ed25519 signature of `raw` by `public_key_raw`."""
    if len(public_key_raw) != PUBLIC_KEY_LENGTH:
        raise InvalidPublicKey(
            f"an Ed25519 public key is {PUBLIC_KEY_LENGTH} bytes, got {len(public_key_raw)}"
        )
    if len(signature) != SIGNATURE_LENGTH:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key_raw).verify(signature, raw)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_signature_header(header: str, public_keys: Iterable[bytes], raw: bytes) -> str:
    """Check an upload's signature header against the custodian's keys; return the key id used.

    Raises InvalidSignatureHeader if malformed, SignatureRejected if the key id is not one of
    `public_keys` or the signature does not match the bytes.
    """
    keyid, signature = parse_signature_header(header)
    by_id = {key_id(k): k for k in public_keys}
    key = by_id.get(keyid)
    if key is None:
        raise SignatureRejected(f"key id {keyid} is not registered for this custodian")
    if not verify_detached(key, signature, raw):
        raise SignatureRejected(
            f"the signature by key {keyid} does not match the uploaded file "
            "(file changed after signing, or signed with another key)"
        )
    return keyid
