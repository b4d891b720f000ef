"""Runbook option 3, point-in-time recovery on AWS RDS: choices.py (what the modal offers,
the check of what was chosen), steps.py (``PITR``), verify.py, reapply.py, undo_switch.py
(``UNDO_SWITCH``), cleanup.py (``CLEANUP``) and cleanup_schedule.py (when it comes due)."""
