"""The Celery app with a short visibility timeout, for the test that SIGKILLs a whole worker.

In production a message held by a dead worker comes back after the broker's
visibility timeout (task time limit + 60 s); here after 3 s. Runs on its own
Redis database so its fast restore sweep never touches anyone else's messages.
"""

from voicebot.celery import app

app.conf.broker_transport_options = {
    "visibility_timeout": 3, "unacked_restore_interval": 1, "unacked_restore_throttle": 1,
}
