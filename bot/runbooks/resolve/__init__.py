"""Runbook option 1, "Prisma Migrate Resolve": plan.py (what `/rollback resolve` confirms),
steps.py (the ``RESOLVE`` runbook). Re-running migrations is bot/runbooks/deploy.py."""
