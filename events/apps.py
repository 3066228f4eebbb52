from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events"

    def ready(self) -> None:
        from events.webhook_figures import scrape_webhooks, status_rows
        from mediastore import metrics, panels
        from mediastore.permissions import VIEW_WEBHOOK

        metrics.register_scrape(scrape_webhooks)  # /metrics lives below the apps; it learns of webhooks here
        panels.register_status_panel("Webhooks", status_rows, VIEW_WEBHOOK)  # admins only, as the API
