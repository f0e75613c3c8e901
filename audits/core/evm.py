"""Read an ERC-20's total and circulating supply from an EVM chain, pinned to one block.

Framework-free on purpose: Celery tasks, the CLI and tests call :func:`read_supply` directly.

Pinning: the block is chosen once (``head - confirmations`` or the caller's block), its hash
is read, and every later call (``eth_getCode`` and each ``eth_call``) names that block by
hash (EIP-1898, ``requireCanonical``), so a reorg between calls cannot mix two blocks.
A final ``eth_getBlockByNumber`` confirms the hash is still canonical when the read ends.

Two kinds of failure, and callers must treat them differently:

- :class:`RpcUnavailable` is *transient*: the node is down, slow or inconsistent, and the
  same read may succeed later or on another URL. The supply itself is not in question.
- :class:`PermanentReadError` (every other error) will not fix itself: the contract
  reverts or returns nothing, the chain or decimals are not what was configured, the key is
  refused. The supply is unknown until a person acts.

Neither ever yields a supply of zero.

Deadlines: ``timeout`` is the wall-clock budget for the whole read from one URL (connect,
TLS, every request and every byte of every answer), not a per-socket-read timeout, so a
node that trickles one byte at a time cannot hold a read open. RPC URLs usually embed API
keys, so only :func:`redact_url` output ever appears in messages.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

import certifi
from eth_utils import is_address, is_checksum_address, to_checksum_address

from audits.core.deadline_http import deadline_response_class

__all__ = [
    "ChainIdMismatch",
    "ContractCallFailed",
    "DecimalsMismatch",
    "InvalidAddress",
    "NegativeCirculatingSupply",
    "PermanentReadError",
    "RpcRejected",
    "RpcUnavailable",
    "SupplyObservation",
    "SupplyReadError",
    "read_supply",
    "redact_url",
    "to_tokens",
]

# 4-byte selectors of the ERC-20 views we call; fixed so any ERC-20 works without an ABI.
SELECTOR_DECIMALS = "0x313ce567"  # decimals()
SELECTOR_TOTAL_SUPPLY = "0x18160ddd"  # totalSupply()
SELECTOR_BALANCE_OF = "0x70a08231"  # balanceOf(address)

# JSON-RPC code nodes (geth, anvil, erigon) use for "execution reverted".
_REVERT_CODE = 3

#: Largest JSON-RPC answer accepted; ours are a few kilobytes (a block header is the biggest).
MAX_ANSWER_BYTES = 1 << 20

# Verified TLS against the CA bundle requests used before (certifi), not the OS store,
# so the set of trusted roots does not depend on the host image.
_TLS = ssl.create_default_context(cafile=certifi.where())


# --------------------------------------------------------------------------- errors


class SupplyReadError(Exception):
    """Base class: the supply could not be read; there is no number, not even zero."""

    #: True when the same read may succeed later (the Celery task retries only these).
    retryable = False

    def __init__(self, message: str, rpc: str = "") -> None:
        # Both values go in args so the exception survives pickling (Celery result backends).
        super().__init__(message, rpc)
        self.message = message
        self.rpc = rpc  # already redacted

    def __str__(self) -> str:
        return self.message


class RpcUnavailable(SupplyReadError):
    """Transient: node unreachable, out of time, 5xx/429, malformed answer, or the block moved.

    The figure last read may still be true; retry later or on another URL.
    """

    retryable = True


class PermanentReadError(SupplyReadError):
    """Will not fix itself: the supply is unknown until someone changes something."""

    retryable = False


class RpcRejected(PermanentReadError):
    """Node answered HTTP 3xx/4xx (other than 408/429): a bad or expired API key or URL."""


class ChainIdMismatch(PermanentReadError):
    """The RPC endpoint serves a different chain than configured."""


class DecimalsMismatch(PermanentReadError):
    """The token's ``decimals()`` differs from the configured value."""


class ContractCallFailed(PermanentReadError):
    """No contract at the address, a call reverted, or returned malformed data."""


class NegativeCirculatingSupply(PermanentReadError):
    """Excluded balances add up to more than the total supply."""


class InvalidAddress(PermanentReadError, ValueError):
    """An address is malformed or has a wrong EIP-55 checksum."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class SupplyObservation:
    """One supply reading of one token at one exactly identified block."""

    chain_id: int
    token: str  # EIP-55 checksummed
    block_number: int
    block_hash: str  # 0x-prefixed lowercase hex
    block_timestamp: datetime  # timezone-aware UTC
    decimals: int
    total_supply_raw: int
    excluded_balances: dict[str, int]  # checksummed address -> raw balance at the block
    circulating_raw: int  # total_supply_raw minus the excluded balances, never negative
    rpc: str = ""  # redacted endpoint that answered, for the audit trail
    #: block number -> hash the same node holds canonical there, for each ``check_blocks``
    #: number up to its head (a height above the head is left out: unknown, not orphaned)
    canonical_hashes: dict[int, str] = field(default_factory=dict)

    @property
    def total_supply(self) -> Decimal:
        """Total supply in whole tokens."""
        return to_tokens(self.total_supply_raw, self.decimals)

    @property
    def circulating(self) -> Decimal:
        """Circulating supply (total minus excluded) in whole tokens."""
        return to_tokens(self.circulating_raw, self.decimals)


def to_tokens(raw: int, decimals: int) -> Decimal:
    """Convert base units to whole tokens exactly (no rounding, no float)."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise TypeError(f"raw amount must be int, got {type(raw).__name__}")
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 255:
        raise ValueError(f"decimals must be an int in 0..255, got {decimals!r}")
    # Build from the digit tuple: Decimal arithmetic (even scaleb) rounds to the context
    # precision (28 digits by default), which would corrupt large 18-decimal supplies.
    sign, digits, exponent = Decimal(raw).as_tuple()
    return Decimal((sign, digits, int(exponent) - decimals))


def redact_url(url: str) -> str:
    """Return ``scheme://host[:port]`` plus ``/…`` if a path or query was dropped.

    Providers put API keys in the userinfo, path (``/v2/KEY``) or query (``?apikey=``),
    so only the scheme, host and port are safe to show.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "<unparseable RPC URL>"
    if ":" in host:
        host = f"[{host}]"
    shown = f"{parts.scheme or '?'}://{host}" + (f":{port}" if port is not None else "")
    if parts.path.strip("/") or parts.query or parts.fragment:
        shown += "/…"
    return shown


# --------------------------------------------------------------------------- JSON-RPC client


class _Rpc:
    """Minimal JSON-RPC over HTTP; raises only SupplyReadError subclasses, never leaks the URL.

    A hand-rolled client rather than web3's provider because web3 logs the full endpoint
    at DEBUG level and retries internally, which would hide outages from the caller. Built on
    http.client rather than requests for three reasons: one wall-clock ``deadline`` covers
    connecting, TLS and every byte of every answer (requests' timeout restarts with each
    byte received); proxies from the environment are never consulted; redirects are never
    followed (a 3xx is refused like a 4xx).
    """

    def __init__(self, url: str, deadline: float, budget: float) -> None:
        self.url = url
        self.shown = redact_url(url)
        self.deadline = deadline  # time.monotonic() value
        self.budget = budget  # seconds, for messages
        self._id = 0
        self._conn: http.client.HTTPConnection | None = None
        parts = urlsplit(url)
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            host = port = None
        if parts.scheme not in ("http", "https") or not host:
            raise RpcRejected(f"RPC {self.shown} is not an http(s) URL", self.shown)
        self._https = parts.scheme == "https"
        self._host, self._port = host, port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if parts.username is not None:
            # Userinfo in the URL becomes HTTP Basic auth, as requests did.
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            token = base64.b64encode(pair.encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self, remaining: float) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is None:
            if self._https:
                conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=remaining, context=_TLS
                )
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=remaining)
            conn.response_class = deadline_response_class(self.deadline)
            self._conn = conn
        # Connect (and the TLS handshake, which CPython bounds as a whole) and sending use
        # the socket timeout; set it to what is left.
        conn.timeout = remaining
        if conn.sock is not None:
            conn.sock.settimeout(remaining)
        return conn

    def _post(self, body: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("deadline passed")
            reused = self._conn is not None and self._conn.sock is not None
            conn = self._connection(remaining)
            try:
                conn.request("POST", self._target, body=body, headers=self._headers)
                resp = conn.getresponse()
                data = resp.read(MAX_ANSWER_BYTES + 1)
                if not resp.isclosed():
                    # Unread bytes left (an oversized answer): the connection is unusable.
                    resp.close()
                    self.close()
                return resp.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                # A kept-alive connection the node closed between two calls: reconnect
                # once (every call is a read, safe to repeat).
                if not (reused and attempt == 1):
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def call(self, method: str, params: list[Any]) -> Any:
        self._id += 1
        body = json.dumps(
            {"jsonrpc": "2.0", "id": self._id, "method": method, "params": params}
        ).encode()
        try:
            status, data = self._post(body)
        except TimeoutError:
            raise RpcUnavailable(
                f"RPC {self.shown} did not answer {method} within {self.budget:g}s "
                "(the deadline for the whole read from this endpoint)",
                self.shown,
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            # `from None`: keep the URL (and its key) out of any chained traceback.
            raise RpcUnavailable(
                f"RPC {self.shown} unreachable for {method}: {_os_reason(exc)}", self.shown
            ) from None
        if status >= 500 or status in (408, 429):
            raise RpcUnavailable(f"RPC {self.shown} answered HTTP {status} to {method}", self.shown)
        if status >= 300:
            # 3xx included: a redirect is never followed, node traffic goes where configured.
            raise RpcRejected(
                f"RPC {self.shown} answered HTTP {status} to {method}; check the URL and API key",
                self.shown,
            )
        if len(data) > MAX_ANSWER_BYTES:
            raise RpcUnavailable(
                f"RPC {self.shown} sent more than {MAX_ANSWER_BYTES} bytes for {method}", self.shown
            )
        try:
            payload = json.loads(data)
        except ValueError:
            raise RpcUnavailable(
                f"RPC {self.shown} sent a non-JSON answer to {method}", self.shown
            ) from None
        if not isinstance(payload, dict) or payload.get("id") != self._id:
            raise RpcUnavailable(
                f"RPC {self.shown} sent a malformed JSON-RPC answer to {method}", self.shown
            )
        if "error" in payload:
            err = payload["error"] if isinstance(payload["error"], dict) else {}
            raise _JsonRpcError(method, err.get("code"), str(err.get("message", "")))
        if "result" not in payload:
            raise RpcUnavailable(f"RPC {self.shown} sent no result for {method}", self.shown)
        return payload["result"]


class _JsonRpcError(Exception):
    """Node-level error object; classified by the caller, which knows the context."""

    def __init__(self, method: str, code: Any, message: str) -> None:
        super().__init__(method, code, message)
        self.method = method
        self.code = code
        self.message = message[:300]


def _os_reason(exc: BaseException) -> str:
    """Find the OS-level reason (e.g. 'Connection refused') without any URL text."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        cur = stack.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.strerror:
            return cur.strerror
        stack.extend([cur.__cause__, cur.__context__])
        stack.extend(a for a in cur.args if isinstance(a, BaseException))
        reason = getattr(cur, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
    return type(exc).__name__


# --------------------------------------------------------------------------- parsing helpers


def _hex_int(value: Any, what: str, rpc: _Rpc) -> int:
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise RpcUnavailable(f"RPC {rpc.shown} returned a malformed {what}: {value!r:.80}", rpc.shown)


def _normalise_address(value: str, what: str) -> str:
    """Checksum an address; mixed case must already be a valid EIP-55 checksum (typo guard)."""
    if not isinstance(value, str) or not is_address(value.lower()):
        raise InvalidAddress(f"{what} {value!r:.60} is not a 20-byte hex address")
    body = value[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(value):
        raise InvalidAddress(f"{what} {value} has a wrong EIP-55 checksum")
    return to_checksum_address(value)


def _decode_uint(data: Any, call: str, token: str, block: int, rpc: _Rpc) -> int:
    """Decode a single ABI uint256 return value, rejecting anything else."""
    if not isinstance(data, str) or not data.startswith("0x"):
        raise ContractCallFailed(
            f"{call} on {token} at block {block} via {rpc.shown} returned {data!r:.80}", rpc.shown
        )
    raw = data[2:]
    if len(raw) != 64:
        got = "no data" if not raw else f"{len(raw) // 2} bytes"
        raise ContractCallFailed(
            f"{call} on {token} at block {block} via {rpc.shown} returned {got}, "
            f"expected one 32-byte word (is this an ERC-20?)",
            rpc.shown,
        )
    try:
        return int(raw, 16)
    except ValueError:
        raise ContractCallFailed(
            f"{call} on {token} at block {block} via {rpc.shown} returned non-hex data", rpc.shown
        ) from None


# --------------------------------------------------------------------------- the reader


def read_supply(
    rpc_urls: Sequence[str],
    expected_chain_id: int,
    token: str,
    expected_decimals: int,
    excluded: Sequence[str] = (),
    confirmations: int = 0,
    timeout: float = 10.0,
    block: int | None = None,
    *,
    check_blocks: Sequence[int] = (),
    total_timeout: float | None = None,
) -> SupplyObservation:
    """Read ``token``'s supply pinned to one block, failing over between ``rpc_urls``.

    URLs are tried in order; only :class:`RpcUnavailable` moves on to the next one, since
    every other error (wrong chain, wrong decimals, revert, bad key) would be the same or
    worse elsewhere and must be fixed, not hidden. Raises a :class:`SupplyReadError`
    subclass on any failure; never returns a made-up zero.

    ``timeout`` bounds the whole read from one URL (wall clock, every request together);
    ``total_timeout`` bounds the whole call across URLs. ``check_blocks``: block numbers
    whose canonical hash the same node reports in ``canonical_hashes`` (one
    ``eth_getBlockByNumber`` each), so a caller can spot stored readings of blocks that
    were reorganised away.
    """
    if isinstance(rpc_urls, str):
        raise TypeError("rpc_urls must be a sequence of URLs, not a single string")
    if not rpc_urls:
        raise ValueError("at least one RPC URL is required")
    if confirmations < 0:
        raise ValueError("confirmations must be >= 0")
    if block is not None and block < 0:
        raise ValueError("block must be >= 0")
    if timeout <= 0 or (total_timeout is not None and total_timeout <= 0):
        raise ValueError("timeouts must be > 0")
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in check_blocks):
        raise ValueError("check_blocks must be block numbers >= 0")
    token_cs = _normalise_address(token, "token address")
    # dict.fromkeys dedupes while keeping order: an address listed twice (e.g. once in
    # lowercase) must not be subtracted twice.
    excluded_cs = list(dict.fromkeys(_normalise_address(a, "excluded address") for a in excluded))
    checks = sorted(set(check_blocks))

    started = time.monotonic()
    overall = started + total_timeout if total_timeout is not None else None
    failures: list[RpcUnavailable] = []
    for url in rpc_urls:
        now = time.monotonic()
        deadline = now + timeout if overall is None else min(now + timeout, overall)
        if deadline <= now:
            failures.append(
                RpcUnavailable(
                    f"no time left to try RPC {redact_url(url)} "
                    f"(the read may take {total_timeout:g}s in all)",
                    redact_url(url),
                )
            )
            continue
        rpc = _Rpc(url, deadline, min(timeout, deadline - now))
        try:
            return _read_one(
                rpc,
                expected_chain_id,
                token_cs,
                expected_decimals,
                excluded_cs,
                confirmations,
                block,
                checks,
            )
        except RpcUnavailable as exc:
            failures.append(exc)
        finally:
            rpc.close()
    if len(failures) == 1:
        raise failures[0]
    joined = "; ".join(f.message for f in failures)
    raise RpcUnavailable(f"all {len(failures)} RPC endpoints failed: {joined}", failures[-1].rpc)


def _read_one(
    rpc: _Rpc,
    expected_chain_id: int,
    token: str,
    expected_decimals: int,
    excluded: list[str],
    confirmations: int,
    block: int | None,
    check_blocks: list[int],
) -> SupplyObservation:
    """Do the whole pinned read against one endpoint."""
    try:
        chain_id = _hex_int(rpc.call("eth_chainId", []), "chain id", rpc)
        if chain_id != expected_chain_id:
            raise ChainIdMismatch(
                f"RPC {rpc.shown} serves chain id {chain_id}, expected {expected_chain_id}",
                rpc.shown,
            )

        head = _hex_int(rpc.call("eth_blockNumber", []), "block number", rpc)
        safe_head = head - confirmations
        if block is None:
            if safe_head < 0:
                raise RpcUnavailable(
                    f"RPC {rpc.shown} head is block {head}, fewer than the "
                    f"{confirmations} confirmations required",
                    rpc.shown,
                )
            number = safe_head
        elif block > safe_head:
            # Lagging node or a block that is not yet final: both can resolve with time.
            raise RpcUnavailable(
                f"block {block} is not available with {confirmations} confirmations via "
                f"{rpc.shown} (head {head})",
                rpc.shown,
            )
        else:
            number = block

        block_hash, unix_time = _get_header(rpc, number)
        timestamp = datetime.fromtimestamp(unix_time, UTC)
        at = {"blockHash": block_hash, "requireCanonical": True}

        code = rpc.call("eth_getCode", [token, at])
        if not isinstance(code, str) or code in ("0x", "0x0", ""):
            raise ContractCallFailed(
                f"no contract at {token} on chain {chain_id} at block {number} (via {rpc.shown})",
                rpc.shown,
            )

        def view(selector: str, label: str, arg: str = "") -> int:
            try:
                data = rpc.call("eth_call", [{"to": token, "data": selector + arg}, at])
            except _JsonRpcError as err:
                if err.code == _REVERT_CODE or "revert" in err.message.lower():
                    raise ContractCallFailed(
                        f"{label} reverted on {token} at block {number} via {rpc.shown}: "
                        f"{err.message}",
                        rpc.shown,
                    ) from None
                raise
            return _decode_uint(data, label, token, number, rpc)

        decimals = view(SELECTOR_DECIMALS, "decimals()")
        if decimals != expected_decimals:
            raise DecimalsMismatch(
                f"{token} on chain {chain_id} reports decimals() = {decimals} at block {number}, "
                f"expected {expected_decimals} (via {rpc.shown})",
                rpc.shown,
            )
        total = view(SELECTOR_TOTAL_SUPPLY, "totalSupply()")
        balances: dict[str, int] = {}
        for addr in excluded:
            word = addr[2:].lower().rjust(64, "0")
            balances[addr] = view(SELECTOR_BALANCE_OF, f"balanceOf({addr})", word)

        canonical: dict[int, str] = {}
        for other in check_blocks:
            if other != number and other <= head:
                canonical[other] = _get_header(rpc, other)[0]

        # EIP-1898 already makes each call refuse a non-canonical hash, but not every node
        # honours requireCanonical; re-reading the header closes that gap.
        hash_now, _ = _get_header(rpc, number)
        if hash_now != block_hash:
            raise RpcUnavailable(
                f"block {number} was reorganised during the read via {rpc.shown} "
                f"({block_hash} -> {hash_now}); retry",
                rpc.shown,
            )
    except _JsonRpcError as err:
        # Node-level errors (pruned state, rate limit in-band, unknown block hash after a
        # reorg): another node or a later attempt may succeed.
        raise RpcUnavailable(
            f"RPC {rpc.shown} returned error {err.code} for {err.method}: {err.message}",
            rpc.shown,
        ) from None

    excluded_sum = sum(balances.values())
    if excluded_sum > total:
        raise NegativeCirculatingSupply(
            f"excluded balances of {token} on chain {chain_id} sum to {excluded_sum} base units, "
            f"more than totalSupply {total} at block {number}",
            rpc.shown,
        )
    return SupplyObservation(
        chain_id=chain_id,
        token=token,
        block_number=number,
        block_hash=block_hash,
        block_timestamp=timestamp,
        decimals=decimals,
        total_supply_raw=total,
        excluded_balances=balances,
        circulating_raw=total - excluded_sum,
        rpc=rpc.shown,
        canonical_hashes=canonical,
    )


def _get_header(rpc: _Rpc, number: int) -> tuple[str, int]:
    """Fetch block ``number``'s (lowercase hash, unix timestamp), validating both."""
    result = rpc.call("eth_getBlockByNumber", [hex(number), False])
    if not isinstance(result, dict):
        raise RpcUnavailable(f"RPC {rpc.shown} has no block {number}", rpc.shown)
    got = _hex_int(result.get("number"), "block number", rpc)
    block_hash = result.get("hash")
    if (
        got != number
        or not isinstance(block_hash, str)
        or len(block_hash) != 66
        or not block_hash.startswith("0x")
    ):
        raise RpcUnavailable(f"RPC {rpc.shown} returned a malformed block {number}", rpc.shown)
    return block_hash.lower(), _hex_int(result.get("timestamp"), "timestamp", rpc)
