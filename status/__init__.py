"""Operators' view: the status page (/status/), its figures as JSON (/api/stats), and the figures
/metrics computes from the database at each scrape. Reads the floors below; nothing imports it."""
