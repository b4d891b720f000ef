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


def _tell(kwargs: dict, message: dict) -> None:
    ack = kwargs.get("ack")
    if ack is not None and ack.response is None:
        ack(**message)
        return
    respond = kwargs.get("respond")
    if respond is not None:
        respond(response_type="ephemeral", replace_original=False, **message)
    else:
        log.warning("could not tell the user: %s", message["text"])
