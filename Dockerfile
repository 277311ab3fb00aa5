# A small image of monitor, run as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[postgres]'

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 monitor
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
COPY --chown=monitor:monitor config ./config
COPY --chown=monitor:monitor storage/corpus ./storage/corpus
USER monitor
ENV MONITOR_CONFIG=/app/config/monitor.yaml
ENTRYPOINT ["monitor"]
CMD ["run"]
