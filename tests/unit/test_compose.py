"""compose.yaml runs the crew with Postgres (pgvector), Redis, Prometheus and Grafana.

No Docker engine runs here: the file is validated against the Compose Specification's JSON
schema (check-jsonschema ships it), linted with yamllint, and its wiring is checked against
the settings, the Prometheus scrape configuration and the Grafana provisioning files."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from crew.access import Role, new_token, token_entry
from crew.settings import Settings
from tests.unit.support import venv_tool

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
PROMETHEUS = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text("utf-8"))
GRAFANA = ROOT / "deploy" / "grafana"
YAMLLINT_CONFIG = (
    "{extends: default, rules: {line-length: {max: 130}, document-start: disable, "
    "comments: {min-spaces-from-content: 1}}}"
)
_VARIABLE = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")


def _tool(name: str) -> str:
    return venv_tool(name, "the dev extras install it: make install")


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` against `env`."""

    def one(match: re.Match[str]) -> str:
        name, kind, arg = match.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise KeyError(f"{name}: {arg}")
        return arg if kind == "-" else ""

    return _VARIABLE.sub(one, value)


def _mounts(service: str) -> dict[str, str]:
    """Bind mounts of a service, host path (relative to the repo) -> container path."""
    mounts = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            mounts[source.removeprefix("./")] = target
    return mounts


def test_the_file_is_valid_under_the_compose_specification() -> None:
    result = _run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "compose.yaml"]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_yamllint_finds_nothing_in_compose_and_deploy() -> None:
    files = [
        "compose.yaml",
        *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("deploy/**/*.y*ml")),
    ]
    assert len(files) >= 5
    result = _run([_tool("yamllint"), "--strict", "-d", YAMLLINT_CONFIG, *files])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_services_and_their_pinned_images() -> None:
    assert set(SERVICES) == {"crew", "worker", "postgres", "redis", "prometheus", "grafana"}
    assert SERVICES["worker"]["profiles"] == ["workers"]  # more workers on demand
    assert SERVICES["postgres"]["image"].startswith("pgvector/pgvector:pg")
    for name, service in SERVICES.items():
        if "build" in service:
            assert service["build"]["context"] == "."
            continue
        image = service["image"]
        assert ":" in image, f"{name}: pin {image}"
        assert not image.endswith(":latest"), f"{name}: pin {image}"


def test_every_service_has_a_healthcheck_and_waits_for_what_it_needs() -> None:
    for name, service in SERVICES.items():
        assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
    healthy = {"condition": "service_healthy"}
    for name in ("crew", "worker"):
        assert SERVICES[name]["depends_on"] == {"postgres": healthy, "redis": healthy}
    assert SERVICES["grafana"]["depends_on"] == {"prometheus": healthy}
    assert SERVICES["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert "/healthz" in " ".join(SERVICES["crew"]["healthcheck"]["test"])


def test_ports_are_published_on_loopback_only() -> None:
    published = [
        (name, port) for name, service in SERVICES.items() for port in service.get("ports", [])
    ]
    # no database, no redis
    assert {name for name, _ in published} == {"crew", "prometheus", "grafana"}
    for name, port in published:
        assert isinstance(port, str), f"{name}: {port} (use the long form with host_ip)"
        assert port.startswith("127.0.0.1:"), f"{name}: {port}"


def test_the_crew_settings_in_compose_validate_beyond_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment = SERVICES["crew"]["environment"]
    assert SERVICES["worker"]["environment"] == environment
    # the file refuses to start without tokens and passwords instead of running without them
    for name in ("CREW_API_TOKENS", "CREW_DATABASE_URL"):
        with pytest.raises(KeyError):
            interpolate(environment[name], {})
    tokens = ",".join(
        token_entry(name, role, new_token())
        for name, role in (("admin", Role.APPROVER), ("prometheus", Role.VIEWER))
    )
    env = {"POSTGRES_PASSWORD": "pw", "CREW_API_TOKENS": tokens}
    for name in list(Settings.model_fields):
        monkeypatch.delenv(f"CREW_{name.upper()}", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, interpolate(str(value), env))
    settings = Settings()
    assert settings.host == "0.0.0.0"
    assert settings.database_url is not None
    assert "@postgres:5432/" in settings.database_url.get_secret_value()
    assert settings.bus_url.get_secret_value() == "redis://redis:6379/0"
    assert [t.principal for t in settings.api_tokens] == ["admin", "prometheus"]
    postgres = SERVICES["postgres"]["environment"]
    url = settings.database_url.get_secret_value()
    assert (
        url
        == f"postgresql://{postgres['POSTGRES_USER']}:pw@postgres:5432/{postgres['POSTGRES_DB']}"
    )


def test_every_crew_variable_in_compose_and_the_env_example_is_a_setting() -> None:
    fields = {f"CREW_{name.upper()}" for name in Settings.model_fields}
    example = (ROOT / "deploy" / "crew.env.example").read_text(encoding="utf-8")
    named = set(re.findall(r"^#? ?(CREW_\w+)=", example, flags=re.MULTILINE))
    named |= {k for k in SERVICES["crew"]["environment"] if k.startswith("CREW_")}
    assert named, "no CREW_ variables found"
    assert named <= fields, f"not settings: {sorted(named - fields)}"
    for name in ("crew", "worker"):
        assert SERVICES[name]["env_file"] == [{"path": "crew.env", "required": False}]


def test_prometheus_scrapes_the_crew_with_the_mounted_viewer_token() -> None:
    service = SERVICES["prometheus"]
    assert _mounts("prometheus") == {
        "deploy/prometheus/prometheus.yml": "/etc/prometheus/prometheus.yml"
    }
    (secret,) = service["secrets"]
    default_file = interpolate(COMPOSE["secrets"][secret]["file"], {})
    assert default_file == "./deploy/secrets/prometheus-token"
    jobs = {job["job_name"]: job for job in PROMETHEUS["scrape_configs"]}
    for job in jobs.values():
        assert job["authorization"]["credentials_file"] == f"/run/secrets/{secret}"
    assert jobs["infra-crew-api"]["static_configs"] == [{"targets": ["crew:8000"]}]
    assert SERVICES["crew"]["ports"] == ["127.0.0.1:${CREW_PORT:-8000}:8000"]
    (lookup,) = jobs["infra-crew-worker"]["dns_sd_configs"]
    assert lookup["names"] == ["worker"]
    command = SERVICES["worker"]["command"]
    assert command[command.index("--metrics-port") + 1] == str(lookup["port"])


def test_grafana_gets_the_datasource_dashboard_and_alert_rules() -> None:
    mounts = _mounts("grafana")
    assert mounts["deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    for kind in ("datasources", "dashboards", "alerting"):
        assert list((GRAFANA / "provisioning" / kind).glob("*.yaml")), kind
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/infra-crew.yaml").read_text())
    assert mounts["deploy/grafana/dashboards"] == provider["providers"][0]["options"]["path"]
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.removeprefix(provider["providers"][0]["options"]["path"] + "/") in {
        p.name for p in (GRAFANA / "dashboards").glob("*.json")
    }
    (datasource,) = yaml.safe_load(
        (GRAFANA / "provisioning/datasources/prometheus.yaml").read_text()
    )["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in SERVICES["prometheus"]["ports"]
    password = SERVICES["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    with pytest.raises(KeyError):
        interpolate(password, {})


def test_bind_mounts_exist_in_the_repository() -> None:
    for name in SERVICES:
        for source in _mounts(name):
            assert (ROOT / source).exists(), f"{name}: {source}"


def test_promtool_accepts_the_scrape_config_and_every_alert_query(tmp_path: Path) -> None:
    # `make test` puts it beside this Python (scripts/ensure-promtool) when it is not on PATH.
    promtool = venv_tool("promtool", "run scripts/ensure-promtool: Debian package prometheus")
    token = tmp_path / "token"
    token.write_text("crew_test\n")
    config = (
        (ROOT / "deploy/prometheus/prometheus.yml")
        .read_text()
        .replace("/run/secrets/prometheus_token", str(token))
    )
    (tmp_path / "prometheus.yml").write_text(config)
    alerts = yaml.safe_load((GRAFANA / "provisioning/alerting/infra-crew-alerts.yaml").read_text())
    rules = [
        {"record": f"check:{rule['uid'].replace('-', '_')}", "expr": query["model"]["expr"]}
        for group in alerts["groups"]
        for rule in group["rules"]
        for query in rule["data"]
        if query["datasourceUid"] == "prometheus"
    ]
    (tmp_path / "rules.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]})
    )
    for argv in (["check", "config", "prometheus.yml"], ["check", "rules", "rules.yml"]):
        result = subprocess.run(
            [promtool, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
