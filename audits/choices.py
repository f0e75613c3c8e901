"""Enumerations stored in the database, in one place."""

from django.db import models


class AssetKind(models.TextChoices):
    STOCK = "stock", "Stock"
    ETF = "etf", "ETF"
