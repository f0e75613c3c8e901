"""Django settings. Every deployment-specific value comes from the environment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from porapp.env import env_bool, env_duration, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("PORAPP_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)

# Without DEBUG a missing key must stop the process: a guessable key forges sessions.
_DEV_SECRET_KEY = "insecure-dev-only-key-never-use-in-production"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET_KEY if DEBUG else None)
if not DEBUG and SECRET_KEY == _DEV_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set to a secret value when DEBUG is off.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "audits.apps.PorappAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "csp",
    "audits",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

# A strict Content-Security-Policy on every response (django-csp): scripts, styles, images
# and fetches only from this origin, nothing inline, no plugins, no framing, forms post only
# here. Whatever text an attacker got into a page could not run or restyle it, so it could
# not change what the in-browser verifier says. docs/public-pages.md explains each directive.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

ROOT_URLCONF = "porapp.urls"
WSGI_APPLICATION = "porapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'porapp.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The worker, beat and web server share the file: WAL lets readers run beside a writer,
    # IMMEDIATE takes the write lock up front instead of failing half-way through a transaction.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# WhiteNoise serves static files from the app server (no CDN, no extra web server). Without a
# collectstatic run (demo, tests) it finds files where they live.
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", True)

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/portal/"

# --- Security: strict by default outside DEBUG, so `check --deploy` is clean when configured.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# Health probes come over plain HTTP from the orchestrator.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# Uploads: Django refuses larger request bodies before any view code runs.
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_UPLOAD_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# A statement sent as several pages and still missing some this long after its first page
# arrived is flagged in the admin.
STATEMENT_PAGES_DEADLINE = env_duration("STATEMENT_PAGES_DEADLINE", timedelta(hours=24))
# How long an upload's Idempotency-Key is remembered (published in docs/statement-formats.md).
IDEMPOTENCY_KEY_TTL = env_duration("IDEMPOTENCY_KEY_TTL", timedelta(hours=24))
# A statement whose checks hit an unexpected error this many times becomes `failed` (final
# until an admin retries it), so a poison upload is not retried for ever.
STATEMENT_MAX_CHECK_ATTEMPTS = env_int("STATEMENT_MAX_CHECK_ATTEMPTS", 3)

# --- REST API conventions shared by every endpoint.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "audits.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "audits.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "audits.api.problems.problem_exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "porapp API",
    "DESCRIPTION": (
        "Proof-of-reserve auditing for tokenized stocks and ETFs. Errors are RFC 9457 "
        "application/problem+json documents."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets several API fields share get one schema name each (the collateral feeds).
    "ENUM_NAME_OVERRIDES": {
        "EligibilityStateEnum": "audits.choices.EligibilityState",
        "ReconciliationStatusEnum": "audits.choices.ReconciliationStatus",
    },
}

# --- Celery. The default broker is kombu's filesystem transport: real messages, a real worker,
# no server to install. Production sets CELERY_BROKER_URL to redis:// or amqp://.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_DIR = Path(env_str("CELERY_BROKER_DIR", str(VAR_DIR / "broker")))
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (CELERY_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "porapp")
# Webhook deliveries wait on other people's servers (up to WEBHOOK_TIMEOUT each), so they have
# a queue of their own with its own worker: a slow receiver never holds up a reconciliation.
CELERY_WEBHOOK_QUEUE = env_str("CELERY_WEBHOOK_QUEUE", f"{CELERY_TASK_DEFAULT_QUEUE}-webhooks")
CELERY_TASK_ROUTES = {"audits.tasks.deliver_webhook": {"queue": CELERY_WEBHOOK_QUEUE}}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Time limits of the supply tasks are set on the tasks themselves (audits/tasks/supply.py,
# from audits.supply.READ_*), next to the claim lease they must stay below.

# --- On-chain supply. The admin refuses a chain read with fewer confirmations than this: a
# reading that shallow can be reorganised away after it counted. Per chain id, e.g.
# SUPPLY_MIN_CONFIRMATIONS_BY_CHAIN="1:12,8453:10".
SUPPLY_MIN_CONFIRMATIONS = env_int("SUPPLY_MIN_CONFIRMATIONS", 2)


def _chain_minimums(items: list[str]) -> dict[int, int]:
    minimums = {}
    for item in items:
        chain_id, sep, minimum = item.partition(":")
        if not (sep and chain_id.strip().isdigit() and minimum.strip().isdigit()):
            raise ImproperlyConfigured(
                f"SUPPLY_MIN_CONFIRMATIONS_BY_CHAIN: {item!r} is not CHAIN_ID:CONFIRMATIONS."
            )
        minimums[int(chain_id)] = int(minimum)
    return minimums


SUPPLY_MIN_CONFIRMATIONS_BY_CHAIN = _chain_minimums(
    env_list("SUPPLY_MIN_CONFIRMATIONS_BY_CHAIN", [])
)

# --- Reconciliation and collateral eligibility (docs/reconciliation.md). A manual freeze can
# only be lifted by a different admin than the one who froze it, unless this is off.
UNFREEZE_APPROVER_MUST_DIFFER = env_bool("UNFREEZE_APPROVER_MUST_DIFFER", True)
# Assets reconciled per transaction by the every-minute run (locks held for one batch).
RECONCILE_BATCH_SIZE = env_int("RECONCILE_BATCH_SIZE", 500)

# --- Logging: one JSON object per line, ready for any log pipeline.
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    # LOG_FORMAT=plain: readable lines for a person at a console (`rundemo` sets it).
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain" if env_str("LOG_FORMAT", "json") == "plain" else "json",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # urllib3 logs request paths at DEBUG, and RPC URLs can carry API keys in them.
        "urllib3": {"level": "INFO"},
        "celery": {"level": LOG_LEVEL},
    },
}

# --- Webhooks to margin engines (docs/webhooks.md). Receivers on loopback, private, link-local
# and other non-public addresses are refused unless this is set (tests and the local demo).
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)
# Seconds one delivery attempt may take, connecting to reading the answer.
WEBHOOK_TIMEOUT = env_int("WEBHOOK_TIMEOUT", 10)
# An endpoint whose every attempt has failed for this long is disabled and admins are mailed.
WEBHOOK_DISABLE_AFTER = env_duration("WEBHOOK_DISABLE_AFTER", timedelta(days=5))

# --- Signed attestations (docs/attestation-format.md). PEM files of Ed25519 private keys,
# comma-separated; the FIRST signs, the others are kept for rotation. Never in the database.
ATTESTATION_KEYS = env_list("ATTESTATION_KEY_FILES", [])
# A change of figures only (no status or eligibility change) is attested at most this often.
ATTESTATION_MIN_INTERVAL = env_duration("ATTESTATION_MIN_INTERVAL", timedelta(minutes=5))
# With nothing changed, one attestation at least this often.
ATTESTATION_HEARTBEAT = env_duration("ATTESTATION_HEARTBEAT", timedelta(hours=24))

# --- Liability snapshots (docs/liabilities.md). Raw uploads and tree files go through Django's
# storage API under the "liabilities" alias: a directory under var/ by default; S3-compatible
# object storage (django-storages) when web servers and workers run on different machines,
# with tree files cached locally for proof reads.
LIABILITY_STORAGE = env_str("LIABILITY_STORAGE", "local")
if LIABILITY_STORAGE == "s3":
    _liability_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("LIABILITY_S3_BUCKET"),
            "endpoint_url": env_str("LIABILITY_S3_ENDPOINT_URL", "") or None,
            "region_name": env_str("LIABILITY_S3_REGION", "") or None,
            "location": env_str("LIABILITY_S3_PREFIX", ""),
            "default_acl": None,
            "file_overwrite": False,
        },
    }
elif LIABILITY_STORAGE == "local":
    _liability_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "liabilities")},
    }
else:
    raise ImproperlyConfigured("LIABILITY_STORAGE must be 'local' or 's3'.")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "liabilities": _liability_storage,
}
# Where tree files fetched from object storage are kept for proof reads (by SHA-256).
LIABILITY_CACHE_DIR = Path(env_str("LIABILITY_CACHE_DIR", str(VAR_DIR / "tree-cache")))
# Largest snapshot upload accepted, in bytes.
LIABILITY_MAX_UPLOAD = env_int("LIABILITY_MAX_UPLOAD", 2 * 1024**3)
