"""Attribution models from the command line (docs/design.md §8).

    python -m jobs.attribution_models score --journeys FILE --output FILE [--max-order K] [--half-life-hours H]

(The Spark job that scores Gold's journeys is jobs/attribution_models/job.py: make attribution-models.)

`score` needs no Spark and no stack: it reads journeys as JSON lines, one path each,
{"path": ["A", "B"], "conversions": 1, "nulls": 0, "value": 120.0, "ages_hours": [30, 2]}
(nulls, value and ages_hours optional), and writes one JSON object:
{"models": {MODEL: {CHANNEL: {"conversions": x, "value": y}}}, "removal_effects": {"markov_1": {...}},
"positions": {"shapley_ordered": {CHANNEL: [{"conversions": x, "value": y}, ...]}}, "fit": {"markov_1": {...}}}.
A bad line is reported with its number, exit code 2, and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path

from jobs.attribution_models.models import DEFAULT_HALF_LIFE_HOURS, DEFAULT_MAX_ORDER, Attribution, Journey, attribute

FIELDS = {"path", "conversions", "nulls", "value", "ages_hours"}


class BadInput(ValueError):
    pass


def _number(value, what: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | Fraction):
        raise ValueError(f"{what} must be a number, not {json.dumps(value, default=str)}")
    return Fraction(value)


def parse_journey(line: str) -> Journey:
    """One JSON line as a Journey; ValueError saying what is wrong."""
    try:
        record = json.loads(line, parse_float=Fraction)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    unknown = set(record) - FIELDS
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
    path = record.get("path")
    if not isinstance(path, list):
        raise ValueError("path must be a list of channel names")
    counts = {}
    for name in ("conversions", "nulls"):
        count = record.get(name, 0)
        if isinstance(count, Fraction) and count.denominator == 1:
            count = int(count)
        if isinstance(count, bool) or not isinstance(count, int):
            raise ValueError(f"{name} must be a whole number, not {json.dumps(count, default=str)}")
        counts[name] = count
    ages = record.get("ages_hours")
    if ages is not None:
        if not isinstance(ages, list):
            raise ValueError("ages_hours must be a list of numbers")
        ages = tuple(_number(age, "every age") for age in ages)
    return Journey(path=tuple(path), conversions=counts["conversions"], nulls=counts["nulls"],
                   value=_number(record.get("value", 0), "value"), ages_hours=ages)


def read_journeys(path: Path) -> list[Journey]:
    journeys, numbers, errors = [], [], []
    with open(path) as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                journeys.append(parse_journey(line))
                numbers.append(number)
            except ValueError as error:
                errors.append(f"{path}:{number}: {error}")
    if not errors and any(journey.ages_hours is not None for journey in journeys):
        errors = [f"{path}:{number}: ages_hours missing (time decay needs them on every converting journey)"
                  for number, journey in zip(numbers, journeys) if journey.conversions and journey.ages_hours is None]
    if errors:
        raise BadInput("\n".join(errors))
    return journeys


def as_json(attribution: Attribution) -> dict:
    def credit(c) -> dict:
        return {"conversions": float(c.conversions), "value": float(c.value)}

    return {
        "models": {model: {channel: credit(c) for channel, c in credits.items()}
                   for model, credits in attribution.credits.items()},
        "removal_effects": attribution.removal_effects,
        "positions": {"shapley_ordered": {channel: [credit(c) for c in by_position]
                                          for channel, by_position in attribution.positions.items()}},
        "fit": {model: {"log_loss": f.log_loss, "auc": f.auc, "states": f.states} for model, f in attribution.fit.items()},
    }


def score(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.attribution_models score",
                                     description="Score a journey file with every attribution model.")
    parser.add_argument("--journeys", type=Path, required=True, help="JSON lines, one path each")
    parser.add_argument("--output", type=Path, required=True, help="where the JSON result goes")
    parser.add_argument("--max-order", type=int, default=DEFAULT_MAX_ORDER, help="Markov orders 1..K (default %(default)s)")
    parser.add_argument("--half-life-hours", type=float, default=DEFAULT_HALF_LIFE_HOURS,
                        help="time decay's half-life (default %(default)s: 7 days)")
    args = parser.parse_args(argv)
    if args.max_order < 1:
        parser.error("--max-order must be >= 1")
    if not args.half_life_hours > 0:
        parser.error("--half-life-hours must be > 0")
    try:
        journeys = read_journeys(args.journeys)
    except OSError as error:
        print(f"error: cannot read {args.journeys}: {error.strerror}", file=sys.stderr)
        return 2
    except BadInput as error:
        print(f"error: bad journeys, nothing written:\n{error}", file=sys.stderr)
        return 2
    try:
        result = attribute(journeys, max_order=args.max_order, half_life_hours=args.half_life_hours)
    except ValueError as error:  # e.g. ages on some converting journeys but not on others
        print(f"error: {error}; nothing written", file=sys.stderr)
        return 2
    args.output.write_text(json.dumps(as_json(result), indent=1, sort_keys=True) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["score"]:
        return score(argv[1:])
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
