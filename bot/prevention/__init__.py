"""Prevention: the runbook's "Prevention Best Practices", "Database Backup Strategy" and
"Migration Safety Checklist", answered from facts before a migration reaches production.

No Slack here: `rollback-bot check` (CI), `/rollback check` and the deploy guard all read
the same review (review.py), each rendering it their own way.
"""
