# syntax=docker/dockerfile:1
# infra-crew: API + worker (`crew serve`), or a worker alone (`crew worker`). The package is
# installed by scripts/install.sh, the script `make install` runs; checkov comes with it.
#
#   docker build -t infra-crew .                    # slim: providers from the registry (or a
#                                                   # mirror mounted at /opt/tf-plugins)
#   docker build -t infra-crew --target offline .   # + the AWS provider: plans offline
#
# With CREW_DATABASE_URL unset it runs the embedded PostgreSQL under /data; compose.yaml runs it
# with Postgres (pgvector), Redis, Prometheus and Grafana.

ARG PYTHON_VERSION=3.11
ARG TERRAFORM_VERSION=1.11.4
ARG AWS_PROVIDER_VERSION=5.100.0

# -- build: the virtual environment at /opt/crew ---------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scripts/install.sh ./scripts/install.sh
COPY crew ./crew
COPY cli ./cli
COPY schemas ./schemas
COPY graph ./graph
COPY nodes ./nodes
COPY tools ./tools
COPY memory ./memory
COPY api ./api
COPY catalog ./catalog
COPY sentinel ./sentinel
COPY shield ./shield
RUN scripts/install.sh --venv /opt/crew --extras runtime

# -- downloads: HashiCorp releases, checked against their SHA256SUMS -------------------------
FROM python:${PYTHON_VERSION}-slim AS downloads
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl unzip ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY scripts/fetch-hashicorp-release /usr/local/bin/fetch-hashicorp-release
WORKDIR /downloads
ARG TARGETARCH

FROM downloads AS terraform
ARG TERRAFORM_VERSION
RUN unzip -q "$(fetch-hashicorp-release terraform "$TERRAFORM_VERSION")" terraform -d /usr/local/bin

# An unpacked filesystem mirror at /opt/tf-plugins (where Settings looks): terraform links each
# workspace to it instead of unpacking the ~600 MB provider again. Only the offline target has it.
FROM downloads AS providers
ARG AWS_PROVIDER_VERSION
RUN unzip -q "$(fetch-hashicorp-release terraform-provider-aws "$AWS_PROVIDER_VERSION")" \
      -d "/opt/tf-plugins/registry.terraform.io/hashicorp/aws/$AWS_PROVIDER_VERSION/linux_${TARGETARCH:-amd64}"

# -- runtime: the slim image (the default target) --------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
RUN useradd --create-home --uid 10001 --user-group crew \
 && mkdir -p /data \
 && chown 10001:10001 /data
COPY --from=build /opt/crew /opt/crew
COPY --from=terraform /usr/local/bin/terraform /usr/local/bin/terraform
ENV PATH=/opt/crew/bin:$PATH \
    CREW_HOST=0.0.0.0 \
    CREW_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
# What the crew runs must be here: the CLI, checkov (a dependency of the package) and terraform.
RUN crew --help >/dev/null \
 && checkov --version \
 && terraform version
USER 10001:10001
WORKDIR /home/crew
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# Binding 0.0.0.0 requires CREW_API_TOKENS, hashed entries only (`crew token new`); the
# service refuses to start without them.
CMD ["crew", "serve"]

# -- offline: the runtime plus the AWS provider mirror (`docker build --target offline .`) ----
FROM runtime AS offline
COPY --from=providers /opt/tf-plugins /opt/tf-plugins

# The default target is the slim runtime (the last stage is what a plain `docker build` makes).
FROM runtime
