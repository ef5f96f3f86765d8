"""Webhooks for partners, after Standard Webhooks 1.0 (https://www.standardwebhooks.com/).

Domain events (`loyalty.events`) become a `WebhookEvent` and one `WebhookDelivery` per
subscribed endpoint, in the transaction of the change that caused them; the delivery task is
handed to Celery through the outbox after the commit, and a periodic task delivers whatever is
due (retries, and what the broker refused). See docs/webhooks.md.
"""
