"""API pages: ``?limit=&offset=``, with ``limit`` capped at ``API_MAX_PAGE_SIZE``."""

from django.conf import settings
from rest_framework import pagination
from rest_framework.settings import api_settings


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """DRF's, reading its sizes at request time; a larger ``?limit=`` gets the maximum."""

    @property
    def max_limit(self):
        return settings.API_MAX_PAGE_SIZE

    @property
    def default_limit(self):
        return min(api_settings.PAGE_SIZE, self.max_limit)
