"""Calling hours per weekday, retries per outcome, the circuit breaker, a voicemail message, contacts'
own time zones.

Data: each campaign's days and single window become its weekly hours (the same window on each of
its days); its one retry delay and list of statuses become per-outcome rules: busy, no-answer,
voicemail and failed in ``retry_on`` are retried after ``retry_delay_minutes`` up to
``max_attempts - 1`` times, the others not at all (rejected and canceled, which ``retry_on`` could
hold, are no longer retried). Reversing puts back Monday's first window (or 09:00-18:00) on every
day that has one.
"""

import datetime

import django.core.validators
from django.db import migrations, models

import campaigns.hours
import voicebot.models

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OUTCOMES = {"busy": "busy", "no-answer": "no_answer", "voicemail": "voicemail", "failed": "failed"}


def forwards(apps, schema_editor):
    Campaign = apps.get_model("campaigns", "Campaign")
    for campaign in Campaign.objects.all():
        window = [f"{campaign.window_start:%H:%M}", f"{campaign.window_end:%H:%M}"]
        campaign.calling_hours = {DAYS[day]: [window] for day in sorted(set(campaign.call_days)) if 0 <= day < 7}
        for status, field in OUTCOMES.items():
            retried = status in campaign.retry_on
            setattr(campaign, f"retry_{field}_minutes", campaign.retry_delay_minutes)
            setattr(campaign, f"retry_{field}_times", max(campaign.max_attempts - 1, 0) if retried else 0)
        campaign.save()


def backwards(apps, schema_editor):
    Campaign = apps.get_model("campaigns", "Campaign")
    for campaign in Campaign.objects.all():
        hours = campaign.calling_hours or {}
        days = [index for index, day in enumerate(DAYS) if hours.get(day)]
        first = hours[DAYS[days[0]]][0] if days else ["09:00", "18:00"]
        campaign.call_days = days or [0, 1, 2, 3, 4]
        campaign.window_start = datetime.time.fromisoformat(first[0])
        campaign.window_end = datetime.time.fromisoformat(first[1] if first[1] != "24:00" else "23:59")
        campaign.retry_on = [status for status, field in OUTCOMES.items() if getattr(campaign, f"retry_{field}_times")]
        campaign.retry_delay_minutes = max(campaign.retry_busy_minutes, 1)
        campaign.save()


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0002_dial_tick'),
    ]

    operations = [
        migrations.AddField(
            model_name='campaign',
            name='breaker_failed_percent',
            field=models.PositiveSmallIntegerField(default=50, help_text='Pause the campaign when at least this share of its recent calls failed (0: never pause).', validators=[django.core.validators.MaxValueValidator(100)], verbose_name='circuit breaker: failed calls (%)'),
        ),
        migrations.AddField(
            model_name='campaign',
            name='breaker_last_calls',
            field=models.PositiveSmallIntegerField(default=20, help_text='The recent calls are at most this many, the last ones to end...', validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(1000)], verbose_name='circuit breaker: of the last calls'),
        ),
        migrations.AddField(
            model_name='campaign',
            name='breaker_min_calls',
            field=models.PositiveSmallIntegerField(default=5, help_text='...and at least this many (fewer: no pause).', validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(1000)], verbose_name='circuit breaker: at least (calls)'),
        ),
        migrations.AddField(
            model_name='campaign',
            name='breaker_minutes',
            field=models.PositiveIntegerField(default=10, help_text='...within this many minutes...', validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(1440)], verbose_name='circuit breaker: within (minutes)'),
        ),
        migrations.AddField(
            model_name='campaign',
            name='calling_hours',
            field=models.JSONField(default=campaigns.hours.default_calling_hours, help_text='Local calling windows per weekday, e.g. {"mon": [["09:00", "17:00"]], "sat": [["10:00", "13:00"]]}; a day left out has no calls. The start is included, the end is not ("24:00": midnight).'),
        ),
        migrations.AddField(
            model_name='campaign',
            name='resumed_at',
            field=models.DateTimeField(blank=True, editable=False, help_text='When it was last started or resumed: the circuit breaker counts only calls that ended since.', null=True),
        ),
        migrations.AddField(
            model_name='campaign',
            name='retry_busy_minutes',
            field=models.PositiveIntegerField(default=10, validators=[django.core.validators.MaxValueValidator(43200)], verbose_name='busy: call again after (minutes)'),
        ),
        migrations.AddField(
            model_name='campaign',
            name='retry_busy_times',
            field=models.PositiveSmallIntegerField(default=3, help_text='How often a contact is called again after a busy line (0: never).', validators=[django.core.validators.MaxValueValidator(20)], verbose_name='busy: times at most'),
        ),
        migrations.AddField(
            model_name='campaign',
            name='retry_failed_minutes',
            field=models.PositiveIntegerField(default=30, validators=[django.core.validators.MaxValueValidator(43200)], verbose_name='failed: call again after (minutes)'),
        ),
        migrations.AddField(
            model_name='campaign',
            name='retry_failed_times',
            field=models.PositiveSmallIntegerField(default=2, help_text="How often a contact is called again after the call failed (the provider's or the runner's error; 0: never).", validators=[django.core.validators.MaxValueValidator(20)], verbose_name='failed: times at most'),
        ),
        migrations.AddField(
            model_name='campaign',
            name='retry_no_answer_minutes',
            field=models.PositiveIntegerField(default=60, validators=[django.core.validators.MaxValueValidator(43200)], verbose_name='no answer: call again after (minutes)'),
        ),
        migrations.AddField(
            model_name='campaign',
            name='retry_no_answer_times',
            field=models.PositiveSmallIntegerField(default=2, help_text='How often a contact is called again after ringing out (0: never).', validators=[django.core.validators.MaxValueValidator(20)], verbose_name='no answer: times at most'),
        ),
        migrations.AddField(
            model_name='campaign',
            name='retry_voicemail_minutes',
            field=models.PositiveIntegerField(default=240, validators=[django.core.validators.MaxValueValidator(43200)], verbose_name='voicemail: call again after (minutes)'),
        ),
        migrations.AddField(
            model_name='campaign',
            name='retry_voicemail_times',
            field=models.PositiveSmallIntegerField(default=1, help_text='How often a contact is called again after reaching voicemail (0: never: the contact is done).', validators=[django.core.validators.MaxValueValidator(20)], verbose_name='voicemail: times at most'),
        ),
        migrations.AddField(
            model_name='campaign',
            name='voicemail_message',
            field=models.TextField(blank=True, help_text="Left on an answering machine, with {{variables}} filled in (a contact list's voicemail_message column wins). Empty: the bot's own message."),
        ),
        migrations.AddField(
            model_name='contact',
            name='timezone',
            field=models.CharField(blank=True, help_text="Calling hours are read in this time zone. Empty: the campaign's.", max_length=64, validators=[voicebot.models.validate_timezone]),
        ),
        migrations.AlterField(
            model_name='campaign',
            name='max_attempts',
            field=models.PositiveSmallIntegerField(default=3, help_text='Calls to one contact, at most, whatever their outcomes (the first included).', validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(20)]),
        ),
        migrations.AlterField(
            model_name='campaign',
            name='timezone',
            field=models.CharField(blank=True, help_text="Calling hours are read in the contact's own time zone (its list's timezone column), else in this one. Empty: the company's.", max_length=64, validators=[voicebot.models.validate_timezone]),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(
            model_name='campaign',
            name='call_days',
        ),
        migrations.RemoveField(
            model_name='campaign',
            name='retry_delay_minutes',
        ),
        migrations.RemoveField(
            model_name='campaign',
            name='retry_on',
        ),
        migrations.RemoveField(
            model_name='campaign',
            name='window_end',
        ),
        migrations.RemoveField(
            model_name='campaign',
            name='window_start',
        ),
    ]
