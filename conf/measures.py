"""The performance measures, written once. Every ratio is a ratio of sums (ROAS =
SUM(revenue) / SUM(cost)), never an average of per-day or per-row ratios, and NULL — not an
error — where its denominator is 0. The Trino views (dashboards/trino/performance_daily.sql),
the dashboard cards (Metabase, and any BI tool reading the views) and `make demo` all put
these expressions in their SQL, so they cannot disagree."""

from __future__ import annotations

# Additive measures: a column of the performance rollup and of the performance views alike.
SUMS = ("impressions", "clicks", "conversions", "cost", "revenue")

RATIOS = (
    ("roas", "sum(revenue) / nullif(sum(cost), 0)"),
    ("ctr", "CAST(sum(clicks) AS double) / nullif(sum(impressions), 0)"),
    ("cvr", "CAST(sum(conversions) AS double) / nullif(sum(clicks), 0)"),
)


# How a dashboard shows each measure: a label and a d3 number format (one place for every
# BI tool that reads the views).
PRESENTATION = {
    "impressions": ("Impressions", ",d"),
    "clicks": ("Clicks", ",d"),
    "conversions": ("Conversions", ",d"),
    "cost": ("Cost", "$,.2f"),
    "revenue": ("Revenue", "$,.2f"),
    "roas": ("ROAS", ",.2f"),
    "ctr": ("CTR", ".2%"),
    "cvr": ("CVR", ".2%"),
    "avg_attribution_lag_seconds": ("Avg attribution lag (s)", ",.0f"),
    "revenue_out_of_window": ("Revenue out of window", "$,.2f"),
}


def sums_sql(separator: str = ",\n  ") -> str:
    return separator.join(f"sum({name}) AS {name}" for name in SUMS)


def ratios_sql(separator: str = ",\n  ") -> str:
    return separator.join(f"{expression} AS {name}" for name, expression in RATIOS)


def view_measures() -> list[tuple[str, str]]:
    """(name, expression) of every measure over rows of the performance views: what a
    dashboard card selects, and what a BI tool's dataset declares as its metrics."""
    return [*((name, f"sum({name})") for name in SUMS), *RATIOS,
            ("avg_attribution_lag_seconds",
             "sum(avg_attribution_lag_seconds * conversions) / nullif(sum(conversions), 0)"),
            ("revenue_out_of_window", "sum(revenue_out_of_window)")]


def view_measures_sql(separator: str = ",\n  ") -> str:
    return separator.join(f"{expression} AS {name}" for name, expression in view_measures())
