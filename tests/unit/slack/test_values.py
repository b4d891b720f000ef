"""bot/slack/values.py: button values and private_metadata, written and read one way."""

from __future__ import annotations

import json

import pytest

from bot.errors import UserError
from bot.slack.values import ChecklistRef, DecisionChoice, FinalSnapshotChoice, RevertModal


def test_values_round_trip():
    for value in (
        ChecklistRef("op-1", "before"),
        DecisionChoice("dec-1", "commit"),
        FinalSnapshotChoice("op-2", skip=True),
        RevertModal("staging", "20250101000000_init", "2025-12-08T12:00:00+00:00"),
    ):
        assert type(value).parse(value.encode()) == value


def test_a_button_posted_by_an_earlier_version_still_parses():
    # The JSON the views wrote with json.dumps before these models existed.
    assert ChecklistRef.parse(json.dumps({"op": "op-1", "checklist": "after"})).checklist == (
        "after"
    )
    assert FinalSnapshotChoice.parse(json.dumps({"op": "op-1", "skip": False})).skip is False


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "not json",
        "[]",
        '{"op": "op-1"}',  # a key missing
        '{"op": "op-1", "checklist": "before", "extra": 1}',  # a key too many
        '{"op": 7, "checklist": "before"}',  # a wrong type
    ],
)
def test_a_value_that_does_not_parse_is_a_clear_refusal(text):
    with pytest.raises(UserError, match="no longer matches"):
        ChecklistRef.parse(text)


def test_a_skip_that_is_not_a_boolean_is_refused():
    with pytest.raises(UserError):
        FinalSnapshotChoice.parse('{"op": "op-1", "skip": "yes"}')
