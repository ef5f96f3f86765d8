"""Cursor pagination for the API's lists: stable under inserts, constant cost at any depth."""

from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = "-pk"
