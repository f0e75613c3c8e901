"""Local EVM chains (anvil) for tests and the demo: start, deploy ReserveToken, mint, burn.

Everything here talks to a real anvil process over JSON-RPC; nothing is simulated.
The anvil binary comes from the npm package ``@foundry-rs/anvil`` (``npm ci``).

CLI (``python -m audits.core.devchain --help``)::

    python -m audits.core.devchain serve \
        --chain 31337:8545 --token 31337:AAPLX:18 --out var/chain.json
    python -m audits.core.devchain mint --rpc http://127.0.0.1:8545 \
        --token 0x... --to 0x... --tokens 100
    python -m audits.core.devchain burn --rpc http://127.0.0.1:8545 \
        --token 0x... --frm 0x... --amount 5
    python -m audits.core.devchain supply --rpc http://127.0.0.1:8545 --token 0x...
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError

from audits.core.evm import read_supply, to_tokens

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARTIFACT_PATH = PROJECT_ROOT / "audits" / "contracts" / "ReserveToken.json"
SOURCE_PATH = PROJECT_ROOT / "contracts" / "ReserveToken.sol"

#: anvil's well-known test mnemonic; pinned so dev accounts (and hence the addresses of
#: contracts deployed in the same order) are identical on every run.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
#: The first dev accounts derived from DEV_MNEMONIC. Index 0 deploys and owns tokens.
DEV_ACCOUNTS = (
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
)
DEPLOYER = DEV_ACCOUNTS[0]

_PLATFORM_PACKAGES = {
    ("Linux", "x86_64"): "anvil-linux-amd64",
    ("Linux", "aarch64"): "anvil-linux-arm64",
    ("Darwin", "x86_64"): "anvil-darwin-amd64",
    ("Darwin", "arm64"): "anvil-darwin-arm64",
}


class AnvilNotFound(RuntimeError):
    """The anvil binary is not installed where we look for it."""


class AnvilStartError(RuntimeError):
    """anvil exited or did not answer JSON-RPC in time."""


class TxFailed(RuntimeError):
    """A dev-chain transaction was mined but reverted."""


# --------------------------------------------------------------------------- anvil process


def find_anvil() -> Path:
    """Locate the anvil binary: ``$ANVIL_BIN``, else the one ``npm ci`` installed."""
    env = os.environ.get("ANVIL_BIN")
    if env:
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise AnvilNotFound(f"ANVIL_BIN={env} is not an executable file")
        return path
    candidates = []
    pkg = _PLATFORM_PACKAGES.get((platform.system(), platform.machine()))
    if pkg:
        # Prefer the native binary over the node wrapper in .bin: signals reach anvil
        # directly and startup skips a node process.
        candidates.append(PROJECT_ROOT / "node_modules" / "@foundry-rs" / pkg / "bin" / "anvil")
    candidates.append(PROJECT_ROOT / "node_modules" / ".bin" / "anvil")
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise AnvilNotFound(
        f"anvil not found under {PROJECT_ROOT / 'node_modules'}; run `npm ci` in {PROJECT_ROOT} "
        "(or set ANVIL_BIN to an anvil executable)"
    )


@dataclass(eq=False)  # identity semantics: it wraps a live process
class Anvil:
    """A running anvil process; use as a context manager or call :meth:`stop`."""

    chain_id: int
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    _log_file: Any = field(repr=False, default=None)
    _owns_log: bool = field(repr=False, default=False)  # temp log: removed on stop

    @property
    def url(self) -> str:
        """JSON-RPC HTTP endpoint."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Terminate anvil (SIGTERM, then SIGKILL after 5 s) and close its log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._owns_log:
            self.log_path.unlink(missing_ok=True)
            self._owns_log = False
        _RUNNING.discard(self)

    def __enter__(self) -> Anvil:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# Anvils this process started and has not stopped; stopped at interpreter exit so a test
# run or CLI that dies on an exception does not leave nodes holding ports.
_RUNNING: set[Anvil] = set()


@atexit.register
def _stop_all() -> None:
    for node in list(_RUNNING):
        node.stop()


def start_anvil(
    chain_id: int,
    port: int | None = None,
    *,
    log_path: str | Path | None = None,
    startup_timeout: float = 30.0,
    extra_args: Sequence[str] = (),
) -> Anvil:
    """Start anvil on 127.0.0.1 (a free port if ``port`` is None) and wait until it answers."""
    binary = find_anvil()
    owns_log = log_path is None
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix=f"anvil-{chain_id}-", suffix=".log")
        os.close(fd)
        log_path = name
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = log_path.open("wb")
    # --port 0 lets the kernel choose, so parallel test workers never race for a port;
    # the chosen port is read back from anvil's "Listening on" line.
    args = [
        str(binary),
        "--host",
        "127.0.0.1",
        "--port",
        str(port or 0),
        "--chain-id",
        str(chain_id),
        "--mnemonic",
        DEV_MNEMONIC,
        "--accounts",
        str(len(DEV_ACCOUNTS)),
        *extra_args,
    ]
    # Fixed argv and no shell, so nothing here is interpreted by a shell.
    proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
    )
    anvil = Anvil(chain_id=chain_id, port=port or 0, process=proc, log_path=log_path)
    anvil._log_file = log_file
    anvil._owns_log = owns_log
    _RUNNING.add(anvil)
    try:
        anvil.port = _wait_listening(proc, log_path, startup_timeout)
        _wait_rpc(anvil.url, chain_id, proc, log_path, startup_timeout)
    except BaseException:
        anvil.stop()
        raise
    return anvil


def _wait_listening(proc: subprocess.Popen[bytes], log_path: Path, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    marker = "Listening on 127.0.0.1:"
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        idx = text.find(marker)
        if idx >= 0:
            digits = ""
            for ch in text[idx + len(marker) :]:
                if not ch.isdigit():
                    break
                digits += ch
            if digits and text[idx + len(marker) + len(digits) :][:1] in ("\n", "\r", " "):
                return int(digits)
        if proc.poll() is not None:
            raise AnvilStartError(f"anvil exited with code {proc.returncode}; log:\n{text[-2000:]}")
        time.sleep(0.05)
    raise AnvilStartError(f"anvil did not report a listening port in {timeout:g}s; see {log_path}")


def _wait_rpc(
    url: str, chain_id: int, proc: subprocess.Popen[bytes], log_path: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    w3 = _w3(url, timeout=2.0)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise AnvilStartError(f"anvil exited with code {proc.returncode}; log:\n{tail}")
        try:
            if w3.eth.chain_id == chain_id:
                return
            raise AnvilStartError(f"anvil at {url} reports the wrong chain id")
        except AnvilStartError:
            raise
        except Exception:  # not up yet (any transport error): keep polling until the deadline
            time.sleep(0.05)
    raise AnvilStartError(f"anvil at {url} did not answer JSON-RPC in {timeout:g}s")


# --------------------------------------------------------------------------- chain helpers


@cache
def load_artifact() -> dict[str, Any]:
    """Return the committed ReserveToken artifact (abi, bytecode, compiler, source sha256)."""
    return json.loads(ARTIFACT_PATH.read_text())


def _w3(rpc_url: str, timeout: float = 30.0) -> Web3:
    return Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))


def _token(w3: Web3, token: str) -> Any:
    return w3.eth.contract(address=to_checksum_address(token), abi=load_artifact()["abi"])


def _send(w3: Web3, fn: Any, sender: str) -> int:
    """Send a contract transaction from an unlocked dev account; return its block number."""
    try:
        tx_hash = fn.transact({"from": to_checksum_address(sender)})
    except ContractLogicError as exc:
        # Gas estimation hits the revert first; name the custom error instead of raw hex.
        raise TxFailed(f"{fn.fn_name} reverted: {_decode_revert(exc.data)}") from exc
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    if receipt["status"] != 1:
        raise TxFailed(f"transaction {tx_hash.to_0x_hex()} reverted")
    return int(receipt["blockNumber"])


def _decode_revert(data: Any) -> str:
    """Turn revert data into ``ErrorName(args)`` using the artifact's ABI, if it matches."""
    if not isinstance(data, str) or len(data) < 10:
        return repr(data)
    for item in load_artifact()["abi"]:
        if item["type"] != "error":
            continue
        types = [i["type"] for i in item["inputs"]]
        signature = f"{item['name']}({','.join(types)})"
        if function_signature_to_4byte_selector(signature).hex() == data[2:10]:
            args = abi_decode(types, bytes.fromhex(data[10:]))
            return f"{item['name']}{tuple(args)!r}"
    return data


def deploy_token(
    rpc_url: str, name: str, symbol: str, decimals: int, *, deployer: str = DEPLOYER
) -> str:
    """Deploy a ReserveToken owned by ``deployer``; return its checksummed address."""
    w3 = _w3(rpc_url)
    art = load_artifact()
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    tx_hash = factory.constructor(name, symbol, decimals).transact(
        {"from": to_checksum_address(deployer)}
    )
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    if receipt["status"] != 1 or not receipt["contractAddress"]:
        raise TxFailed(f"deploying {symbol} failed (tx {tx_hash.to_0x_hex()})")
    return to_checksum_address(receipt["contractAddress"])


def mint(rpc_url: str, token: str, to: str, amount: int, *, sender: str = DEPLOYER) -> int:
    """Mint ``amount`` base units to ``to``; return the block the mint landed in."""
    _check_amount(amount)
    w3 = _w3(rpc_url)
    return _send(w3, _token(w3, token).functions.mint(to_checksum_address(to), amount), sender)


def burn(rpc_url: str, token: str, frm: str, amount: int, *, sender: str = DEPLOYER) -> int:
    """Burn ``amount`` base units held by ``frm``; return the block the burn landed in."""
    _check_amount(amount)
    w3 = _w3(rpc_url)
    return _send(w3, _token(w3, token).functions.burn(to_checksum_address(frm), amount), sender)


def transfer(rpc_url: str, token: str, frm: str, to: str, amount: int) -> int:
    """Transfer ``amount`` base units from dev account ``frm``; return the block number."""
    _check_amount(amount)
    w3 = _w3(rpc_url)
    return _send(w3, _token(w3, token).functions.transfer(to_checksum_address(to), amount), frm)


def mine(rpc_url: str, n: int = 1) -> int:
    """Mine ``n`` empty blocks; return the new head block number."""
    if n < 1:
        raise ValueError("n must be >= 1")
    w3 = _w3(rpc_url)
    _rpc(w3, "anvil_mine", [hex(n)])
    return int(w3.eth.block_number)


def reorg(rpc_url: str, depth: int) -> int:
    """Replace the newest ``depth`` blocks with empty ones (``anvil_reorg``); return the head."""
    w3 = _w3(rpc_url)
    _rpc(w3, "anvil_reorg", [depth, []])
    return int(w3.eth.block_number)


def head(rpc_url: str) -> int:
    """Current block number."""
    return int(_w3(rpc_url).eth.block_number)


def _rpc(w3: Web3, method: str, params: list[Any]) -> Any:
    resp = w3.provider.make_request(method, params)  # type: ignore[arg-type]
    if "error" in resp:
        raise RuntimeError(f"{method} failed: {resp['error']}")
    return resp.get("result")


def _check_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise ValueError(f"amount must be a non-negative int of base units, got {amount!r}")


# --------------------------------------------------------------------------- CLI


def _amount_from_args(args: argparse.Namespace) -> int:
    if args.amount is not None:
        return args.amount
    decimals = int(_token(_w3(args.rpc), args.token).functions.decimals().call())
    return tokens_to_raw(args.tokens, decimals)


def tokens_to_raw(tokens: str | Decimal, decimals: int) -> int:
    """Exact whole-tokens -> base units; refuses amounts finer than one base unit."""
    try:
        value = Decimal(tokens)
    except InvalidOperation:
        raise SystemExit(f"amount {tokens!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise SystemExit(f"amount {tokens} must be a finite non-negative number")
    # Shift the exponent on the digit tuple: Decimal arithmetic would round at 28 digits.
    sign, digits, exponent = value.as_tuple()
    shifted = Decimal((sign, digits, int(exponent) + decimals))
    if shifted != shifted.to_integral_value():
        raise SystemExit(f"amount {tokens} is finer than 1 base unit at {decimals} decimals")
    return int(shifted)


def _add_amount(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--amount", type=int, help="amount in base units (integer)")
    g.add_argument("--tokens", help="amount in whole tokens, e.g. 12.5 (uses decimals())")


def _parse_chain(spec: str) -> tuple[int, int | None]:
    chain, _, port = spec.partition(":")
    return int(chain), (int(port) if port else None)


def _parse_token(spec: str) -> dict[str, Any]:
    parts = spec.split(":", 3)
    if len(parts) < 3:
        raise argparse.ArgumentTypeError("token spec is CHAIN_ID:SYMBOL:DECIMALS[:NAME]")
    return {
        "chain_id": int(parts[0]),
        "symbol": parts[1],
        "decimals": int(parts[2]),
        "name": parts[3] if len(parts) > 3 else parts[1],
    }


def _cmd_serve(args: argparse.Namespace) -> int:
    chains = [_parse_chain(c) for c in args.chain]
    tokens = [_parse_token(t) for t in args.token]
    known = {cid for cid, _ in chains}
    for t in tokens:
        if t["chain_id"] not in known:
            raise SystemExit(f"token {t['symbol']} names chain {t['chain_id']}, not in --chain")
    log_dir = Path(args.log_dir) if args.log_dir else None
    nodes: list[Anvil] = []
    try:
        for cid, port in chains:
            log = log_dir / f"anvil-{cid}.log" if log_dir else None
            nodes.append(start_anvil(cid, port, log_path=log))
        out: dict[str, Any] = {"deployer": DEPLOYER, "chains": []}
        for node in nodes:
            deployed = []
            for t in (t for t in tokens if t["chain_id"] == node.chain_id):
                addr = deploy_token(node.url, t["name"], t["symbol"], t["decimals"])
                if args.initial_supply:
                    raw = tokens_to_raw(args.initial_supply, t["decimals"])
                    mint(node.url, addr, DEPLOYER, raw)
                deployed.append({**t, "address": addr})
            out["chains"].append(
                {"chain_id": node.chain_id, "rpc_url": node.url, "tokens": deployed}
            )
        text = json.dumps(out, indent=2)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            # Write-then-rename so a watcher never reads a half-written file.
            tmp = Path(f"{args.out}.tmp")
            tmp.write_text(text + "\n")
            tmp.replace(args.out)
        print(text, flush=True)
        if args.no_wait:
            return 0
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        print("anvil running; Ctrl-C to stop", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            for node in nodes:
                if node.process.poll() is not None:
                    print(f"anvil for chain {node.chain_id} exited", file=sys.stderr)
                    return 1
        return 0
    finally:
        for node in nodes:
            node.stop()


def _cmd_mint(args: argparse.Namespace) -> int:
    block = mint(args.rpc, args.token, args.to, _amount_from_args(args))
    print(f"minted in block {block}")
    return 0


def _cmd_burn(args: argparse.Namespace) -> int:
    block = burn(args.rpc, args.token, args.frm, _amount_from_args(args))
    print(f"burned in block {block}")
    return 0


def _cmd_mine(args: argparse.Namespace) -> int:
    print(f"head is block {mine(args.rpc, args.blocks)}")
    return 0


def _cmd_supply(args: argparse.Namespace) -> int:
    w3 = _w3(args.rpc)
    chain_id = args.chain_id if args.chain_id is not None else int(w3.eth.chain_id)
    decimals = args.decimals
    if decimals is None:
        decimals = int(_token(w3, args.token).functions.decimals().call())
    obs = read_supply(
        [args.rpc],
        chain_id,
        args.token,
        decimals,
        excluded=args.exclude,
        confirmations=args.confirmations,
        block=args.block,
    )
    print(
        json.dumps(
            {
                "chain_id": obs.chain_id,
                "token": obs.token,
                "block_number": obs.block_number,
                "block_hash": obs.block_hash,
                "block_timestamp": obs.block_timestamp.isoformat(),
                "decimals": obs.decimals,
                "total_supply_raw": str(obs.total_supply_raw),
                "excluded_balances": {k: str(v) for k, v in obs.excluded_balances.items()},
                "circulating_raw": str(obs.circulating_raw),
                "circulating_tokens": str(to_tokens(obs.circulating_raw, obs.decimals)),
            },
            indent=2,
        )
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Argument parser for ``python -m audits.core.devchain``."""
    parser = argparse.ArgumentParser(prog="python -m audits.core.devchain", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="start anvil chain(s) and deploy tokens")
    p.add_argument(
        "--chain",
        action="append",
        default=[],
        metavar="CHAIN_ID[:PORT]",
        help="chain to start (repeatable); default 31337:8545",
    )
    p.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="CHAIN_ID:SYMBOL:DECIMALS[:NAME]",
        help="ReserveToken to deploy (repeatable)",
    )
    p.add_argument("--initial-supply", help="whole tokens minted to the deployer per token")
    p.add_argument("--out", help="write deployed addresses as JSON to this file")
    p.add_argument("--log-dir", help="directory for anvil logs (default: temp files)")
    p.add_argument("--no-wait", action="store_true", help="exit after deploying (stops anvil)")
    p.set_defaults(func=_cmd_serve)

    for name, who, func in (("mint", "--to", _cmd_mint), ("burn", "--frm", _cmd_burn)):
        p = sub.add_parser(name, help=f"{name} ReserveToken (as the owner dev account)")
        p.add_argument("--rpc", required=True)
        p.add_argument("--token", required=True)
        p.add_argument(who, required=True, dest=who[2:])
        _add_amount(p)
        p.set_defaults(func=func)

    p = sub.add_parser("mine", help="mine empty blocks")
    p.add_argument("--rpc", required=True)
    p.add_argument("--blocks", type=int, default=1)
    p.set_defaults(func=_cmd_mine)

    p = sub.add_parser("supply", help="read supply with audits.core.evm.read_supply")
    p.add_argument("--rpc", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--chain-id", type=int, help="expected chain id (default: node's)")
    p.add_argument("--decimals", type=int, help="expected decimals (default: token's)")
    p.add_argument("--exclude", action="append", default=[], metavar="ADDRESS")
    p.add_argument("--confirmations", type=int, default=0)
    p.add_argument("--block", type=int)
    p.set_defaults(func=_cmd_supply)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    args = build_parser().parse_args(argv)
    if args.command == "serve" and not args.chain:
        args.chain = ["31337:8545"]
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
