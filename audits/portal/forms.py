from django import forms
from django.conf import settings

from audits.choices import StatementFormat


class StatementUploadForm(forms.Form):
    file = forms.FileField(allow_empty_file=True)
    format = forms.ChoiceField(choices=StatementFormat.choices)
    as_of = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Required for CSV (UTC). JSON and semt.002 carry their own date.",
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


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for.")
