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
RUN groupadd --system sentinel-bridge \
 && useradd --system --gid sentinel-bridge --home-dir /var/lib/sentinel-bridge \
      --shell /usr/sbin/nologin sentinel-bridge \
 && install -d -o sentinel-bridge -g sentinel-bridge -m 0750 /var/lib/sentinel-bridge
COPY --from=build /opt/sentinel-bridge /opt/sentinel-bridge
ENV PATH=/opt/sentinel-bridge/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SENTINEL_BRIDGE_CONFIG=/etc/sentinel-bridge/config.toml
USER sentinel-bridge
WORKDIR /var/lib/sentinel-bridge
VOLUME ["/var/lib/sentinel-bridge"]
ENTRYPOINT ["sentinel-bridge"]
CMD ["run"]
