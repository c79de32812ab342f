"""Admin forms: scenarios edited as YAML, validated with errors on the field."""

from __future__ import annotations

from django import forms

from voicebot.models import Bot
from voicebot.scenarios import ScenarioError, dump_text, parse_scenarios

SCENARIO_HELP = (
    "YAML. A list of scenarios, each with name, trigger_keywords (and optional example_phrases: callers' "
    "paraphrases match by meaning), collect_fields (name, prompt, optional type: text, phone, date, time, email, "
    "number; optional choices: [haircut, {value: gel manicure, also: [gel nails]}], required, hint), on_complete "
    "(an event sent to the bot's tool of that "
    "name), optional confirm (read the values back first; default true) and use_knowledge_base. You may also paste "
    "a whole document with greeting, scenarios, fallback, max_turns and silence_timeout_sec: those settings are "
    "applied to the bot."
)


class ScenarioYamlField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 18, "cols": 100, "class": "vLargeTextField", "spellcheck": "false"})

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", SCENARIO_HELP)
        super().__init__(strip=False, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, (list, dict)):
            return dump_text(value)
        return value

    def to_python(self, value):
        value = super().to_python(value)
        try:
            return parse_scenarios(value)
        except ScenarioError as exc:
            raise forms.ValidationError(exc.errors) from None


class BotAdminForm(forms.ModelForm):
    scenarios = ScenarioYamlField()

    class Meta:
        model = Bot
        fields = "__all__"
        widgets = {
            "greeting": forms.Textarea(attrs={"rows": 2, "cols": 100}),
            "system_prompt": forms.Textarea(attrs={"rows": 4, "cols": 100}),
            "fallback_phrase": forms.Textarea(attrs={"rows": 2, "cols": 100}),
        }

    def clean(self):
        cleaned = super().clean()
        parsed = cleaned.get("scenarios")
        if isinstance(parsed, tuple):
            scenarios, extras = parsed
            cleaned["scenarios"] = scenarios
            # Settings pasted beside the scenarios win over the form's fields.
            for key, field in (("greeting", "greeting"), ("fallback", "fallback_phrase"),
                               ("max_turns", "max_turns"), ("silence_timeout_sec", "silence_timeout_sec")):
                if key in extras:
                    cleaned[field] = extras[key]
        return cleaned
