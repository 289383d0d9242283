"""Which model a city publishes: the candidate only when its lift holds, else the best baseline.

The candidate qualifies when, on the promotion metric (PR AUC), its lift over the best
baseline (the baseline with the highest mean across folds) holds across folds: the lower end
of the two-sided LIFT_CONFIDENCE t interval of the per-fold lifts is above zero; and its mean
PR AUC is at least `chance_factor` times chance (the test windows' positive share). A
qualifying candidate is then published unless the current learned champion, scored on the
newest fold's test rows, beats it by more than `champion_tolerance`. When the candidate does
not qualify, the best baseline is published. Every decision carries its figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from citypulse.model.backtest import Backtest
from citypulse.model.config import BASELINE_KINDS, LIFT_CONFIDENCE, RetrainConfig

HEADLINE = "pr_auc"


@dataclass(frozen=True)
class Verdict:
    """Whether the candidate qualifies over the best baseline, why, and the figures."""

    qualifies: bool
    best_baseline: str
    reason: str
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Decision:
    """What the run publishes: `published` is a model kind of this run, or None to keep the
    current champion; `reason` is recorded on the candidate's row (and the published one)."""

    published: str | None
    reason: str
    evidence: dict[str, Any]

    @property
    def promotes_candidate(self) -> bool:
        return self.published is not None and self.published not in BASELINE_KINDS


def best_baseline(backtest: Backtest) -> str:
    """The baseline with the highest mean PR AUC across folds (first listed on a tie)."""
    means: dict[str, float] = {}
    for kind in BASELINE_KINDS:
        value = backtest.summary(kind).get(HEADLINE)
        means[kind] = -math.inf if value is None else float(value)
    return max(BASELINE_KINDS, key=means.__getitem__)


def lift_interval(lifts: list[float]) -> tuple[float, float]:
    """The two-sided LIFT_CONFIDENCE t interval of the mean of the per-fold lifts."""
    from scipy.stats import t

    n = len(lifts)
    mean = float(np.mean(lifts))
    half = float(t.ppf(0.5 + LIFT_CONFIDENCE / 2, n - 1)) * float(np.std(lifts, ddof=1))
    return mean - half / math.sqrt(n), mean + half / math.sqrt(n)


def judge(backtest: Backtest, config: RetrainConfig) -> Verdict:
    """Does the candidate's lift over the best baseline hold, and does it beat chance?"""
    candidate, best = config.model_kind, best_baseline(backtest)
    ours, theirs = backtest.per_fold(candidate, HEADLINE), backtest.per_fold(best, HEADLINE)
    chance = backtest.summary(candidate).get("prevalence")
    evidence: dict[str, Any] = {
        "metric": HEADLINE,
        "candidate": candidate,
        "best_baseline": best,
        "candidate_per_fold": ours,
        "baseline_per_fold": theirs,
        "chance": chance,
        "chance_factor": config.chance_factor,
        "confidence": LIFT_CONFIDENCE,
    }
    if None in ours or None in theirs or not chance:
        return Verdict(False, best, "a fold has no PR AUC (no hotspot in its test)", evidence)
    lifts = [float(a) - float(b) for a, b in zip(ours, theirs, strict=True)]  # type: ignore[arg-type]
    mean_ours = float(np.mean(ours))  # type: ignore[arg-type]
    evidence.update(
        lift_per_fold=[round(x, 6) for x in lifts],
        lift_mean=round(mean(lifts), 6),
        times_chance=round(mean_ours / chance, 6),
    )
    if len(lifts) < 2:
        return Verdict(False, best, "one fold cannot show that a lift holds (folds >= 2)", evidence)
    low, high = lift_interval(lifts)
    evidence.update(lift_low=round(low, 6), lift_high=round(high, 6))
    figures = (
        f"PR AUC lift over {best} {mean(lifts):+.3g} across {len(lifts)} folds "
        f"({LIFT_CONFIDENCE:.0%} interval {low:+.3g} .. {high:+.3g}); PR AUC {mean_ours:.3g} "
        f"is {mean_ours / chance:.3g} x chance ({chance:.3g}; needed {config.chance_factor:.3g} x)"
    )
    if low <= 0:
        return Verdict(False, best, f"the lift does not hold: {figures}", evidence)
    if mean_ours < config.chance_factor * chance:
        return Verdict(False, best, f"too close to chance: {figures}", evidence)
    return Verdict(True, best, f"the lift holds: {figures}", evidence)


def mean(values: list[float]) -> float:
    return float(np.mean(values))


def decide(
    verdict: Verdict,
    candidate_score: float | None,
    champion_score: float | None,
    config: RetrainConfig,
) -> Decision:
    """Publish the qualifying candidate unless the champion is better by more than the
    tolerance (both on the newest fold's test rows); otherwise the best baseline."""
    candidate, evidence = config.model_kind, dict(verdict.evidence)
    if not verdict.qualifies:
        return Decision(
            verdict.best_baseline,
            f"{candidate} refused, {verdict.reason}; the best baseline "
            f"{verdict.best_baseline} is published",
            evidence,
        )
    evidence.update(candidate_last_fold=candidate_score, champion_last_fold=champion_score)
    if champion_score is None or candidate_score is None:
        return Decision(candidate, f"{candidate} published, {verdict.reason}", evidence)
    if candidate_score < champion_score - config.champion_tolerance:
        return Decision(
            None,
            f"{candidate} refused: {verdict.reason}, but its PR AUC {candidate_score:.3g} on the "
            f"newest fold is worse than the champion's {champion_score:.3g} by more than "
            f"{config.champion_tolerance:.3g}; the champion stays",
            evidence,
        )
    return Decision(
        candidate,
        f"{candidate} published, {verdict.reason}; within {config.champion_tolerance:.3g} of the "
        f"champion's {champion_score:.3g} on the newest fold",
        evidence,
    )
