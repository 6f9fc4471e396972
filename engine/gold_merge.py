"""The Gold state machine as SQL text (docs/design.md §4), built by pure functions.

A Gold row keeps every valid copy it has seen (`touches`); every metric column is derived
from the touch set by `derive_gold` (one chain of SQL expressions). Folding a batch in is
set union (unique by Kafka coordinates) followed by derivation, so it is idempotent,
commutative and associative: retried, replayed or re-split batches give the same Gold.

The MERGE and the replay path both call these functions, so they cannot drift.
"""

from __future__ import annotations

from conf.settings import ValidationLimits
from conf.gold_days import days_predicate, impression_id_day
from conf.tables import GOLD, TOUCH_FIELDS, AttributionRules

TOUCH_NAMES = tuple(name for name, _ in TOUCH_FIELDS)

GOLD_COLUMNS = (
    "impression_id", "impression_id_day", "campaign_id", "creative_id", "user_id", "geo_country", "platform", "is_clicked",
    "is_converted", "impression_time", "click_time", "conversion_time", "cost", "revenue", "eligible",
    "is_late", "late_by_ms", "revenue_out_of_window", "last_updated_ts", "converted_event_id", "touches",
)


def strip_dispositions(stored_touches: str) -> str:
    """Stored touches carry a disposition; set algebra works on the bare touch."""
    fields = ", ".join(f"x.{name} AS {name}" for name in TOUCH_NAMES)
    return f"transform({stored_touches}, x -> struct({fields}))"


def union_touches(*touch_arrays: str) -> str:
    """All copies of the arrays; derive_gold sorts them and drops repeats."""
    return "concat(" + ", ".join(f"coalesce({array}, array())" for array in touch_arrays) + ")"


# Every step below is O(n log n) in a row's n touches: sorts (Spark's own, no comparator
# lambda) and single passes that look at the previous element by index. Nested lambdas
# (a filter inside a transform) and array_distinct on structs compare pairwise, and one
# impression with 50,000 touches took 511 s that way. Spark interprets every lambda call,
# so a set of one touch (most Gold rows: an impression nobody clicked) is answered
# directly — the answer the general expression gives for it (the property tests in
# tests/spark check both branches against the oracle).
def _single_or(touches: str, single, general: str) -> str:
    """SQL: `single(the only touch)` for a set of one, else `general`."""
    return f"CASE WHEN size({touches}) = 1 THEN {single(f'try_element_at({touches}, 1)')} ELSE {general} END"


def _previous(array: str, index: str) -> str:
    """SQL: the element before position `index` (0-based) of a row's array column, or NULL."""
    return f"(CASE WHEN {index} = 0 THEN NULL ELSE {array}[{index} - 1] END)"


def _by_copy(touches: str) -> str:
    """Touches in (event_id, arrival_time, partition, offset) order — a copy's Kafka
    coordinates identify it, so this order is total and repeats of a copy sit side by side."""
    return (f"transform(array_sort(transform({touches}, x -> struct(x.event_id AS k1, x.arrival_time AS k2, "
            "x.kafka_partition AS k3, x.kafka_offset AS k4, x AS t))), z -> z.t)")


def _without_repeats(ordered: str) -> str:
    return f"filter({ordered}, (x, i) -> NOT ({_previous(ordered, 'i')} <=> x))"


def _by_coordinates(touches: str) -> str:
    return f"array_sort(transform({touches}, x -> struct(x.kafka_partition AS k1, x.kafka_offset AS k2, x AS t)))"


def _kept(touches: str, max_touches: int) -> str:
    """The first `max_touches` copies by Kafka coordinates (docs/design.md §4: a Gold row's
    cap). With a correctly keyed topic every new copy sorts after the ones a row holds, so
    a full row only turns new copies away; a copy of the same impression on an earlier
    partition displaces the last one kept — either way Gold is a function of the set of
    copies seen, whatever the batches."""
    return (f"IF(size({touches}) <= {max_touches}, {touches}, "
            f"{_by_copy(f'transform(slice({_by_coordinates(touches)}, 1, {max_touches}), z -> z.t)')})")


def _overflow(touches: str, max_touches: int) -> str:
    return (f"IF(size({touches}) <= {max_touches}, NULL, transform(slice({_by_coordinates(touches)}, "
            f"{max_touches + 1}, size({touches}) - {max_touches}), z -> z.t))")


def _lateness_ms(touch: str) -> str:
    return f"CAST(floor((unix_micros({touch}.arrival_time) - unix_micros({touch}.event_time)) / 1000.0) AS BIGINT)"


def _canonical(touches: str) -> str:
    """One copy per event_id: the smallest (arrival time, partition, offset), which is the
    first of its event_id in `touches` (in _by_copy order)."""
    return _single_or(touches, lambda _: touches,
                      f"filter({touches}, (x, i) -> NOT ({_previous(touches, 'i')}.event_id <=> x.event_id))")


def _first_by_time(touches: str, event_type: str) -> str:
    """The touch of a type with the smallest (event_time, event_id), or null."""
    return _single_or(touches, lambda one: f"IF({one}.event_type = '{event_type}', {one}, NULL)", (
        f"array_min(transform(filter({touches}, x -> x.event_type = '{event_type}'), "
        "x -> struct(x.event_time AS k1, x.event_id AS k2, x AS t))).t"
    ))


def _valid_clicks(canonical: str, impression: str) -> str:
    return f"filter({canonical}, x -> x.event_type = 'CLICK' AND x.event_time >= ({impression}).event_time)"


def _timeline(canonical: str, valid_clicks: str) -> str:
    """Valid clicks and conversions in time order, a click before a conversion at the same
    instant (a click at the conversion's time counts); conversions by (event_time, event_id)."""
    return (f"array_sort(concat(transform({valid_clicks}, x -> struct(x.event_time AS k1, 0 AS k2, x.event_id AS k3, "
            f"x AS t)), transform(filter({canonical}, x -> x.event_type = 'CONVERSION'), x -> struct(x.event_time AS k1, "
            "1 AS k2, x.event_id AS k3, x AS t))))")


def _conversions(timeline: str, click_times: str, lookback_seconds: int) -> str:
    """Conversions in (event_time, event_id) order, each with the latest valid click at or
    before it and whether it is within the lookback. The m-th conversion (0-based) at
    position p of the timeline has p - m clicks before it; `click_times` is sorted, so the
    latest of them is element p - m - 1."""
    with_click = (
        f"transform(filter(transform({timeline}, (e, p) -> struct(e.k2 AS kind, e.t AS c, p AS p)), e -> e.kind = 1), "
        f"(w, m) -> struct(w.c AS c, CASE WHEN w.p - m > 0 THEN {click_times}[w.p - m - 1] END AS click_time))"
    )
    return (
        f"transform({with_click}, w -> struct(w.c AS c, w.click_time AS click_time, "
        f"w.click_time IS NOT NULL AND unix_micros(w.c.event_time) - unix_micros(w.click_time) "
        f"<= {lookback_seconds * 1_000_000} AS eligible))"
    )


def _tagged(touches: str, conversions: str) -> str:
    """Each conversion's verdict (kind 0) just before the copies of its event_id (kind 1, in
    _by_copy order): a copy finds its verdict, or an earlier copy of itself, one step back."""
    verdict = "struct(w.eligible AS eligible, w.click_time IS NOT NULL AS clicked)"
    return (f"array_sort(concat(transform({conversions}, w -> struct(w.c.event_id AS k1, 0 AS k2, "
            f"w.c.arrival_time AS k3, w.c.kafka_partition AS k4, w.c.kafka_offset AS k5, w.c AS t, {verdict} AS v)), "
            f"transform({touches}, x -> struct(x.event_id AS k1, 1 AS k2, x.arrival_time AS k3, x.kafka_partition AS k4, "
            f"x.kafka_offset AS k5, x AS t, CAST(NULL AS STRUCT<eligible: BOOLEAN, clicked: BOOLEAN>) AS v))))")


def _disposition(touch: str, duplicate: str, verdict: str, impression: str, first: str) -> str:
    return (
        f"CASE WHEN {duplicate} THEN 'DUPLICATE'"
        f" WHEN {touch}.event_type = 'IMPRESSION' THEN IF({touch}.event_id = {impression}.event_id, 'IMPRESSION', "
        "'DUPLICATE_IMPRESSION')"
        f" WHEN {touch}.event_type = 'CLICK' THEN CASE WHEN {impression} IS NULL THEN 'AWAITING_IMPRESSION'"
        f" WHEN {touch}.event_time < {impression}.event_time THEN 'CLICK_BEFORE_IMPRESSION' ELSE 'CLICK' END"
        f" WHEN {first}.c.event_id = {touch}.event_id THEN 'ATTRIBUTED'"
        f" WHEN {verdict}.eligible THEN 'EXTRA_CONVERSION'"
        f" WHEN {verdict}.clicked THEN 'OUT_OF_WINDOW'"
        " ELSE 'NO_CLICK' END"
    )


def derivation_steps(touches: str, rules: AttributionRules) -> list[tuple[str, str]]:
    """(column, SQL expression) in order; each step may use the columns before it, so
    every intermediate is computed once per row. `touches` holds every copy once, in
    _by_copy order.

    Spark's optimizer inlines a step that is referenced once (CollapseProject), even when
    that reference sits inside a lambda, where it is then evaluated once per element: every
    step a lambda reads is also read outside one (tests/spark/test_hot_keys.py checks the
    plan)."""
    canonical, impression, clicks, click_times, timeline, conversions, first, tagged = (
        "_canonical", "_impression", "_clicks", "_click_times", "_timeline", "_conversions", "_first", "_tagged")
    late_by_ms = _single_or(canonical, _lateness_ms, f"array_max(transform({canonical}, x -> {_lateness_ms('x')}))")
    stored = lambda x, disposition: (  # noqa: E731
        "struct(" + ", ".join(f"{x}.{name} AS {name}" for name in TOUCH_NAMES) + f", {disposition} AS disposition)")
    one = f"try_element_at({touches}, 1)"
    only_conversion = f"try_element_at({conversions}, 1)"
    single_verdict = f"struct({only_conversion}.eligible AS eligible, {only_conversion}.click_time IS NOT NULL AS clicked)"
    single_touch = stored(one, _disposition(one, "false", single_verdict, impression, first))
    previous = "z.p"
    general_touches = (
        f"transform(filter(transform({tagged}, (e, j) -> struct(e AS e, {_previous(tagged, 'j')} AS p)), "
        "z -> z.e.k2 = 1), "
        "z -> " + stored("z.e.t", _disposition(
            "z.e.t", f"coalesce({previous}.k2 = 1 AND {previous}.k1 = z.e.k1, false)",
            f"IF({previous}.k2 = 0 AND {previous}.k1 = z.e.k1, {previous}.v, NULL)", impression, first)) + ")"
    )
    return [
        (canonical, _canonical(touches)),
        (impression, _first_by_time(canonical, "IMPRESSION")),
        (clicks, _valid_clicks(canonical, impression)),
        (timeline, _timeline(canonical, clicks)),
        (click_times, f"array_sort(transform({clicks}, x -> x.event_time))"),
        (conversions, _conversions(timeline, click_times, rules.lookback_seconds)),
        (first, f"try_element_at(filter({conversions}, w -> w.eligible), 1)"),
        (tagged, f"IF(size({touches}) = 1, NULL, {_tagged(touches, conversions)})"),
        ("impression_id_day", impression_id_day("impression_id")),
        ("campaign_id", f"{impression}.campaign_id"),
        ("creative_id", f"{impression}.creative_id"),
        ("user_id", f"{impression}.user_id"),
        ("geo_country", f"{impression}.geo_country"),
        ("platform", f"{impression}.platform"),
        ("is_clicked", f"size({clicks}) > 0"),
        ("is_converted", f"{first} IS NOT NULL"),
        ("impression_time", f"{impression}.event_time"),
        ("click_time", f"try_element_at({click_times}, -1)"),
        ("conversion_time", f"{first}.c.event_time"),
        ("cost", f"coalesce({impression}.bid_price, 0.0D)"),
        ("revenue", f"coalesce({first}.c.conversion_value, 0.0D)"),
        ("eligible", f"{impression} IS NOT NULL AND (size({conversions}) = 0 OR {first} IS NOT NULL)"),
        ("late_by_ms", late_by_ms),
        ("is_late", f"late_by_ms > {rules.late_threshold_seconds * 1000}"),
        ("revenue_out_of_window",
         f"aggregate(filter({conversions}, w -> {first} IS NULL OR w.c.event_id != {first}.c.event_id), "
         "0.0D, (acc, w) -> acc + w.c.conversion_value)"),
        ("last_updated_ts", "current_timestamp()"),
        ("converted_event_id", f"{first}.c.event_id"),
        ("touches", f"IF(size({touches}) = 1, array({single_touch}), {general_touches})"),
    ]


def derive_gold(frame, rules: AttributionRules, max_touches: int = ValidationLimits.max_touches,
                overflow: bool = False):
    """DataFrame(impression_id, touches: all bare copies) -> Gold rows (and with `overflow`,
    a column `overflow`: the copies beyond the row's cap, NULL when none). The live MERGE
    and the replay both derive Gold through this one function."""
    # One projection whose later columns refer to earlier ones (lateral column aliases):
    # analysed once, where a chain of withColumn calls re-analysed the growing plan per step.
    steps = [("_sorted", _by_copy("_input")), ("_distinct", _without_repeats("_sorted")),
             ("_all", _kept("_distinct", max_touches)), ("overflow", _overflow("_distinct", max_touches)),
             *derivation_steps("_all", rules)]
    return (frame.selectExpr("impression_id", "touches AS _input")
            .selectExpr("impression_id", *(f"{expression} AS {column}" for column, expression in steps))
            .select(*GOLD_COLUMNS, *(["overflow"] if overflow else [])))


def merge_source(batch, gold, rules: AttributionRules, max_touches: int = ValidationLimits.max_touches,
                 overflow: bool = False):
    """The batch's impressions with their touches so far (Gold) and new (batch), unioned
    and derived: exactly the rows the MERGE writes."""
    from pyspark.sql import functions as F

    # Most of a batch's impressions are new. The broadcast semi-join keeps only the Gold rows
    # the batch names before anything is shuffled, and their stored touches are stripped
    # after the join: a higher-order function runs on matched rows, not on every Gold row.
    named = gold.join(F.broadcast(batch.select("impression_id")), "impression_id", "left_semi")
    existing = named.select("impression_id", F.col("touches").alias("existing_touches"))
    combined = batch.join(existing, "impression_id", "left").select(
        "impression_id", F.expr(union_touches(strip_dispositions("existing_touches"), "touches")).alias("touches"))
    return derive_gold(combined, rules, max_touches, overflow)


def merge_sql(source_view: str, target: str = GOLD, days=None) -> str:
    """Upsert fully derived rows; the source has one row per impression_id. With `days` (the
    batch's impression-id days), the target-only condition prunes the scan to those
    partitions: a row's day is a function of its id, so no matching row lies elsewhere."""
    pruning = f" AND {days_predicate(days, 't.impression_id_day')}" if days is not None else ""
    return (
        f"MERGE INTO {target} t USING {source_view} s ON t.impression_id = s.impression_id{pruning} "
        "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )
