"""Settings: defaults from config/, OKR_* overrides, and a clear error for a weak production secret."""

import pytest

from okr.settings import SettingsError, load_settings


def test_defaults_come_from_config_and_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKR_ORG_CURRENCY", "eur")
    monkeypatch.setenv("OKR_FISCAL_YEAR_START_MONTH", "2")
    s = load_settings()
    assert s.org_currency == "EUR"
    assert s.fiscal_year_start_month == 2
    assert s.org_timezone == "America/New_York"  # config/defaults.toml


def test_development_generates_a_secret_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OKR_SECRET_KEY", raising=False)
    s = load_settings(mode="development")
    assert len(s.secret_key) >= 32
    assert s.secret_generated


@pytest.mark.parametrize("secret", ["", "short", "a" * 64])
def test_production_refuses_a_missing_or_weak_secret(secret: str) -> None:
    with pytest.raises(SettingsError, match="OKR_SECRET_KEY"):
        load_settings(mode="production", secret_key=secret)


def test_unknown_time_zone_and_currency_are_named() -> None:
    with pytest.raises(SettingsError, match="org_timezone"):
        load_settings(org_timezone="Mars/Olympus")
    with pytest.raises(SettingsError, match="org_currency"):
        load_settings(org_currency="XYZ")
