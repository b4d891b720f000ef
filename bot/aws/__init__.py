"""AWS integrations (RDS, Secrets Manager). Domain code: no Slack in here.

Clients are built with boto3's own configuration (credentials, profiles, instance and task
roles, AWS_ENDPOINT_URL); the bot has no endpoint setting of its own. The region is
botocore's: AWS_DEFAULT_REGION, then the profile's ``region``. botocore (1.44) does not read
AWS_REGION, which other AWS SDKs, Lambda and ECS set; the bot honours it explicitly, after
AWS_DEFAULT_REGION (``region``).
"""

from __future__ import annotations

import os


def region() -> str | None:
    """The region to give boto3, or None to let botocore resolve it (profile, IMDS)."""
    if os.environ.get("AWS_DEFAULT_REGION"):
        return None  # botocore reads it itself
    return os.environ.get("AWS_REGION") or None
