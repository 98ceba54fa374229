"""Settings, read from the environment only (django-environ).

Development (DEBUG=true, the default) works with no environment at all: keys
come from a generated, git-ignored `.local-secrets.env`. Production
(DEBUG=false) refuses to start without real SECRET_KEY and FIELD_ENCRYPTION_KEY.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=True)

if DEBUG:
    from orchestration.local_secrets import ensure_local_secrets

    _local = ensure_local_secrets(BASE_DIR / ".local-secrets.env")
    SECRET_KEY = env.str("SECRET_KEY", default=_local["SECRET_KEY"])
    _encryption_keys = env.list("FIELD_ENCRYPTION_KEY", default=[_local["FIELD_ENCRYPTION_KEY"]])
else:
    try:
        SECRET_KEY = env.str("SECRET_KEY")
        _encryption_keys = env.list("FIELD_ENCRYPTION_KEY")
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(
            "DEBUG=false needs SECRET_KEY and FIELD_ENCRYPTION_KEY in the environment."
        ) from exc
    if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure"):
        raise ImproperlyConfigured("SECRET_KEY must be a long random value in production.")

# Several comma-separated Fernet keys rotate: the first encrypts, all decrypt.
FIELD_ENCRYPTION_KEY = _encryption_keys if len(_encryption_keys) > 1 else _encryption_keys[0]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    "django_tasks",
    "django_tasks_db",
    "django_rq",
    "encrypted_model_fields",
    "orchestration",
    "cloudfunctions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "orchestration.web.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a lockout found during sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: a locked-out sign-in is refused before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "orchestration.urls"
WSGI_APPLICATION = "orchestration.wsgi.application"

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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Keep connections across requests and worker tasks: opening one costs more than a step.
# Health checks cost a ping per use, but a worker survives a database restart with them.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# django_rq's Dashboard has no table: keep it (and any unmanaged model) out of dumpdata.
DATABASE_ROUTERS = ["orchestration.routers.UnmanagedModelsRouter"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Workers and the web process share the file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "process-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

# Runs go through django-tasks: the database backend by default (workers: manage.py
# run_worker, several runs in flight each); TASKS_BACKEND=django_tasks_rq.RQBackend moves them to Redis (manage.py rqworker).
TASKS = {
    "default": {
        "BACKEND": env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend"),
    }
}
RQ_QUEUES = {"default": {"URL": env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")}}

# The run engine's retries: exponential backoff with jitter, capped.
RUN_RETRY_BASE_DELAY_SECONDS = env.float("RUN_RETRY_BASE_DELAY_SECONDS", default=1.0)
RUN_RETRY_MAX_DELAY_SECONDS = env.float("RUN_RETRY_MAX_DELAY_SECONDS", default=30.0)
# Runs one `manage.py run_worker` process executes at once (threads; steps mostly wait on
# the network). Each holds a database connection: size the database's pool for it.
RUN_WORKER_CONCURRENCY = env.int("RUN_WORKER_CONCURRENCY", default=8)
# A worker reports on the run it executes every RUN_HEARTBEAT_SECONDS; a running run silent
# for RUN_STALE_AFTER_SECONDS has lost its worker (killed, machine gone) and is failed.
# Workers look for such runs at most every RUN_REAP_INTERVAL_SECONDS.
RUN_HEARTBEAT_SECONDS = env.float("RUN_HEARTBEAT_SECONDS", default=60.0)
RUN_STALE_AFTER_SECONDS = env.float("RUN_STALE_AFTER_SECONDS", default=600.0)
RUN_REAP_INTERVAL_SECONDS = env.float("RUN_REAP_INTERVAL_SECONDS", default=60.0)
# Webhook payloads larger than this are refused.
WEBHOOK_MAX_BYTES = env.int("WEBHOOK_MAX_BYTES", default=256 * 1024)

# Scripts only from our origin or carrying this response's nonce; no inline styles, no
# framing, no plugins, forms post only here. htmx's indicator <style> is switched off in
# base.html (app.css has the rules), so 'self' is enough for styles.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}

# The per-user Test-run limit (orchestration/web/throttle.py) counts in the cache: several
# web processes need a shared one (e.g. CACHE_URL=redis://...).
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
TEST_RUN_LIMIT = env.int("TEST_RUN_LIMIT", default=30)
TEST_RUN_WINDOW_SECONDS = env.int("TEST_RUN_WINDOW_SECONDS", default=60)
# How many reverse proxies of ours stand in front of the app, each appending to
# X-Forwarded-For; 0 (the default) ignores the header, which clients can forge.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Sign-in lockout (django-axes): LOGIN_FAILURE_LIMIT failures of one username from one address
# lock that pair out for LOGIN_FAILURE_WINDOW_SECONDS after the last failure. Counted in the
# database, so every web process sees the same counts with no shared cache, a restart
# forgets none, and the admin lists and lifts lockouts (`manage.py axes_reset` too).
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(seconds=env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=15 * 60))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Tries during a lockout do not extend it: it ends a fixed time after the last failure.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "orchestration.web.signin.client_address"
AXES_USERNAME_CALLABLE = "orchestration.web.signin.username_key"
AXES_LOCKOUT_CALLABLE = "orchestration.web.signin.lockout_response"
# Failures only: a row per successful sign-in is personal data the product has no use for.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False  # no start-up banner on every manage.py command
# A Test process spends one Test run per step it sends; longer processes are refused.
PROCESS_TEST_STEP_LIMIT = env.int("PROCESS_TEST_STEP_LIMIT", default=50)
# Live checks of CEL fields: an editor page checks each field once on load, then as typed.
FIELD_CHECK_LIMIT = env.int("FIELD_CHECK_LIMIT", default=120)
FIELD_CHECK_WINDOW_SECONDS = env.int("FIELD_CHECK_WINDOW_SECONDS", default=60)

# Outbound requests made for users (see cloudfunctions/transport.py).
# Loopback is refused unless this is switched on: tests and local development only.
OUTBOUND_ALLOW_LOOPBACK = env.bool("OUTBOUND_ALLOW_LOOPBACK", default=False)
OUTBOUND_DEADLINE_SECONDS = env.float("OUTBOUND_DEADLINE_SECONDS", default=15.0)
OUTBOUND_CONNECT_TIMEOUT_SECONDS = env.float("OUTBOUND_CONNECT_TIMEOUT_SECONDS", default=5.0)
OUTBOUND_MAX_RESPONSE_BYTES = env.int("OUTBOUND_MAX_RESPONSE_BYTES", default=5 * 1024 * 1024)
# A CA bundle path to trust instead of certifi's (tests use a local trustme CA).
OUTBOUND_CA_BUNDLE = env.str("OUTBOUND_CA_BUNDLE", default="") or None
# Loopback host:port pairs the transport may reach even though loopback is refused: each one
# exactly, never the rest of loopback. Empty by default; development adds its demo API.
OUTBOUND_LOOPBACK_HOSTS = env.list("OUTBOUND_LOOPBACK_HOSTS", default=[])

# Development only: the local demo API (`manage.py demo_api`, which scripts/run starts) on
# 127.0.0.1 over TLS, under a development CA created on first run in DEMO_API_DIR. Only the
# app's own transport trusts that CA, and only that host and port are admitted. Production
# neither starts, trusts nor admits it (tests/test_demo_sandbox.py).
DEMO_API_HOST = None
DEMO_API_DIR = None
if DEBUG:
    DEMO_API_DIR = Path(env.str("DEMO_API_DIR", default=str(BASE_DIR / ".demo-api")))
    DEMO_API_HOST = f"127.0.0.1:{env.int('DEMO_API_PORT', default=8443)}"
    OUTBOUND_LOOPBACK_HOSTS = [*OUTBOUND_LOOPBACK_HOSTS, DEMO_API_HOST]
    # certifi's bundle plus the development CA, once `manage.py demo_api` has made it.
    if OUTBOUND_CA_BUNDLE is None and (DEMO_API_DIR / "trust.pem").exists():
        OUTBOUND_CA_BUNDLE = str(DEMO_API_DIR / "trust.pem")
# Test-only: where Amazon Connect calls go instead of https://connect.<region>.amazonaws.com.
AMAZON_CONNECT_ENDPOINT_OVERRIDE = env.str("AMAZON_CONNECT_ENDPOINT_OVERRIDE", default="") or None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Masks the secrets of calls in flight and credential-shaped text in every record.
    "filters": {"secrets": {"()": "orchestration.log_filters.SecretsFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["secrets"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # cel-python logs whole activations (context variables) at DEBUG and ERROR.
    "loggers": {
        "celpy": {"level": "CRITICAL", "propagate": False},
        # urllib3 quotes whole URLs, query strings (API keys) included, in its DEBUG request
        # lines and in its WARNING "Failed to parse headers (url=...)"; requests and authlib
        # log URLs and tokens at DEBUG. What the app needs to know, it logs itself.
        "urllib3": {"level": "ERROR"},
        "requests": {"level": "ERROR"},
        "authlib": {"level": "ERROR"},
    },
}

if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
