"""Run the whole demo service: web server, Celery worker and beat. Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Migrate, load demo data, then run web + worker + beat until Ctrl-C."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args, addr: str, **options) -> None:
        call_command("migrate", verbosity=0)
        call_command("load_demo")
        py = sys.executable
        commands = {
            "web": [py, "manage.py", "runserver", addr, "--noreload"],
            "worker": [py, "-m", "celery", "-A", "porapp", "worker", "-l", "INFO", "-c", "2"],
            "beat": [py, "-m", "celery", "-A", "porapp", "beat", "-l", "INFO"],
        }
        env = dict(os.environ)
        # Explicit handlers: a shell may start us with SIGINT ignored (e.g. as a background job),
        # and SIGTERM from a supervisor should stop the children too.
        signal.signal(signal.SIGINT, _raise_interrupt)
        signal.signal(signal.SIGTERM, _raise_interrupt)
        procs: dict[str, subprocess.Popen] = {}
        for name, cmd in commands.items():
            # Own process groups, so Ctrl-C reaches them only through us and stops them in order.
            procs[name] = subprocess.Popen(cmd, env=env, start_new_session=True)
        self.stdout.write(
            self.style.SUCCESS(f"porapp demo on http://{addr}/admin/  (Ctrl-C stops)")
        )
        try:
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


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
