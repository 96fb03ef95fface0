# The switch's Python components (the broker runs in its own container; see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY switch ./switch
COPY services ./services
RUN pip install --no-cache-dir .
ENV SWITCH_HOME=/data
ENTRYPOINT []
