# Container image of the workbench, used by the model integrity monitor DaemonSet (`workbench k8s-manifest`).
#   docker build -t ai-supplychain-workbench:0.1.0 .
#   docker run --rm -v /models:/models:ro -v "$PWD/monitor:/var/lib/model-integrity-monitor" \
#       -v "$PWD/config.json:/etc/monitor/config.json:ro" ai-supplychain-workbench:0.1.0 \
#       monitor --config /etc/monitor/config.json --state /var/lib/model-integrity-monitor/state.json
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# ps and ss for `workbench contain assess` (processes.txt, network.txt)
RUN apt-get update \
    && apt-get install -y --no-install-recommends procps iproute2 \
    && rm -rf /var/lib/apt/lists/*

# the user the DaemonSet runs as (runAsUser 10001 in workbench/ops/k8s.py)
RUN groupadd --system --gid 10001 workbench \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/workbench --create-home \
       --shell /usr/sbin/nologin workbench

WORKDIR /src
COPY pyproject.toml README.md ./
COPY workbench ./workbench
COPY notebooks ./notebooks
COPY templates ./templates
RUN pip install . \
    && rm -rf /src

WORKDIR /home/workbench
USER 10001:10001
ENTRYPOINT ["workbench"]
CMD ["--help"]
