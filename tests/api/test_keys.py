"""API keys: company keys, agency keys (every company), read-only keys; issued in admin or by command."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.api.conftest import assert_error
from voicebot.models import ApiKey, Bot, Company


def test_agency_key_sees_and_creates_companies_and_their_bots(agency_api, company_a, company_b):
    listed = agency_api.get("/api/v1/companies/").json()["results"]
    assert {c["slug"] for c in listed} == {company_a.slug, company_b.slug}
    created = agency_api.post("/api/v1/companies/", {"name": "Gamma Gym", "slug": "gamma-gym",
                                                     "timezone": "Europe/Paris", "max_lines": 3}, format="json")
    assert created.status_code == 201, created.json()
    gamma = Company.objects.get(slug="gamma-gym")
    assert gamma.max_lines == 3 and gamma.timezone == "Europe/Paris"
    # An agency key must name the company of a new bot; with it, any company.
    missing = agency_api.post("/api/v1/bots/", {"name": "Desk", "slug": "gamma-desk"}, format="json")
    assert_error(missing, 400, "invalid", field="company")
    bot = agency_api.post("/api/v1/bots/", {"company": gamma.pk, "name": "Desk", "slug": "gamma-desk"}, format="json")
    assert bot.status_code == 201 and Bot.objects.get(slug="gamma-desk").company == gamma
    assert [b["slug"] for b in agency_api.get(f"/api/v1/companies/{gamma.pk}/bots/").json()["results"]] == [
        "gamma-desk"]


def test_company_key_sees_only_its_company_and_cannot_create_one(api_a, company_a, company_b):
    assert [c["slug"] for c in api_a.get("/api/v1/companies/").json()["results"]] == [company_a.slug]
    assert_error(api_a.get(f"/api/v1/companies/{company_b.pk}/"), 404, "not_found")
    assert_error(api_a.get(f"/api/v1/companies/{company_b.pk}/bots/"), 404, "not_found")
    refused = api_a.post("/api/v1/companies/", {"name": "Mine", "slug": "mine"}, format="json")
    assert_error(refused, 403, "permission_denied")
    assert_error(api_a.delete(f"/api/v1/companies/{company_a.pk}/"), 403, "permission_denied")
    assert not Company.objects.filter(slug="mine").exists()


def test_company_key_edits_its_company_like_staff_but_not_its_lines(api_a, company_a):
    response = api_a.patch(f"/api/v1/companies/{company_a.pk}/", {"timezone": "Asia/Tokyo", "max_lines": 500},
                           format="json")
    assert response.status_code == 200, response.json()
    company_a.refresh_from_db()
    assert company_a.timezone == "Asia/Tokyo" and company_a.max_lines == 5  # max_lines: the agency's to set
    bad = api_a.patch(f"/api/v1/companies/{company_a.pk}/", {"timezone": "Mars/Olympus", "country": "usa"},
                      format="json")
    error = assert_error(bad, 400, "invalid")
    assert set(error["fields"]) == {"timezone", "country"} and "Mars/Olympus" in error["fields"]["timezone"][0]
    # A file of the zone database that PostgreSQL knows no zone by (the dashboard works in SQL).
    assert_error(api_a.patch(f"/api/v1/companies/{company_a.pk}/", {"timezone": "localtime"}, format="json"), 400,
                 "invalid", field="timezone")


def test_read_only_key_reads_everything_and_changes_nothing(readonly_a, bot_a, number_a):
    assert readonly_a.get("/api/v1/bots/").status_code == 200
    assert readonly_a.get(f"/api/v1/bots/{bot_a.slug}/config/").status_code == 200
    attempts = [
        readonly_a.patch(f"/api/v1/bots/{bot_a.slug}/", {"name": "changed"}, format="json"),
        readonly_a.post(f"/api/v1/bots/{bot_a.slug}/deactivate/"),
        readonly_a.put(f"/api/v1/bots/{bot_a.slug}/config/", {"name": "changed"}, format="json"),
        readonly_a.delete(f"/api/v1/phone-numbers/{number_a.pk}/"),
        readonly_a.post("/api/v1/bots/", {"name": "New", "slug": "new"}, format="json"),
    ]
    for response in attempts:
        assert "read-only" in assert_error(response, 403, "permission_denied")["message"]
    bot_a.refresh_from_db()
    assert bot_a.name == "Alpha front desk" and bot_a.active and Bot.objects.count() == 1


def test_api_key_command_issues_working_keys(company_a, capsys):
    call_command("api_key", "--agency", "--name", "automation")
    agency = capsys.readouterr().out.strip()
    call_command("api_key", "--company", company_a.slug, "--read-only", "--name", "dash")
    readonly = capsys.readouterr().out.strip()
    assert ApiKey.objects.get(key_hash=ApiKey.hash(agency)).is_agency
    assert ApiKey.objects.get(key_hash=ApiKey.hash(readonly)).read_only
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {agency}")
    assert client.post("/api/v1/companies/", {"name": "Delta", "slug": "delta"}, format="json").status_code == 201
    with pytest.raises(Exception, match="No company with slug 'nope'"):
        call_command("api_key", "--company", "nope")


def test_admin_issues_agency_keys_to_superusers_only(admin_client, client_a, company_a):
    response = admin_client.post("/admin/voicebot/apikey/add/", {"company": "", "name": "automation",
                                                                 "access": "read-write"}, follow=True)
    assert response.status_code == 200
    key = ApiKey.objects.get(name="automation")
    assert key.is_agency
    page = admin_client.get("/admin/voicebot/apikey/").content.decode()
    assert "every company (agency key)" in page
    # Staff must choose one of their companies; an empty company is an error on the form.
    response = client_a.post("/admin/voicebot/apikey/add/", {"company": "", "name": "sneaky", "access": "read"})
    assert response.status_code == 200 and not ApiKey.objects.filter(name="sneaky").exists()
    response = client_a.post("/admin/voicebot/apikey/add/", {"company": company_a.pk, "name": "dash",
                                                             "access": "read"})
    assert response.status_code == 302 and ApiKey.objects.get(name="dash").read_only

