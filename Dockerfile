# syntax=docker/dockerfile:1
# conductbot on CPU, with the shipped model inside the image. Build and run it with
# compose.yaml: docs/deploy.md, "With Docker Compose". One image runs every command:
#   docker run --rm conductbot policy check policies/default.toml
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    MPLCONFIGDIR=/tmp/matplotlib \
    CONDUCTBOT_DB=/data/conductbot.sqlite3

# torch first, pinned as in the Makefile, from PyTorch's CPU-only index: the same pin from
# PyPI is the CUDA build, gigabytes the bot never uses. Every other dependency is a wheel.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

WORKDIR /app
# The code, the shipped model (bot/scoring/model, inside the package) and the policies.
COPY pyproject.toml README.md bot.py ./
COPY bot ./bot
COPY adapters ./adapters
COPY policies ./policies
# Editable, so the package runs from /app: the default policy (policies/ beside the package)
# resolves, and `conductbot` and `python bot.py` are one program. Then check the image works:
# the policies load and the shipped model scores a message, offline.
RUN pip install -e . \
    && python -m compileall -q bot adapters \
    && python bot.py policy check policies/*.toml \
    && python bot.py score "Phone bank on Thursday, who is in?" > /dev/null

# A user of its own; the code stays root's and read-only to it; the database lives on /data.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/conductbot \
        --shell /usr/sbin/nologin conductbot \
    && install -d -o conductbot -g conductbot -m 0750 /data /backups
USER conductbot
VOLUME ["/data", "/backups"]

# Slack over HTTP listens on SLACK_PORT (3000); Discord and Socket Mode need no port.
EXPOSE 3000
# SIGTERM: close the connections, finish accepted messages, exit 0 (allow it 60 s:
# `docker stop -t 60`, or compose.yaml's stop_grace_period).
STOPSIGNAL SIGTERM
# Healthy while `run`'s GET /healthz answers 200: platforms connected, the database takes a
# writer, the scorer works, no outbox row overdue (CONDUCTBOT_HEALTH_PORT, default 9464, on
# 127.0.0.1 inside the container; no proxy, whatever the environment says).
HEALTHCHECK --interval=30s --timeout=10s --start-period=2m --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:%s/healthz' % os.environ.get('CONDUCTBOT_HEALTH_PORT', '9464'), timeout=8)"]
ENTRYPOINT ["conductbot"]
CMD ["run"]
