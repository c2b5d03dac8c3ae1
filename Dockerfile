# The studio image for docker compose: the API and GPU workers run the same image.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY backend backend
COPY worker worker
COPY examples examples
# CUDA torch from PyPI for the GPU workers (the API uses only the torch-free parts).
RUN pip install --no-cache-dir ".[worker]"
ENV STUDIO_DATA_DIR=/data
EXPOSE 8000
CMD ["studio", "api", "--host", "0.0.0.0"]
