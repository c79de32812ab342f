"""Voicebot: the Django project and the core domain (companies, bots, numbers, calls)."""

from voicebot.celery import app as celery_app

__all__ = ["celery_app"]
