"""Forms for linking an account to a record; they parse input and nothing more."""

from datetime import date

from django import forms

from phr.nhs_number import is_valid_nhs_number


class LinkRecordForm(forms.Form):
    """The details from the practice's letter, and the patient's date of birth."""

    account_id = forms.CharField(
        label="Account ID",
        max_length=20,
        help_text="8 letters and numbers, for example ABCD-2345",
        error_messages={"required": "Enter the account ID from your letter"},
    )
    passphrase = forms.CharField(
        label="Passphrase",
        max_length=40,
        help_text="12 letters and numbers in 3 groups, for example K7PQ-M3XD-9HTW",
        error_messages={"required": "Enter the passphrase from your letter"},
    )
    ods_code = forms.CharField(
        label="Practice ODS code",
        max_length=12,
        help_text="A code of 5 or 6 letters and numbers, for example A12345",
        error_messages={"required": "Enter the practice ODS code from your letter"},
    )
    # The date of birth is three boxes (the NHS.UK date input); errors go on the day box,
    # which the error summary links to, under the question's label.
    dob_day = forms.CharField(label="Date of birth", max_length=2, required=False)
    dob_month = forms.CharField(label="Month", max_length=2, required=False)
    dob_year = forms.CharField(label="Year", max_length=4, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("account_id", "passphrase", "ods_code"):
            self.fields[name].widget.attrs.update(autocomplete="off", spellcheck="false")

    def clean(self):
        cleaned = super().clean()
        parts = [cleaned.get(name, "").strip() for name in ("dob_day", "dob_month", "dob_year")]
        if not any(parts):
            self.add_error("dob_day", "Enter your date of birth")
            return cleaned
        if not all(part.isdigit() for part in parts) or len(parts[2]) != 4:
            self.add_error("dob_day", "Date of birth must be a real date, for example 15 3 1984")
            return cleaned
        try:
            born = date(int(parts[2]), int(parts[1]), int(parts[0]))
        except ValueError:
            self.add_error("dob_day", "Date of birth must be a real date, for example 15 3 1984")
            return cleaned
        if born > date.today():
            self.add_error("dob_day", "Date of birth must be in the past")
            return cleaned
        cleaned["date_of_birth"] = born
        return cleaned


class IssueLinkageKeyForm(forms.Form):
    """The patient a clinician issues a key for, by NHS number (sent by POST, never in a URL)."""

    nhs_number = forms.CharField(
        label="NHS number",
        max_length=14,
        help_text="10 digits, for example 943 476 5919",
        error_messages={"required": "Enter the patient's NHS number"},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["nhs_number"].widget.attrs.update(
            autocomplete="off", inputmode="numeric", spellcheck="false"
        )

    def clean_nhs_number(self) -> str:
        digits = "".join(ch for ch in self.cleaned_data["nhs_number"] if not ch.isspace())
        if not is_valid_nhs_number(digits):
            raise forms.ValidationError("Enter a valid NHS number of 10 digits")
        return digits
