# The help desk's production image. One image runs every role (see docker-compose.yml):
#   web     gunicorn helpdesk.wsgi:application on 0.0.0.0:8000 (the default command)
#   worker  celery -A helpdesk worker
#   beat    celery -A helpdesk beat
# Configuration comes from the environment only (.env.example lists it); the image holds no
# secret. Build: docker build -t helpdesk .

# --- Build stage: dependencies, compiled where needed ------------------------------------
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# mysqlclient (the `mysql` extra) has no Linux wheel: it is compiled against the MariaDB
# client library, found with pkg-config.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libmariadb-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# The dependencies of `pip install .[mysql]`, read from pyproject.toml, in a layer of their
# own so that a change to the code does not reinstall them. The project itself is not
# installed: it runs from /app, where settings find templates/ and static/ beside the code.
COPY pyproject.toml ./
RUN python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["mysql"]))' \
        > requirements.txt \
    && pip install -r requirements.txt

# --- Runtime stage -----------------------------------------------------------------------
FROM python:3.11-slim

# The MariaDB client library mysqlclient was linked against (no compiler in this stage).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmariadb3 \
    && rm -rf /var/lib/apt/lists/*

# Its home is var/, the one folder of /app it may write to (gunicorn keeps its control
# socket under $HOME).
RUN groupadd --system --gid 10001 helpdesk \
    && useradd --system --uid 10001 --gid helpdesk --home-dir /app/var --no-create-home \
        --shell /usr/sbin/nologin helpdesk

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=helpdesk.settings.base \
    STATIC_ROOT=/app/staticfiles \
    MEDIA_ROOT=/data/media \
    WEB_CONCURRENCY=3

WORKDIR /app
COPY . .

# Static files are collected (hashed and compressed for whitenoise) at build time. The
# settings refuse to load without a SECRET_KEY, so this one command gets a dummy one; it is
# not stored in the image.
# The code stays owned by root (read-only to the app); the app writes only to var/ (Celery
# beat's schedule) and to the media folder, which docker-compose.yml mounts as a volume.
RUN DEBUG=false SECRET_KEY=build-time-only-dummy-key-for-collectstatic-not-a-secret-0000 \
        ALLOWED_HOSTS=localhost \
        python manage.py collectstatic --noinput --verbosity 1 \
    && python -m compileall -q /app \
    && install -d -o helpdesk -g helpdesk /app/var /data/media

USER helpdesk
EXPOSE 8000

CMD ["gunicorn", "helpdesk.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
