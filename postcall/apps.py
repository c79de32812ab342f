from django.apps import AppConfig


class PostcallConfig(AppConfig):
    name = "postcall"
    verbose_name = "After the call"

    def ready(self):
        from postcall import signals  # noqa: F401
