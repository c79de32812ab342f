"""Report schedules follow their rows (and their company's time zone) into Celery beat."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from postcall.models import ReportSchedule
from voicebot.models import Company


@receiver(post_save, sender=ReportSchedule, dispatch_uid="postcall.schedule_saved")
def schedule_saved(sender, instance, raw=False, **kwargs):
    if not raw:
        from postcall.schedules import sync

        sync(instance)


@receiver(post_delete, sender=ReportSchedule, dispatch_uid="postcall.schedule_deleted")
def schedule_deleted(sender, instance, **kwargs):
    from postcall.schedules import unsync

    unsync(instance)


@receiver(post_save, sender=Company, dispatch_uid="postcall.company_saved")
def company_saved(sender, instance, raw=False, **kwargs):
    """A changed time zone moves the company's report times with it."""
    if raw:
        return
    from postcall.schedules import sync

    for schedule in ReportSchedule.objects.filter(company=instance).select_related("company", "periodic_task"):
        sync(schedule)
