"""AWS integrations (RDS, Secrets Manager). Domain code: no Slack in here.

Clients are built with boto3's own configuration (AWS_REGION, AWS_ENDPOINT_URL, profiles,
instance roles); the bot has no endpoint setting of its own.
"""
