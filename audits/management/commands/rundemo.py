"""Run the whole demo service: demo chains, web server, Celery worker and beat. Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from audits import attestation_keys, demo
from audits.core import demo_webhooks


class Command(BaseCommand):
    help = "Migrate, load demo data, then run demo chains + web + worker + beat until Ctrl-C."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args, addr: str, **options) -> None:
        # The demo console is for a person: plain log lines (production keeps JSON), here and
        # in every process started below. Webhooks go to the receiver on loopback.
        os.environ.setdefault("LOG_FORMAT", "plain")
        os.environ["WEBHOOK_ALLOW_PRIVATE_ADDRESSES"] = "1"
        settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
        # A demo attestation key under var/ (made once), for this process and its children.
        if not os.environ.get(attestation_keys.ENV_VAR):
            demo_key = settings.VAR_DIR / "demo-attestation-key.pem"
            if not demo_key.exists():
                attestation_keys.write_key(demo_key)
            os.environ[attestation_keys.ENV_VAR] = str(demo_key)
            settings.ATTESTATION_KEYS = [str(demo_key)]
        if os.environ["LOG_FORMAT"] == "plain":
            demo.plain_console_logging()
        call_command("migrate", verbosity=0)
        call_command("load_demo")
        py = sys.executable
        commands = {
            "web": [py, "manage.py", "runserver", addr, "--noreload"],
            "worker": [
                py, "-m", "celery", "-A", "porapp", "worker", "-l", "INFO", "-c", "2",
                "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "-n", "main@%h",
            ],
            # Webhook deliveries on a worker of their own: a slow receiver delays no run.
            "webhooks": [
                py, "-m", "celery", "-A", "porapp", "worker", "-l", "INFO", "-c", "2",
                "-Q", settings.CELERY_WEBHOOK_QUEUE, "-n", "webhooks@%h",
            ],
            "beat": [py, "-m", "celery", "-A", "porapp", "beat", "-l", "INFO"],
        }  # fmt: skip
        env = dict(os.environ)
        # Demo webhook receivers run on this machine (docs/webhooks.md).
        env.setdefault("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "1")
        # Explicit handlers: a shell may start us with SIGINT ignored (e.g. as a background job),
        # and SIGTERM from a supervisor should stop the children too.
        signal.signal(signal.SIGINT, _raise_interrupt)
        signal.signal(signal.SIGTERM, _raise_interrupt)
        procs: dict[str, subprocess.Popen] = {}
        chain_file = settings.VAR_DIR / "devchain.json"
        log_dir = settings.VAR_DIR / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        try:
            # The demo chains first: the worker's first supply reads need them.
            chain_file.unlink(missing_ok=True)
            with (log_dir / "devchain.out").open("wb") as chain_out:
                procs["chain"] = subprocess.Popen(
                    demo.devchain_serve_command(chain_file, log_dir),
                    env=env,
                    stdout=chain_out,
                    start_new_session=True,
                )
            self._wait_for_chains(procs["chain"], chain_file)
            demo.configure_demo_chains(chain_file)
            demo.mint_demo_supply(chain_file)
            # A fresh chain holds none of an earlier run's demo_breach mints.
            for stale in settings.VAR_DIR.glob("demo-breach-*.json"):
                stale.unlink()
            webhook_log = self._start_webhook_receiver()
            self._start_healthy()
            for name, cmd in commands.items():
                # Own process groups: Ctrl-C reaches them only through us, stopped in order.
                procs[name] = subprocess.Popen(cmd, env=env, start_new_session=True)
            self.stdout.write(
                self.style.SUCCESS(f"porapp demo on http://{addr}/admin/  (Ctrl-C stops)")
            )
            for chain_id, port in demo.DEMO_CHAIN_PORTS.items():
                self.stdout.write(f"  demo chain {chain_id}: http://127.0.0.1:{port}")
            self.stdout.write(
                f"  home page: http://{addr}/   eligibility feed: "
                f"http://{addr}/api/v1/collateral/eligibility\n"
                f"  signed attestations: http://{addr}/attestations/  "
                "(open one and press Verify: your browser checks the signature)\n"
                f"  webhook receiver log: {webhook_log}\n"
                "  Break it: DEBUG=1 .venv/bin/python manage.py demo_breach AAPLx   "
                "(mints unbacked AAPLx; it freezes within a minute)\n"
                "  Mend it:  DEBUG=1 .venv/bin/python manage.py demo_restore AAPLx  "
                "(then approve the unfreeze in the admin)"
            )
            while all(p.poll() is None for p in procs.values()):
                time.sleep(0.5)
            dead = [n for n, p in procs.items() if p.poll() is not None]
            self.stderr.write(f"{', '.join(dead)} exited; stopping the demo.")
        except KeyboardInterrupt:
            self.stdout.write("Stopping...")
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    # The main process only: Celery then shuts its pool down cleanly.
                    proc.terminate()
            for proc in procs.values():
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)

    def _start_webhook_receiver(self) -> Path:
        """The demo subscriber: a loopback server logging each verified event."""
        log = settings.VAR_DIR / "demo-webhooks.log"
        receiver = demo_webhooks.Receiver(log)
        server = demo_webhooks.serve(receiver)
        admin = get_user_model().objects.get(username="admin")
        receiver.secret = demo.register_demo_webhook(demo_webhooks.url_of(server), admin)
        if receiver.secret is None:
            self.stdout.write("  (this build has no webhook delivery: the receiver stays idle)")
        return log

    def _start_healthy(self) -> None:
        """Read the fresh supply, reconcile until healthy, approve as the admin would."""
        demo.read_demo_supply()
        admin = get_user_model().objects.get(username="admin")
        self.stdout.write(
            "Demo start: every asset starts frozen until its evidence was healthy for N runs "
            "in a row and an admin approved the unfreeze (admin: Collateral eligibility, action "
            '"Approve unfreeze"). Doing that now as the demo admin:'
        )
        for line in demo.start_healthy(admin):
            self.stdout.write(f"  {line}")

    def _wait_for_chains(self, proc: subprocess.Popen, chain_file, timeout: float = 90) -> None:
        """Wait for devchain's output file, written once every token is deployed."""
        deadline = time.monotonic() + timeout
        while not chain_file.exists():
            if proc.poll() is not None:
                raise CommandError(
                    f"the demo chains did not start (exit {proc.returncode}); see "
                    f"{settings.VAR_DIR / 'log'} (ports {demo.DEMO_CHAIN_PORTS} must be free)"
                )
            if time.monotonic() > deadline:
                raise CommandError(f"the demo chains were not ready after {timeout:g}s")
            time.sleep(0.2)


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
