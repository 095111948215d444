"""Reward-quality statistics: ROC-AUC (positives vs negatives) and Spearman rank
correlation, both tie-aware, on plain numpy arrays."""
import numpy as np
from scipy import stats


def roc_auc(positive, negative):
    """P(score of a random positive > a random negative), ties count 1/2
    (the Mann-Whitney U statistic / (n_pos * n_neg)). NaN if either set is empty."""
    pos = np.asarray(positive, np.float64).ravel()
    neg = np.asarray(negative, np.float64).ravel()
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    ranks = stats.rankdata(np.concatenate([pos, neg]))  # average ranks for ties
    u = ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def spearman(x, y):
    """Spearman rank correlation of paired samples (Pearson of average ranks);
    NaN with fewer than 2 pairs or a constant input."""
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"spearman needs paired samples; got {x.shape} and {y.shape}")
    if len(x) < 2:
        return float("nan")
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def mean_spearman(groups):
    """Mean over groups of spearman(x, y), groups = [(x, y), ...]; NaN groups skipped."""
    vals = [spearman(x, y) for x, y in groups]
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")
