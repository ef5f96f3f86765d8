"""Plumbing of the partner REST API that every app's endpoints use: API keys and scopes
(`access`), one problem+json error format (`problems`), cursor pagination, Idempotency-Key
(`idempotency`), OpenAPI helpers (`schema`). Named in REST_FRAMEWORK by dotted path; imports no
domain model (the keys' partner is referred to by name)."""
