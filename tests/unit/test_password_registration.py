"""Every password the bot resolves is registered with the scrubber the moment it is
resolved (bot/redaction.py): from the config file, an environment variable, a Secrets
Manager secret (moto in server mode, over HTTP), and a restored instance's URL. Each test
uses a password no other test could have registered, and checks it was not there before."""

from __future__ import annotations

import json
import secrets

from bot.aws import secrets_manager
from bot.database import database_url
from bot.redaction import registered, scrub
from bot.runbooks.pitr.verify import restored_url
from bot.settings import load_config


def fresh_password() -> str:
    password = f"pw-{secrets.token_hex(8)}"
    assert password not in registered()
    return password


def config(tmp_path, source: str):
    path = tmp_path / "rollback.toml"
    path.write_text(
        f'default_environment = "staging"\n[environments.staging]\n{source}\nprotected = false\n'
    )
    return load_config(path).environment("staging")


def test_a_password_in_the_config_file_is_registered_when_the_file_is_read(tmp_path):
    password = fresh_password()
    # The query-parameter shape: no userinfo password for a URL parser to find.
    config(tmp_path, f'database_url = "postgresql://app@db:5432/shop?password={password}"')
    assert password in registered()
    assert password not in scrub(f"FATAL: password {password} refused")


def test_a_password_from_an_environment_variable_is_registered_when_read(tmp_path, monkeypatch):
    password = fresh_password()
    env = config(tmp_path, 'database_url_env = "SHOP_DATABASE_URL"')
    monkeypatch.setenv("SHOP_DATABASE_URL", f"postgresql://:{password}@db:5432/shop")
    assert password not in registered()  # nothing read yet
    url = database_url(env)
    assert password in url.reveal() and password in registered()
    assert url.reveal() in registered()


def test_a_password_from_secrets_manager_is_registered_when_read(tmp_path, aws):
    password = fresh_password()
    url = f"postgresql://app:{password}@db.internal:5432/shop?sslmode=require"
    aws.client("secretsmanager").create_secret(
        Name="shop/database", SecretString=json.dumps({"url": url})
    )
    env = config(tmp_path, 'database_secret_id = "shop/database"')
    assert password not in registered()
    assert database_url(env).reveal() == url
    assert password in registered() and url in registered()


def test_the_traffic_switch_registers_the_secrets_current_url(aws):
    password = fresh_password()
    url = f"postgresql://app@db.internal:5432/shop?sslpassword={password}"
    aws.client("secretsmanager").create_secret(
        Name="shop/switch", SecretString=json.dumps({"url": url})
    )
    version = secrets_manager.current_version("shop/switch")
    assert version.url.reveal() == url
    assert password in registered() and url in registered()


def test_a_restored_instances_url_is_registered_when_it_is_made(tmp_path, monkeypatch):
    password = fresh_password()
    env = config(tmp_path, 'database_url_env = "SHOP_DATABASE_URL"')
    monkeypatch.setenv("SHOP_DATABASE_URL", f"postgresql://app:{password}@db:5432/shop")
    params = {"restored_address": "shop-restored.abc.rds.example", "restored_port": 6543}
    url = restored_url(env, params).reveal()
    assert url == f"postgresql://app:{password}@shop-restored.abc.rds.example:6543/shop"
    # The password came with the source's URL; the restored URL is one of its own.
    assert url in registered() and password in registered()
