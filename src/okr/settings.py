"""Settings: config/defaults.toml, then an optional OKR_CONFIG_FILE, then OKR_* environment variables."""

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from okr.lib.money import CURRENCY_DECIMALS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_ROOT = Path(__file__).resolve().parent
DEFAULTS_FILE = PROJECT_ROOT / "config" / "defaults.toml"
MIN_SECRET_LENGTH = 32


class SettingsError(RuntimeError):
    """The configuration cannot be used; the message says which setting and why."""


class Settings(BaseSettings):
    """Every setting okr reads, with its default."""

    model_config = SettingsConfigDict(env_prefix="OKR_", extra="ignore")

    mode: Literal["development", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///var/okr.db"
    secret_key: str = ""
    org_name: str = "Demo Revenue Co."
    org_timezone: str = "UTC"
    org_currency: str = "USD"
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    session_max_age_seconds: int = Field(default=43200, gt=0)
    db_pool_size: int = Field(default=5, ge=1, le=50)
    db_echo: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    attribution_workers: int = Field(default=0, ge=0, le=16)
    templates_dir: Path = PROJECT_ROOT / "templates"
    secret_generated: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Order: explicit arguments, environment, OKR_CONFIG_FILE, config/defaults.toml."""
        files = [DEFAULTS_FILE]
        extra = os.environ.get("OKR_CONFIG_FILE")
        if extra:
            files.append(Path(extra))
        toml = TomlConfigSettingsSource(settings_cls, toml_file=[f for f in files if f.exists()])
        return (init_settings, env_settings, toml)

    @field_validator("org_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)") from exc
        return value

    @field_validator("org_currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        code = value.upper()
        if code not in CURRENCY_DECIMALS:
            raise ValueError(f"unknown currency {value!r} (use an ISO 4217 code such as USD)")
        return code

    @model_validator(mode="after")
    def _secret(self) -> "Settings":
        if self.mode == "production":
            if len(self.secret_key) < MIN_SECRET_LENGTH or len(set(self.secret_key)) < 8:
                raise ValueError(
                    "OKR_SECRET_KEY must be set to a random string of at least "
                    f"{MIN_SECRET_LENGTH} characters in production mode "
                    '(generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))")'
                )
        elif not self.secret_key:
            self.secret_key = _development_secret()
            self.secret_generated = True
        return self

    @property
    def tz(self) -> ZoneInfo:
        """The organisation's time zone."""
        return ZoneInfo(self.org_timezone)

    @property
    def is_sqlite(self) -> bool:
        """True when the database is SQLite."""
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None for another database or an in-memory one."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1] if ":///" in self.database_url else ""
        if not path or path.startswith(":memory:"):
            return None
        p = Path(path)
        return p if p.is_absolute() else PROJECT_ROOT / p


def _development_secret() -> str:
    """A random secret kept in var/.secret_key, so development sessions survive a restart."""
    path = PROJECT_ROOT / "var" / ".secret_key"
    try:
        existing = path.read_text().strip()
    except OSError:
        existing = ""
    if len(existing) >= MIN_SECRET_LENGTH:
        return existing
    secret = secrets.token_urlsafe(48)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secret)
    except OSError:
        pass  # a read-only checkout still runs, with a secret for this process only
    return secret


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning a validation failure into one readable SettingsError."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()]
        raise SettingsError("okr cannot start, the configuration is invalid:\n" + "\n".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings."""
    return load_settings()
