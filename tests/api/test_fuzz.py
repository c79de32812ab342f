"""Schemathesis over every operation of the OpenAPI schema, against the app served by gunicorn.

Each operation gets ``VOICEBOT_FUZZ_EXAMPLES`` generated requests (a few in CI; ``make fuzz``
runs many) with a valid read-write key of a company that has a bot, a number, a call, a tool
and a webhook endpoint to find. Every response must be no 5xx, have a status code, content
type, headers and body that the schema documents. Failures of all operations are reported
together, each with the request that caused it (as curl).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.db.models import Max
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from voicebot.models import ApiKey, Bot, BotTool, Call, CallTurn, Company, PhoneNumber

EXAMPLES = int(os.environ.get("VOICEBOT_FUZZ_EXAMPLES", "6"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_key(django_db_setup, django_db_blocker):
    """A company with something of each kind, and its key; everything it grew is deleted afterwards."""
    from django_celery_beat.models import PeriodicTask

    from postcall.models import WebhookEndpoint

    with django_db_blocker.unblock():
        tasks_before = PeriodicTask.objects.aggregate(top=Max("pk"))["top"] or 0
        company = Company.objects.create(name="Fuzz Dental", slug="fuzz-dental")
        bot = Bot.objects.create(company=company, name="Fuzz desk", slug="fuzz-desk", greeting="Hello.")
        PhoneNumber.objects.create(company=company, number="+4930777000", bot=bot)
        BotTool.objects.create(bot=bot, name="lookup", description="Looks up", url="https://example.com/lookup")
        call = Call.objects.create(company=company, bot=bot, transport="twilio", external_id="CAfuzz")
        CallTurn.objects.create(call=call, index=0, role="bot", text="Hello.")
        WebhookEndpoint.objects.create(company=company, url="https://example.com/hook", events=["call.ended"],
                                       secret="fuzz")
        _, raw = ApiKey.issue(company, "fuzzer")
    yield raw
    with django_db_blocker.unblock():
        Company.objects.filter(pk=company.pk).delete()
        PeriodicTask.objects.filter(pk__gt=tasks_before).delete()


def fuzz(operation, *, base: str, headers: dict, failures: list) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case):
        case.call_and_validate(base_url=base, headers=headers, checks=CHECKS, timeout=60)

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001  every operation is tried; all are reported
        failures.append(f"{operation.label}:\n{exc}")


@pytest.mark.django_db(transaction=True)  # the served app reads what the fixture committed
def test_every_operation_survives_the_fuzzer(live_api, fuzz_key):
    schema = schemathesis.openapi.from_url(f"{live_api}/api/schema/")
    headers = {"Authorization": f"Bearer {fuzz_key}"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40, [op.label for op in operations]
    for operation in operations:
        fuzz(operation, base=f"{live_api}/api/v1" if not operation.path.startswith("/api") else live_api,
             headers=headers, failures=failures)
    assert not failures, f"{len(failures)} of {len(operations)} operations failed:\n\n" + "\n\n".join(failures)
