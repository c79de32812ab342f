"""Tenant isolation, proved over the whole API: every operation of the OpenAPI schema.

Company B owns one object of every kind, each carrying the marker ``BETA-ONLY`` where it
has text. With company A's read-write key:

* every list (and every other GET without path parameters) answers without the marker
  and without B's ids;
* every operation on a path naming one of B's objects (GET, PUT, PATCH, DELETE and the
  POST actions) answers 404, and B's objects are all still there, unchanged;
* every create whose body can point at another object (company, bot, endpoint...) refuses
  B's object with a 400 naming that field, and creates nothing.

A new endpoint is covered without writing a test for it; one whose path names an object
kind this test does not know fails here until the kind is added to ``b_identifiers``.
"""

from __future__ import annotations

import json
import re

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Contact
from knowledge.models import KnowledgeDocument
from postcall.models import (
    CallOutcome,
    Lead,
    Report,
    ReportSchedule,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from voicebot.models import BotTool, Call, CallTurn

MARK = "BETA-ONLY"
METHODS = ("get", "put", "patch", "delete", "post")


@pytest.fixture
def world_b(company_b, bot_b, number_b):
    """One of everything, of company B."""
    company_b.name = f"{MARK} Salon"
    company_b.save()
    number_b.label = MARK
    number_b.save()
    bot_b.greeting = f"{MARK} greeting"
    bot_b.save()
    now = timezone.now()
    tool = BotTool.objects.create(bot=bot_b, name="beta_tool", description=MARK, url="https://example.com/beta")
    call = Call.objects.create(company=company_b, bot=bot_b, transport="twilio", external_id=f"CA{MARK}",
                               from_number="+12125550199", ended_at=now)
    CallTurn.objects.create(call=call, index=0, role="caller", text=f"{MARK} I'd like to book")
    outcome = CallOutcome.objects.create(call=call, company=company_b, result="booking", summary=MARK,
                                         booking={"name": MARK})
    lead = Lead.objects.create(call=call, company=company_b, bot=bot_b, name=MARK, phone="+12125550199")
    document = KnowledgeDocument.objects.create(company=company_b, name=f"{MARK}.txt", content_hash="b" * 64,
                                                status="ready")
    document.bots.add(bot_b)
    endpoint = WebhookEndpoint.objects.create(company=company_b, url="https://example.com/beta-hook",
                                              events=["call.ended"], secret=MARK, description=MARK)
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event="call.ended", event_key=f"call:{call.pk}",
                                              payload={"note": MARK})
    WebhookAttempt.objects.create(delivery=delivery, number=1, attempted_at=now, error=MARK)
    schedule = ReportSchedule.objects.create(company=company_b, period="week", hour=8)
    report = Report.objects.create(company=company_b, period="day", period_start=now, period_end=now,
                                   data={"note": MARK})
    campaign = Campaign.objects.create(company=company_b, bot=bot_b, name=f"{MARK} campaign")
    contact = Contact.objects.create(campaign=campaign, phone="+12125550123", name=MARK)
    objects = {
        "company": company_b, "bot": bot_b, "number": number_b, "tool": tool, "call": call, "outcome": outcome,
        "lead": lead, "document": document, "endpoint": endpoint, "delivery": delivery, "schedule": schedule,
        "report": report, "campaign": campaign, "contact": contact,
    }
    try:
        from pipelines.models import ChatConversation
    except ImportError:
        pass
    else:
        objects["conversation"] = ChatConversation.objects.create(company=company_b, bot=bot_b, snapshot={})
    return objects


def b_identifiers(world: dict) -> dict[str, object]:
    """What a path segment before a parameter means: the B object whose id (or slug) goes there."""
    ids = {
        "companies": world["company"].pk, "bots": world["bot"].slug, "tools": world["tool"].pk,
        "phone-numbers": world["number"].pk, "calls": world["call"].pk, "outcomes": world["outcome"].pk,
        "bookings": world["outcome"].pk, "leads": world["lead"].pk, "knowledge": world["document"].pk,
        "webhook-endpoints": world["endpoint"].pk, "webhook-deliveries": world["delivery"].pk,
        "report-schedules": world["schedule"].pk, "reports": world["report"].pk,
        "campaigns": world["campaign"].pk, "contacts": world["contact"].pk,
    }
    if "conversation" in world:
        ids["chat"] = world["conversation"].pk
    return ids


# Body fields that point at another object, and B's value for each.
def b_references(world: dict) -> dict[str, object]:
    return {"company": world["company"].pk, "bot": world["bot"].pk, "endpoint": world["endpoint"].pk,
            "bots": [world["bot"].slug]}


def schema_of(client) -> dict:
    return client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def fill_path(path: str, identifiers: dict[str, object]) -> str:
    """``/api/v1/bots/{slug}/knowledge/`` with B's values; each parameter by the segment before it."""
    segments = path.strip("/").split("/")
    filled = []
    for index, segment in enumerate(segments):
        if segment.startswith("{"):
            kind = segments[index - 1]
            assert kind in identifiers, f"{path}: no B object known for a {{}} after '{kind}'; add it to the world"
            filled.append(str(identifiers[kind]))
        else:
            filled.append(segment)
    return "/" + "/".join(filled) + "/"


def snapshot(world: dict) -> dict:
    return {name: type(obj).objects.filter(pk=obj.pk).values().first() for name, obj in world.items()}


@pytest.mark.django_db
def test_company_a_sees_touches_and_points_at_none_of_company_bs_objects(api_a, bot_a, world_b):
    schema = schema_of(api_a)
    operations = [(path, method, operation) for path, item in schema["paths"].items()
                  for method, operation in item.items() if method in METHODS]
    identifiers = b_identifiers(world_b)
    before = snapshot(world_b)
    problems, covered = [], {"list": 0, "object": 0, "reference": 0}

    for path, method, operation in operations:
        if not path.startswith("/api/v1/"):
            continue
        if "{" in path:
            url = fill_path(path, identifiers)
            response = getattr(api_a, method)(url, {}, format="json")
            covered["object"] += 1
            if response.status_code != 404:
                problems.append(f"{method.upper()} {url}: {response.status_code}, not 404")
        elif method == "get":
            response = api_a.get(path)
            covered["list"] += 1
            if response.status_code != 200:
                problems.append(f"GET {path}: {response.status_code}")
            elif response["Content-Type"].startswith("application/json"):
                body = response.json()
                rows = body.get("results", []) if isinstance(body, dict) else body
                if MARK in json.dumps(body) or any(isinstance(row, dict) and row.get("company") == world_b[
                        "company"].pk for row in rows):
                    problems.append(f"GET {path} shows company B's data")
            elif MARK in response.getvalue().decode(errors="replace"):
                problems.append(f"GET {path} ({response['Content-Type']}) shows company B's data")
        elif method == "post":
            body_schema = (operation.get("requestBody", {}).get("content", {}).get("application/json", {})
                           .get("schema", {}))
            fields = _properties(body_schema, schema["components"]["schemas"])
            for field, value in b_references(world_b).items():
                if field not in fields:
                    continue
                covered["reference"] += 1
                response = api_a.post(path, {field: value}, format="json")
                error = response.json().get("error", {}) if response.status_code == 400 else {}
                if field not in error.get("fields", {}):
                    problems.append(f"POST {path} with B's {field}: {response.status_code} "
                                    f"{response.getvalue()[:200]!r}, not a 400 naming {field}")

    after = snapshot(world_b)
    for name, row in before.items():
        if after[name] != row:
            problems.append(f"company B's {name} changed: {row} -> {after[name]}")
    assert not problems, "\n".join(problems)
    # The proof covers the API, not a corner of it.
    assert covered["list"] >= 15 and covered["object"] >= 40 and covered["reference"] >= 5, covered



def _properties(schema: dict, components: dict) -> set[str]:
    """The property names of a request body schema (following a $ref into the components)."""
    if "$ref" in schema:
        schema = components[re.sub(r"^#/components/schemas/", "", schema["$ref"])]
    return set(schema.get("properties", {}))
