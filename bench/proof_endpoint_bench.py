"""Benchmark: the public proof endpoint under gunicorn, loaded with wrk over loopback (issue
12: median <= 5 ms at 32 concurrent connections, and at least 0.5x the throughput of a bare
Django JsonResponse view measured in the same run with the same gunicorn configuration).

In a throw-away PostgreSQL database a snapshot of --accounts accounts (one asset) is built by
the real service; wrk then asks for the proofs of 1,000 accounts picked at random, in random
order (a Lua script rotates the paths), at 32 connections. The floor is a bare view returning
`JsonResponse({"ok": True})` through the same settings, middleware and gunicorn workers
(bench/bench_urls.py adds it; nothing else differs).

Needs Debian's wrk (`apt-get install wrk`).

    .venv/bin/python bench/proof_endpoint_bench.py
    .venv/bin/python bench/proof_endpoint_bench.py --accounts 100000 --seconds 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_NAME = os.environ.get("BENCH_PG_DATABASE", "porapp_bench12p")
PG_BENCH = f"postgres://postgres@127.0.0.1:5432/{PG_NAME}"
GUNICORN = ["-w", "2", "--worker-class", "gthread", "--threads", "8", "--log-level", "warning"]
LUA = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
math.randomseed(12)
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(accounts: int, work: Path) -> list[str]:
    """Build the snapshot with the real service; return 1,000 proof paths."""
    import django

    django.setup()
    from datetime import UTC, datetime

    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from audits import liabilities
    from audits.core.liabilities import nonce_for
    from audits.core.merkle.format import account_hash
    from audits.models import Asset, PlatformOperator

    call_command("migrate", verbosity=0)
    Asset.objects.get_or_create(code="AAPLx", defaults={"name": "Apple", "isin": "US0378331005"})
    user, _ = get_user_model().objects.get_or_create(username="bench-operator")
    PlatformOperator.objects.get_or_create(user=user)
    csv = work / "snapshot.csv"
    with csv.open("wb") as out:
        out.write(b"account_id,asset,balance\n")
        out.write("".join(f"user-{i:09d},AAPLx,{i % 997}.5\n" for i in range(accounts)).encode())
    with csv.open("rb") as handle:
        snapshot, _ = liabilities.receive(
            user=user,
            chunks=iter(lambda: handle.read(1 << 20), b""),
            as_of=datetime(2026, 11, 27, 21, 0, tzinfo=UTC),
        )
    snapshot = liabilities.build(snapshot.pk)
    assert snapshot.status == "published", snapshot.failure
    secret = bytes(snapshot.secret)
    picked = random.Random(7).sample(range(accounts), 1000)
    return [
        f"/api/v1/snapshots/{snapshot.pk}/proofs/"
        + account_hash(f"user-{i:09d}", nonce_for(secret, f"user-{i:09d}")).hex()
        for i in picked
    ]


def wrk(url: str, script: Path | None, seconds: int) -> dict:
    cmd = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    median = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    assert median, out
    scale = {"us": 0.001, "ms": 1, "s": 1000}[median.group(2)]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"median_ms": float(median.group(1)) * scale, "rps": rps,
            "non_2xx": int(errors.group(1)) if errors else 0}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    subprocess.run(["psql", PG_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {PG_NAME}"], check=True)
    subprocess.run(["psql", PG_ADMIN, "-qc", f"CREATE DATABASE {PG_NAME}"], check=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "var") as tmp:
        work = Path(tmp)
        env = {**os.environ, "DATABASE_URL": PG_BENCH, "DEBUG": "0", "LOG_LEVEL": "WARNING",
               "SECRET_KEY": "bench-" + "x" * 50, "ALLOWED_HOSTS": "127.0.0.1",
               # Plain HTTP on loopback (TLS ends at the proxy in production).
               "SECURE_SSL_REDIRECT": "0",
               "PORAPP_VAR_DIR": tmp, "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
               "PYTHONPATH": str(ROOT)}  # fmt: skip
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        paths = seed(args.accounts, work)
        from django.db import connections

        connections.close_all()  # so the database can be dropped at the end
        (work / "paths.txt").write_text("\n".join(paths) + "\n")
        script = work / "paths.lua"
        script.write_text(LUA % (work / "paths.txt"))
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "porapp.wsgi", "-b", f"127.0.0.1:{port}", *GUNICORN],
            env=env, cwd=ROOT,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            # Every measured answer must be a real 200 with a proof (wrk counts 3xx as fine).
            for url in (f"{base}/bench/bare", base + paths[0]):
                with urllib.request.urlopen(url) as answer:
                    assert answer.status == 200, (url, answer.status)
                    assert answer.url == url, ("redirected", url, answer.url)
            sample = json.loads(urllib.request.urlopen(base + paths[0]).read())
            assert sample["proofs"][0]["format"] == "por-mst-v1", sample
            wrk(f"{base}/bench/bare", None, 2)  # warm both workers
            wrk(base + paths[0], script, 2)
            # Alternating rounds: this VM's speed drifts, so each proof round has a bare round
            # beside it; the figures are the medians of the rounds.
            rounds = []
            for _ in range(args.rounds):
                rounds.append(
                    (wrk(f"{base}/bench/bare", None, args.seconds),
                     wrk(base + paths[0], script, args.seconds))
                )  # fmt: skip
        finally:
            server.terminate()
            server.wait()
    assert all(r["non_2xx"] == 0 for pair in rounds for r in pair), rounds

    def median(values):
        return round(statistics.median(values), 2)

    result = {
        "accounts": args.accounts,
        "gunicorn": " ".join(GUNICORN),
        "rounds": [
            {"bare": b, "proof": p, "throughput_vs_bare": round(p["rps"] / b["rps"], 2)}
            for b, p in rounds
        ],
        "proof_median_ms": median([p["median_ms"] for _, p in rounds]),
        "proof_rps": median([p["rps"] for _, p in rounds]),
        "bare_median_ms": median([b["median_ms"] for b, _ in rounds]),
        "bare_rps": median([b["rps"] for b, _ in rounds]),
        "throughput_vs_bare": median([p["rps"] / b["rps"] for b, p in rounds]),
    }
    print(json.dumps(result, indent=2))
    subprocess.run(["psql", PG_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {PG_NAME}"], check=True)


if __name__ == "__main__":
    main()
