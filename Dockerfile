# rollback-bot as a container. The install steps are README's "Deploy > Install" steps
# (tests/test_deploy_files.py checks they agree). Build: docker build -t rollback-bot .
# Run: see compose.example.yaml and README's "Deploy".

# --- build: the package and its dependencies into a virtualenv -------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY commands ./commands
COPY handlers ./handlers
RUN python3 -m venv /opt/rollback-bot
RUN /opt/rollback-bot/bin/python -m pip install .

# --- run: the virtualenv only, as a user without privileges ------------------------------
FROM python:3.11-slim
COPY --from=build /opt/rollback-bot /opt/rollback-bot
RUN useradd --system --uid 10001 --home-dir /var/lib/rollback-bot --create-home rollback-bot
ENV PATH=/opt/rollback-bot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ROLLBACK_BOT_CONFIG=/etc/rollback-bot/rollback.toml
# The state database (operations, approvals, the audit log): state_db in the config must
# point inside this volume, e.g. state_db = "/var/lib/rollback-bot/state.db".
VOLUME ["/var/lib/rollback-bot"]
USER 10001
WORKDIR /var/lib/rollback-bot
EXPOSE 3000
# Liveness (/healthz); orchestrators that route traffic should use /readyz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4)"]
ENTRYPOINT ["rollback-bot", "serve", "--port", "3000"]
