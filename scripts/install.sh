#!/usr/bin/env bash
# Install infra-crew into a virtual environment: the one install step shared by `make install`
# (which `make run` and `make test` use) and the Dockerfile's build stage.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/install.sh [--venv DIR] [--extras dev|runtime] [--editable] [--help]

Create the virtual environment DIR (default .venv) if it does not exist, upgrade pip in it and
install this project with its dependencies, checkov and the `crew` CLI among them.

  --venv DIR        where the virtual environment goes (default: .venv)
  --extras dev      the package plus the dev extras: linters, pytest, moto, ... (make install)
  --extras runtime  the package alone (the container image); the default
  --editable        install the sources in place (pip install -e), as a developer wants
  --help            this text

Environment: PYTHON (default python3) creates the venv; pip's own PIP_* variables apply
(the image sets PIP_NO_CACHE_DIR=1). Exit 0 installed, 1 install failed, 2 bad arguments.
EOF
}

venv=.venv
extras=runtime
editable=false
while [[ $# -gt 0 ]]; do
    case "$1" in
        --venv) venv=${2:?--venv needs a directory}; shift 2 ;;
        --extras) extras=${2:?--extras needs dev or runtime}; shift 2 ;;
        --editable) editable=true; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

case "$extras" in
    dev) target='.[dev]' ;;
    runtime) target='.' ;;
    *) echo "install.sh: --extras is dev or runtime, not '$extras'" >&2; exit 2 ;;
esac

venv=$(realpath -m "$venv")  # relative to where we were called from
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --quiet --disable-pip-version-check)
"${pip[@]}" install --upgrade pip
if [[ "$editable" == true ]]; then
    "${pip[@]}" install -e "$target"
else
    "${pip[@]}" install "$target"
fi

# checkov is a dependency of the package (Sentinel runs it in-process and as a CLI): its script
# and the crew CLI must be in the venv, or the install is not what the README promises.
for program in crew checkov; do
    if [[ ! -x "$venv/bin/$program" ]]; then
        echo "install.sh: $venv/bin/$program is missing after the install" >&2
        exit 1
    fi
done
echo "installed infra-crew ($extras) into $venv"
