"""Seed a demo company, a receptionist bot with a booking scenario, a number and a staff login.

``--documents`` also uploads the salon's handbook, price list and policies (eval/salon/docs,
the documents the evaluation asks about) for the bot to answer from; ``--receiver URL``
points the booking scenario's ``booking_created`` tool and a webhook endpoint at the demo
receiver (``manage.py demo_receiver``), signed with its secret. ``manage.py demo`` passes both.

Idempotent: running it again updates the same rows instead of adding more.
"""

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from voicebot.apps import STAFF_GROUP
from voicebot.models import Bot, BotTool, Company, PhoneNumber
from voicebot.scenarios import validate_scenarios

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-voicebot"
DEMO_NUMBER = "+15550100200"
DEMO_SIP_NUMBER = "+15550100300"  # what a softphone or PBX dials: sip:+15550100300@127.0.0.1

DEMO_SCENARIOS = [
    {
        "name": "booking",
        "description": "Book an appointment: service, day, time and a phone number for the confirmation.",
        "trigger_keywords": ["book", "appointment", "available", "reserve", "schedule"],
        # Paraphrases reach the scenario by meaning (all-MiniLM-L6-v2 similarity), e.g.
        # "can I get my nails done Friday?" without any keyword.
        "example_phrases": [
            "I'd like to get my nails done",
            "could I get a haircut this week",
            "do you have time for me on Saturday",
            "can you fit me in tomorrow",
        ],
        "collect_fields": [
            # The salon's services: answers are matched tolerantly ("petty cure", "Joe manicure", "hair cut"),
            # a service named in the opening sentence is taken, anything else is re-asked with the list.
            {"name": "service", "prompt": "Which service would you like?", "choices": [
                {"value": "haircut", "also": ["cut", "trim"]},
                {"value": "men's haircut", "also": ["gents haircut", "barber cut"]},
                {"value": "kids haircut", "also": ["children's haircut", "child's haircut"]},
                {"value": "colour", "also": ["color", "hair colour", "hair color", "hair dye"]},
                "balayage",
                "manicure",
                {"value": "gel manicure", "also": ["gel nails", "shellac"]},
                "pedicure",
                "facial",
                "massage",
                {"value": "eyebrow shaping", "also": ["brow shaping", "eyebrow wax"]},
                {"value": "lash lift", "also": ["eyelash lift"]},
            ]},
            {"name": "date", "prompt": "Which day?", "type": "date"},
            {"name": "time", "prompt": "What time?", "type": "time"},
            {"name": "phone", "prompt": "Your phone number for the confirmation?", "type": "phone",
             "hint": "Please say the whole number with the area code, for example 212 555 0123."},
        ],
        "on_complete": "booking_created",
        "confirm": True,
    },
    {
        "name": "support",
        "trigger_keywords": ["question", "price", "how much", "cost", "open"],
        "use_knowledge_base": True,
    },
]


DEMO_DOCUMENTS = ("handbook.md", "price-list.md", "policies.md")
BOOKING_TOOL = "booking_created"  # the booking scenario's on_complete


class Command(BaseCommand):
    help = "Create (or update) the demo company, bot, phone number and staff login."

    def add_arguments(self, parser):
        parser.add_argument("--documents", action="store_true",
                            help="Upload the salon's documents (ingested by the Celery worker).")
        parser.add_argument("--receiver", metavar="URL",
                            help="The demo receiver (manage.py demo_receiver) for the booking tool and a webhook.")

    @transaction.atomic
    def handle(self, *args, documents=False, receiver=None, **options):
        company, _ = Company.objects.update_or_create(
            slug="elegant-beauty",
            defaults={
                "name": "Elegant Beauty Salon",
                "timezone": "America/New_York",
                "country": "US",
                "default_language": "en",
                "report_recipients": ["owner@elegant-beauty.example"],
            },
        )
        bot, _ = Bot.objects.update_or_create(
            slug="elegant-receptionist",
            defaults={
                "company": company,
                "name": "Receptionist",
                "active": True,
                "greeting": "Hello! Elegant beauty salon. How can I help?",
                "system_prompt": (
                    "You are the receptionist of Elegant Beauty Salon. Answer in one or two short, "
                    "friendly sentences. Offer to book an appointment when it helps."
                ),
                "scenarios": validate_scenarios(DEMO_SCENARIOS),
                "fallback_phrase": "Sorry, I didn't catch that. Would you like to book, or do you have a question?",
                "max_turns": 20,
                "silence_timeout_sec": 10,
                "use_knowledge": True,
            },
        )
        PhoneNumber.objects.update_or_create(
            number=DEMO_NUMBER,
            defaults={"company": company, "bot": bot, "provider": PhoneNumber.Provider.TWILIO, "label": "Front desk"},
        )
        PhoneNumber.objects.update_or_create(
            number=DEMO_SIP_NUMBER,
            defaults={"company": company, "bot": bot, "provider": PhoneNumber.Provider.SIP, "label": "SIP line"},
        )
        user, created = get_user_model().objects.get_or_create(
            username=DEMO_USERNAME, defaults={"email": "demo@agency.example"}
        )
        user.is_staff = True
        user.is_active = True
        if created or not user.check_password(DEMO_PASSWORD):
            user.set_password(DEMO_PASSWORD)
        user.save()
        user.groups.add(Group.objects.get(name=STAFF_GROUP))
        company.staff.add(user)
        extras = []
        if documents:
            extras.append(self.upload_documents(company, bot))
        if receiver:
            extras.append(self.connect_receiver(company, bot, receiver.rstrip("/")))
        for line in extras:
            self.stdout.write(line)
        self.stdout.write(
            self.style.SUCCESS(f"Demo ready: company '{company.slug}', bot '{bot.slug}', numbers {DEMO_NUMBER} (Twilio) and "
                               f"{DEMO_SIP_NUMBER} (SIP), "
                               f"staff login {DEMO_USERNAME} / {DEMO_PASSWORD}")
        )

    def upload_documents(self, company, bot) -> str:
        from knowledge.services import upload_document

        folder = Path(settings.BASE_DIR) / "eval" / "salon" / "docs"
        outcomes = [upload_document(company, name, (folder / name).read_bytes(), bots=[bot]).outcome
                    for name in DEMO_DOCUMENTS]
        return f"Demo documents: {', '.join(f'{n} ({o})' for n, o in zip(DEMO_DOCUMENTS, outcomes))}"

    def connect_receiver(self, company, bot, receiver: str) -> str:
        from postcall.models import WebhookEndpoint
        from voicebot.management.commands.demo_receiver import demo_secret

        secret = demo_secret()
        BotTool.objects.update_or_create(bot=bot, name=BOOKING_TOOL, defaults={
            "description": "Create the booking in the salon's calendar (the demo receiver).",
            "url": f"{receiver}/bookings", "secret": secret, "timeout_sec": 5, "active": True})
        WebhookEndpoint.objects.update_or_create(company=company, url=f"{receiver}/webhooks", defaults={
            "events": ["call.ended", "lead.captured", "booking.created"], "secret": secret, "active": True,
            "description": "Demo receiver (manage.py demo_receiver)"})
        return f"Demo receiver: booking tool and webhooks -> {receiver}"
