from django import forms
from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from mediastore.errors import RuleViolation
from stores import services
from stores.models import S3Config, StoreConfig


class S3ConfigForm(forms.ModelForm):
    """The secret key is write-only: never rendered back; left empty it keeps the stored one.

    The url is shown without user info (rows from before such URLs were refused may have it);
    saving the form stores it without, as a url with user info is refused.
    """

    secret_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only, stored encrypted. Leave empty to keep the current secret key. With no "
        "access key either (on a new configuration): the server's standard AWS credential chain.",
    )
    clear_keys = forms.BooleanField(
        required=False,
        help_text="Forget both keys: the server's standard AWS credential chain (environment, "
        "profiles, instance role) signs the requests.",
    )

    class Meta:
        model = S3Config
        fields = ["url", "access_key", "region", "addressing_style"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["url"] = self.instance.public_url
        for name in ("region", "addressing_style"):  # left out or empty: kept (new: the default)
            self.fields[name].required = False

    def clean_region(self) -> str:
        return self.cleaned_data.get("region") or self.instance.region

    def clean_addressing_style(self) -> str:
        return self.cleaned_data.get("addressing_style") or self.instance.addressing_style

    def clean_url(self) -> str:
        url = self.cleaned_data.get("url", "")
        try:
            return services.check_s3_url(url)
        except RuleViolation as exc:
            raise forms.ValidationError(exc.message) from None

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("clear_keys"):
            cleaned["access_key"] = cleaned["secret_key"] = ""
            self.instance.access_key = ""
            return cleaned
        access_key, secret = cleaned.get("access_key", ""), cleaned.get("secret_key", "")
        has_secret = bool(secret) or (bool(self.instance.pk) and bool(self.instance.secret_key_encrypted))
        if bool(access_key) != has_secret:
            raise forms.ValidationError(
                "Give both an access key and a secret key, or neither (the server's standard AWS "
                "credential chain)."
            )
        return cleaned

    def save(self, commit: bool = True) -> S3Config:
        if self.cleaned_data.get("clear_keys"):
            self.instance.secret_key = ""
        elif self.cleaned_data.get("secret_key"):
            self.instance.secret_key = self.cleaned_data["secret_key"]
        return super().save(commit=commit)


@admin.register(S3Config)
class S3ConfigAdmin(SimpleHistoryAdmin):
    """S3 endpoints with their audit history (url and access key; the secret is never recorded)."""

    form = S3ConfigForm
    list_display = ["pk", "public_url", "access_key", "region", "addressing_style"]
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
            if services.is_local_store(store_type):
                same = services.claim_local_place(store_type, bucket, exclude_pk=self.instance.pk)
                if same is not None:
                    raise RuleViolation(f"this store already exists: store {same.pk} ({same})")
        except RuleViolation as exc:
            raise forms.ValidationError(exc.message) from None
        data["bucket"] = bucket
        return data


@admin.register(StoreConfig)
class StoreConfigAdmin(SimpleHistoryAdmin):
    form = StoreConfigForm
    list_display = ["pk", "type", "bucket", "s3cfg"]
    list_filter = ["type"]
    search_fields = ["bucket"]
    list_select_related = ["s3cfg"]
