"""The one error handler: every listener is wrapped by ``reports_errors``. A UserError
becomes a clear ephemeral message where the user is; anything else is logged with a
correlation id that the user is given.

Why a wrapper and not Bolt's ``app.error``: with process_before_response=False, a listener
that raises just after ack() can make Bolt drop the ack (thread_runner resets
ack.response), and Slack then shows the user an error. Catching inside the listener keeps
the ack and still reports the error.
"""

from __future__ import annotations

import functools
import logging
import secrets

from slack_sdk.errors import SlackApiError

from bot.errors import UserError
from bot.slack import views

log = logging.getLogger("rollback_bot.errors")


def reports_errors(listener):
    if getattr(listener, "_reports_errors", False):
        # Twice would only hide the inner wrapper's work from the outer one.
        raise TypeError(f"{listener.__name__} already reports its errors")

    @functools.wraps(listener)
    def wrapper(**kwargs):
        try:
            return listener(**kwargs)
        except UserError as error:
            _tell(kwargs, views.error_message(error))
        except SlackApiError as error:
            log.warning(
                "Slack refused a call in %s: %s", listener.__name__, error.response.get("error")
            )
            _tell(
                kwargs,
                views.info_message(
                    f":warning: Slack refused the bot's request ({error.response.get('error')})."
                    " Nothing was changed. Try again in a few seconds."
                ),
            )
        except Exception:  # noqa: BLE001 - the last line: log with a ref, tell the user
            ref = secrets.token_hex(4)
            log.exception("unexpected error in %s (ref %s)", listener.__name__, ref)
            _tell(
                kwargs,
                views.info_message(
                    f":boom: Something unexpected went wrong (ref `{ref}`). Nothing more was"
                    " done; the operation's state is kept. Tell the bot's maintainers the ref."
                ),
            )
        return None

    wrapper._reports_errors = True
    return wrapper


def unwrapped_listeners(app) -> list[str]:
    """Every registered listener whose function is not wrapped by ``reports_errors`` (build_app
    refuses to serve with one: its errors would reach Bolt, which can drop the ack)."""
    return [
        getattr(listener.ack_function, "__name__", repr(listener.ack_function))
        for listener in app._listeners  # Bolt keeps no public list of them
        if not getattr(listener.ack_function, "_reports_errors", False)
    ]


def _tell(kwargs: dict, message: dict) -> None:
    ack = kwargs.get("ack")
    if ack is not None and ack.response is None:
        if "view" in kwargs:
            # A modal submission's ack takes no text: close the modal, say it in the DM.
            ack()
            _tell_in_dm(kwargs, message)
            return
        ack(**message)
        return
    respond = kwargs.get("respond")
    if respond is not None:
        respond(response_type="ephemeral", replace_original=False, **message)
    elif not _tell_in_dm(kwargs, message):
        log.warning("could not tell the user: %s", message["text"])


def _tell_in_dm(kwargs: dict, message: dict) -> bool:
    """A modal submission has no response_url: the error goes to the user's DM with the bot
    (chat.postMessage to a user id opens it; the bot's im:write scope)."""
    client, user = kwargs.get("client"), (kwargs.get("body") or {}).get("user", {}).get("id")
    if client is None or not user:
        return False
    try:
        client.chat_postMessage(channel=user, **message)
    except SlackApiError as error:
        log.warning("could not tell %s: %s", user, error.response.get("error"))
        return False
    return True
