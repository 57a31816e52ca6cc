-- What instances cost. Spot prices come from EC2 (`sync --instances` reads the price history
-- of each type and zone its Spot instances ran in); on-demand prices from the user (`anamo
-- prices set`, or [prices] in anamo.toml, copied by each sync), since the Pricing API is
-- another SDK. An instance without a known price is unpriced (usd NULL), never free.
ALTER TABLE instances ADD COLUMN zone TEXT;  -- availability zone

CREATE TABLE spot_prices (
    instance_type TEXT    NOT NULL,
    zone          TEXT    NOT NULL,
    at            INTEGER NOT NULL,  -- when this price took effect (epoch ms)
    usd_per_hour  REAL    NOT NULL,
    PRIMARY KEY (instance_type, zone, at)
) WITHOUT ROWID;

CREATE TABLE prices (
    instance_type TEXT PRIMARY KEY,
    usd_per_hour  REAL    NOT NULL,
    source        TEXT    NOT NULL,  -- 'prices set' or 'anamo.toml'
    set_at        INTEGER NOT NULL
);

-- One row per instance with a launch time: its hours (launch to termination, or to the last
-- sync that saw it) and its cost. Spot: each Spot price in effect over its life times the
-- hours it was in effect; unpriced when no price was known at its launch. On-demand (and an
-- unknown market): hours times the price table's price for its type.
CREATE VIEW instance_costs AS
WITH lives AS (
    SELECT instance_id, step, instance_type, coalesce(lifecycle, 'on-demand') AS market, zone,
           launch_time AS started,
           max(launch_time, coalesce(terminated_at, last_seen_at)) AS ended
    FROM instances
    WHERE launch_time IS NOT NULL
),
segments AS (
    SELECT instance_type, zone, at, usd_per_hour,
           lead(at) OVER (PARTITION BY instance_type, zone ORDER BY at) AS next_at
    FROM spot_prices
),
spot AS (
    SELECT l.instance_id,
           sum(s.usd_per_hour
               * (min(l.ended, coalesce(s.next_at, l.ended)) - max(l.started, s.at))
               / 3600000.0) AS usd,
           min(s.at) <= l.started AS covered
    FROM lives l
    JOIN segments s ON s.instance_type = l.instance_type AND s.zone = l.zone
                   AND s.at <= l.ended AND coalesce(s.next_at, l.ended + 1) > l.started
    WHERE l.market = 'spot'
    GROUP BY l.instance_id
)
SELECT l.instance_id,
       l.step,
       l.instance_type,
       l.market,
       l.zone,
       l.started,
       l.ended,
       (l.ended - l.started) / 3600000.0 AS hours,
       CASE WHEN l.market = 'spot' THEN CASE WHEN sp.covered THEN sp.usd END
            ELSE (l.ended - l.started) / 3600000.0 * p.usd_per_hour
       END AS usd,
       CASE WHEN l.market = 'spot' THEN CASE WHEN sp.covered THEN 'spot price history' END
            WHEN p.usd_per_hour IS NOT NULL THEN 'price table (' || p.source || ')'
       END AS priced_by
FROM lives l
LEFT JOIN spot sp ON sp.instance_id = l.instance_id
LEFT JOIN prices p ON p.instance_type = l.instance_type;
