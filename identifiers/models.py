"""Identifier types: the kinds of PID and identifier a media may carry, each with a regex."""

from __future__ import annotations

from django.db import models
from simple_history.models import HistoricalRecords


class IdentifierType(models.Model):
    name = models.CharField(max_length=64, primary_key=True)
    pattern = models.TextField(
        blank=True, default="", help_text="Regular expression a value must fully match; empty: any value."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
