"""Settings: validation names the variable, TOML loads, and the README documents every field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from instance.settings import SettingsError, load_settings, settings_table

ROOT = Path(__file__).resolve().parents[2]


def test_readme_settings_table_is_current() -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- settings-table[^>]*-->\n(.*?)\n<!-- /settings-table -->", readme, re.S)
    assert match, "README.md lost its settings table markers"
    stale = "README settings table is stale: run python -m instance.settings"
    assert match.group(1) == settings_table(), stale


def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_REGISTRATION", "maybe")
    monkeypatch.setenv("SHOAL_LISTEN", "nowhere")
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "SHOAL_REGISTRATION" in message and "SHOAL_LISTEN" in message


def test_toml_file_and_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "shoal.toml"
    config.write_text('registration = "closed"\ninstance_name = "From file"\n')
    monkeypatch.setenv("SHOAL_INSTANCE_NAME", "From env")
    settings = load_settings(config)
    assert settings.registration == "closed"
    assert settings.instance_name == "From env"


def test_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "shoal.toml"
    config.write_text("regstration = 'open'\n")
    with pytest.raises(SettingsError, match="regstration: unknown setting"):
        load_settings(config)


def test_postgres_url_is_normalised_and_masked() -> None:
    settings = load_settings(database_url="postgresql://shoal:hunter2@db/shoal")
    assert settings.effective_database_url == "postgresql+asyncpg://shoal:hunter2@db/shoal"
    assert "hunter2" not in str(settings.masked())


def test_defaults_are_embedded(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.effective_storage_url == f"file://{tmp_path.resolve() / 'storage'}"
    assert settings.workers_mode == "embedded"
    assert load_settings(redis_url="redis://127.0.0.1:6379/0").workers_mode == "external"


def test_the_seeder_runs_in_the_web_process_of_a_one_process_instance() -> None:
    assert load_settings().seeder_in_web
    assert not load_settings(redis_url="redis://127.0.0.1:6379/0").seeder_in_web  # `shoal seeder`
    assert load_settings(seeder_enabled=True).seeder_in_web
    assert load_settings(redis_url="redis://127.0.0.1:6379/0", seeder_enabled=True).seeder_in_web
    assert not load_settings(seeder_enabled=False).seeder_in_web
    assert not load_settings(p2p_enabled=False).seeder_in_web
