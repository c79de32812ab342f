from django.apps import AppConfig
from django.db.models.signals import post_migrate

# Apps whose models agency staff manage (through their companies).
STAFF_APPS = ("voicebot", "knowledge", "postcall", "pipelines", "campaigns")
STAFF_GROUP = "Agency staff"


def ensure_staff_group(sender, **kwargs):
    """Keep the 'Agency staff' group holding every permission on company data.

    Which rows a member sees is decided by company assignment (Company.staff),
    not by this group; the group only lets them use the admin pages.
    """
    from django.contrib.auth.models import Group, Permission

    group, _ = Group.objects.get_or_create(name=STAFF_GROUP)
    perms = Permission.objects.filter(content_type__app_label__in=STAFF_APPS).exclude(
        codename__in=["add_company", "delete_company"]
    )
    group.permissions.add(*perms)


class VoicebotConfig(AppConfig):
    name = "voicebot"
    verbose_name = "Companies, bots and calls"

    def ready(self):
        post_migrate.connect(ensure_staff_group, dispatch_uid="voicebot.ensure_staff_group")
        from voicebot.api import schema  # noqa: F401  registers the API key scheme with drf-spectacular
