"""Runbook option 2, "Create Reverse Migration": plan.py (the reverse shown for review, the
staging-first rule), review.py (the submitted SQL checked, the operation started),
apply.py (written and applied as Prisma would, then checked), steps.py (``REVERT``)."""
