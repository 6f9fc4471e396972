"""Attribution models over user journeys, beside the engine's last click (docs/design.md §8):
builds every user's journeys from Gold, aggregates identical paths, scores them with every
model (jobs/attribution_models/models.py) and writes gold.attribution_models and
gold.attribution_model_fit.

    spark-submit jobs/attribution_models/job.py [--as-of ISO] [--window-days 28]
        [--dimension campaign_id] [--touches impressions+clicks] [--max-order 3]    (make attribution-models)

A journey is a user's touches (impressions and clicks, or clicks only) within the lookback
(7 days) before the conversion that ends it: the conversions are those the engine credits
(is_converted), with their revenue, so every model credits what last click does. A user's
touches after their last conversion are a journey that did not convert, those within the
lookback before its last touch. The window holds the journeys that end in the window_days
before as_of. A run replaces the rows of its (as_of, window_days, dimension, touches) in
one commit, so re-running it changes nothing.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import datetime, timedelta, timezone
from fractions import Fraction

from conf.settings import get_settings
from conf.tables import Tables, ensure_tables
from jobs.attribution_models.models import DEFAULT_HALF_LIFE_HOURS, DEFAULT_MAX_ORDER, Journey, attribute
from jobs.cli import job_parser, job_session

log = logging.getLogger(__name__)

DIMENSIONS = ("campaign_id", "platform", "geo_country", "creative_id")
TOUCHES = ("impressions+clicks", "clicks")


def journeys_sql(gold: str, as_of: datetime, window_days: int, lookback_seconds: int, dimension: str,
                 touches: str) -> str:
    """One row per distinct (path, ages of a converting journey): conversions, nulls, revenue."""
    window_start = as_of - timedelta(days=window_days)
    touches_from = window_start - timedelta(seconds=lookback_seconds)
    end, start, window = (f"TIMESTAMP '{moment:%Y-%m-%d %H:%M:%S.%f}'" for moment in (as_of, touches_from, window_start))
    impressions = "" if touches == "clicks" else (
        f"SELECT user_id, impression_time AS t, 0 AS kind, channel FROM gold WHERE impression_time < {end} UNION ALL ")
    return f"""
WITH gold AS (
  SELECT impression_id, user_id, {dimension} AS channel, impression_time, is_clicked, click_time, is_converted,
         conversion_time, revenue
  FROM {gold}
  WHERE (impression_id_day >= DATE '{touches_from:%Y-%m-%d}' - INTERVAL 1 DAY OR impression_id_day IS NULL)
    AND impression_time >= {start} AND user_id IS NOT NULL AND {dimension} IS NOT NULL
), touches AS (
  {impressions}SELECT user_id, click_time AS t, 1 AS kind, channel FROM gold WHERE is_clicked AND click_time < {end}
), conversions AS (
  SELECT impression_id, user_id, conversion_time AS ended_at, CAST(revenue AS DECIMAL(38, 6)) AS revenue FROM gold
  WHERE is_converted AND conversion_time < {end} AND conversion_time >= {window}
), converting AS (
  SELECT c.impression_id, c.ended_at, c.revenue, true AS converted,
         array_sort(collect_list(named_struct('t', e.t, 'kind', e.kind, 'channel', e.channel))) AS kept
  FROM conversions c JOIN touches e
    ON e.user_id = c.user_id AND e.t <= c.ended_at AND e.t >= c.ended_at - INTERVAL {lookback_seconds} SECONDS
  GROUP BY c.impression_id, c.ended_at, c.revenue
), last_conversion AS (
  SELECT user_id, max(conversion_time) AS at FROM gold WHERE is_converted AND conversion_time < {end} GROUP BY user_id
), trailing AS (
  SELECT e.user_id, array_sort(collect_list(named_struct('t', e.t, 'kind', e.kind, 'channel', e.channel))) AS all_touches
  FROM touches e LEFT JOIN last_conversion l ON e.user_id = l.user_id
  WHERE l.at IS NULL OR e.t > l.at
  GROUP BY e.user_id
), not_converting AS (
  SELECT element_at(all_touches, -1).t AS ended_at, CAST(0 AS DECIMAL(38, 6)) AS revenue, false AS converted,
         filter(all_touches, x -> x.t >= element_at(all_touches, -1).t - INTERVAL {lookback_seconds} SECONDS) AS kept
  FROM trailing
), journeys AS (
  SELECT ended_at, revenue, converted, kept FROM converting
  UNION ALL
  SELECT ended_at, revenue, converted, kept FROM not_converting WHERE ended_at >= {window}
)
SELECT transform(kept, x -> x.channel) AS path,
       IF(converted, transform(kept, x -> round((unix_micros(ended_at) - unix_micros(x.t)) / 3600e6, 4)), NULL) AS ages,
       sum(IF(converted, 1, 0)) AS conversions, sum(IF(converted, 0, 1)) AS nulls,
       sum(revenue) AS revenue
FROM journeys WHERE size(kept) > 0
GROUP BY 1, 2
"""


def to_journeys(rows) -> list[Journey]:
    return [Journey(path=tuple(row.path), conversions=int(row.conversions), nulls=int(row.nulls),
                    value=Fraction(row.revenue or 0),
                    ages_hours=None if row.ages is None else tuple(Fraction(age) for age in row.ages))
            for row in rows]


def result_rows(result, as_of: datetime, window_days: int, dimension: str, touches: str, computed_at: datetime):
    key = (as_of, window_days, dimension, touches)
    for model, credits in result.credits.items():
        effects = result.removal_effects.get(model, {})
        for channel, credit in credits.items():
            yield (*key, model, channel, None, float(credit.conversions), float(credit.value), effects.get(channel),
                   computed_at)
    for channel, by_position in result.positions.items():
        for position, credit in enumerate(by_position, 1):
            if credit.conversions:
                yield (*key, "shapley_ordered", channel, position, float(credit.conversions), float(credit.value),
                       None, computed_at)


def run(spark, tables: Tables, as_of: datetime, window_days: int = 28, dimension: str = "campaign_id",
        touches: str = "impressions+clicks", max_order: int = DEFAULT_MAX_ORDER,
        half_life_hours: float = DEFAULT_HALF_LIFE_HOURS) -> dict:
    """Journeys -> models -> tables; returns what it did (the journeys, paths and seconds)."""
    rules = ensure_tables(spark, tables)
    started = time.monotonic()
    rows = spark.sql(journeys_sql(tables.gold, as_of, window_days, rules.lookback_seconds, dimension, touches)).collect()
    journeys = to_journeys(rows)
    read = time.monotonic() - started
    # Campaigns of the dimension table that no journey touched are credited 0, not left out.
    campaigns = [] if dimension != "campaign_id" or not spark.catalog.tableExists(tables.dim_campaigns) else [
        row.campaign_id for row in spark.sql(f"SELECT DISTINCT campaign_id FROM {tables.dim_campaigns}").collect()]
    result = attribute(journeys, channels=campaigns, max_order=max_order, half_life_hours=half_life_hours)
    scored = time.monotonic() - started - read
    computed_at = datetime.now(timezone.utc).replace(tzinfo=None)
    naive_as_of = as_of.replace(tzinfo=None)
    credit_rows = list(result_rows(result, naive_as_of, window_days, dimension, touches, computed_at))
    users = sum(journey.users for journey in journeys)
    paths = len({journey.path for journey in journeys})
    fit_rows = [(naive_as_of, window_days, dimension, touches, model, fit.log_loss, fit.auc, fit.states, users,
                 paths, computed_at) for model, fit in result.fit.items()]
    condition = (f"as_of = TIMESTAMP '{naive_as_of:%Y-%m-%d %H:%M:%S.%f}' AND window_days = {window_days} "
                 f"AND dimension = '{dimension}' AND touches = '{touches}'")
    from pyspark.sql.functions import expr

    for table, data in ((tables.attribution_models, credit_rows), (tables.attribution_model_fit, fit_rows)):
        schema = spark.table(table).schema
        spark.createDataFrame(data, schema).writeTo(table).overwrite(expr(condition))
    return {"journeys": users, "paths": paths, "rows": len(credit_rows),
            "read_seconds": read, "model_seconds": scored, "channels": len(next(iter(result.credits.values()), {}))}


def parse_as_of(text: str | None) -> datetime:
    if not text:
        return datetime.now(timezone.utc).replace(microsecond=0)
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = job_parser("attribution_models/job.py", __doc__, settings)
    parser.add_argument("--as-of", help="ISO time, UTC unless it says otherwise (default: now)")
    parser.add_argument("--window-days", type=int, default=28, help="journeys ending in these days before as-of")
    parser.add_argument("--dimension", choices=DIMENSIONS, default="campaign_id", help="what a channel is")
    parser.add_argument("--touches", choices=TOUCHES, default="impressions+clicks")
    parser.add_argument("--max-order", type=int, default=DEFAULT_MAX_ORDER, help="Markov orders 1..K")
    parser.add_argument("--half-life-hours", type=float, default=DEFAULT_HALF_LIFE_HOURS, help="time decay's half-life")
    args = parser.parse_args(argv)
    if args.window_days < 1 or args.max_order < 1 or not args.half_life_hours > 0:
        parser.error("--window-days and --max-order must be >= 1, --half-life-hours > 0")
    try:
        as_of = parse_as_of(args.as_of)
    except ValueError:
        parser.error(f"--as-of {args.as_of!r} is not an ISO time")
    spark = job_session("attribution-models", settings, "s3", "catalog")
    tables = Tables(args.table_prefix)
    done = run(spark, tables, as_of, args.window_days, args.dimension, args.touches, args.max_order,
               args.half_life_hours)
    log.info(f"attribution models as of {as_of:%Y-%m-%d %H:%M:%S}Z: {done['journeys']:,} journeys, "
             f"{done['paths']:,} distinct paths, {done['channels']} channels -> {done['rows']:,} rows in "
             f"{tables.attribution_models} (journeys {done['read_seconds']:.1f}s, models {done['model_seconds']:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
