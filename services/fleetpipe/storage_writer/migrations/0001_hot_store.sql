-- The hot store: enriched telemetry partitioned by day, alert episodes, trips, driver scores
-- and the latest position of every vehicle.

-- Telemetry, one row per (vehicle_id, seq). A unique key on a partitioned table must include
-- the partition key, so the key is (vehicle_id, seq, event_day) with event_day the UTC day of
-- the device's event_time: a replayed event carries the same event_time, lands on the same day
-- and is recognised as a duplicate. (A device that re-sent one seq with a clock a day apart
-- would be stored twice; ingest rejects such clocks long before.) Daily partitions are created
-- ahead and dropped past the hot retention by the writer. The primary key is the only index:
-- it serves per-vehicle traces, and every further index would slow the write path. Vehicle
-- ids compare bytewise (COLLATE "C"), which is cheaper than a locale's rules.
CREATE TABLE telemetry (
    vehicle_id        text COLLATE "C" NOT NULL,
    seq               bigint           NOT NULL,
    event_day         date             NOT NULL,
    event_time        timestamptz      NOT NULL,
    ingest_time       timestamptz,
    fleet_id          text             NOT NULL,
    vehicle_type      text,
    driver_id         text,
    known             boolean          NOT NULL,
    lat               double precision NOT NULL,
    lon               double precision NOT NULL,
    altitude_m        real             NOT NULL,
    accuracy_m        real             NOT NULL,
    heading_deg       real             NOT NULL,
    speed_kmh         real             NOT NULL,
    accel_x_ms2       real             NOT NULL,
    accel_y_ms2       real             NOT NULL,
    accel_z_ms2       real             NOT NULL,
    rpm               bigint           NOT NULL,
    gear              integer          NOT NULL,
    fuel_pct          real             NOT NULL,
    coolant_temp_c    real             NOT NULL,
    ignition          boolean          NOT NULL,
    battery_pct       real             NOT NULL,
    battery_voltage   real             NOT NULL,
    charging          boolean          NOT NULL,
    odometer_km       double precision NOT NULL,
    geohash6          text,
    speed_limit_kmh   real             NOT NULL,
    expected_gear     integer          NOT NULL,
    sos               boolean          NOT NULL,
    crash             boolean          NOT NULL,
    tamper            boolean          NOT NULL,
    power_cut         boolean          NOT NULL,
    object_class      smallint,
    object_distance_m real,
    closing_speed_ms  real,
    interventions     smallint         NOT NULL,
    disengagements    smallint         NOT NULL,
    dtc_codes         text,
    trip_hint         text,
    late              boolean          NOT NULL,
    PRIMARY KEY (vehicle_id, seq, event_day)
) PARTITION BY RANGE (event_day);

-- The latest position and state of every vehicle, refreshed every few seconds.
CREATE TABLE vehicle_latest (
    vehicle_id  text COLLATE "C" PRIMARY KEY,
    seq         bigint           NOT NULL,
    event_time  timestamptz      NOT NULL,
    fleet_id    text             NOT NULL,
    driver_id   text,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    geohash6    text,
    speed_kmh   real             NOT NULL,
    heading_deg real             NOT NULL,
    ignition    boolean          NOT NULL,
    fuel_pct    real             NOT NULL,
    battery_pct real             NOT NULL,
    odometer_km double precision NOT NULL,
    updated_at  timestamptz      NOT NULL DEFAULT now()
);

-- Alert episodes, one row per alert_id, moving OPEN -> UPDATE -> RESOLVED; a replayed older
-- state never overwrites a newer one (state_rank, then detected_time).
CREATE TABLE alerts (
    alert_id      text             PRIMARY KEY,
    vehicle_id    text COLLATE "C" NOT NULL,
    fleet_id      text             NOT NULL,
    driver_id     text,
    rule          text             NOT NULL,
    severity      text             NOT NULL,
    state         text             NOT NULL,
    state_rank    smallint         NOT NULL,
    episode_start timestamptz      NOT NULL,
    episode_end   timestamptz,
    event_time    timestamptz      NOT NULL,
    ingest_time   timestamptz,
    detected_time timestamptz      NOT NULL,
    seq           bigint           NOT NULL,
    lat           double precision,
    lon           double precision,
    geohash6      text,
    message       text,
    trigger_values jsonb           NOT NULL DEFAULT '{}',
    updated_at    timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX alerts_episode_start ON alerts (episode_start);
CREATE INDEX alerts_vehicle ON alerts (vehicle_id, episode_start);

-- Trips, one row per trip_id, STARTED then ENDED.
CREATE TABLE trips (
    trip_id       text             PRIMARY KEY,
    vehicle_id    text COLLATE "C" NOT NULL,
    fleet_id      text             NOT NULL,
    driver_id     text,
    state         text             NOT NULL,
    state_rank    smallint         NOT NULL,
    start_time    timestamptz      NOT NULL,
    end_time      timestamptz,
    start_lat     double precision,
    start_lon     double precision,
    end_lat       double precision,
    end_lon       double precision,
    distance_km   double precision NOT NULL,
    duration_s    double precision NOT NULL,
    idle_s        double precision NOT NULL,
    max_speed_kmh real             NOT NULL,
    avg_speed_kmh real             NOT NULL,
    harsh_brakes  integer          NOT NULL,
    harsh_accels  integer          NOT NULL,
    speeding_s    double precision NOT NULL,
    start_seq     bigint           NOT NULL,
    end_seq       bigint,
    updated_at    timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX trips_vehicle ON trips (vehicle_id, start_time);
CREATE INDEX trips_start_time ON trips (start_time);

-- Driver scores over rolling windows, one row per (driver, vehicle, window end).
CREATE TABLE driver_scores (
    driver_id     text             NOT NULL,
    vehicle_id    text COLLATE "C" NOT NULL,
    window_end    timestamptz      NOT NULL,
    window_start  timestamptz      NOT NULL,
    fleet_id      text             NOT NULL,
    score         double precision NOT NULL,
    distance_km   double precision NOT NULL,
    driving_s     double precision NOT NULL,
    speeding_s    double precision NOT NULL,
    harsh_brakes  integer          NOT NULL,
    harsh_accels  integer          NOT NULL,
    idle_s        double precision NOT NULL,
    computed_time timestamptz      NOT NULL,
    PRIMARY KEY (driver_id, vehicle_id, window_end)
);
CREATE INDEX driver_scores_window_end ON driver_scores (window_end);
