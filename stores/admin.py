from django import forms
from django.contrib import admin

from stores.models import S3Config, StoreConfig


class S3ConfigForm(forms.ModelForm):
    """The secret key is write-only: never rendered back; left empty it keeps the stored one."""

    secret_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only. Leave empty to keep the current secret key.",
    )

    class Meta:
        model = S3Config
        fields = ["url", "access_key", "secret_key"]

    def clean_secret_key(self) -> str:
        value = self.cleaned_data.get("secret_key", "")
        if not value:
            if self.instance.pk:
                return S3Config.objects.values_list("secret_key", flat=True).get(pk=self.instance.pk)
            raise forms.ValidationError("A secret key is required for a new S3 configuration.")
        return value


@admin.register(S3Config)
class S3ConfigAdmin(admin.ModelAdmin):
    form = S3ConfigForm
    list_display = ["pk", "url", "access_key"]
    search_fields = ["url"]


@admin.register(StoreConfig)
class StoreConfigAdmin(admin.ModelAdmin):
    list_display = ["pk", "type", "bucket", "s3cfg"]
    list_filter = ["type"]
    search_fields = ["bucket"]
    list_select_related = ["s3cfg"]
