"""crew/settings.py: CREW_* variables, the unsafe-bind refusal, provider mirror detection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

import crew.settings
from crew.access import Role, hash_token, token_entry
from crew.settings import Settings, detect_plugin_dir


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CREW_* variable of the machine running the tests leaks into these."""
    for name in list(os.environ):
        if name.startswith("CREW_"):
            monkeypatch.delenv(name)


def mirror(root: Path) -> Path:
    (root / "registry.terraform.io" / "hashicorp" / "aws" / "5.100.0").mkdir(parents=True)
    return root


# -- binding ----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.5", "crew.example.com"])
def test_non_loopback_bind_without_tokens_is_refused(host: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(data_dir=tmp_path, host=host)
    message = str(info.value)
    assert f"refusing to bind {host} without API tokens" in message
    assert "CREW_API_TOKENS" in message


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_bind_needs_no_tokens(host: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, host=host)
    assert settings.host == host
    assert settings.api_tokens == []


def test_non_loopback_bind_with_hashed_tokens_is_allowed(tmp_path: Path) -> None:
    token = "s3cret-s3cret-s3cret"
    entry = token_entry("ops", Role.VIEWER, token)
    settings = Settings(data_dir=tmp_path, host="0.0.0.0", api_tokens=[entry])
    assert [(t.principal, t.role.value) for t in settings.api_tokens] == [("ops", "viewer")]
    assert settings.api_tokens[0].sha256 == hash_token(token)
    assert token not in repr(settings)


def test_the_refusal_applies_to_environment_variables_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CREW_HOST", "0.0.0.0")
    with pytest.raises(ValidationError, match="CREW_API_TOKENS"):
        Settings(data_dir=tmp_path)
    one = token_entry("one", Role.VIEWER, "0123456789abcdef")
    two = token_entry("two", Role.APPROVER, "fedcba9876543210")
    monkeypatch.setenv("CREW_API_TOKENS", f"{one}, {two} ,,")
    settings = Settings(data_dir=tmp_path)
    assert [t.principal for t in settings.api_tokens] == ["one", "two"]
    assert settings.api_tokens[1].sha256 == hash_token("fedcba9876543210")


# -- CREW_ prefix -----------------------------------------------------------------------------


def test_settings_come_from_crew_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CREW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CREW_PORT", "9001")
    monkeypatch.setenv("CREW_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("CREW_DATABASE_URL", "postgresql://crew:pw@db.internal/crew")
    monkeypatch.setenv("CREW_TERRAFORM_BIN", "/opt/terraform/bin/terraform")
    monkeypatch.setenv("CREW_TF_PLUGIN_DIR", str(tmp_path / "mirror"))
    monkeypatch.setenv("CREW_WORKER_CONCURRENCY", "8")
    monkeypatch.setenv("CREW_APPLY_TIMEOUT_S", "900")
    settings = Settings()
    assert settings.data_dir == tmp_path / "data"
    assert settings.port == 9001
    assert settings.log_level == "DEBUG"
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == "postgresql://crew:pw@db.internal/crew"
    assert "pw@" not in repr(settings)
    assert settings.terraform_bin == Path("/opt/terraform/bin/terraform")
    assert settings.tf_plugin_dir == tmp_path / "mirror"
    assert settings.worker_concurrency == 8
    assert settings.apply_timeout_s == 900


def test_unprefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PORT", "1234")
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    monkeypatch.setenv("HOST", "0.0.0.0")
    settings = Settings(data_dir=tmp_path)
    assert settings.port == 8000
    assert settings.database_url is None
    assert settings.host == "127.0.0.1"


def test_bad_values_name_the_field(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CREW_PORT", "99999")
    with pytest.raises(ValidationError, match="port"):
        Settings(data_dir=tmp_path)


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]


def test_directories_derive_from_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.workspaces_dir == tmp_path / "workspaces"
    assert settings.pgdata_dir == tmp_path / "pg18"
    assert settings.tf_plugin_cache_dir == tmp_path / "tf-plugin-cache"


# -- provider mirror detection ----------------------------------------------------------------


def test_detect_plugin_dir_finds_the_first_real_mirror(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    other_provider = tmp_path / "other"
    (other_provider / "registry.terraform.io" / "hashicorp" / "google").mkdir(parents=True)
    a_file = tmp_path / "file"
    (a_file / "registry.terraform.io" / "hashicorp").mkdir(parents=True)
    (a_file / "registry.terraform.io" / "hashicorp" / "aws").write_text("not a dir")
    first, second = mirror(tmp_path / "first"), mirror(tmp_path / "second")
    candidates = (tmp_path / "missing", empty, other_provider, a_file, first, second)
    monkeypatch.setattr(crew.settings, "_PLUGIN_DIR_CANDIDATES", candidates)
    assert detect_plugin_dir() == first


def test_detect_plugin_dir_without_a_mirror(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(crew.settings, "_PLUGIN_DIR_CANDIDATES", (tmp_path / "nothing",))
    assert detect_plugin_dir() is None


def test_settings_default_to_the_detected_mirror(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    found = mirror(tmp_path / "plugins")
    monkeypatch.setattr(crew.settings, "_PLUGIN_DIR_CANDIDATES", (found,))
    assert Settings(data_dir=tmp_path).tf_plugin_dir == found
    monkeypatch.setenv("CREW_TF_PLUGIN_DIR", str(tmp_path / "explicit"))
    assert Settings(data_dir=tmp_path).tf_plugin_dir == tmp_path / "explicit"


def test_terraform_bin_defaults_to_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    terraform = bin_dir / "terraform"
    terraform.write_text("#!/bin/sh\n")
    terraform.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert Settings(data_dir=tmp_path).terraform_bin == terraform
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert Settings(data_dir=tmp_path).terraform_bin is None
