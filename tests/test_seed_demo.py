from django.contrib.auth import get_user_model
from django.core.management import call_command

from voicebot.models import Bot, Company, PhoneNumber


def test_seed_demo_is_idempotent_and_gives_a_working_staff_login(db, client):
    call_command("seed_demo")
    call_command("seed_demo")
    assert Company.objects.count() == 1 and Bot.objects.count() == 1
    bot = Bot.objects.get()
    assert bot.greeting and [s["name"] for s in bot.scenarios] == ["booking", "support"]
    numbers = {(n.number, n.provider, n.bot_id) for n in PhoneNumber.objects.all()}
    assert numbers == {("+15550100200", "twilio", bot.id), ("+15550100300", "sip", bot.id)}  # a cloud and a SIP line
    user = get_user_model().objects.get(username="demo")
    assert list(user.companies.all()) == [bot.company] and not user.is_superuser

    assert client.login(username="demo", password="demo-voicebot")
    page = client.get(f"/admin/voicebot/bot/{bot.pk}/change/")
    assert page.status_code == 200 and "Receptionist" in page.content.decode()
    assert client.get("/admin/voicebot/company/").context["cl"].result_count == 1


def test_seed_demo_restores_a_changed_demo_password(db):
    call_command("seed_demo")
    user = get_user_model().objects.get(username="demo")
    user.set_password("something-else")
    user.save()
    call_command("seed_demo")
    user.refresh_from_db()
    assert user.check_password("demo-voicebot")
