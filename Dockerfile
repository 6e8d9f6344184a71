# syntax=docker/dockerfile:1
# python:3.11-slim, pinned by digest so that every build starts from the same base. To move
# on: `docker buildx imagetools inspect python:3.11-slim` names the current digest.
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# The runtime dependencies as pyproject.toml names them, with uvloop (the `uvloop` extra) and
# no other extra: no emulator, no tests.
# A stage of its own: an edit of pyproject.toml that leaves them alone yields the same file,
# and the install below stays cached.
FROM ${PYTHON_IMAGE} AS requirements
COPY pyproject.toml deploy/runtime-requirements.py /src/
RUN python /src/runtime-requirements.py /src/pyproject.toml uvloop > /requirements.txt

# Build stage: dependencies first, pinned by constraints.txt, in a layer that only a change
# of them rebuilds; then the wheel of the sources alone.
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY --from=requirements /requirements.txt ./
COPY constraints.txt ./
# No pip or setuptools inside the environment: the base image's pip installs into it.
RUN python -m venv --without-pip /opt/sentinel-bridge \
 && pip --python /opt/sentinel-bridge/bin/python install --no-cache-dir \
      -r requirements.txt -c constraints.txt
COPY pyproject.toml README.md ./
COPY sentinel_bridge ./sentinel_bridge
COPY migrations ./migrations
# --no-deps: every dependency is already there at its pinned version; `pip check` fails the
# build if the sources came to need one that is not.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && pip --python /opt/sentinel-bridge/bin/python install --no-cache-dir --no-deps /wheels/*.whl \
 && pip --python /opt/sentinel-bridge/bin/python check

# Runtime stage: only the virtual environment, a non-root user, state in a volume.
FROM ${PYTHON_IMAGE}
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
# SIGTERM stops gracefully within [sync] shutdown_grace_seconds (10 s by default), which is
# also Docker's default stop timeout: run with `--stop-timeout 30` (compose:
# stop_grace_period, Kubernetes: terminationGracePeriodSeconds, 30 s by default) so that the
# stop is not cut short by SIGKILL. `docker kill --signal HUP` reloads the tenants.
STOPSIGNAL SIGTERM
ENTRYPOINT ["sentinel-bridge"]
CMD ["run"]
