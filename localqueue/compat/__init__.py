"""Drop-in facades with other queue libraries' APIs, over localqueue's stores.

* :mod:`localqueue.compat.liteq`: liteq's ``LiteQueue`` on a SQLite file, so a
  liteq program moves to localqueue by changing its import.
"""
