from mediastore.management.commands._ensure_user import EnsureUserCommand


class Command(EnsureUserCommand):
    help = "Create or update the admin user from DJANGO_SUPERUSER_USERNAME/PASSWORD/EMAIL (idempotent)."
    account_setting = "MEDIASTORE_SUPERUSER"
    env_prefix = "DJANGO_SUPERUSER_"
    role = "superuser"
    flags = {"is_active": True, "is_staff": True, "is_superuser": True}
