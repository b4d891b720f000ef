"""/rollback doctor [env]: what the runbooks will need, checked from where the bot runs
(bot/doctor.py). Read-only; the answer is for the person who asked."""

from bot import doctor
from bot.slack.doctor_views import doctor_report
from commands.parser import Spec

NAME = "doctor"
SPEC = Spec(
    "doctor [env]",
    "Check the databases, migrations, AWS, Slack scopes and the state database.",
    optional_positional=("env",),
    options=("env",),
)


def run(ctx) -> dict:
    name = ctx.parsed.args.get("env") or ctx.environment
    if name:
        ctx.services.config.environment(name)  # an unknown one is refused by name
    return doctor_report(doctor.run(ctx.services.config, ctx.services.settings.slack, name))
