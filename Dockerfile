# syntax=docker/dockerfile:1
# Build stage: make the wheel and install it with its dependencies into a virtual environment.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sentinel_bridge ./sentinel_bridge
COPY migrations ./migrations
RUN python -m venv /opt/sentinel-bridge \
 && /opt/sentinel-bridge/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/sentinel-bridge/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && /opt/sentinel-bridge/bin/pip install --no-cache-dir /wheels/*.whl

# Runtime stage: only the virtual environment, a non-root user, state in a volume.
FROM python:3.11-slim
RUN groupadd --system --gid 10001 sentinel-bridge \
 && useradd --system --uid 10001 --gid sentinel-bridge --home-dir /var/lib/sentinel-bridge \
      --shell /usr/sbin/nologin sentinel-bridge \
 && install -d -o sentinel-bridge -g sentinel-bridge -m 0750 /var/lib/sentinel-bridge
COPY --from=build /opt/sentinel-bridge /opt/sentinel-bridge
# Config: mount it (and the secret files it names) at /etc/sentinel-bridge, read-only.
# The ops listener answers /healthz, /readyz and /metrics on every interface of the container.
# Nothing is written outside the state volume, so `--read-only` works as it is.
ENV PATH=/opt/sentinel-bridge/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SENTINEL_BRIDGE_CONFIG=/etc/sentinel-bridge/config.toml \
    SENTINEL_BRIDGE_OBSERVABILITY__LISTEN=:9464
# Numeric, so that Kubernetes' runAsNonRoot can check it without /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/sentinel-bridge
VOLUME ["/var/lib/sentinel-bridge"]
EXPOSE 9464
# Slim images have no curl: ask /healthz with the interpreter the image already has.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request as r; r.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]
# SIGTERM stops gracefully; `docker kill --signal HUP` reloads the tenants.
STOPSIGNAL SIGTERM
ENTRYPOINT ["sentinel-bridge"]
CMD ["run"]
