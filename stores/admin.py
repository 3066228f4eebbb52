from django import forms
from django.contrib import admin

from mediastore.errors import RuleViolation
from stores import services
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


class StoreConfigForm(forms.ModelForm):
    """The rules of POST /api/store: the bucket is normalised, and a local store must not overlap
    another. The admin saves inside the transaction that ran this check (``changeform_view`` is
    atomic), so the lock taken by ``claim_local_place`` covers the insert too."""

    class Meta:
        model = StoreConfig
        fields = ["type", "bucket", "s3cfg"]

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        s3cfg = data.get("s3cfg")
        try:
            store_type, bucket, _ = services.normalize_store(
                data["type"], data["bucket"], s3cfg.url if s3cfg else ""
            )
            if store_type in services.LOCAL_TYPES:
                same = services.claim_local_place(store_type, bucket, exclude_pk=self.instance.pk)
                if same is not None:
                    raise RuleViolation(f"this store already exists: store {same.pk} ({same})")
        except RuleViolation as exc:
            raise forms.ValidationError(exc.message) from None
        data["bucket"] = bucket
        return data


@admin.register(StoreConfig)
class StoreConfigAdmin(admin.ModelAdmin):
    form = StoreConfigForm
    list_display = ["pk", "type", "bucket", "s3cfg"]
    list_filter = ["type"]
    search_fields = ["bucket"]
    list_select_related = ["s3cfg"]
