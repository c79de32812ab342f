"""Production security settings come from the environment; the defaults keep http on 127.0.0.1 working."""

import json
import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.test import Client

from tests.conftest import make_staff

# Everything the settings read for security; removed from the child's environment first.
SECURITY_ENV = [
    "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "VOICEBOT_HTTPS", "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD", "VOICEBOT_PROXY_SSL_HEADER", "VOICEBOT_USE_X_FORWARDED_HOST",
    "VOICEBOT_USE_X_FORWARDED_PORT",
]

# README "Security": the production environment.
PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "voicebot.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://voicebot.example.com",
    "VOICEBOT_HTTPS": "true",
    "VOICEBOT_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO",
}


def run_django(tmp_path, extra_env: dict, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in SECURITY_ENV}
    env.update({
        # Nothing here connects to a database; none must be started for it either.
        "DATABASE_URL": "postgres://nobody@127.0.0.1:9/none",
        "VOICEBOT_DATA_DIR": str(tmp_path / "data"),
        "DJANGO_SETTINGS_MODULE": "voicebot.settings",
        **extra_env,
    })
    return subprocess.run([sys.executable, *args], check=False, cwd=django_settings.BASE_DIR, env=env,
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_the_documented_production_environment(tmp_path):
    result = run_django(tmp_path, PRODUCTION_ENV, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output and "WARNING" not in output


def test_the_production_environment_turns_every_setting_on(tmp_path):
    names = ["DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
             "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER",
             "SECURE_CONTENT_TYPE_NOSNIFF", "X_FRAME_OPTIONS", "USE_X_FORWARDED_HOST"]
    script = ("import django, json; django.setup(); from django.conf import settings; "
              f"print(json.dumps({{n: getattr(settings, n, None) for n in {names!r}}}))")
    result = run_django(tmp_path, {**PRODUCTION_ENV, "VOICEBOT_USE_X_FORWARDED_HOST": "true"}, "-c", script)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values == {
        "DEBUG": False, "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True, "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000, "SECURE_HSTS_INCLUDE_SUBDOMAINS": True, "SECURE_HSTS_PRELOAD": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"], "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "X_FRAME_OPTIONS": "DENY", "USE_X_FORWARDED_HOST": True,
    }


def test_the_default_environment_is_the_http_demo(tmp_path):
    """Without the production variables, check --deploy names exactly the https settings left off."""
    result = run_django(tmp_path, {}, "manage.py", "check", "--deploy")
    output = result.stdout + result.stderr
    for code in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert code in output, output
    assert "security.W009" not in output and "security.W018" not in output  # a real key; DEBUG off


@pytest.mark.django_db
def test_the_default_environment_serves_the_admin_over_http(company_a):
    make_staff("erin", company_a)
    client = Client(enforce_csrf_checks=True)  # plain http, like the demo on 127.0.0.1
    page = client.get("/admin/login/")
    assert page.status_code == 200 and "Strict-Transport-Security" not in page
    assert page["X-Content-Type-Options"] == "nosniff" and page["X-Frame-Options"] == "DENY"
    assert not page.cookies["csrftoken"]["secure"]
    response = client.post("/admin/login/?next=/admin/", {
        "username": "erin", "password": "pw-erin", "next": "/admin/",
        "csrfmiddlewaretoken": page.cookies["csrftoken"].value,
    })
    assert response.status_code == 302 and not response.cookies["sessionid"]["secure"]
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_https_settings_redirect_http_and_send_hsts(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client()
    redirect = client.get("/admin/login/")
    assert redirect.status_code == 301 and redirect["Location"] == "https://testserver/admin/login/"
    secure = client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 200 and secure["Strict-Transport-Security"].startswith("max-age=31536000")
    assert client.get("/healthz").status_code != 301  # probes may stay on http
