-- The vehicles dimension (the registry, kept in sync by the writer) and the windowed fleet
-- KPIs of the kpis stage.

-- One row per vehicle the registry has ever named. A vehicle taken out of the registry keeps
-- its row with removed_at set, so that history still joins to its model and type; it comes
-- back (removed_at NULL) if the registry names it again. updated_at moves only when a field
-- changed: a registry reload that changes nothing writes nothing.
CREATE TABLE vehicles (
    vehicle_id   text COLLATE "C" PRIMARY KEY,
    fleet_id     text        NOT NULL,
    vehicle_type text        NOT NULL,
    model        text        NOT NULL,
    colour       text        NOT NULL,
    fuel         text        NOT NULL,
    electric     boolean     NOT NULL,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    removed_at   timestamptz
);
CREATE INDEX vehicles_fleet ON vehicles (fleet_id);

-- One row per emitted window, group and input partition of the stage (FleetKpi): the stage
-- keeps state per input partition, and each vehicle's events come in on one, so a window's
-- figures for a group are the sum over partitions (kpi_windows). A replay inserts nothing.
-- Rows are kept as long as alert episodes (the writer's events retention).
CREATE TABLE kpi_window_parts (
    window_start     timestamptz      NOT NULL,
    window_end       timestamptz      NOT NULL,
    fleet_id         text             NOT NULL,
    dimension        text             NOT NULL,
    dimension_value  text             NOT NULL,
    source_partition integer          NOT NULL,
    active_vehicles  integer          NOT NULL,
    distance_km      double precision NOT NULL,
    max_speed_kmh    real             NOT NULL,
    speed_sum_kmh    double precision NOT NULL,
    speed_samples    bigint           NOT NULL,
    alerts_by_rule   jsonb            NOT NULL DEFAULT '{}',
    stored_at        timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (window_end, fleet_id, dimension, dimension_value, source_partition)
);
CREATE INDEX kpi_window_parts_fleet ON kpi_window_parts (fleet_id, window_end);

-- The windows: per fleet (dimension 'fleet'), per model and per vehicle type.
CREATE VIEW kpi_windows AS
SELECT window_start, window_end, fleet_id, dimension, dimension_value,
       sum(active_vehicles)::integer AS active_vehicles,
       sum(distance_km) AS distance_km,
       max(max_speed_kmh) AS max_speed_kmh,
       sum(speed_sum_kmh) / nullif(sum(speed_samples), 0)::double precision AS avg_speed_kmh,
       sum(speed_samples)::bigint AS speed_samples,
       count(*)::integer AS parts
FROM kpi_window_parts
GROUP BY window_start, window_end, fleet_id, dimension, dimension_value;

-- Alert episodes opened per window, group and rule.
CREATE VIEW kpi_window_alerts AS
SELECT p.window_start, p.window_end, p.fleet_id, p.dimension, p.dimension_value,
       a.key AS rule, sum(a.value::bigint)::bigint AS alerts
FROM kpi_window_parts p, jsonb_each_text(p.alerts_by_rule) a
GROUP BY p.window_start, p.window_end, p.fleet_id, p.dimension, p.dimension_value, a.key;
