# A small image of monitor (PostgreSQL driver included), run as a non-root user.
# The wheels are built in a first stage; the final stage holds only the installed package.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[postgres]'

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The user monitor runs as: uid and gid 10001. A bind mount of storage/ must be writable by it
# (README, Containers); a named volume is made from /app/storage below, owner included.
RUN groupadd --gid 10001 monitor && useradd --create-home --uid 10001 --gid 10001 monitor
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
# storage/ itself too (COPY would leave it to root): init and run check it is writable.
RUN install -d -o 10001 -g 10001 /app/storage /app/storage/corpus
COPY --chown=10001:10001 config ./config
COPY --chown=10001:10001 storage/corpus ./storage/corpus
USER 10001:10001
ENV MONITOR_CONFIG=/app/config/monitor.yaml
STOPSIGNAL SIGTERM
ENTRYPOINT ["monitor"]
CMD ["run"]
