"""Paired significance for ``mtkit compare``: sacrebleu's own tests per direction, the same
statistics over groups of directions.

Per direction, :func:`paired_tests` runs :class:`sacrebleu.significance.PairedTest` twice: paired
bootstrap resampling (``bs``: each system's score with its 95 % interval and the p-value of the
difference to the baseline) and approximate randomization (``ar``: the p-value of the same
difference). sacrebleu reports no interval for the *difference*, so :func:`bootstrap_groups` draws the
resamples again exactly as sacrebleu does (``numpy.random.default_rng(seed)``, one index matrix per
direction) and takes the 2.5 / 97.5 % points of the paired differences; for one direction its
resamples, scores and p-value are sacrebleu's (the tests check this).

An average over directions (a resource class, all directions) is a macro average of corpus scores,
not one corpus, so no sacrebleu test applies to it as is. We resample each direction's sentences on
its own, the same indices for every system (a stratified paired bootstrap: the directions keep their
sizes and every direction counts once per resample), average the per-direction scores of each
resample and apply sacrebleu's formulas to the resampled averages (``estimate_ci`` for a system's
interval, ``_compute_p_value`` for the p-value). Approximate randomization of an average swaps each
sentence's two hypotheses with probability 1/2 within every direction. Scores always come from the
sacrebleu metric's own sufficient statistics (``_extract_corpus_statistics`` /
``_compute_score_from_stats``, the functions ``sacrebleu.significance`` itself uses).

Seeds: sacrebleu takes its seed from the ``SACREBLEU_SEED`` environment variable and treats 0 as "no
seed"; :func:`check_seed` refuses 0 so every number here can be reproduced.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sacrebleu.metrics.base import Metric
from sacrebleu.significance import PairedTest, _compute_p_value, estimate_ci

from mtkit.errors import MtkitError

DEFAULT_SEED = 12345          # sacrebleu's own default SACREBLEU_SEED
DEFAULT_BOOTSTRAP = 1000      # sacrebleu's default number of bootstrap resamples
DEFAULT_AR_TRIALS = 10000     # sacrebleu's default number of approximate-randomization trials
_CHUNK = 250                  # resamples scored per matrix product (bounds memory)


def check_seed(seed: int) -> int:
    if seed <= 0:
        raise MtkitError(f"seed {seed}: use a positive integer; sacrebleu treats 0 as 'no seed' "
                         "(results could not be reproduced)")
    return seed


@contextlib.contextmanager
def sacrebleu_seed(seed: int) -> Iterator[None]:
    """Set ``SACREBLEU_SEED`` (how sacrebleu's tests take their seed) for the block only."""
    old = os.environ.get("SACREBLEU_SEED")
    os.environ["SACREBLEU_SEED"] = str(check_seed(seed))
    try:
        yield
    finally:
        if old is None:
            del os.environ["SACREBLEU_SEED"]
        else:
            os.environ["SACREBLEU_SEED"] = old


# ------------------------------------------------------------------------------ sacrebleu per direction


@dataclass
class SystemScore:
    score: float
    mean: float | None = None  # mean over the bootstrap resamples (sacrebleu's "mean")
    ci: float | None = None    # half width of the 95 % interval around the mean (sacrebleu's "ci")


@dataclass
class Difference:
    delta: float               # system minus baseline
    low: float                 # 2.5 % point of the paired bootstrap differences
    high: float                # 97.5 % point
    p_bs: float                # paired bootstrap p-value
    p_ar: float | None         # approximate randomization p-value


def paired_tests(hyps: Mapping[str, Sequence[str]], refs: Sequence[str], metrics: Mapping[str, Metric],
                 n_bootstrap: int, n_trials: int, seed: int,
                 ) -> tuple[dict[str, dict[str, SystemScore]], dict[str, dict[str, float]],
                            dict[str, dict[str, float]], dict[str, str]]:
    """sacrebleu's paired bootstrap and approximate randomization for one direction.

    ``hyps``: system -> hypotheses, baseline first. Returns ``(scores, p_bs, p_ar, signatures)``:
    metric -> system -> :class:`SystemScore`; metric -> system -> p-value (systems other than the
    baseline); metric -> signature of the bootstrap test (it records the seed and resamples).
    """
    named = [(name, list(h)) for name, h in hyps.items()]
    with sacrebleu_seed(seed):
        bs_sigs, bs = PairedTest(named, dict(metrics), [list(refs)], "bs", n_bootstrap)()
        ar = PairedTest(named, dict(metrics), [list(refs)], "ar", n_trials)()[1] if n_trials else None
    scores: dict[str, dict[str, SystemScore]] = {}
    p_bs: dict[str, dict[str, float]] = {}
    p_ar: dict[str, dict[str, float]] = {}
    signatures: dict[str, str] = {}
    for ours, theirs in zip(metrics, [k for k in bs if k != "System"]):
        scores[ours] = {name: SystemScore(r.score, r.mean, r.ci) for name, r in zip(bs["System"], bs[theirs])}
        p_bs[ours] = {name: r.p_value for name, r in zip(bs["System"][1:], bs[theirs][1:])}
        if ar is not None:
            p_ar[ours] = {name: r.p_value for name, r in zip(ar["System"][1:], ar[theirs][1:])}
        signatures[ours] = bs_sigs[theirs].format()
    return scores, p_bs, p_ar, signatures


# ------------------------------------------------------------------------------ sufficient statistics


@dataclass
class Stats:
    """One direction's sentence statistics for one metric: system -> (lines, statistics) array."""

    metric: Metric
    by_system: dict[str, np.ndarray]

    @classmethod
    def extract(cls, metric: Metric, hyps: Mapping[str, Sequence[str]], refs: Sequence[str]) -> Stats:
        refs = [list(refs)]
        return cls(metric, {name: np.asarray(metric._extract_corpus_statistics(list(h), refs), dtype=np.int32)
                            for name, h in hyps.items()})

    @property
    def n_lines(self) -> int:
        return len(next(iter(self.by_system.values())))

    def score(self, system: str, lines: Sequence[int] | None = None) -> float:
        """Corpus score of ``system`` on all lines or a subset of them (e.g. a length bucket), as
        ``corpus_score`` computes it (from integer sums)."""
        stats = self.by_system[system]
        if lines is not None:
            stats = stats[list(lines)]
        return float(self.metric._compute_score_from_stats(stats.sum(0, dtype=np.int64).tolist()).score)

    def sentence_scores(self, system: str) -> np.ndarray:
        """Each sentence scored alone (for chrF equal to ``metric.sentence_score``)."""
        return np.array([self.metric._compute_score_from_stats(row).score
                         for row in self.by_system[system].tolist()])

    def scores_of(self, sums: np.ndarray, float32: bool = True) -> np.ndarray:
        """Score of each row of summed statistics: in float32 as sacrebleu's bootstrap computes it,
        or (``float32=False``) in float64, as its approximate randomization does (the sums are
        integers either way, exact in both types)."""
        rows = sums.astype(np.float32) if float32 else sums.tolist()
        return np.array([self.metric._compute_score_from_stats(r).score for r in rows])


def _resample_counts(idxs: np.ndarray, n: int) -> np.ndarray:
    """How often each line is drawn in each resample: (resamples, lines)."""
    b = idxs.shape[0]
    flat = (idxs + (np.arange(b) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def _resampled(stats: Stats, systems: Sequence[str], weights: np.ndarray) -> dict[str, np.ndarray]:
    """Scores of each system on each resample, ``weights`` being (resamples, lines) counts."""
    out = {s: np.empty(len(weights)) for s in systems}
    for start in range(0, len(weights), _CHUNK):
        w = weights[start:start + _CHUNK]
        for s in systems:
            out[s][start:start + len(w)] = stats.scores_of(w @ stats.by_system[s].astype(np.float64))
    return out


# ------------------------------------------------------------------------------ groups of directions


@dataclass
class GroupResult:
    scores: dict[str, SystemScore]        # system -> macro-average score with its bootstrap interval
    differences: dict[str, Difference]    # system (not the baseline) -> difference to the baseline


def bootstrap_group(stats: Sequence[Stats], baseline: str, systems: Sequence[str], n_bootstrap: int,
                    seed: int) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Stratified paired bootstrap of the mean score over ``stats`` (one :class:`Stats` a direction).

    Returns the real mean score of each system and its ``n_bootstrap`` resampled means. With one
    direction the resamples are exactly those of sacrebleu's paired bootstrap with the same seed.
    """
    rng = np.random.default_rng(check_seed(seed))
    names = [baseline, *[s for s in systems if s != baseline]]
    real = {s: float(np.mean([st.score(s) for st in stats])) for s in names}
    total = {s: np.zeros(n_bootstrap) for s in names}
    for st in stats:
        idxs = rng.choice(st.n_lines, size=(n_bootstrap, st.n_lines), replace=True)
        for s, v in _resampled(st, names, _resample_counts(idxs, st.n_lines)).items():
            total[s] += v
    return real, {s: v / len(stats) for s, v in total.items()}


def randomization_group(stats: Sequence[Stats], baseline: str, system: str, n_trials: int,
                        seed: int) -> float:
    """Stratified approximate randomization p-value of the difference of mean scores over ``stats``
    (for one direction: sacrebleu's ``ar`` test with the same seed)."""
    rng = np.random.default_rng(check_seed(seed))
    real = abs(np.mean([st.score(system) - st.score(baseline) for st in stats]))
    a, b = np.zeros(n_trials), np.zeros(n_trials)
    for st in stats:
        swap = rng.integers(2, size=(n_trials, st.n_lines), dtype=bool).astype(np.float64)
        keep = 1.0 - swap
        base, other = (st.by_system[s].astype(np.float64) for s in (baseline, system))
        for start in range(0, n_trials, _CHUNK):
            sl = slice(start, start + _CHUNK)
            a[sl] += st.scores_of(swap[sl] @ base + keep[sl] @ other, float32=False)
            b[sl] += st.scores_of(keep[sl] @ base + swap[sl] @ other, float32=False)
    return float(_compute_p_value(np.abs(a - b) / len(stats), real))


def interval(values: np.ndarray) -> tuple[float, float]:
    """The 95 % interval of resampled values, with the indices sacrebleu's ``estimate_ci`` uses."""
    v = np.sort(values)
    lo = len(v) // 40
    return float(v[lo]), float(v[len(v) - lo - 1])


def compare_group(stats: Sequence[Stats], baseline: str, systems: Sequence[str], n_bootstrap: int,
                  n_trials: int, seed: int) -> GroupResult:
    """Scores, intervals and p-values of the mean over a group of directions (see the module doc)."""
    real, resampled = bootstrap_group(stats, baseline, systems, n_bootstrap, seed)
    scores = {}
    for s, v in resampled.items():
        mean, ci = estimate_ci(v)
        scores[s] = SystemScore(real[s], float(mean), float(ci))
    diffs = {}
    for s in systems:
        if s == baseline:
            continue
        d = resampled[s] - resampled[baseline]
        delta = real[s] - real[baseline]
        low, high = interval(d)
        centred = np.abs(d) - np.abs(d).mean()
        p_bs = float(_compute_p_value(centred, abs(delta)))
        p_ar = randomization_group(stats, baseline, s, n_trials, seed) if n_trials else None
        diffs[s] = Difference(delta, low, high, p_bs, p_ar)
    return GroupResult(scores, diffs)
