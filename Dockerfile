# The portal's one image: web (gunicorn), Celery worker and beat all run from it.

# Front-end packages come from a Node image so the runtime image carries no Node.
FROM node:20-slim AS assets
WORKDIR /app
COPY package.json package-lock.json ./
# axe-core is a devDependency for the browser tests; production needs only nhsuk-frontend.
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

RUN useradd --system --create-home --uid 10001 portal

COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY --from=assets /app/node_modules ./node_modules
COPY . .

# collectstatic must run with the production storage (hashed names plus manifest); the
# keys and host below exist only for this build step and are not kept in the image.
# /app/var/ingest exists, owned by portal, so that the ingest-spool volume mounted there
# starts writable (a named volume takes its first owner from the image).
RUN DEBUG=false \
    SECRET_KEY=build-time-only-collectstatic-key-not-used-at-runtime-0123456789 \
    AUDIT_HMAC_KEY=build-time-only-audit-key-not-used-at-runtime \
    MFA_ENCRYPTION_KEY=build-time-only-mfa-key-not-used-at-runtime \
    ALLOWED_HOSTS=build.invalid \
    python manage.py collectstatic --noinput \
    && mkdir -p /app/var/ingest && chown -R portal /app/var

USER portal
EXPOSE 8000
# X-Forwarded-Proto is believed from any peer: run it behind the TLS proxy only, reachable
# by nothing else (README, "Production"). Access log without query strings: identifiers
# must not reach the logs.
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--forwarded-allow-ips", "*", \
     "--access-logfile", "-", "--access-logformat", "%(h)s %(t)s \"%(m)s %(U)s\" %(s)s %(b)s %(L)s"]
