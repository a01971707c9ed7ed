"""One query layer over the hot store, shared by ``fleetpipe query`` and the fleet console.

Queries are pure: they take typed arguments (a time window, the fleets a caller may see, the
filters) and return SQL with its parameters; :mod:`fleetpipe.query.execute` runs them on a sync
or an async connection, and :mod:`fleetpipe.query.formats` renders rows as a table, JSON, CSV or
GeoJSON.
"""
