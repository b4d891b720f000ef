"""The check card's "Answer the checklist" button and the modal's submission."""

from __future__ import annotations

from slack_bolt import App

from bot.clock import utcnow
from bot.errors import UserError
from bot.prevention.report import review_dict
from bot.runbooks.check import PERSON_QUESTION_IDS, PersonAnswers, record_review
from bot.slack import check_views, views
from bot.slack.ids import Action, Block, Callback
from bot.slack.values import CheckRef
from handlers.error_reporter import reports_errors


def register(app: App, services) -> None:
    @app.action(Action.CHECK_REVIEW)
    @reports_errors
    def open_review(ack, body: dict, action: dict, client) -> None:
        # The card above the button holds the bot's answers; the modal asks only what a
        # person knows, so it opens at once, well inside the trigger_id's 3 s.
        ack()
        ref = CheckRef.parse(action["value"])
        services.config.environment(ref.env)  # an environment since removed: said, not opened
        client.views_open(trigger_id=body["trigger_id"], view=check_views.check_modal(ref))

    @app.view(Callback.CHECK)
    @reports_errors
    def submit(ack, body: dict, view: dict, client) -> None:
        ack()
        ref = CheckRef.parse(view["private_metadata"])
        user = body["user"]["id"]
        answers = _answers(view["state"]["values"])
        env = services.config.environment(ref.env)
        try:
            # The deploy guard counts reviews: only who may start operations here records one.
            services.engine.check_requester(env, user, "a check review")
            review, record = record_review(
                services.store,
                services.config,
                env,
                ref.migration,
                ref.checksum,
                user,
                answers,
                utcnow(),
            )
        except UserError as error:
            # What the person asked about is quoted in the error: escaped by the view.
            client.chat_postEphemeral(channel=ref.channel, user=user, **views.error_message(error))
            return
        message = check_views.reviewed_message(env.name, review_dict(review), user, record.detail)
        services.outbox.post(ref.channel, message)


def _answers(values: dict) -> PersonAnswers:
    ticked = values.get(Block.CHECK_CONFIRMED, {}).get("confirmed", {})
    chosen = {o["value"] for o in ticked.get("selected_options") or ()}
    note = values.get(Block.CHECK_NOTE, {}).get("note", {}).get("value") or ""
    return PersonAnswers(tuple(i for i in PERSON_QUESTION_IDS if i in chosen), note.strip())
