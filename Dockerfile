# okr web service image: the app and its migrations (see docker-compose.yml).
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY templates ./templates
COPY migrations ./migrations
COPY config ./config
RUN pip install -e . && useradd --create-home okr && mkdir -p /app/var && chown okr /app/var
USER okr
EXPOSE 8000
CMD ["okr", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
