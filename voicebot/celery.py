"""The Celery app: Redis broker, tasks discovered in every installed Django app."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicebot.settings")

app = Celery("voicebot")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
