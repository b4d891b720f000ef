"""`rollback-bot sandbox`: the bot on a laptop with no tokens and no AWS account."""
