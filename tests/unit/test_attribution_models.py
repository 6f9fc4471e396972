"""The attribution models (jobs/attribution_models/models.py, docs/design.md §8): published
worked examples, the definitions' own small cases, degenerate inputs, properties, and the
scoring CLI's contract."""

from __future__ import annotations

import itertools
import json
import math
import random
import subprocess
import sys
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conf.settings import REPO_ROOT
from jobs.attribution_models.models import (CONVERSION, NULL, START, AbsorbingChain, Journey, attribute,
                                            markov_states, shapley, shapley_ordered, totals, transition_counts)

F = Fraction


def conversions(attribution, model) -> dict[str, Fraction]:
    return {channel: credit.conversions for channel, credit in attribution.credits[model].items()}


# --- published examples -------------------------------------------------------------------

def test_puzyrov_2019_removal_effects_and_credits():
    """S. Puzyrov, "Markov Chain Attribution – Simple Explanation Of Removal Effect" (2019,
    serhiipuzyrov.com): Google Ads alone 2 conversions, Mailing 1, Google Ads > Mailing 1, and
    Google Ads once without a conversion. P(conversion) 0.8; removal effects 0.75 and 0.5;
    credits 2.4 and 1.6 of the 4 conversions."""
    journeys = [Journey(("google ads",), conversions=2, nulls=1), Journey(("mailing",), conversions=1),
                Journey(("google ads", "mailing"), conversions=1)]
    chain = AbsorbingChain(transition_counts(journeys, 1))
    assert chain.conversion_probability() == pytest.approx(0.8, abs=1e-12)
    result = attribute(journeys, max_order=1)
    assert result.removal_effects["markov_1"] == pytest.approx({"google ads": 0.75, "mailing": 0.5}, abs=1e-12)
    assert {c: float(v) for c, v in conversions(result, "markov_1").items()} == pytest.approx(
        {"google ads": 2.4, "mailing": 1.6}, abs=1e-12)


def test_bryl_2016_three_channel_example():
    """S. Bryl, "Marketing Multi-Channel Attribution model with R (part 1: Markov chains
    concept)" (analyzecore.com, 2016): C1 > C2 > C3 converts, C1 and C2 > C3 do not.
    P(conversion) 1/3; removal effects C1 0.5, C2 1, C3 1; weights 0.2, 0.4, 0.4."""
    journeys = [Journey(("C1", "C2", "C3"), conversions=1), Journey(("C1",), nulls=1), Journey(("C2", "C3"), nulls=1)]
    assert AbsorbingChain(transition_counts(journeys, 1)).conversion_probability() == pytest.approx(1 / 3, abs=1e-12)
    result = attribute(journeys, max_order=1)
    assert result.removal_effects["markov_1"] == pytest.approx({"C1": 0.5, "C2": 1.0, "C3": 1.0}, abs=1e-12)
    assert {c: float(v) for c, v in conversions(result, "markov_1").items()} == pytest.approx(
        {"C1": 0.2, "C2": 0.4, "C3": 0.4}, abs=1e-12)


def test_zhao_2018_simplified_and_ordered_shapley_by_hand():
    """Zhao, Mahboobi & Bagheri (arXiv:1804.05327), the simplified value: a journey's
    conversions in equal parts to its distinct channels; the ordered value splits a channel's
    part over the positions where it occurs."""
    journeys = [Journey(("A", "B", "A"), conversions=6, value=F(60)), Journey(("B",), conversions=1, value=F(5)),
                Journey(("C", "A"), nulls=4)]
    simplified = shapley(journeys)
    assert {c: v.conversions for c, v in simplified.items()} == {"A": 3, "B": 4}
    assert {c: v.value for c, v in simplified.items()} == {"A": 30, "B": 35}
    ordered = shapley_ordered(journeys)
    assert [c.conversions for c in ordered["A"]] == [F(3, 2), 0, F(3, 2)]
    assert [c.conversions for c in ordered["B"]] == [1, 3, 0]


# --- the definitions' small cases ---------------------------------------------------------

def test_rule_based_models_on_one_journey():
    journeys = [Journey(("A", "B", "C", "D", "A"), conversions=1, value=F(100))]
    result = attribute(journeys, max_order=1)
    assert conversions(result, "last_touch") == {"A": 1, "B": 0, "C": 0, "D": 0}
    assert conversions(result, "first_touch") == {"A": 1, "B": 0, "C": 0, "D": 0}
    assert conversions(result, "linear") == {"A": F(2, 5), "B": F(1, 5), "C": F(1, 5), "D": F(1, 5)}  # A twice
    assert conversions(result, "position_based") == {"A": F(4, 5), "B": F(1, 15), "C": F(1, 15), "D": F(1, 15)}
    two = attribute([Journey(("A", "B"), conversions=1)], max_order=1)
    assert conversions(two, "position_based") == {"A": F(1, 2), "B": F(1, 2)}


def test_time_decay_halves_per_half_life():
    journeys = [Journey(("A", "B", "C"), conversions=1, value=F(70), ages_hours=(F(48), F(24), F(0)))]
    result = attribute(journeys, max_order=1, half_life_hours=24)
    credit = result.credits["time_decay"]
    assert [credit[c].conversions for c in "ABC"] == pytest.approx([1 / 7, 2 / 7, 4 / 7], abs=1e-15)
    assert [credit[c].value for c in "ABC"] == pytest.approx([10, 20, 40], abs=1e-12)
    assert "time_decay" not in attribute([Journey(("A",), conversions=1)]).credits  # no ages: left out


def test_higher_order_states_are_sliding_windows_with_repeats_collapsed():
    assert markov_states(("A", "B", "C", "D"), 2) == [("A", "B"), ("B", "C"), ("C", "D")]
    assert markov_states(("A", "B"), 3) == [("A", "B")]  # shorter than the order: one state
    assert markov_states(("A", "A", "B"), 1) == [("A",), ("B",)]
    assert markov_states(("A", "A", "A", "B"), 2) == [("A", "A"), ("A", "B")]


def test_a_cycle_is_solved_exactly():
    """A > B > A > conversion and A > B > null: a cycle, solved as a linear system (start -> A 1; A -> B 2/3, A -> conversion 1/3; B -> A 1/2, B -> null 1/2):
    p_A = 1/3 + 2/3 * 1/2 * p_A, so p_A = 1/2."""
    journeys = [Journey(("A", "B", "A"), conversions=1), Journey(("A", "B"), nulls=1)]
    counts = transition_counts(journeys, 1)
    assert counts[START] == {("A",): 2} and counts[("A",)] == {("B",): 2, CONVERSION: 1}
    assert counts[("B",)] == {("A",): 1, NULL: 1}
    assert AbsorbingChain(counts).conversion_probability() == pytest.approx(0.5, abs=1e-12)


# --- degenerate inputs --------------------------------------------------------------------

def test_no_conversion_at_all_credits_nothing():
    result = attribute([Journey(("A", "B"), nulls=3), Journey(("B",), nulls=1)], channels=["A", "B", "Z"])
    for model, credits in result.credits.items():
        assert all(c.conversions == 0 and c.value == 0 for c in credits.values()), model
    assert result.removal_effects["markov_1"] == {"A": 0.0, "B": 0.0, "Z": 0.0}


def test_a_single_channel_gets_everything_and_an_absent_channel_nothing():
    result = attribute([Journey(("A", "A"), conversions=2, nulls=5, value=F(9))], channels=["A", "Z"])
    for model, credits in result.credits.items():
        assert float(credits["A"].conversions) == pytest.approx(2) and float(credits["A"].value) == pytest.approx(9), model
        assert credits["Z"].conversions == 0 and credits["Z"].value == 0, model
    assert result.removal_effects["markov_2"]["A"] == 1.0


def test_every_journey_converting():
    result = attribute([Journey(("A",), conversions=3), Journey(("A", "B"), conversions=1)], max_order=2)
    assert sum(conversions(result, "markov_1").values()) == 4
    assert result.fit["markov_1"].auc is None  # one outcome only: no ranking to score
    assert attribute([]).credits["shapley"] == {}


# --- properties ---------------------------------------------------------------------------

CHANNELS = "ABCDEFGH"
journey_sets = st.lists(
    st.builds(lambda path, c, n, v: Journey(tuple(path), c, n, F(v) * c if c else F(0),
                                            tuple(F(a) for a in range(len(path), 0, -1))),
              st.lists(st.sampled_from(CHANNELS[:5]), min_size=1, max_size=6), st.integers(0, 5), st.integers(0, 5),
              st.integers(0, 50)),
    min_size=1, max_size=8)


def approx_total(value, expected) -> bool:
    return value == expected if isinstance(value, Fraction) else math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=60, deadline=None)
@given(journey_sets)
def test_every_models_credits_sum_to_the_totals(journeys):
    total = totals(journeys)
    result = attribute(journeys, max_order=3)
    for model, credits in result.credits.items():
        summed_conversions = sum(c.conversions for c in credits.values())
        summed_value = sum(c.value for c in credits.values())
        assert approx_total(summed_conversions, total.conversions), model
        assert approx_total(summed_value, total.value), model
        assert all(c.conversions >= 0 and c.value >= 0 for c in credits.values()), model


@settings(max_examples=40, deadline=None)
@given(journey_sets, st.permutations(CHANNELS[:5]))
def test_renaming_channels_permutes_the_credits(journeys, names):
    rename = dict(zip(CHANNELS[:5], names))
    renamed = [Journey(tuple(rename[c] for c in j.path), j.conversions, j.nulls, j.value, j.ages_hours) for j in journeys]
    before, after = attribute(journeys), attribute(renamed)
    for model in before.credits:
        for channel, credit in before.credits[model].items():
            moved = after.credits[model][rename[channel]]
            assert float(moved.conversions) == pytest.approx(float(credit.conversions), abs=1e-9), model


@settings(max_examples=40, deadline=None)
@given(journey_sets)
def test_duplicating_every_journey_leaves_the_shares_unchanged(journeys):
    doubled = journeys + journeys
    once, twice = attribute(journeys), attribute(doubled)
    for model in once.credits:
        for channel, credit in once.credits[model].items():
            assert float(twice.credits[model][channel].conversions) == pytest.approx(2 * float(credit.conversions),
                                                                                     abs=1e-9), model


@settings(max_examples=40, deadline=None)
@given(journey_sets)
def test_order_one_is_unchanged_by_collapsing_consecutive_repeats(journeys):
    collapsed = [Journey(tuple(c for i, c in enumerate(j.path) if i == 0 or c != j.path[i - 1]), j.conversions,
                         j.nulls, j.value) for j in journeys]
    assert attribute(journeys, max_order=1).removal_effects["markov_1"] == pytest.approx(
        attribute(collapsed, max_order=1).removal_effects["markov_1"], abs=1e-12)


def brute_force_shapley(journeys) -> dict[str, Fraction]:
    players = sorted({c for j in journeys for c in j.path})
    n = len(players)

    def worth(coalition: frozenset) -> int:
        return sum(j.conversions for j in journeys if set(j.path) <= coalition)

    values = {}
    for player in players:
        others = [p for p in players if p != player]
        total = Fraction(0)
        for size in range(n):
            weight = Fraction(math.factorial(size) * math.factorial(n - size - 1), math.factorial(n))
            for subset in itertools.combinations(others, size):
                coalition = frozenset(subset)
                total += weight * (worth(coalition | {player}) - worth(coalition))
        values[player] = total
    return values


@settings(max_examples=30, deadline=None)
@given(st.lists(st.builds(lambda path, c: Journey(tuple(path), c),
                          st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=5), st.integers(0, 4)),
                min_size=1, max_size=10))
def test_shapley_equals_the_brute_force_over_every_coalition(journeys):
    closed_form = {c: credit.conversions for c, credit in shapley(journeys).items()}
    brute = {c: v for c, v in brute_force_shapley(journeys).items() if v}
    assert {c: v for c, v in closed_form.items() if v} == brute


def test_the_exact_solve_equals_a_long_seeded_simulation():
    """Random walks over the same transition counts, 200,000 of them: the exact probability
    lies within four standard errors of the simulated one, with and without a channel."""
    journeys = [Journey(("A", "B", "A", "C"), conversions=5, nulls=20), Journey(("B", "C"), conversions=3, nulls=9),
                Journey(("C", "A", "B"), conversions=2, nulls=30), Journey(("A",), conversions=1, nulls=10),
                Journey(("B", "A", "B"), nulls=7)]
    counts = transition_counts(journeys, 1)
    chain = AbsorbingChain(counts)
    rng = random.Random(42)
    table = {state: (list(targets), list(targets.values())) for state, targets in counts.items()}
    walks = 200_000
    for removed in (None, "B"):
        converted = 0
        for _ in range(walks):
            state = START
            while state not in (CONVERSION, NULL):
                targets, weights = table[state]
                state = rng.choices(targets, weights)[0]
                if removed is not None and state not in (CONVERSION, NULL) and removed in state:
                    state = NULL
            converted += state == CONVERSION
        simulated = converted / walks
        error = math.sqrt(simulated * (1 - simulated) / walks)
        assert abs(chain.conversion_probability(removed) - simulated) < 4 * error, removed


def test_a_large_chain_iterated_equals_its_direct_solve(monkeypatch):
    """Past DIRECT_STATES the chain is solved iteratively: on an order-3 chain of ~3,000 states
    (long seeded journeys over 15 channels, cycles everywhere) every removal's probability
    equals the direct LU's to 1e-10, and the iteration path is the one taken."""
    import scipy.sparse.linalg as linalg

    from jobs.attribution_models import models

    rng = random.Random(3)
    channels = [f"c{i}" for i in range(15)]
    journeys = [Journey(tuple(rng.choice(channels) for _ in range(rng.randint(1, 12))),
                        conversions=rng.randint(0, 3), nulls=rng.randint(0, 20)) for _ in range(2_000)]
    journeys = [journey for journey in journeys if journey.users]
    counts = transition_counts(journeys, 3)
    assert len(counts) > models.DIRECT_STATES
    solved, lu_calls = [], []
    real_splu = linalg.splu
    for limit in (models.DIRECT_STATES, 10**9):
        monkeypatch.setattr(models, "DIRECT_STATES", limit)
        calls = []
        monkeypatch.setattr(linalg, "splu", lambda a, calls=calls: calls.append(a) or real_splu(a))
        chain = AbsorbingChain(counts)
        solved.append([chain.conversion_probability(removed) for removed in (None, *channels[:4])])
        lu_calls.append(len(calls))
    iterated, direct = solved
    assert lu_calls == [0, 5]  # the iteration converged every time
    assert iterated == pytest.approx(direct, abs=1e-10)
    assert 0 < direct[0] < 1 and all(p < direct[0] for p in direct[1:])


# --- the scoring CLI ----------------------------------------------------------------------

def score(tmp_path, lines: list[str], *extra: str) -> subprocess.CompletedProcess:
    journeys, output = tmp_path / "journeys.jsonl", tmp_path / "out.json"
    journeys.write_text("\n".join(lines) + "\n")
    return subprocess.run([sys.executable, "-m", "jobs.attribution_models", "score", "--journeys", str(journeys),
                           "--output", str(output), *extra], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def test_the_cli_scores_a_file_with_every_model(tmp_path):
    done = score(tmp_path, ['{"path": ["google ads"], "conversions": 2, "nulls": 1, "value": 50, "ages_hours": [3]}',
                            '{"path": ["mailing"], "conversions": 1, "value": 10.5, "ages_hours": [1]}',
                            '{"path": ["google ads", "mailing"], "conversions": 1, "value": 20, "ages_hours": [30, 2]}'],
                 "--max-order", "2")
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out.json").read_text())
    assert sorted(result["models"]) == sorted(["last_touch", "first_touch", "linear", "position_based", "time_decay",
                                               "markov_1", "markov_2", "shapley", "shapley_ordered"])
    assert result["models"]["markov_1"]["google ads"]["conversions"] == pytest.approx(2.4)
    assert result["models"]["markov_1"]["google ads"]["value"] == pytest.approx(80.5 * 0.6)
    assert result["removal_effects"]["markov_1"]["mailing"] == pytest.approx(0.5)
    assert set(result["fit"]) == {"markov_1", "markov_2"}


def test_the_cli_reports_every_bad_line_and_writes_nothing(tmp_path):
    done = score(tmp_path, ['{"path": [], "conversions": 1}', "not json", '{"path": ["A"], "conversions": -1}',
                            '{"path": ["A", "B"], "conversions": 1, "ages_hours": [1]}',
                            '{"path": ["A"], "conversions": 1.5}'])
    assert done.returncode == 2
    for number, text in ((1, "empty path"), (2, "not JSON"), (3, "conversions must be a whole number >= 0"),
                         (4, "ages_hours has 1 entries for a path of 2"), (5, "conversions must be a whole number")):
        assert f"journeys.jsonl:{number}: " in done.stderr and text in done.stderr, (number, done.stderr)
    assert not (tmp_path / "out.json").exists()
