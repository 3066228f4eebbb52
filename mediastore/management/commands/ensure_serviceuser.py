from mediastore.management.commands._ensure_user import EnsureUserCommand


class Command(EnsureUserCommand):
    help = (
        "Create or update the API service account (no admin rights) from "
        "DJANGO_SERVICEUSER_USERNAME/PASSWORD (idempotent)."
    )
    env_prefix = "DJANGO_SERVICEUSER_"
    role = "service user"
    flags = {"is_active": True}
