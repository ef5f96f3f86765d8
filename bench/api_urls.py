"""The project's URLs plus the benchmark's baseline: a bare DRF endpoint that INSERTs one row.

The baseline goes through the same gunicorn workers, middleware, JSON parser and renderer and the
same persistent database connection as a purchase, but without key authentication, throttling,
idempotency or the purchase service: what a minimal write costs on this machine.
"""

from django.db import connection
from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

BASELINE_TABLE = "bench_baseline"


class BaselineInsert(APIView):
    authentication_classes = []
    permission_classes = []
    throttle_classes = []

    def post(self, request: Request) -> Response:
        data = request.data
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {BASELINE_TABLE} (external_id, member_number, amount) "
                "VALUES (%s, %s, %s) RETURNING id",
                [data.get("external_id"), data.get("member_number"), data.get("amount")],
            )
            (row_id,) = cursor.fetchone()
        return Response({"id": row_id, "external_id": data.get("external_id")}, status=201)


urlpatterns = [
    path("bench/baseline/", BaselineInsert.as_view()),
    path("", include("loyalty.urls")),
]
