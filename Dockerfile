# One image for the API server and the workers. GPU hosts build with
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 .
FROM python:3.11-slim
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
WORKDIR /app
RUN pip install --no-cache-dir --index-url ${TORCH_INDEX} "torch>=2.4"
COPY pyproject.toml README.md alembic.ini ./
COPY server server
COPY workers workers
COPY trainer trainer
COPY labeling labeling
COPY migrations migrations
RUN pip install --no-cache-dir .
ENV S2_HOME=/data
ENTRYPOINT ["s2"]
