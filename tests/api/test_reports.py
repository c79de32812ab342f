"""/api/v1/report-schedules/ (each one's Celery beat task kept in step, like admin) and /api/v1/reports/."""

from __future__ import annotations

import json
from datetime import date

import pytest
from django_celery_beat.models import PeriodicTask

from postcall import reports
from postcall.models import Report, ReportSchedule
from postcall.schedules import TASK
from tests.api.conftest import assert_error

SCHEDULES = "/api/v1/report-schedules/"


def beat_task(schedule_id: int) -> PeriodicTask:
    return ReportSchedule.objects.select_related("periodic_task__crontab").get(pk=schedule_id).periodic_task


def test_create_schedule_adds_its_beat_task_in_the_companys_time_zone(api_a, company_a):
    response = api_a.post(SCHEDULES, {"period": "week", "hour": 8, "weekday": 5}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body == {"id": body["id"], "company": company_a.pk, "period": "week", "hour": 8, "weekday": 5,
                    "active": True, "timezone": "Europe/Berlin"}
    task = beat_task(body["id"])
    assert (task.task, json.loads(task.args), task.enabled) == (TASK, [body["id"]], True)
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "8", "5")
    assert str(task.crontab.timezone) == "Europe/Berlin"

    response = api_a.post(SCHEDULES, {}, format="json")  # the defaults: daily at 7
    assert response.status_code == 201, response.json()
    task = beat_task(response.json()["id"])
    assert (response.json()["period"], task.crontab.hour, task.crontab.day_of_week) == ("day", "7", "*")


def test_update_moves_the_beat_task_and_delete_removes_it(api_a, company_a):
    schedule_id = api_a.post(SCHEDULES, {"period": "day", "hour": 6}, format="json").json()["id"]
    task_id = beat_task(schedule_id).pk
    response = api_a.patch(f"{SCHEDULES}{schedule_id}/", {"hour": 18, "active": False}, format="json")
    assert response.status_code == 200, response.json()
    task = beat_task(schedule_id)
    assert (task.pk, task.crontab.hour, task.enabled) == (task_id, "18", False)
    response = api_a.put(f"{SCHEDULES}{schedule_id}/", {"period": "week", "hour": 9, "weekday": 1, "active": True},
                         format="json")
    assert response.status_code == 200, response.json()
    task = beat_task(schedule_id)
    assert (task.pk, task.crontab.day_of_week, task.enabled, task.name) == (task_id, "1", True,
                                                                           "postcall report alpha week")
    assert api_a.delete(f"{SCHEDULES}{schedule_id}/").status_code == 204
    assert not ReportSchedule.objects.filter(pk=schedule_id).exists()
    assert not PeriodicTask.objects.filter(pk=task_id).exists()


def test_one_schedule_per_company_and_period(api_a, api_b):
    first = api_a.post(SCHEDULES, {"period": "day"}, format="json").json()["id"]
    error = assert_error(api_a.post(SCHEDULES, {"period": "day", "hour": 9}, format="json"), 400, "invalid",
                         field="period")
    assert "already has a daily report schedule" in error["message"] and str(first) in error["message"]
    weekly = api_a.post(SCHEDULES, {"period": "week"}, format="json").json()["id"]
    assert_error(api_a.patch(f"{SCHEDULES}{weekly}/", {"period": "day"}, format="json"), 400, "invalid",
                 field="period")
    assert api_a.patch(f"{SCHEDULES}{first}/", {"period": "day", "hour": 9}, format="json").status_code == 200
    assert api_b.post(SCHEDULES, {"period": "day"}, format="json").status_code == 201  # another company's own
    assert ReportSchedule.objects.count() == 3 and PeriodicTask.objects.filter(task=TASK).count() == 3


@pytest.mark.parametrize("field, value", [("hour", 24), ("hour", -1), ("weekday", 7), ("period", "month"),
                                          ("hour", "seven"), ("active", "perhaps")])
def test_schedule_fields_are_validated(api_a, field, value):
    assert_error(api_a.post(SCHEDULES, {field: value}, format="json"), 400, "invalid", field=field)
    assert not ReportSchedule.objects.exists() and not PeriodicTask.objects.filter(task=TASK).exists()


def test_schedules_are_scoped_to_the_keys_company(api_a, agency_api, company_a, company_b):
    own = ReportSchedule.objects.create(company=company_a, period="day")
    other = ReportSchedule.objects.create(company=company_b, period="day")
    assert [item["id"] for item in api_a.get(SCHEDULES).json()["results"]] == [own.pk]
    assert_error(api_a.get(f"{SCHEDULES}{other.pk}/"), 404, "not_found")
    assert_error(api_a.patch(f"{SCHEDULES}{other.pk}/", {"hour": 1}, format="json"), 404, "not_found")
    assert_error(api_a.delete(f"{SCHEDULES}{other.pk}/"), 404, "not_found")
    assert_error(api_a.post(SCHEDULES, {"company": company_b.pk, "period": "week"}, format="json"), 400, "invalid",
                 field="company")
    response = api_a.patch(f"{SCHEDULES}{own.pk}/", {"company": company_b.pk}, format="json")
    assert response.status_code == 200 and ReportSchedule.objects.get(pk=own.pk).company == company_a
    other.refresh_from_db()
    assert other.hour == 7 and not ReportSchedule.objects.filter(company=company_b, period="week").exists()
    # An agency key names the company.
    assert_error(agency_api.post(SCHEDULES, {"period": "week"}, format="json"), 400, "invalid", field="company")
    response = agency_api.post(SCHEDULES, {"company": company_b.pk, "period": "week"}, format="json")
    assert response.status_code == 201 and response.json()["timezone"] == "America/New_York"
    assert {item["company"] for item in agency_api.get(SCHEDULES).json()["results"]} == {company_a.pk, company_b.pk}


def test_read_only_keys_read_schedules_and_change_nothing(readonly_a, company_a):
    schedule = ReportSchedule.objects.create(company=company_a, period="day")
    assert readonly_a.get(f"{SCHEDULES}{schedule.pk}/").json()["hour"] == 7
    for response in [readonly_a.post(SCHEDULES, {"period": "week"}, format="json"),
                     readonly_a.patch(f"{SCHEDULES}{schedule.pk}/", {"hour": 9}, format="json"),
                     readonly_a.delete(f"{SCHEDULES}{schedule.pk}/")]:
        assert_error(response, 403, "permission_denied")
    schedule.refresh_from_db()
    assert schedule.hour == 7 and ReportSchedule.objects.count() == 1


# --- Reports ------------------------------------------------------------------------------------------


@pytest.fixture
def built(company_a, company_b):
    return {"day": reports.build_report(company_a, "day", date(2026, 11, 17)),
            "week": reports.build_report(company_a, "week", date(2026, 11, 17)),
            "other": reports.build_report(company_b, "day", date(2026, 11, 17))}


def test_reports_list_detail_and_period_filter(api_a, readonly_a, built):
    listed = api_a.get("/api/v1/reports/").json()["results"]
    assert [item["id"] for item in listed] == [built["day"].pk, built["week"].pk]  # latest period first
    detail = api_a.get(f"/api/v1/reports/{built['day'].pk}/").json()
    assert detail == {"id": built["day"].pk, "company": built["day"].company_id, "period": "day",
                      "period_start": "2026-11-16T23:00:00Z", "period_end": "2026-11-17T23:00:00Z",
                      "data": built["day"].data, "created_at": detail["created_at"], "emailed_at": None,
                      "emailed_to": []}
    assert detail["data"]["calls"] == 0 and detail["data"]["timezone"] == "Europe/Berlin"
    week = [item["id"] for item in api_a.get("/api/v1/reports/", {"period": "week"}).json()["results"]]
    assert week == [built["week"].pk]
    assert_error(api_a.get("/api/v1/reports/", {"period": "month"}), 400, "invalid", field="period")
    assert_error(api_a.get(f"/api/v1/reports/{built['other'].pk}/"), 404, "not_found")
    assert len(readonly_a.get("/api/v1/reports/").json()["results"]) == 2
    assert_error(api_a.delete(f"/api/v1/reports/{built['day'].pk}/"), 405)
    assert_error(readonly_a.post("/api/v1/reports/", {}, format="json"), 403, "permission_denied")
    assert Report.objects.count() == 3
