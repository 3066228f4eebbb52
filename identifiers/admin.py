from django import forms
from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from identifiers.models import IdentifierType
from identifiers.rules import compile_pattern
from identifiers.services import stored_mismatches
from mediastore.errors import MediastoreError


class IdentifierTypeForm(forms.ModelForm):
    """Applies the API's pattern rules: RE2 syntax, and no change that stored values would not match."""

    class Meta:
        model = IdentifierType
        fields = ["name", "pattern"]

    def clean_pattern(self) -> str:
        pattern = self.cleaned_data.get("pattern") or ""
        try:
            compile_pattern(pattern)
        except MediastoreError as exc:
            raise forms.ValidationError(exc.message) from None
        if self.instance.pk and pattern and pattern != self.instance.pattern:
            count, examples = stored_mismatches(self.instance.pk, pattern)
            if count:
                shown = ", ".join(f"{e['field']} {e['value']!r} of media {e['pid']!r}" for e in examples)
                raise forms.ValidationError(
                    f"{count} stored value(s) would not match this pattern, e.g. {shown}. Change them "
                    "first (or use PUT /api/identifier?force=true)."
                )
        return pattern


@admin.register(IdentifierType)
class IdentifierTypeAdmin(SimpleHistoryAdmin):
    """Identifier types with their audit history (who changed which pattern when)."""

    form = IdentifierTypeForm
    list_display = ["name", "pattern"]
    search_fields = ["name"]
