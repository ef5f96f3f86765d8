"""anymail's own test provider backend (no network), refusing chosen addresses the way a
provider refuses an address on its suppression list."""

from anymail.backends.test import EmailBackend
from anymail.message import AnymailRecipientStatus


class RefusingEmailBackend(EmailBackend):
    refused: set[str] = set()

    def post_to_esp(self, payload, message):
        response = super().post_to_esp(payload, message)
        for email in response["recipient_status"]:
            if email in self.refused:
                response["recipient_status"][email] = AnymailRecipientStatus(
                    message_id=None, status="rejected"
                )
        return response
