"""The outbox: every call to an outside service is a row written in the same transaction as the change
that needs it, then sent after commit by the scheduler with retries, backoff and an idempotency key."""
