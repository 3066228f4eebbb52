from django.apps import AppConfig


class StatusConfig(AppConfig):
    name = "status"
    verbose_name = "Status"

    def ready(self) -> None:
        from mediastore import metrics
        from status.selectors import scrape_figures

        metrics.register_scrape(scrape_figures)  # /metrics lives below the apps; it learns of media here
