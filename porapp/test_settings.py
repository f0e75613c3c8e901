"""Settings for the test suite: the real settings plus a throw-away key and fast hashing."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

from porapp.settings import *  # noqa: F403
from porapp.settings import DATABASES, VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# A file, not :memory:, so a Celery worker in another process can open the test database.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}

# One queue per test process: parallel test processes (xdist) sharing a broker must never take
# each other's tasks, since each has its own test database. Celery workers started by the
# tests are told the queue of the process that started them.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("PORAPP_TEST_QUEUE") or f"porapp-test-{os.getpid()}"
CELERY_WEBHOOK_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}-webhooks"
CELERY_TASK_ROUTES = {"audits.tasks.deliver_webhook": {"queue": CELERY_WEBHOOK_QUEUE}}

# The tests' webhook receivers listen on 127.0.0.1; the refusal tests turn this off.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
