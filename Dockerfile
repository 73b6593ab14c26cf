# syntax=docker/dockerfile:1
# infra-crew: API + worker on the embedded PostgreSQL by default (set CREW_DATABASE_URL to use
# your own). The image installs with the same steps as `make install`.

ARG PYTHON_VERSION=3.11
ARG TERRAFORM_VERSION=1.11.4

FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY crew ./crew
COPY schemas ./schemas
COPY graph ./graph
COPY nodes ./nodes
COPY tools ./tools
COPY memory ./memory
COPY api ./api
COPY catalog ./catalog
COPY sentinel ./sentinel
RUN python -m venv /opt/crew \
 && /opt/crew/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/crew/bin/pip install --no-cache-dir .

FROM python:${PYTHON_VERSION}-slim AS terraform
ARG TERRAFORM_VERSION
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl unzip ca-certificates \
 && curl -fsSLo /tmp/tf.zip "https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/terraform_${TERRAFORM_VERSION}_linux_amd64.zip" \
 && unzip /tmp/tf.zip -d /usr/local/bin \
 && rm -rf /var/lib/apt/lists/* /tmp/tf.zip

FROM python:${PYTHON_VERSION}-slim
RUN useradd --create-home --uid 10001 crew
COPY --from=build /opt/crew /opt/crew
COPY --from=terraform /usr/local/bin/terraform /usr/local/bin/terraform
ENV PATH=/opt/crew/bin:$PATH \
    CREW_HOST=0.0.0.0 \
    CREW_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
RUN mkdir -p /data && chown crew:crew /data
USER crew
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"
# Binding 0.0.0.0 requires CREW_API_TOKENS, hashed entries only (`crew token new`); the
# service refuses to start without them.
CMD ["crew", "serve"]
