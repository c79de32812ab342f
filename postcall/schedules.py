"""Keep one django-celery-beat PeriodicTask per ReportSchedule, in the company's time zone."""

from __future__ import annotations

import json

from django_celery_beat.models import CrontabSchedule, PeriodicTask

from postcall.models import Period, ReportSchedule

TASK = "postcall.tasks.send_scheduled_report"


def sync(schedule: ReportSchedule) -> PeriodicTask:
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour=str(schedule.hour),
        day_of_week=str(schedule.weekday) if schedule.period == Period.WEEK else "*",
        day_of_month="*", month_of_year="*", timezone=schedule.company.timezone)
    name = f"postcall report {schedule.company.slug} {schedule.period}"
    task = schedule.periodic_task or PeriodicTask.objects.filter(name=name).first() or PeriodicTask(name=name)
    task.name, task.task, task.crontab = name, TASK, crontab
    task.interval = task.solar = task.clocked = None
    task.args, task.enabled = json.dumps([schedule.pk]), schedule.active
    task.save()
    if schedule.periodic_task_id != task.pk:
        ReportSchedule.objects.filter(pk=schedule.pk).update(periodic_task=task)
        schedule.periodic_task = task
    return task


def unsync(schedule: ReportSchedule) -> None:
    if schedule.periodic_task_id:
        PeriodicTask.objects.filter(pk=schedule.periodic_task_id).delete()
