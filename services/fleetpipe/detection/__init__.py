"""Detection: enriched telemetry → alerts, trips and driver scores, exactly once.

Per-vehicle state lives in memory and is mirrored, one record per changed vehicle per batch, to
the compacted changelog ``fleet.detection.state.v1`` (key vehicle_id) in the same Kafka
transaction as the batch's outputs and consumed offsets. On assignment a replica reads the
whole changelog and keeps the vehicles that the pipeline's key groups (``core.keygroups``) map
to its partitions at the current partition count — plus those whose last record arrived on one of
them — so state follows vehicles when the input topic's partitions grow (DESIGN §3).

Modules: ``config`` (the rules file), ``readings`` (what the rules read), ``rules`` (pure rule
predicates), ``speeding`` (which speed limit applies, and the tiers), ``ruleset`` (the rules a
file enables), ``episodes`` (the OPEN/UPDATE/RESOLVED machine), ``trips`` (trips and driver
scores), ``geo`` (geofences),
``state`` and ``wire`` (the per-vehicle state and its changelog form), ``batch`` (a batch of
events decoded into columns), ``ownership`` (which vehicles this replica holds), ``alerts``
(alert messages), ``engine`` (the detector), ``changelog`` and ``handler`` (the Kafka edge),
``drills`` (scripted timelines for tests and benchmarks).
"""
