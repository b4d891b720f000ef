"""Config errors name the file, the table and the key; Slack settings name the variable."""

from __future__ import annotations

import re

import pytest

from bot.errors import ConfigError
from bot.settings import load_config, slack_settings_from_env

GOOD = """
default_environment = "staging"
[environments.staging]
database_url = "postgresql://app:s3cret-pw@db.internal/app"
protected = true
approvers = ["U012ABCDEF", "@db-approvers"]
"""


def write(tmp_path, text):
    path = tmp_path / "rollback.toml"
    path.write_text(text)
    return path


def test_a_good_config_loads_with_defaults(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    env = config.environment(None)
    assert env.name == "staging" and env.protected
    assert env.notify_channel == "#engineering"
    assert env.incident_channel is None
    assert env.approvers == ("U012ABCDEF", "@db-approvers")
    assert env.requesters == ()
    assert config.state_db.name == "rollback-bot.db"
    assert config.approval_expiry_seconds == 1800
    assert "s3cret-pw" not in repr(env)  # the URL is a Secret


def test_the_example_config_is_valid():
    from pathlib import Path

    config = load_config(Path(__file__).parents[2] / "rollback.example.toml")
    assert set(config.environments) == {"production", "staging", "development"}
    assert config.environments["production"].protected
    assert not config.environments["development"].protected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("colour = 1\n" + GOOD, "top level: unknown key 'colour'"),
        (
            GOOD.replace("protected = true", 'protected = "yes"'),
            "[environments.staging]: protected must be a boolean (true or false), got str",
        ),
        (
            GOOD.replace("protected = true\n", ""),
            "[environments.staging]: missing required key 'protected'",
        ),
        (
            GOOD.replace('default_environment = "staging"', 'default_environment = "prod"'),
            "default_environment = 'prod' is not one of",
        ),
        (GOOD + 'notify_channel = "engineering"\n', "[environments.staging]: notify_channel"),
        (
            GOOD.replace('approvers = ["U012ABCDEF", "@db-approvers"]', "approvers = []"),
            "protected = true needs approvers",
        ),
        (GOOD.replace('"U012ABCDEF"', '"bob"'), "approvers entries must be Slack user ids"),
        (GOOD + 'database_url_env = "X"\n', "set exactly one of database_url"),
        ("approval_expiry_minutes = true\n" + GOOD, "approval_expiry_minutes must be a number"),
        ("approval_expiry_minutes = -1\n" + GOOD, "approval_expiry_minutes must be greater"),
        ("default_environment = 'staging'\n[environments]\n", "has no environment"),
        ("this is = = not toml", "not valid TOML"),
    ],
)
def test_config_errors_name_file_table_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value)
    assert expected in str(error.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "SLACK_BOT_TOKEN is not set"),
        ({"SLACK_BOT_TOKEN": "abc"}, "SLACK_BOT_TOKEN must start with xoxb-"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET is not set"),
        (
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "SLACK_APP_TOKEN": "xoxb-2"},
            "SLACK_APP_TOKEN must be an app-level token",
        ),
        (
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "SLACK_API_URL": "slack"},
            "SLACK_API_URL must be an http(s) URL",
        ),
    ],
)
def test_slack_settings_errors_name_the_variable(env, expected):
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        slack_settings_from_env(env)


def test_socket_mode_when_app_token_is_set():
    s = slack_settings_from_env(
        {
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_APP_TOKEN": "xapp-1",
            "SLACK_API_URL": "http://127.0.0.1:9/api",
        }
    )
    assert s.socket_mode and s.api_url == "http://127.0.0.1:9/api/"
    assert "xoxb-1" not in repr(s)


def test_sql_pitr_tables_and_verification_queries(tmp_path):
    text = (
        GOOD
        + '[[environments.staging.verification_queries]]\nname = "recent users"\n'
        + "sql = \"SELECT count(*) FROM users WHERE created_at > now() - interval '1 day'\"\n"
        + 'expect = "> 0"\n'
        + '[sql]\nlock_timeout = "3s"\n[pitr]\nrestore_margin_minutes = 10\n'
    )
    config = load_config(write(tmp_path, text))
    assert config.sql_lock_timeout == "3s" and config.sql_statement_timeout == "60s"
    # The dry run (before any approval) has its own, smaller limits.
    assert (config.sql_dry_run_lock_timeout, config.sql_dry_run_statement_timeout) == (
        "2s",
        "15s",
    )
    assert config.sql_dry_run_total_timeout == "30s"  # and a budget for all of it
    assert config.pitr_restore_margin_minutes == 10
    (query,) = config.environment("staging").verification_queries
    assert query.name == "recent users" and query.expect == "> 0"


def test_pitr_cleanup_delay_defaults_to_seven_days_and_must_be_positive(tmp_path):
    assert load_config(write(tmp_path, GOOD)).pitr_cleanup_delay_days == 7
    config = load_config(write(tmp_path, GOOD + "[pitr]\ncleanup_delay_days = 2.5\n"))
    assert config.pitr_cleanup_delay_days == 2.5
    with pytest.raises(ConfigError, match=r"\[pitr\]: cleanup_delay_days must be greater than 0"):
        load_config(write(tmp_path, GOOD + "[pitr]\ncleanup_delay_days = 0\n"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD + '[sql]\nlock_timeout = "5 seconds"\n', "[sql]: lock_timeout must be"),
        (
            GOOD + '[sql]\ndry_run_statement_timeout = "soon"\n',
            "[sql]: dry_run_statement_timeout must be",
        ),
        (GOOD + '[sql]\ndry_run_total_timeout = "30"\n', "dry_run_total_timeout must be a"),
        (GOOD + '[sql]\ndry_run_total_timeout = "0s"\n', "must be more than 0"),
        (
            GOOD + '[[environments.staging.verification_queries]]\nname = "x"\n',
            "verification_queries[0]: missing required key 'sql'",
        ),
        (
            GOOD + '[[environments.staging.verification_queries]]\nname = "x"\nsql = "SELECT 1"\n'
            'expect = "lots"\n',
            "expect must be a comparison",
        ),
    ],
)
def test_sql_pitr_and_query_errors(tmp_path, text, expected):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    assert expected in str(error.value)


def test_the_state_db_is_a_file_a_postgresql_url_or_named_by_an_env_var(tmp_path, monkeypatch):
    url = "postgresql://bot:st4te-pw@state.internal/rollback"
    config = load_config(write(tmp_path, f'state_db = "{url}"\n' + GOOD))
    assert config.state_db.reveal() == url and "st4te-pw" not in repr(config)
    monkeypatch.setenv("STATE_URL", url)
    config = load_config(write(tmp_path, 'state_db_env = "STATE_URL"\n' + GOOD))
    assert config.state_db.reveal() == url
    monkeypatch.setenv("STATE_URL", str(tmp_path / "s.db"))
    assert load_config(write(tmp_path, 'state_db_env = "STATE_URL"\n' + GOOD)).state_db == (
        tmp_path / "s.db"
    )


@pytest.mark.parametrize(
    ("top", "says"),
    [
        ('state_db_env = "NOT_SET_ANYWHERE"', "NOT_SET_ANYWHERE is not set"),
        ('state_db = "a.db"\nstate_db_env = "X"', "not both"),
        ('state_db = "mysql://u:pw@h/db"', "SQLite file path or a postgresql:// URL"),
    ],
)
def test_a_bad_state_db_says_what_to_do(tmp_path, top, says):
    with pytest.raises(ConfigError, match=says) as error:
        load_config(write(tmp_path, top + "\n" + GOOD))
    assert "pw@" not in str(error.value)


def test_pitr_cleanup_checks_settings(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert config.pitr_connections_window_minutes == 15 and config.pitr_resolver is None
    config = load_config(
        write(
            tmp_path,
            GOOD
            + '[pitr]\nconnections_window_minutes = 30\nresolver = "bot.sandbox.aws:resolve"\n',
        )
    )
    assert config.pitr_connections_window_minutes == 30
    assert config.pitr_resolver == "bot.sandbox.aws:resolve"
    with pytest.raises(ConfigError, match='resolver must be "module:function"'):
        load_config(write(tmp_path, GOOD + '[pitr]\nresolver = "not a function"\n'))


def test_a_resolver_that_cannot_be_loaded_is_a_config_error():
    from bot.aws.addresses import addresses, load_resolver, system_resolver

    assert load_resolver(None) is system_resolver
    with pytest.raises(ConfigError, match="cannot be loaded"):
        load_resolver("bot.sandbox.aws:no_such_function")
    # An IP address stands for itself: no resolver is asked.
    assert addresses("127.0.0.7", 5432, resolver=None) == frozenset({"127.0.0.7"})


def test_people_and_channel_keys_load_with_defaults(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert config.idle_timeout_seconds == 3600 and config.approval_reminder_seconds == 600
    assert config.drills_in_thread and config.archive_after_seconds == 3600
    assert config.break_glass.users == {} and config.break_glass.allowed_signers is None
    env = config.environment("staging")
    assert env.private_incident_channel  # protected: private by default
    assert not env.reuse_incident_channel
    text = (
        "idle_timeout_minutes = 5\napproval_reminder_minutes = 2\n"
        + GOOD
        + "private_incident_channel = false\nreuse_incident_channel = true\n"
        + "[incident_channels]\ndrills_in_thread = false\narchive_after_minutes = 1\n"
        + '[break_glass]\nusers = { alice = "U012ALICE" }\nallowed_signers = "signers"\n'
        + 'groups = { "@db-approvers" = ["U012BOB"] }\n'
    )
    config = load_config(write(tmp_path, text))
    assert config.idle_timeout_seconds == 300 and config.approval_reminder_seconds == 120
    assert not config.drills_in_thread and config.archive_after_seconds == 60
    assert config.break_glass.users == {"alice": "U012ALICE"}
    assert config.break_glass.allowed_signers == tmp_path / "signers"
    assert config.break_glass.groups == {"db-approvers": frozenset({"U012BOB"})}
    env = config.environment("staging")
    assert not env.private_incident_channel and env.reuse_incident_channel


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('[break_glass]\nusers = { alice = "alice" }\n', "users maps OS account names"),
        ('[break_glass]\ngroups = { dba = "U012BOB" }\n', "groups maps a user group handle"),
        ("[break_glass]\nwho = 1\n", "[break_glass]: unknown key 'who'"),
        ("[incident_channels]\narchive_after_minutes = 0\n", "must be greater than 0"),
    ],
)
def test_bad_people_keys_are_named(tmp_path, table, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_config(write(tmp_path, GOOD + table))
