"""Throttling: the admin login lockout (django-axes) and the REST API rates and page cap."""

import uuid
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import make_staff
from voicebot.api import throttling
from voicebot.models import ApiKey, Bot

LOCMEM = "django.core.cache.backends.locmem.LocMemCache"


@pytest.fixture(autouse=True)
def fresh_throttle_counts(settings):
    """Throttle counts of this test only (they live in a process-wide cache otherwise)."""
    settings.CACHES = {
        **django_settings.CACHES,
        "throttle": {"BACKEND": LOCMEM, "LOCATION": f"throttle-{uuid.uuid4().hex}"},
        "throttle-fallback": {"BACKEND": LOCMEM, "LOCATION": f"fallback-{uuid.uuid4().hex}"},
    }
    throttling.reset_fallback()
    yield
    throttling.reset_fallback()


def rates(settings, **scopes):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **scopes},
    }


# --- Admin login lockout ----------------------------------------------------------------


def admin_login(client: Client, username: str, password: str, **extra):
    """Post the real admin login form, CSRF token included (the client enforces CSRF)."""
    page = client.get("/admin/login/", **extra)
    assert page.status_code == 200
    token = page.cookies["csrftoken"].value if "csrftoken" in page.cookies else client.cookies["csrftoken"].value
    return client.post("/admin/login/?next=/admin/", {
        "username": username, "password": password, "csrfmiddlewaretoken": token, "next": "/admin/",
    }, **extra)


def logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


@pytest.fixture
def staff(company_a):
    return make_staff("carla", company_a)  # password "pw-carla"


def test_sixth_wrong_password_is_refused_and_then_even_the_right_one(staff):
    assert django_settings.AXES_FAILURE_LIMIT == 5
    client = Client(enforce_csrf_checks=True)
    for attempt in range(1, 5):
        response = admin_login(client, "carla", f"wrong-{attempt}")
        assert response.status_code == 200 and "correct username and password" in response.content.decode()
    # The 5th failure locks the pair; the 6th is refused without checking the password.
    assert admin_login(client, "carla", "wrong-5").status_code == 429
    sixth = admin_login(client, "carla", "wrong-6")
    assert sixth.status_code == 429 and "Too many failed logins" in sixth.content.decode()
    assert int(sixth["Retry-After"]) == int(django_settings.AXES_COOLOFF_TIME.total_seconds())
    seventh = admin_login(client, "carla", "pw-carla")
    assert seventh.status_code == 429 and not logged_in(client)

    # Locked: this user from this address. The same user elsewhere, or another user here, may log in.
    elsewhere = Client(enforce_csrf_checks=True)
    assert admin_login(elsewhere, "carla", "pw-carla", REMOTE_ADDR="203.0.113.7").status_code == 302
    make_staff("dora")
    neighbour = Client(enforce_csrf_checks=True)
    assert admin_login(neighbour, "dora", "pw-dora").status_code == 302 and logged_in(neighbour)


def test_the_right_password_before_the_limit_logs_in_and_clears_the_count(staff):
    client = Client(enforce_csrf_checks=True)
    for attempt in range(4):
        assert admin_login(client, "carla", f"wrong-{attempt}").status_code == 200
    response = admin_login(client, "carla", "pw-carla")
    assert response.status_code == 302 and response["Location"] == "/admin/" and logged_in(client)

    client = Client(enforce_csrf_checks=True)
    for attempt in range(4):  # counting starts again after the successful login
        assert admin_login(client, "carla", f"again-{attempt}").status_code == 200
    assert admin_login(client, "carla", "pw-carla").status_code == 302


def test_the_lockout_ends_after_the_cool_off(staff):
    client = Client(enforce_csrf_checks=True)
    for attempt in range(6):
        admin_login(client, "carla", f"wrong-{attempt}")
    assert admin_login(client, "carla", "pw-carla").status_code == 429
    past = django_settings.AXES_COOLOFF_TIME + timedelta(seconds=1)
    for attempt in AccessAttempt.objects.all():
        AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=attempt.attempt_time - past)
    assert admin_login(client, "carla", "pw-carla").status_code == 302 and logged_in(client)


def test_login_without_a_client_address_is_still_counted_and_never_fails(staff):
    client = Client(enforce_csrf_checks=True)
    for attempt in range(5):
        assert admin_login(client, "carla", f"wrong-{attempt}", REMOTE_ADDR="").status_code in (200, 429)
    assert AccessAttempt.objects.get().ip_address is None
    assert admin_login(client, "carla", "pw-carla", REMOTE_ADDR="").status_code == 429
    assert admin_login(client, "carla", "pw-carla", REMOTE_ADDR="not-an-ip").status_code == 429


def test_logins_without_a_request_still_work(client, staff):
    """Client.login / authenticate() without a request: no web login, nothing to count by."""
    assert client.login(username="carla", password="pw-carla") and logged_in(client)
    assert not Client().login(username="carla", password="nope")


def test_client_ip_believes_forwarded_for_only_from_trusted_proxies(rf, settings):
    settings.TRUSTED_PROXIES = []
    spoofed = rf.get("/", REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert throttling.client_ip(spoofed) == "198.51.100.1"
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    proxied = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.9, 10.0.0.5")
    assert throttling.client_ip(proxied) == "203.0.113.9"  # the nearest hop no trusted proxy added
    assert throttling.client_ip(rf.get("/", REMOTE_ADDR="10.0.0.2")) == "10.0.0.2"
    assert throttling.client_ip(rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="[2001:db8::1]:443")) \
        == "2001:db8::1"
    assert throttling.client_ip(rf.get("/", REMOTE_ADDR="")) is None


# --- REST API rates ---------------------------------------------------------------------


def key_client(company, name="crm", ip="127.0.0.1"):
    _, raw = ApiKey.issue(company, name)
    client = APIClient(REMOTE_ADDR=ip)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_an_api_key_past_its_rate_gets_429_with_retry_after(settings, company_a, bot_a):
    rates(settings, client="3/minute")
    api = key_client(company_a)
    assert [api.get("/api/v1/bots/").status_code for _ in range(3)] == [200, 200, 200]
    refused = api.get("/api/v1/bots/")
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 60
    assert key_client(company_a, "other key").get("/api/v1/bots/").status_code == 200  # per key


def test_a_staff_session_past_its_rate_gets_429(settings, client_a, bot_a):
    rates(settings, client="2/minute")
    assert [client_a.get("/api/v1/bots/").status_code for _ in range(3)] == [200, 200, 429]


def test_requests_without_credentials_are_throttled_per_ip(settings, bot_a):
    rates(settings, anon="3/minute")
    anonymous = APIClient()
    assert [anonymous.get("/api/v1/bots/").status_code for _ in range(3)] == [401, 401, 401]
    refused = anonymous.get("/api/v1/bots/")
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert APIClient(REMOTE_ADDR="203.0.113.8").get("/api/v1/bots/").status_code == 401  # per IP


def test_failed_key_attempts_lock_the_ip_out_before_any_key_is_checked(settings, company_a, bot_a):
    rates(settings, anon="3/minute")
    guesser = APIClient()
    guesser.credentials(HTTP_AUTHORIZATION="Bearer vb_guess")
    assert [guesser.get("/api/v1/bots/").status_code for _ in range(3)] == [401, 401, 401]
    assert guesser.get("/api/v1/bots/").status_code == 429
    # Past the rate even a right key from that IP is refused, so guessing learns nothing more...
    assert key_client(company_a).get("/api/v1/bots/").status_code == 429
    # ...while other addresses are untouched.
    assert key_client(company_a, "b", ip="203.0.113.8").get("/api/v1/bots/").status_code == 200


def test_the_api_does_not_fail_when_the_redis_throttle_cache_is_away(settings, company_a, bot_a, caplog):
    settings.CACHES = {
        **settings.CACHES,
        "throttle": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0",
                     "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}},
    }
    rates(settings, client="2/minute")
    api = key_client(company_a)
    # Counted in process memory instead: served, and still throttled.
    assert [api.get("/api/v1/bots/").status_code for _ in range(3)] == [200, 200, 429]
    assert "Throttle cache unavailable" in caplog.text


def test_counts_are_shared_through_redis_when_configured(settings, company_a, bot_a):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(django_settings.REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        pytest.skip("no Redis at REDIS_URL")
    prefix = f"test-throttle-{uuid.uuid4().hex}"
    settings.CACHES = {
        **settings.CACHES,
        "throttle": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                     "LOCATION": django_settings.REDIS_URL, "KEY_PREFIX": prefix},
    }
    rates(settings, client="2/minute")
    api = key_client(company_a)
    assert [api.get("/api/v1/bots/").status_code for _ in range(2)] == [200, 200]
    from django.core.cache import caches

    key = f"throttle_client_key-{ApiKey.objects.get(name='crm').pk}"
    assert len(caches["throttle"].get(key)) == 2  # in Redis, where every web worker sees it
    assert api.get("/api/v1/bots/").status_code == 429
    caches["throttle"].delete(key)


# --- Page size --------------------------------------------------------------------------


def test_limit_is_capped_at_the_maximum_page_size(settings, company_a):
    assert django_settings.API_MAX_PAGE_SIZE == 200
    settings.API_MAX_PAGE_SIZE = 3
    for n in range(5):
        Bot.objects.create(company=company_a, name=f"Bot {n}", slug=f"bot-{n}")
    api = key_client(company_a)
    page = api.get("/api/v1/bots/?limit=100000").json()
    assert page["count"] == 5 and len(page["results"]) == 3 and "limit=3" in page["next"]
    assert len(api.get("/api/v1/bots/?limit=2").json()["results"]) == 2
    assert len(api.get("/api/v1/bots/").json()["results"]) == 3  # the default page fits the cap too
