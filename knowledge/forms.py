"""Admin upload form: several files at once for one company and its bots."""

from __future__ import annotations

from django import forms

from knowledge.filetypes import EXTENSIONS, max_upload_bytes
from voicebot.models import Bot, Company


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else [data]
        files = [f for f in files if f]
        if not files:
            raise forms.ValidationError("Choose at least one file.")
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


class UploadForm(forms.Form):
    company = forms.ModelChoiceField(queryset=Company.objects.none())
    bots = forms.ModelMultipleChoiceField(
        queryset=Bot.objects.none(), required=False, widget=forms.CheckboxSelectMultiple,
        help_text="The bots that answer from these files (of the chosen company).",
    )
    files = MultipleFileField(
        help_text="PDF, DOCX, TXT, CSV, Markdown or HTML; several at once. "
                  "A file with the name of an existing document replaces it.",
        widget=MultipleFileInput(attrs={"accept": ",".join(sorted(EXTENSIONS))}),
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["company"].queryset = Company.objects.for_user(user)
        self.fields["bots"].queryset = Bot.objects.for_user(user).select_related("company")
        self.fields["bots"].label_from_instance = lambda bot: f"{bot.name} ({bot.company})"
        self.fields["files"].help_text += f" At most {max_upload_bytes() // 1048576} MB each."

    def clean(self):
        data = super().clean()
        company, bots = data.get("company"), data.get("bots") or []
        if company is not None:
            foreign = [b.name for b in bots if b.company_id != company.pk]
            if foreign:
                self.add_error("bots", f"These bots belong to another company: {', '.join(foreign)}.")
        return data
