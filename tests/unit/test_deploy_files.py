"""docker-compose.yml cannot run here (no Docker engine): check what can be checked of it."""

from pathlib import Path

import yaml

from okr.settings import PROJECT_ROOT, Settings


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_app_its_migrations_and_postgres() -> None:
    services = _compose()["services"]
    assert set(services) == {"db", "migrate", "app"}
    assert services["db"]["image"].startswith("postgres:")
    assert services["migrate"]["command"] == ["okr", "db", "upgrade"]
    assert services["app"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_every_compose_variable_is_a_setting() -> None:
    for name in ("migrate", "app"):
        env = _compose()["services"][name]["environment"]
        for key in env:
            assert key.startswith("OKR_"), key
            assert key.removeprefix("OKR_").lower() in Settings.model_fields, f"{key} is not an okr setting"
        assert env["OKR_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert env["OKR_MODE"] == "production"


def test_example_env_names_only_real_settings() -> None:
    for line in (PROJECT_ROOT / "config" / "example.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key = line.split("=", 1)[0]
            assert key.removeprefix("OKR_").lower() in Settings.model_fields, key


def test_dockerfile_ships_what_the_app_reads_at_run_time() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    for folder in ("src", "templates", "migrations", "config"):
        assert f"COPY {folder} " in dockerfile
        assert Path(PROJECT_ROOT / folder).is_dir()
