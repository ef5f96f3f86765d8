"""The transactional outbox: side effects (e-mails, tasks, soon webhooks) that survive the broker.

A service records what must happen after its change as an outbox row, in the same transaction
(`enqueue`). After the commit the row is handed to Celery; if the broker refuses (Redis down), the
request still succeeds and the row stays pending until the periodic sweep hands it over once the
broker is back. Plumbing: it imports no domain model, every app may use it.
"""
