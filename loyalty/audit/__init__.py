"""The audit log: who changed what, when and why, for every change staff make.

Services call `audit_record(...)` inside the transaction of the change they make, so an entry
exists exactly when the change does; admin pages that save a model directly record through
`AuditedModelAdmin`. Entries are read-only in the admin, for everybody. Plumbing: it imports no
domain model, so every app (`members` included) may record. See docs/decisions.md.
"""
