"""Admin forms: scenarios edited as YAML, validated with errors on the field."""

from __future__ import annotations

from django import forms
from django.utils.html import format_html, format_html_join

from voicebot import model_choices
from voicebot.models import Bot
from voicebot.scenarios import ScenarioError, dump_text, parse_scenarios

try:  # a code editor with line numbers; its Ace files are served from our own static files
    from django_ace import AceWidget
except ImportError:  # pragma: no cover - django-ace is in requirements/base.txt
    AceWidget = None

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


def scenario_widget():
    if AceWidget is None:
        return ScenarioYamlField.widget
    return AceWidget(mode="yaml", theme="chrome", width="100%", height="420px", tabsize=2, usesofttabs=True,
                     showprintmargin=False, useworker=False, toolbar=False, fontsize="13px",
                     attrs={"spellcheck": "false"})


class SuggestingInput(forms.TextInput):
    """A free text box with a list of suggestions (an HTML datalist): pick one, or type a path."""

    def __init__(self, attrs=None, suggestions=()):
        super().__init__(attrs)
        self.suggestions = list(suggestions)

    def render(self, name, value, attrs=None, renderer=None):
        attrs = {**(attrs or {}), "list": f"{name}-choices", "autocomplete": "off"}
        box = super().render(name, value, attrs, renderer)
        options = format_html_join("", '<option value="{}"></option>', ((s,) for s in self.suggestions))
        return format_html('{}<datalist id="{}-choices">{}</datalist>', box, name, options)


class BotAdminForm(forms.ModelForm):
    """The bot page's form: voice and models checked against what is installed or served.

    Voice and speech recognition are checked in ``Bot.clean()`` too (the API gets the same
    check); the language model against the LLM server's list here only, since that needs
    the network. ``setup_warnings`` holds what was accepted but deserves a word to staff.
    """

    scenarios = ScenarioYamlField(widget=scenario_widget())

    class Meta:
        model = Bot
        fields = "__all__"
        widgets = {
            "greeting": forms.Textarea(attrs={"rows": 2, "cols": 100}),
            "system_prompt": forms.Textarea(attrs={"rows": 4, "cols": 100}),
            "fallback_phrase": forms.Textarea(attrs={"rows": 2, "cols": 100}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.setup_warnings: list[str] = []
        self.llm_models: model_choices.LlmModels | None = None
        suggestions = {"voice": model_choices.installed_voices, "stt_model": model_choices.whisper_names,
                       "llm_model": self._served_llms}
        defaults = model_choices.install_defaults()
        for name, suggest in suggestions.items():
            if name in self.fields:
                self.fields[name].widget = SuggestingInput(
                    attrs={"class": "vTextField", "placeholder": f"the install's default: {defaults[name]}"},
                    suggestions=suggest())

    def _llms(self) -> model_choices.LlmModels:
        if self.llm_models is None:
            self.llm_models = model_choices.llm_models()
        return self.llm_models

    def _served_llms(self) -> list[str]:
        return self._llms().names

    def clean_llm_model(self):
        name = (self.cleaned_data.get("llm_model") or "").strip()
        verdict = model_choices.check_llm(name, self._llms())
        if verdict.error:
            raise forms.ValidationError(verdict.error)
        if verdict.warning:
            self.setup_warnings.append(verdict.warning)
        return name

    def clean_stt_model(self):
        name = (self.cleaned_data.get("stt_model") or "").strip()
        verdict = model_choices.check_stt(name)
        if verdict.warning:
            self.setup_warnings.append(verdict.warning)
        return name  # an unknown name is refused by Bot.clean(), with the known names

    def clean_voice(self):
        return (self.cleaned_data.get("voice") or "").strip()

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


class PlaceCallForm(forms.Form):
    """Admin's "Call a number" on a bot: who to call, from which number, with which {{variables}}."""

    to = forms.CharField(max_length=200, help_text="The number to call, e.g. +12125550199 (read in the company's "
                                                    "country when it has no +).")
    from_number = forms.ChoiceField(label="From", required=False,
                                    help_text="One of the company's Twilio, Telnyx, Plivo or SIP numbers; empty: the "
                                              "bot's own.")
    variables = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
                                help_text="One name=value per line, e.g. name=Dana; used as {{name}} in the greeting "
                                          "and prompts.")

    def __init__(self, *args, numbers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["from_number"].choices = [("", "The bot's own number"),
                                              *((n.number, f"{n.number} ({n.get_provider_display()})") for n in numbers)]

    def clean_variables(self) -> dict[str, str]:
        values = {}
        for line_number, line in enumerate(self.cleaned_data["variables"].splitlines(), start=1):
            if not line.strip():
                continue
            name, sep, value = line.partition("=")
            if not sep or not name.strip().isidentifier():
                raise forms.ValidationError(f"line {line_number}: write name=value (got {line.strip()[:60]!r})")
            values[name.strip()] = value.strip()
        return values
