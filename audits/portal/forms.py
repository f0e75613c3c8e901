from django import forms
from django.conf import settings

from audits import statements
from audits.choices import StatementFormat

AS_OF_HELP = (
    "With its UTC offset, e.g. 2026-11-24T21:00:00Z or 2026-11-24T22:00:00+01:00. Required "
    "for CSV; JSON and semt.002 carry their own date, which this must match if given."
)


class StatementUploadForm(forms.Form):
    file = forms.FileField(allow_empty_file=True)
    format = forms.ChoiceField(choices=StatementFormat.choices)
    # Text, not a datetime-local input: that widget has no offset and would be taken as UTC.
    as_of = forms.CharField(
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"placeholder": "2026-11-24T21:00:00Z"}),
        help_text=AS_OF_HELP,
    )
    signature = forms.CharField(
        required=False,
        max_length=200,
        help_text="Optional detached Ed25519 signature of the file: KEYID:BASE64.",
    )

    def clean_file(self):
        file = self.cleaned_data["file"]
        if file.size > settings.MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is {file.size} bytes; the limit is {settings.MAX_UPLOAD_BYTES} bytes."
            )
        return file

    def clean(self):
        cleaned = super().clean()
        if "format" in cleaned:
            try:
                cleaned["as_of"] = statements.clean_form_as_of(
                    cleaned["format"], cleaned.get("as_of") or ""
                )
            except ValueError as exc:
                self.add_error("as_of", str(exc))
        return cleaned


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for.")
