from django.http import HttpRequest

from .models import ProgramSettings


def program(request: HttpRequest) -> dict:
    """The program's name and house style for every page."""
    return {"program": ProgramSettings.load()}
