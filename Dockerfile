# Mediastore API image: gunicorn on port 8000, started by bin/start.
#   docker build -t mediastore:latest .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 1000 mediastore \
    && useradd --system --uid 1000 --gid mediastore --home-dir /app --no-create-home mediastore

WORKDIR /app

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when they change.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .

# Local data (SQLite database, local stores) in /data, a volume; static files in /app/static,
# collected now and again by bin/start at every start (compose-prod.yml shares them with nginx).
ENV MEDIASTORE_DATA_DIR=/data \
    DJANGO_STATIC_ROOT=/app/static
RUN mkdir -p /data /app/static && chown mediastore:mediastore /data /app/static

USER mediastore
RUN DJANGO_SECRET_KEY=build-only-dummy-key MEDIASTORE_ENV_FILE= \
    python manage.py collectstatic --noinput --verbosity 0

VOLUME ["/data"]
EXPOSE 8000

# No curl in the slim image: python's urllib asks /api/health (200 when the database answers).
# The Host header is the first DJANGO_ALLOWED_HOSTS entry, so Django accepts the request.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; host = os.environ.get('DJANGO_ALLOWED_HOSTS', '').split(',')[0].strip().lstrip('.').replace('*', '') or 'localhost'; urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:8000/api/health', headers={'Host': host}), timeout=8)"]

CMD ["bin/start"]
