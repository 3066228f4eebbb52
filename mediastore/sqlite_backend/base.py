"""Django's SQLite backend, told the real variable limit of the SQLite that Python ships.

Django assumes SQLite's old default of 999 variables per statement and splits bulk writes into
many small batches; SQLite 3.32+ allows 32766. Fewer batches keep bulk writes at a constant number
of queries, as on PostgreSQL.
"""

import sqlite3

from django.db.backends.sqlite3 import base, features


class DatabaseFeatures(features.DatabaseFeatures):
    max_query_params = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
