"""Portal pages of members: `access` (enrolment, confirmation, login, password reset) and
`account` (the member's own profile, consent, password, terms, GDPR, FAQ and privacy pages)."""
