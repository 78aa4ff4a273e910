from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Stable pages however many tickets arrive meanwhile; `page_size` up to 100."""

    page_size = 50
    max_page_size = 100
    page_size_query_param = "page_size"
    ordering = "-pk"
