"""The one settings file. Every value that differs between machines comes from the
environment; a value that is present but wrong stops the process with a message that
names the variable, rather than letting the portal start half-configured."""

import os
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, not {value}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    value = os.environ.get(name, default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


DEBUG = env_bool("DEBUG", False)

# A development key is tolerated only with DEBUG on; production must bring its own.
DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"  # noqa: S105
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = DEV_SECRET_KEY
elif not DEBUG and (len(SECRET_KEY) < 50 or SECRET_KEY == DEV_SECRET_KEY):
    raise ImproperlyConfigured("SECRET_KEY must be a unique value of at least 50 characters")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must list the portal's host names when DEBUG is off")
if "*" in ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must name hosts; '*' is refused")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "accounts.admin_apps.PortalAdminConfig",  # django.contrib.admin, behind the portal sign-in
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",  # allauth's list of security keys uses naturaltime
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served locally: no CDN
    "oauth2_provider",
    "accounts",
    "phr",
    "consent",
    "audit",
    "accuracy",
    "api",
    "web",  # the pages, one room per audience, and their template tags
    "demo",  # seed_demo and the demo network (make run)
]

MIDDLEWARE = [
    # First: every later reader of REMOTE_ADDR sees the client's address (TRUSTED_PROXIES).
    "config.middleware.ClientAddressMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise: static files keep their own caching and need no policy.
    "config.middleware.SecurityHeadersMiddleware",
    "config.errors.EmptyErrorMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After sign-in is known (its 400 page shows who is signed in), before any view runs.
    "config.middleware.NulCharacterMiddleware",
    # Wraps the session's load and everything after it: a read whose connection was lost runs once more.
    "config.reconnect.ReconnectMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # After MessageMiddleware, so that the "you were signed out" message can be left.
    "accounts.middleware.SessionTimeoutMiddleware",
]

ROOT_URLCONF = "config.urls"

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
                "accounts.context_processors.unread_notifications",
                "accounts.context_processors.proxy_banner",
            ],
            # Dates in one style on every page, with no {% load %} to forget.
            "builtins": ["web.templatetags.words"],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

# --- Database -------------------------------------------------------------------------
# SQLite is the embedded default for `make run`; production and CI pass DATABASE_URL.
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
try:
    # Health checks: a kept connection the database dropped between requests is found and
    # replaced before a request uses it, not answered as a 500 (config.reconnect covers a
    # connection lost while a request is under way).
    _db = dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True
    )
except Exception as exc:  # dj-database-url raises several types for a malformed URL
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL I can use: {exc}") from None
if _db.get("ENGINE") not in ("django.db.backends.sqlite3", "django.db.backends.postgresql"):
    raise ImproperlyConfigured("DATABASE_URL must be a sqlite:// or postgres:// URL")
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["CONN_MAX_AGE"] = 0
    # Writers wait for each other instead of failing at once with "database is locked";
    # WAL lets pages read while a write is under way, and commits skip a second fsync.
    # IMMEDIATE: a transaction takes the write lock when it begins, so one that reads and
    # then writes (a read and its audit event) never has to upgrade a stale snapshot,
    # which SQLite refuses at once, whatever the timeout.
    _db["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
DATABASES = {"default": _db}
# A streaming replica of the PostgreSQL database, for reads that may lag by seconds: the
# IG console's searches, exports and figures, the data-quality pages (phr.replica).
# Never the policy's reads: a withdrawn consent takes effect on the next request.
DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "").strip()
if DATABASE_REPLICA_URL:
    if _db["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_REPLICA_URL is for a PostgreSQL DATABASE_URL's replica")
    try:
        _replica = dj_database_url.parse(
            DATABASE_REPLICA_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True
        )
    except Exception as exc:
        raise ImproperlyConfigured(f"DATABASE_REPLICA_URL is not a database URL I can use: {exc}") from None
    if _replica.get("ENGINE") != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_REPLICA_URL must be a postgres:// URL")
    # The test runner makes no database of its own for it: in tests it is the default's.
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES["replica"] = _replica
DATABASE_ROUTERS = ["config.db_router.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts -------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
# allauth's emails name the portal, not "[host:port]". No "Remember me" box: a session
# cookie ends when the browser closes (as it did with the box unticked), a safe default
# on a shared computer, and the idle and absolute limits below still apply.
ACCOUNT_EMAIL_SUBJECT_PREFIX = "Patient Record Portal: "
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
}
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
# Security keys and passkeys need a secure origin; the development server has none.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = DEBUG
MFA_ADAPTER = "accounts.adapters.MFAAdapter"


def require_own_key(name: str, keys: list[str]) -> None:
    """With DEBUG off, a key that protects stored data must be set, long and not
    SECRET_KEY: derived from SECRET_KEY (the development fallback), rotating SECRET_KEY
    would break everything the key protects."""
    if DEBUG:
        return
    if not keys:
        raise ImproperlyConfigured(
            f"{name} must be set when DEBUG is off: a random value of at least 32 characters, "
            "kept apart from SECRET_KEY so that rotating SECRET_KEY does not break what it protects"
        )
    if any(len(key) < 32 for key in keys):
        raise ImproperlyConfigured(f"{name} must be at least 32 characters (each key, when several)")
    if SECRET_KEY in keys:
        raise ImproperlyConfigured(f"{name} must differ from SECRET_KEY")


# Authenticator secrets and recovery-code seeds are encrypted (Fernet) before they reach
# the database. Comma-separated: the first key encrypts, every key decrypts (rotation).
# Required with DEBUG off; with DEBUG on, unset, a key is derived from SECRET_KEY.
MFA_ENCRYPTION_KEY = env_list("MFA_ENCRYPTION_KEY")
require_own_key("MFA_ENCRYPTION_KEY", MFA_ENCRYPTION_KEY)
# Wrong authenticator codes count with wrong passwords against ACCOUNT_RATE_LIMITS'
# login_failed (per account); re-entering a password or code for a sensitive change:
ACCOUNT_RATE_LIMITS["reauthenticate"] = "10/m/user"
MFA_RATE_LIMITS = {"webauthn_login": "10/m/ip"}
# An authenticator code is also accepted for the 30 seconds before and after its own:
# a code read off a phone a moment before it changes, or from a phone whose clock is a
# little out, still works (RFC 6238 allows one step for transmission delay). A code
# works once only either way (allauth remembers the codes used).
MFA_TOTP_TOLERANCE = 1

# Signed-in sessions end after this long without a request, and this long after sign-in
# whatever the activity (the session cookie's own lifetime is the same 12 hours).
SESSION_IDLE_TIMEOUT = env_int("SESSION_IDLE_MINUTES", 30, minimum=1) * 60
SESSION_ABSOLUTE_TIMEOUT = env_int("SESSION_ABSOLUTE_HOURS", 12, minimum=1) * 60 * 60

# Practice-issued linkage keys (account id + passphrase + ODS code) for linking an
# account to a record: how long a letter stays valid, wrong tries before a key locks,
# and wrong tries a user (or an address) may make in LINKAGE_ATTEMPT_WINDOW_MINUTES.
LINKAGE_KEY_DAYS = env_int("LINKAGE_KEY_DAYS", 28, minimum=1)
LINKAGE_KEY_MAX_ATTEMPTS = env_int("LINKAGE_KEY_MAX_ATTEMPTS", 5, minimum=1)
LINKAGE_ATTEMPTS_PER_WINDOW = env_int("LINKAGE_ATTEMPTS_PER_WINDOW", 5, minimum=1)
LINKAGE_ATTEMPT_WINDOW_MINUTES = env_int("LINKAGE_ATTEMPT_WINDOW_MINUTES", 15, minimum=1)

# NHS login (OpenID Connect), off unless all three variables are set: see the README.
NHS_LOGIN_CLIENT_ID = os.environ.get("NHS_LOGIN_CLIENT_ID", "")
NHS_LOGIN_CLIENT_SECRET = os.environ.get("NHS_LOGIN_CLIENT_SECRET", "")
NHS_LOGIN_SERVER_URL = os.environ.get("NHS_LOGIN_SERVER_URL", "")
NHS_LOGIN_ENABLED = bool(NHS_LOGIN_CLIENT_ID or NHS_LOGIN_CLIENT_SECRET or NHS_LOGIN_SERVER_URL)
if NHS_LOGIN_ENABLED:
    if not (NHS_LOGIN_CLIENT_ID and NHS_LOGIN_CLIENT_SECRET and NHS_LOGIN_SERVER_URL):
        raise ImproperlyConfigured(
            "NHS_LOGIN_CLIENT_ID, NHS_LOGIN_CLIENT_SECRET and NHS_LOGIN_SERVER_URL must be set together"
        )
    if urlparse(NHS_LOGIN_SERVER_URL).scheme != "https" and not DEBUG:
        raise ImproperlyConfigured("NHS_LOGIN_SERVER_URL must be an https:// URL")
    INSTALLED_APPS += ["allauth.socialaccount", "allauth.socialaccount.providers.openid_connect"]
    SOCIALACCOUNT_ADAPTER = "accounts.nhs_login.NHSLoginAdapter"
    SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "OAUTH_PKCE_ENABLED": True,
            "APPS": [
                {
                    "provider_id": "nhs-login",
                    "name": "NHS login",
                    "client_id": NHS_LOGIN_CLIENT_ID,
                    "secret": NHS_LOGIN_CLIENT_SECRET,
                    "settings": {
                        "server_url": NHS_LOGIN_SERVER_URL,
                        # profile carries nhs_number and birthdate, with the proofing level.
                        "scope": ["openid", "profile", "email"],
                    },
                }
            ],
        }
    }

# --- Email ----------------------------------------------------------------------------
EMAIL_BACKEND_NAME = env_choice("EMAIL_BACKEND", ("console", "smtp", "file", "locmem"), "console")
EMAIL_BACKEND = f"django.core.mail.backends.{EMAIL_BACKEND_NAME.replace('file', 'filebased')}.EmailBackend"
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20, minimum=1)  # seconds; well inside OUTBOX_RETRY_SECONDS
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Patient Record Portal <no-reply@localhost>")
# The portal's own address, for the links in its emails (an email has no request to
# take the host from). Unset: https:// and the first of ALLOWED_HOSTS, or the
# development server's address with DEBUG on.
PORTAL_URL = (
    os.environ.get("PORTAL_URL", "").strip()
    or ("http://127.0.0.1:8000" if DEBUG else f"https://{ALLOWED_HOSTS[0]}")
).rstrip("/")
if urlparse(PORTAL_URL).scheme not in ("http", "https") or not urlparse(PORTAL_URL).netloc:
    raise ImproperlyConfigured("PORTAL_URL must be an http:// or https:// address")
if EMAIL_BACKEND_NAME == "smtp" and not EMAIL_HOST:
    raise ImproperlyConfigured("EMAIL_HOST must be set when EMAIL_BACKEND is smtp")

# --- Celery ---------------------------------------------------------------------------
# Without a broker (the embedded default) tasks run in-process, after the transaction
# that queued them commits, exactly as a worker would see them.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
if CELERY_BROKER_URL and urlparse(CELERY_BROKER_URL).scheme not in ("redis", "rediss", "amqp", "amqps"):
    raise ImproperlyConfigured("CELERY_BROKER_URL must be a redis:// or amqp:// URL")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves the task for another
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A message a killed worker had taken comes back after this, not after Redis's default
# hour; every task outlives it safely (each checks its own row before working), and
# whatever the queue still loses, the sweeps below find in the database.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 10 * 60, "socket_connect_timeout": 2}
# With the broker down, an action waits at most a moment before it gives up queueing
# (its work is already saved for the sweeps).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TIMEZONE = "Europe/London"
# Beat keeps no schedule of its own (config.beat): every entry is due when it starts,
# and what runs once a day asks the database whether it has run today.
CELERY_BEAT_SCHEDULER = "config.beat:PortalScheduler"
BEAT_HEARTBEAT_PATH = os.environ.get("BEAT_HEARTBEAT_PATH", "") or str(BASE_DIR / "var" / "beat-heartbeat")
OUTBOX_SWEEP_SECONDS = env_int("OUTBOX_SWEEP_SECONDS", 60, minimum=1)
# An email still owed this long after it was written (or after a send began) is sent
# by the sweep; a send must finish well within it (EMAIL_TIMEOUT).
OUTBOX_RETRY_SECONDS = env_int("OUTBOX_RETRY_SECONDS", 60, minimum=1)
OUTBOX_MAX_ATTEMPTS = env_int("OUTBOX_MAX_ATTEMPTS", 20, minimum=1)
# The correction deadline sweep runs once a day, from this hour (Europe/London), or as
# soon after it as beat is running.
DEADLINE_SWEEP_HOUR = env_int("DEADLINE_SWEEP_HOUR", 7, minimum=0)
if DEADLINE_SWEEP_HOUR > 23:
    raise ImproperlyConfigured(f"DEADLINE_SWEEP_HOUR must be an hour (0-23), not {DEADLINE_SWEEP_HOUR}")
# Patients who asked for a daily list of who looked at their record get it from this
# hour (Europe/London), covering the day before.
ACCESS_DIGEST_HOUR = env_int("ACCESS_DIGEST_HOUR", 7, minimum=0)
if ACCESS_DIGEST_HOUR > 23:
    raise ImproperlyConfigured(f"ACCESS_DIGEST_HOUR must be an hour (0-23), not {ACCESS_DIGEST_HOUR}")
# The sealer closes a block of the events committed since the last one this often
# (Celery beat in production; a thread of the web process in `make run`).
AUDIT_SEAL_SECONDS = env_int("AUDIT_SEAL_SECONDS", 2, minimum=1, maximum=60)
CELERY_BEAT_SCHEDULE: dict = {
    "email-outbox-sweep": {"task": "accounts.tasks.outbox_sweep", "schedule": OUTBOX_SWEEP_SECONDS},
    # Asks every five minutes whether today's sweep (reminders before correction
    # deadlines, escalation after them) is due; it runs once a day whatever beat does.
    "correction-deadline-sweep": {"task": "accuracy.tasks.daily_deadline_sweep", "schedule": 5 * 60},
    # Reads the audit trail's new events and tells patients who asked "each time" which
    # organisation looked (a cursor makes each event count once).
    "access-alert-scan": {"task": "consent.tasks.access_alert_scan", "schedule": 2 * 60},
    # Asks every five minutes whether today's digest of who looked is due; once a day.
    "access-digest": {"task": "consent.tasks.daily_access_digest", "schedule": 5 * 60},
    # Ends a parent's access to a child's record at the review ages (PROXY_REVIEW_AGES);
    # hourly, so a birthday is acted on the same morning; a second run ends nothing twice.
    "proxy-age-review": {"task": "consent.tasks.proxy_age_review", "schedule": 60 * 60},
    # Checks the records that changed while the queue could not say so (each change
    # writes accuracy.PendingCheck in its own transaction); normally there are none.
    "accuracy-checks": {"task": "accuracy.tasks.check_pending", "schedule": 60},
    # Seals the audit events committed since the last block (audit.ledger.seal); one
    # sealer at a time, whatever runs it.
    "audit-seal": {
        "task": "audit.tasks.seal",
        "schedule": AUDIT_SEAL_SECONDS,
        # A seal queued while no worker listened is dropped: the next one seals it all.
        "options": {"expires": AUDIT_SEAL_SECONDS * 5},
    },
    # Adds the audit trail's monthly partitions ahead of time (PostgreSQL; a no-op on
    # SQLite). Hourly though a month lasts long: a missed run costs nothing.
    "audit-partitions": {"task": "audit.tasks.add_partitions", "schedule": 60 * 60},
}

# --- Cache ----------------------------------------------------------------------------
# Sign-in, second-factor, linkage-key and share-link passcode attempts are counted in the
# cache, so every web process must share it: a cache in each process's memory would let
# each gunicorn worker count its own wrong passwords. CACHE_URL: redis:// or rediss://
# (production), db:// (a table in the database, made by `migrate`: the embedded default)
# or locmem:// (one process only: the tests, with DEBUG on). Unset: the broker's Redis
# when CELERY_BROKER_URL is redis://, else db://.
CACHE_URL = os.environ.get("CACHE_URL", "").strip() or (
    CELERY_BROKER_URL if urlparse(CELERY_BROKER_URL).scheme in ("redis", "rediss") else "db://"
)
_cache_scheme = urlparse(CACHE_URL).scheme
# The database's cache table: the embedded default's cache, and where Redis's counters go
# while Redis is down (createcachetable, run after every migrate, makes it). Culling at
# the default 300 entries would let a flood of other keys wipe a counter.
_database_cache = {
    "BACKEND": "django.core.cache.backends.db.DatabaseCache",
    "LOCATION": "portal_cache",
    "OPTIONS": {"MAX_ENTRIES": 1_000_000},
}
if _cache_scheme in ("redis", "rediss"):
    # A prefix of its own beside Celery's keys when the broker's Redis is reused.
    # With Redis down the counters move to the database table above (config.cache), and
    # a Redis that does not answer is given up on within a second.
    _cache = {
        "BACKEND": "config.cache.RedisWithFallback",
        "LOCATION": CACHE_URL,
        "KEY_PREFIX": "portal-cache",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
elif _cache_scheme == "db":
    _cache = _database_cache
elif _cache_scheme == "locmem":
    if not DEBUG:
        raise ImproperlyConfigured("CACHE_URL locmem:// counts in each process: it needs DEBUG on")
    _cache = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
else:
    raise ImproperlyConfigured("CACHE_URL must be a redis://, rediss://, db:// or locmem:// URL")
CACHES = {"default": _cache, "fallback": _database_cache}

# --- The record -----------------------------------------------------------------------
# Identifier systems that identify a person across organisations, tried after the NHS
# number, in this order (Synthea's own person id by default, for the sample data).
PATIENT_IDENTIFIER_SYSTEMS = env_list(
    "PATIENT_IDENTIFIER_SYSTEMS", "https://github.com/synthetichealth/synthea"
)
INGEST_MAX_FILE_BYTES = env_int("INGEST_MAX_FILE_BYTES", 200 * 1024 * 1024, minimum=1024)
INGEST_MAX_RESOURCE_BYTES = env_int("INGEST_MAX_RESOURCE_BYTES", 16 * 1024 * 1024, minimum=1024)
INGEST_MAX_DEPTH = env_int("INGEST_MAX_DEPTH", 64, minimum=8)
# Inputs larger than this run as a Celery task that reports progress.
INGEST_BACKGROUND_BYTES = env_int("INGEST_BACKGROUND_BYTES", 50 * 1024 * 1024, minimum=0)
# Where a background batch's input waits for the worker: a folder the ingest command, web
# and worker all see (a shared volume in compose), as a path in one container means
# nothing in another. The worker reads nothing outside it.
INGEST_SPOOL_DIR = Path(os.environ.get("INGEST_SPOOL_DIR", "").strip() or BASE_DIR / "var" / "ingest-spool")

DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "")

# --- Consent, break-glass, audit ------------------------------------------------------
# opt-out: implied consent for direct care, the patient may object (the NHS default);
# opt-in: nothing is shared with other organisations until the patient grants it.
CONSENT_MODEL = env_choice("CONSENT_MODEL", ("opt-out", "opt-in"), "opt-out")
# The categories whose items stay with the organisation that holds them unless the
# patient chooses to share that category (a choice naming it: sharing "everything" is
# not enough); the other categories follow CONSENT_MODEL. The defaults and their basis
# (README, "What is shared by default"): sexual health (NHS (Venereal Diseases)
# Regulations 1974 and the NHS Trusts and PCTs (Sexually Transmitted Diseases)
# Directions 2000), assisted conception (HFE Act 1990 s.33A), gender identity (Gender
# Recognition Act 2004 s.22) and safeguarding (clinical safety: the risk may live in the
# household). The consent app's system check refuses an unknown category.
CATEGORIES_KEPT_TO_HOLDER = env_list(
    "CATEGORIES_KEPT_TO_HOLDER", "sexual_health,assisted_conception,gender_identity,safeguarding"
)
# Beyond those, the categories someone acting for the patient (a proxy) never sees:
# NHS England's proxy standard asks the practice to consider what could harm the patient
# if a proxy read it, and mental health is where that is commonest. The consent app's
# system check refuses an unknown category.
PROXY_HIDDEN_CATEGORIES = env_list("PROXY_HIDDEN_CATEGORIES", "mental_health")
BREAK_GLASS_MINUTES = env_int("BREAK_GLASS_MINUTES", 60, minimum=1)
# The ages at which a parent's proxy access ends for review: access for a child under the
# first ends at it (the practice reviews it with the young person), access for a young
# person at the second (from then on they decide). NHS England's proxy standard: 11, 16.
PROXY_REVIEW_AGES = tuple(env_list("PROXY_REVIEW_AGES", "11,16"))
if not all(age.isascii() and age.isdigit() for age in PROXY_REVIEW_AGES):
    raise ImproperlyConfigured("PROXY_REVIEW_AGES must be two whole numbers, like 11,16")
PROXY_REVIEW_AGES = tuple(int(age) for age in PROXY_REVIEW_AGES)
if len(PROXY_REVIEW_AGES) != 2 or not 0 < PROXY_REVIEW_AGES[0] < PROXY_REVIEW_AGES[1] <= 18:
    raise ImproperlyConfigured("PROXY_REVIEW_AGES must be two ages, the first lower, at most 18")
# New results (Observation, DiagnosticReport) are held from the patient for this many
# days after the portal receives them, so that a clinician can explain them first, unless
# the holder releases them sooner. 0 (the default) shows results at once. Safeguarding and
# third-party items are always held until the holder reviews them.
RESULTS_REVIEW_DAYS = env_int("RESULTS_REVIEW_DAYS", 0, minimum=0, maximum=90)
# The audit ledger's HMAC key; kept apart from the database so that someone who can
# write to the database cannot forge an event or a block. Required with DEBUG off; with
# DEBUG on, unset, SECRET_KEY is used.
AUDIT_HMAC_KEY = os.environ.get("AUDIT_HMAC_KEY", "")
require_own_key("AUDIT_HMAC_KEY", [AUDIT_HMAC_KEY] if AUDIT_HMAC_KEY else [])
# The audit ledger's witness: an append-only file, outside the database's reach, holding
# the hash of every sealed block (and, before the ledger, every chain head), so that
# verify_audit sees a cut tail. Each line also goes to the log (logger audit.witness),
# so a log shipper or syslog handler is a second witness.
AUDIT_WITNESS_PATH = os.environ.get("AUDIT_WITNESS_PATH", "") or str(BASE_DIR / "var" / "audit-witness.log")
# An event not sealed this long after it was written is late: /healthz and the IG
# console warn, and verify_audit fails.
AUDIT_SEAL_WINDOW_SECONDS = env_int("AUDIT_SEAL_WINDOW_SECONDS", 60, minimum=5)
# `make run` (tasks in the web process, no beat) seals from a thread of runserver.
AUDIT_SEAL_IN_PROCESS = env_bool("AUDIT_SEAL_IN_PROCESS", False)
# Unusual access: a clinician reading more distinct patients with no record from their
# own organisation than this, within UNUSUAL_ACCESS_DAYS.
UNUSUAL_ACCESS_PATIENTS = env_int("UNUSUAL_ACCESS_PATIENTS", 10, minimum=1)
UNUSUAL_ACCESS_DAYS = env_int("UNUSUAL_ACCESS_DAYS", 7, minimum=1)

# --- Corrections ------------------------------------------------------------------------
# The legal deadlines for deciding a correction request: uk-gdpr (one calendar month,
# one extension of up to two months) or hipaa (60 days, one extension of up to 30).
CORRECTION_JURISDICTION = env_choice("CORRECTION_JURISDICTION", ("uk-gdpr", "hipaa"), "uk-gdpr")
CORRECTION_REMINDER_DAYS = (7, 1)

# --- Internationalisation -------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/London"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------
STATIC_URL = "static/"
# Where collectstatic puts the files whitenoise serves (hashed names in production);
# STATIC_ROOT names another folder (a benchmark's scratch folder, a mounted volume).
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", "") or BASE_DIR / "staticfiles")
# The NHS.UK design system, installed by npm; never committed.
# Served as static/nhsuk/...: nhsuk-frontend.min.css, nhsuk-frontend.min.js, assets/images/.
NHSUK_FRONTEND_DIR = BASE_DIR / "node_modules" / "nhsuk-frontend" / "dist" / "nhsuk"
# The portal's own styles and scripts (static/portal/): files, as the Content-Security-Policy
# runs no inline code.
STATICFILES_DIRS = [BASE_DIR / "static"]
if NHSUK_FRONTEND_DIR.is_dir():
    STATICFILES_DIRS.append(("nhsuk", NHSUK_FRONTEND_DIR))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- REST framework -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON through phr.ingest.parse_json, as FHIR writes: too deep or too long is a 400.
    "DEFAULT_PARSER_CLASSES": [
        "api.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
# The JSON API's OpenAPI 3 schema (/api/schema/) and docs page (/api/docs/).
SPECTACULAR_SETTINGS = {
    "TITLE": "Patient Record Portal JSON API",
    "VERSION": "1.0.0",
    "DESCRIPTION": (
        "Notifications, sharing choices, correction requests and the audit trail, for what "
        "FHIR (at /fhir/) does not cover well. Sign in to the portal (session) or send an "
        'OAuth 2.0 bearer token. Errors are JSON: {"detail": ..., "field": ...}.'
    ),
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"CategoryEnum": "phr.models.Category"},
}

# --- OAuth 2.0 and SMART on FHIR -------------------------------------------------------
# Patients' apps: authorization code with PKCE (S256 only) and a consent screen;
# organisations' systems: client credentials. The SMART scopes, and who may be granted
# which, are in api/scopes.py. Implicit and password grants are refused outright.
OAUTH_ACCESS_TOKEN_MINUTES = env_int("OAUTH_ACCESS_TOKEN_MINUTES", 60, minimum=1)
OAUTH_REFRESH_TOKEN_DAYS = env_int("OAUTH_REFRESH_TOKEN_DAYS", 90, minimum=1)
# Named so that api.SystemClient's migration can depend on the (swappable) model.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER = {
    "PKCE_REQUIRED": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,  # "plain" is refused: S256 only
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    # Only a SHA-256 checksum of each token is stored: a copy of the database holds none.
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,  # bearer tokens in headers, never in URLs
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,  # RFC 9207: the code names its issuer
    "SCOPES_BACKEND_CLASS": "api.scopes.SmartScopes",
    "OAUTH2_VALIDATOR_CLASS": "api.oauth_server.SmartValidator",
    "ACCESS_TOKEN_EXPIRE_SECONDS": OAUTH_ACCESS_TOKEN_MINUTES * 60,
    "REFRESH_TOKEN_EXPIRE_SECONDS": OAUTH_REFRESH_TOKEN_DAYS * 24 * 60 * 60,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    # The patient sees the consent screen every time an app asks, never a silent re-grant.
    "REQUEST_APPROVAL_PROMPT": "force",
    # Redirects to apps over https only; plain http is allowed for local development.
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"] if DEBUG else ["https"],
    "ALLOWED_SCHEMES": ["https", "http"] if DEBUG else ["https"],
}

# --- Security -------------------------------------------------------------------------
# How many proxies in front of the portal each append the address they were reached from
# to X-Forwarded-For (one TLS-terminating proxy: 1). With N, the client's address is the
# Nth entry from the right (entries further left are the client's own words); 0 ignores
# the header. Every rate limit and audit event uses that address, so counting too few
# proxies makes every client look like the proxy, and too many lets a client choose one.
TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0)
# allauth then reads REMOTE_ADDR, which config.middleware.ClientAddressMiddleware has
# already set from TRUSTED_PROXIES; allauth's own count would answer a header shorter
# than expected with a server error, where the middleware keeps the connection's address.
ALLAUTH_TRUSTED_PROXY_COUNT = 0
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 60 * 60, minimum=60)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Django's admin at /admin/, where a superuser can link any account to any record: on
# with DEBUG, off otherwise unless asked for; always behind the portal's sign-in and
# second factor (accounts.admin_site).
ADMIN_ENABLED = env_bool("ADMIN_ENABLED", DEBUG)
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Health data never reaches a log: requests are logged without bodies or query strings,
# and the record's own code logs counts and identifiers of batches, never content. What a
# caller typed (runserver's request lines, a failed request's path) may hold an NHS number
# by mistake: anything that looks like one is masked before a handler sees it.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"no_nhs_numbers": {"()": "config.log_filters.MaskNHSNumbers"}},
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["no_nhs_numbers"]},
        "django.server": {"class": "logging.StreamHandler", "formatter": "django.server"},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR", "filters": ["no_nhs_numbers"]},
        # runserver's request lines, on Django's own handler (configuring a logger here
        # replaces its handlers, so the handler is declared again above).
        "django.server": {
            "handlers": ["django.server"],
            "level": "INFO",
            "propagate": False,
            "filters": ["no_nhs_numbers"],
        },
    },
}
