"""Agreement between independent labelers: the statistics and the rule that settles an example.

Ratings are (item, labeler, label) triples with labels as class indices; an item may have any
number of ratings (two or more count towards agreement). Krippendorff's alpha (nominal) handles
items with different numbers of ratings; Fleiss' kappa is reported for the items with the most
common number of ratings; Cohen's kappa for every pair of labelers over the items both rated.
Per class: specific agreement, the share of rating pairs involving the class in which both chose
it. Per labeler: how often their label matches the item's agreed label.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np


@dataclass(frozen=True)
class Verdict:
    """What the ratings of one item settle: the agreed label, or a disagreement for review."""

    item: str
    label: int | None  # the agreed label (None: disagreement)
    votes: dict[str, int]  # labeler -> label


@dataclass
class Agreement:
    items: int  # items with two or more ratings
    alpha: float | None  # Krippendorff's alpha (nominal); None when undefined (fewer than 2 pairable ratings, or one class only)
    fleiss_kappa: float | None
    fleiss_raters: int | None  # the number of ratings per item Fleiss' kappa was computed for
    cohen: dict[tuple[str, str], float | None] = field(default_factory=dict)  # (labeler a, labeler b) -> kappa
    per_class: dict[int, float | None] = field(default_factory=dict)  # class -> specific agreement
    per_labeler: dict[str, float | None] = field(default_factory=dict)  # labeler -> share agreeing with the verdict


def _by_item(ratings: Iterable[tuple[str, str, int]]) -> dict[str, dict[str, int]]:
    items: dict[str, dict[str, int]] = defaultdict(dict)
    for item, labeler, label in ratings:
        items[item][labeler] = int(label)  # a labeler's later rating of the same item replaces the earlier
    return items


def settle(ratings: Iterable[tuple[str, str, int]], required: int, min_agree: int | None = None) -> list[Verdict]:
    """Per item with at least `required` ratings: the label at least `min_agree` labelers chose (default: a strict majority), else a disagreement."""
    verdicts = []
    for item, votes in _by_item(ratings).items():
        if len(votes) < required:
            continue
        need = min_agree if min_agree is not None else len(votes) // 2 + 1
        (label, count), *rest = Counter(votes.values()).most_common()
        tied = bool(rest) and rest[0][1] == count
        verdicts.append(Verdict(item, label if count >= need and not tied else None, dict(votes)))
    return verdicts


def krippendorff_alpha(items: dict[str, dict[str, int]], k: int) -> float | None:
    """Nominal alpha from the coincidence matrix: 1 - observed / expected disagreement."""
    o = np.zeros((k, k))
    for votes in items.values():
        labels = list(votes.values())
        m = len(labels)
        if m < 2:
            continue
        counts = np.bincount(labels, minlength=k).astype(float)
        o += (np.outer(counts, counts) - np.diag(counts)) / (m - 1)
    total = o.sum()
    if total <= 1:
        return None
    marginals = o.sum(axis=1)
    observed = total - np.trace(o)
    expected = (total * total - (marginals**2).sum()) / (total - 1)
    if expected <= 0:
        return None
    return float(1.0 - observed / expected)


def fleiss_kappa(items: dict[str, dict[str, int]], k: int) -> tuple[float | None, int | None]:
    """Fleiss' kappa over the items with the most common number (>= 2) of ratings."""
    sizes = Counter(len(v) for v in items.values() if len(v) >= 2)
    if not sizes:
        return None, None
    raters = max(sizes.items(), key=lambda kv: (kv[1], kv[0]))[0]
    table = np.array([np.bincount(list(v.values()), minlength=k) for v in items.values() if len(v) == raters], dtype=float)
    n = len(table)
    p_item = ((table * (table - 1)).sum(axis=1)) / (raters * (raters - 1))
    p_class = table.sum(axis=0) / (n * raters)
    observed, expected = p_item.mean(), (p_class**2).sum()
    if expected >= 1:
        return None, raters
    return float((observed - expected) / (1 - expected)), raters


def cohen_kappa(a: list[int], b: list[int], k: int) -> float | None:
    """Cohen's kappa of two labelers over the same items (None when chance agreement is total)."""
    if not a:
        return None
    table = np.zeros((k, k))
    np.add.at(table, (np.asarray(a), np.asarray(b)), 1)
    n = table.sum()
    observed = np.trace(table) / n
    expected = (table.sum(axis=1) @ table.sum(axis=0)) / (n * n)
    if expected >= 1:
        return None
    return float((observed - expected) / (1 - expected))


def agreement(ratings: Iterable[tuple[str, str, int]], k: int, verdicts: list[Verdict] | None = None) -> Agreement:
    """Every agreement statistic over these ratings (k: the number of classes)."""
    items = {item: votes for item, votes in _by_item(ratings).items() if len(votes) >= 2}
    fleiss, raters = fleiss_kappa(items, k)
    result = Agreement(items=len(items), alpha=krippendorff_alpha(items, k), fleiss_kappa=fleiss, fleiss_raters=raters)
    labelers = sorted({labeler for votes in items.values() for labeler in votes})
    for x, y in combinations(labelers, 2):
        both = [(votes[x], votes[y]) for votes in items.values() if x in votes and y in votes]
        result.cohen[(x, y)] = cohen_kappa([p for p, _ in both], [q for _, q in both], k) if both else None
    agree, involve = np.zeros(k), np.zeros(k)
    for votes in items.values():
        for p, q in combinations(votes.values(), 2):
            involve[p] += 1
            involve[q] += 1
            if p == q:
                agree[p] += 2
    result.per_class = {c: (float(agree[c] / involve[c]) if involve[c] else None) for c in range(k)}
    if verdicts is None:
        verdicts = settle(((i, who, lab) for i, votes in items.items() for who, lab in votes.items()), required=2)
    matched, rated = Counter(), Counter()
    for v in verdicts:
        if v.label is None:
            continue
        for labeler, label in v.votes.items():
            rated[labeler] += 1
            matched[labeler] += label == v.label
    result.per_labeler = {who: (matched[who] / rated[who] if rated[who] else None) for who in labelers}
    return result
