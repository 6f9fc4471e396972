"""Attribution models over aggregated journeys (docs/design.md §8): rule-based, Markov chains
of order 1..k and Shapley values, each exact and deterministic. Pure functions, no Spark:
the job (jobs/attribution_models/job.py) builds and aggregates the journeys, the scoring
CLI (python -m jobs.attribution_models score) reads them from a file.

Arithmetic: credits of the rule-based and Shapley models and the Markov shares are
Fractions, so every model's credits sum to the totals exactly. Two quantities are not
rational and are floats: the time-decay weights 2^(-age/half-life) and the Markov
probabilities, solved by a direct sparse LU (SuperLU) of the absorbing chain's linear
system, never by simulation.
"""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

RULE_MODELS = ("last_touch", "first_touch", "linear", "position_based")
DEFAULT_MAX_ORDER = 3
DEFAULT_HALF_LIFE_HOURS = 7 * 24
FIT_FOLDS = 5

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"
Number = Fraction | float


@dataclass(frozen=True)
class Journey:
    """One distinct path and the users who took it: `conversions` of them converted (with
    revenue `value` in all), `nulls` did not. `ages_hours`, one per touch, is how long before
    the conversion each touch happened (time decay reads it)."""

    path: tuple[str, ...]
    conversions: int = 0
    nulls: int = 0
    value: Fraction = Fraction(0)
    ages_hours: tuple[Fraction, ...] | None = None

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("a journey needs at least one touch (an empty path)")
        if any(not isinstance(channel, str) or not channel for channel in self.path):
            raise ValueError("every touch of a path must be a non-empty channel name")
        for name in ("conversions", "nulls"):
            count = getattr(self, name)
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ValueError(f"{name} must be a whole number >= 0, not {count!r}")
        if self.value < 0:
            raise ValueError(f"value must be >= 0, not {self.value}")
        if self.value and not self.conversions:
            raise ValueError("a value without a conversion")
        if self.ages_hours is not None:
            if len(self.ages_hours) != len(self.path):
                raise ValueError(f"ages_hours has {len(self.ages_hours)} entries for a path of {len(self.path)}")
            if any(age < 0 for age in self.ages_hours):
                raise ValueError("ages_hours must be >= 0")

    @property
    def users(self) -> int:
        return self.conversions + self.nulls


@dataclass(frozen=True)
class Credit:
    conversions: Number = Fraction(0)
    value: Number = Fraction(0)

    def __add__(self, other: Credit) -> Credit:
        return Credit(self.conversions + other.conversions, self.value + other.value)


@dataclass(frozen=True)
class Fit:
    """How well an order's chain predicts held-out journeys' outcomes (FIT_FOLDS folds)."""

    log_loss: float  # mean negative log-likelihood per held-out journey
    auc: float | None  # None when the held-out journeys are all of one outcome
    states: int


@dataclass(frozen=True)
class Attribution:
    credits: dict[str, dict[str, Credit]]  # model -> channel -> credit
    removal_effects: dict[str, dict[str, float]]  # markov_k -> channel -> removal effect
    positions: dict[str, list[Credit]]  # ordered Shapley: channel -> credit per touch position (1, 2, ...)
    fit: dict[str, Fit] = field(default_factory=dict)  # markov_k -> fit


def totals(journeys: Iterable[Journey]) -> Credit:
    conversions, value = 0, Fraction(0)
    for journey in journeys:
        conversions += journey.conversions
        value += journey.value
    return Credit(Fraction(conversions), value)


# --- rule-based ---------------------------------------------------------------------------

def rule_weights(model: str, touches: int) -> list[Fraction]:
    """Each touch's share of one conversion under a rule-based model."""
    if model == "last_touch":
        return [Fraction(0)] * (touches - 1) + [Fraction(1)]
    if model == "first_touch":
        return [Fraction(1)] + [Fraction(0)] * (touches - 1)
    if model == "linear":
        return [Fraction(1, touches)] * touches
    if model == "position_based":
        if touches <= 2:
            return [Fraction(1, touches)] * touches
        middle = Fraction(1, 5) / (touches - 2)
        return [Fraction(2, 5)] + [middle] * (touches - 2) + [Fraction(2, 5)]
    raise ValueError(f"unknown rule-based model {model!r}")


def time_decay_weights(ages_hours: Sequence[Number], half_life_hours: float) -> list[float]:
    """2^(-age/half-life) per touch, normalised to sum 1. Measured from the youngest touch,
    so that old journeys do not underflow to a zero total."""
    youngest = min(ages_hours)
    raw = [2.0 ** (-float(age - youngest) / half_life_hours) for age in ages_hours]
    total = math.fsum(raw)
    return [weight / total for weight in raw]


def rule_based(journeys: Iterable[Journey], model: str) -> dict[str, Credit]:
    conversions: dict[str, Fraction] = defaultdict(Fraction)
    value: dict[str, Fraction] = defaultdict(Fraction)
    for journey in journeys:
        if not journey.conversions:
            continue
        for channel, weight in zip(journey.path, rule_weights(model, len(journey.path))):
            if weight:
                conversions[channel] += weight * journey.conversions
                value[channel] += weight * journey.value
    return {channel: Credit(conversions[channel], value[channel]) for channel in conversions}


def time_decay(journeys: Iterable[Journey], half_life_hours: float = DEFAULT_HALF_LIFE_HOURS) -> dict[str, Credit]:
    """Needs ages on every converting journey (ValueError otherwise)."""
    parts: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for journey in journeys:
        if not journey.conversions:
            continue
        if journey.ages_hours is None:
            raise ValueError(f"time decay needs ages_hours on every converting journey ({' > '.join(journey.path)})")
        for channel, weight in zip(journey.path, time_decay_weights(journey.ages_hours, half_life_hours)):
            parts[channel][0].append(weight * journey.conversions)
            parts[channel][1].append(weight * float(journey.value))
    return {channel: Credit(math.fsum(c), math.fsum(v)) for channel, (c, v) in parts.items()}


# --- Shapley (Zhao, Mahboobi & Bagheri 2018, arXiv:1804.05327) ---------------------------

def shapley(journeys: Iterable[Journey]) -> dict[str, Credit]:
    """The simplified Shapley value: with v(S) = the conversions of journeys whose channel set
    lies within S, v is a sum of unanimity games, one per channel set T, so each journey's
    conversions go in equal parts to its distinct channels. Exact for any number of channels."""
    conversions: dict[str, Fraction] = defaultdict(Fraction)
    value: dict[str, Fraction] = defaultdict(Fraction)
    for journey in journeys:
        if not journey.conversions:
            continue
        channels = set(journey.path)
        share = Fraction(1, len(channels))
        for channel in channels:
            conversions[channel] += share * journey.conversions
            value[channel] += share * journey.value
    return {channel: Credit(conversions[channel], value[channel]) for channel in conversions}


def shapley_ordered(journeys: Iterable[Journey]) -> dict[str, list[Credit]]:
    """The ordered Shapley value of the same paper: a channel's share of a journey is split
    equally over the positions at which the channel occurs, giving its credit per touch
    position; summed over positions it is the simplified value."""
    positions: dict[str, dict[int, Credit]] = defaultdict(dict)
    for journey in journeys:
        if not journey.conversions:
            continue
        distinct = len(set(journey.path))
        for index, channel in enumerate(journey.path):
            share = Fraction(1, distinct * journey.path.count(channel))
            credit = Credit(share * journey.conversions, share * journey.value)
            positions[channel][index] = positions[channel].get(index, Credit()) + credit
    longest = max((max(by_index) + 1 for by_index in positions.values()), default=0)
    return {channel: [by_index.get(i, Credit()) for i in range(longest)] for channel, by_index in positions.items()}


# --- Markov chains ------------------------------------------------------------------------

def markov_states(path: Sequence[str], order: int) -> list[tuple[str, ...]]:
    """The chain's states along a path: windows of `order` consecutive channels sliding one
    touch at a time (a shorter path is one state), consecutive repeats collapsed into one."""
    if len(path) <= order:
        windows = [tuple(path)]
    else:
        windows = [tuple(path[i:i + order]) for i in range(len(path) - order + 1)]
    states = [windows[0]]
    for window in windows[1:]:
        if window != states[-1]:
            states.append(window)
    return states


def transition_counts(journeys: Iterable[Journey], order: int) -> dict[tuple, dict[object, int]]:
    """from state -> to state -> users: each journey adds its users to every transition on
    its path, its conversions to the last state's -> conversion, its nulls to -> null."""
    counts: dict[tuple, dict[object, int]] = defaultdict(lambda: defaultdict(int))
    for journey in journeys:
        if not journey.users:
            continue
        previous: object = START
        for state in markov_states(journey.path, order):
            counts[previous][state] += journey.users
            previous = state
        if journey.conversions:
            counts[previous][CONVERSION] += journey.conversions
        if journey.nulls:
            counts[previous][NULL] += journey.nulls
    return counts


# Up to this many transient states the chain is solved by a direct sparse LU; beyond it by
# BiCGSTAB to a residual of ITERATIVE_RESIDUAL (the LU when it does not get there). An
# order-3 chain of the demo's journeys has ~10^5 states, where the LU's fill-in took minutes
# per removed channel; I - Q is an M-matrix (Q substochastic, every state absorbed), on which
# the iteration converges in tens of steps.
DIRECT_STATES = 2_000
ITERATIVE_RESIDUAL = 1e-12


class AbsorbingChain:
    """The chain's transient states (start and the channel windows) with their transition
    probabilities; P(conversion) solves (I - Q) p = r, Q among transient states and r into
    conversion. Every transient state reaches an absorbing one (each lies on a journey that
    ends), so I - Q is non-singular, with or without removed states."""

    def __init__(self, counts: dict[tuple, dict[object, int]]) -> None:
        import numpy as np
        from scipy.sparse import csr_matrix

        self.states = [START] + sorted(state for state in counts if state != START)
        self.index = {state: i for i, state in enumerate(self.states)}
        rows, cols, probabilities = [], [], []
        self.to_conversion = np.zeros(len(self.states))
        for state, targets in counts.items():
            out = sum(targets.values())
            i = self.index[state]
            for target, count in targets.items():
                if target == CONVERSION:
                    self.to_conversion[i] = count / out
                elif target != NULL:
                    rows.append(i)
                    cols.append(self.index[target])
                    probabilities.append(count / out)
        size = len(self.states)
        self.q = csr_matrix((probabilities, (rows, cols)), shape=(size, size))
        self.containing: dict[str, list[int]] = defaultdict(list)  # channel -> the states holding it
        for i, state in enumerate(self.states[1:], start=1):
            for channel in set(state):
                self.containing[channel].append(i)
        self._full: object = None  # the solution without removals: the iteration's start for the others

    def conversion_probability(self, removed: str | None = None) -> float:
        """P(start reaches conversion); with `removed`, every state that contains that
        channel sends its users to null."""
        import numpy as np

        keep = np.ones(len(self.states), dtype=bool)
        if removed is not None:
            keep[self.containing.get(removed, [])] = False
        kept = np.flatnonzero(keep)  # start (0) is always kept and stays first
        r = self.to_conversion[kept]
        if not r.any():
            return 0.0
        guess = None if self._full is None else self._full[kept]
        solution = _absorption(self.q[kept][:, kept], r, guess)
        if removed is None:
            self._full = solution
        return float(min(1.0, max(0.0, solution[0])))


def _absorption(q, r, guess=None):
    """Solves (I - q) p = r: a direct LU for small chains, BiCGSTAB for large ones (DIRECT_STATES)."""
    import numpy as np
    from scipy.sparse import identity
    from scipy.sparse.linalg import bicgstab, splu

    a = identity(q.shape[0], format="csr") - q
    if q.shape[0] > DIRECT_STATES:
        solution, info = bicgstab(a, r, x0=guess, rtol=0.0, atol=ITERATIVE_RESIDUAL, maxiter=10_000)
        if info == 0 and np.max(np.abs(a @ solution - r)) <= ITERATIVE_RESIDUAL:
            return solution
    return splu(a.tocsc()).solve(r)


def removal_effects(journeys: Sequence[Journey], order: int, channels: Iterable[str]) -> dict[str, float]:
    """1 - P(conversion without the channel) / P(conversion), per channel; 0 for every
    channel when nothing converts."""
    chain = AbsorbingChain(transition_counts(journeys, order))
    base = chain.conversion_probability()
    effects = {}
    on_paths = {channel for journey in journeys if journey.users for channel in journey.path}
    for channel in channels:
        if base <= 0.0 or channel not in on_paths:
            effects[channel] = 0.0
        else:
            effects[channel] = max(0.0, 1.0 - chain.conversion_probability(channel) / base)
    return effects


def markov(journeys: Sequence[Journey], order: int, channels: Iterable[str]) -> tuple[dict[str, Credit], dict[str, float]]:
    """Credits: the removal effects normalised to the total conversions; revenue in the same
    shares of the total revenue."""
    effects = removal_effects(journeys, order, channels)
    total = totals(journeys)
    exact = {channel: Fraction(effect) for channel, effect in effects.items()}
    denominator = sum(exact.values(), Fraction(0))
    if not denominator:
        return {channel: Credit() for channel in effects}, effects
    return ({channel: Credit(share / denominator * total.conversions, share / denominator * total.value)
             for channel, share in exact.items()}, effects)


def _folds(journey: Journey) -> list[tuple[int, int]]:
    """(conversions, nulls) of the journey's users in each fold: users spread as evenly as
    counts allow, the remainders placed by a hash of the path, so the split is repeatable."""
    offset = zlib.crc32("\x1f".join(journey.path).encode())
    split = []
    for fold in range(FIT_FOLDS):
        rank = (fold + offset) % FIT_FOLDS
        split.append((journey.conversions // FIT_FOLDS + (rank < journey.conversions % FIT_FOLDS),
                      journey.nulls // FIT_FOLDS + (rank < journey.nulls % FIT_FOLDS)))
    return split


def fit(journeys: Sequence[Journey], order: int) -> Fit:
    """Held-out fit: per fold, the chain of the other folds predicts each held-out journey's
    outcome from the state it ended in, P(conversion | the chain stops there) (smoothed
    towards the training conversion rate for states the training folds end in rarely)."""
    split = [_folds(journey) for journey in journeys]
    last_states = [markov_states(journey.path, order)[-1] for journey in journeys]
    loss, users = 0.0, 0
    scored: list[tuple[float, int, int]] = []
    for fold in range(FIT_FOLDS):
        ends: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        converted = stopped = 0
        for last, parts in zip(last_states, split):
            c = sum(part[0] for i, part in enumerate(parts) if i != fold)
            n = sum(part[1] for i, part in enumerate(parts) if i != fold)
            ends[last][0] += c
            ends[last][1] += n
            converted += c
            stopped += c + n
        prior = (converted + 0.5) / (stopped + 1.0)
        for last, parts in zip(last_states, split):
            c, n = parts[fold]
            if not c + n:
                continue
            end_conversions, end_nulls = ends.get(last, (0, 0))
            p = (end_conversions + prior) / (end_conversions + end_nulls + 1.0)
            p = min(max(p, 1e-12), 1.0 - 1e-12)
            loss -= c * math.log(p) + n * math.log(1.0 - p)
            users += c + n
            scored.append((p, c, n))
    states = len(transition_counts(journeys, order)) - 1
    return Fit(log_loss=loss / users if users else 0.0, auc=_auc(scored), states=states)


def _auc(scored: list[tuple[float, int, int]]) -> float | None:
    """P(a converting journey scores above a non-converting one), ties counting one half."""
    positives = sum(c for _, c, _ in scored)
    negatives = sum(n for _, _, n in scored)
    if not positives or not negatives:
        return None
    by_score: dict[float, list[int]] = defaultdict(lambda: [0, 0])
    for p, c, n in scored:
        by_score[p][0] += c
        by_score[p][1] += n
    below, wins = 0, 0.0
    for p in sorted(by_score):
        c, n = by_score[p]
        wins += c * (below + n / 2)
        below += n
    return wins / (positives * negatives)


# --- all together -------------------------------------------------------------------------

def attribute(journeys: Iterable[Journey], channels: Iterable[str] = (), max_order: int = DEFAULT_MAX_ORDER,
              half_life_hours: float = DEFAULT_HALF_LIFE_HOURS) -> Attribution:
    """Every model over the same journeys. Each model credits every channel (0 for a channel
    on no converting journey); time decay is left out when no journey carries ages."""
    if max_order < 1:
        raise ValueError(f"max_order must be >= 1, not {max_order}")
    if half_life_hours <= 0:
        raise ValueError(f"half_life_hours must be > 0, not {half_life_hours}")
    journeys = list(journeys)
    universe = sorted(set(channels) | {channel for journey in journeys for channel in journey.path})

    def complete(credits: dict[str, Credit]) -> dict[str, Credit]:
        return {channel: credits.get(channel, Credit()) for channel in universe}

    credits = {model: complete(rule_based(journeys, model)) for model in RULE_MODELS}
    if any(journey.ages_hours is not None for journey in journeys):
        credits["time_decay"] = complete(time_decay(journeys, half_life_hours))
    effects, fits = {}, {}
    for order in range(1, max_order + 1):
        name = f"markov_{order}"
        credits[name], effects[name] = markov(journeys, order, universe)
        fits[name] = fit(journeys, order)
    credits["shapley"] = complete(shapley(journeys))
    positions = shapley_ordered(journeys)
    credits["shapley_ordered"] = complete({channel: sum(by_position, Credit()) for channel, by_position in positions.items()})
    return Attribution(credits=credits, removal_effects=effects, positions=positions, fit=fits)
