"""Statistics for face-perception benchmarks: pure functions on numpy arrays (scipy imported lazily).

- `roc`: one count-weighted ROC core (:class:`Roc`) for AUC, EER, TAR@FAR, the Youden threshold
  and the k-fold threshold search;
- `folds`: fold assignment and the k-fold verification protocol;
- `bootstrap`: the one bootstrap engine (:class:`Bootstrap`: count blocks over rows, groups and
  strata; percentile intervals; paired differences and p-values);
- `correlation`: correlations, their weighted batched forms, noise ceilings, split-half reliability;
- `rsa`: RDMs, the stimulus bootstrap, the noise ceiling of per-rater RDMs; `effects`: relative
  difference, Cohen's d, means;
- `identification`: probe ranks and the CMC curve; `delong`: DeLong's test of two AUCs.

Batched functions take resampling counts: a ``(b, n)`` matrix whose row ``w`` stands for the data
set in which row ``i`` occurs ``w[i]`` times. Nothing here imports the rest of the package except
`errors` (for `Bootstrap.checked`).
"""

from __future__ import annotations

from .bootstrap import (
    BLOCK_CELLS,
    N_BOOT_WARN,
    PROGRESS_AFTER_S,
    Bootstrap,
    bootstrap_weights,
    paired_result,
    percentile_interval,
    set_progress,
    weight_blocks,
)
from .correlation import (
    CORRELATION_METHODS,
    CorrelationResult,
    NoiseCeiling,
    correlation,
    noise_ceiling,
    pearson_r,
    resampled_correlation,
    resampled_noise_ceiling,
    spearman_r,
    split_half_reliability,
)
from .delong import DeLongResult, delong_test, normal_quantile
from .effects import cohens_d, group_effects, relative_difference, weighted_mean
from .folds import (
    FoldAccuracy,
    KFoldResult,
    fold_accuracy,
    identity_folds,
    kfold_accuracy,
    make_folds,
    stratified_folds,
)
from .identification import cmc_curve, probe_ranks
from .roc import Roc, RocMetrics, TarAtFar, eer, in_sample_verification, roc_auc, tar_at_far
from .rsa import (
    RDM_METRICS,
    RSA_METHODS,
    rdm_from_embeddings,
    rdm_noise_ceiling,
    stimulus_bootstrap,
    stimulus_bootstrap_ceiling,
)

__all__ = [
    "BLOCK_CELLS",
    "CORRELATION_METHODS",
    "N_BOOT_WARN",
    "PROGRESS_AFTER_S",
    "RDM_METRICS",
    "RSA_METHODS",
    "Bootstrap",
    "CorrelationResult",
    "DeLongResult",
    "FoldAccuracy",
    "KFoldResult",
    "NoiseCeiling",
    "Roc",
    "RocMetrics",
    "TarAtFar",
    "bootstrap_weights",
    "cmc_curve",
    "cohens_d",
    "correlation",
    "delong_test",
    "eer",
    "fold_accuracy",
    "group_effects",
    "identity_folds",
    "in_sample_verification",
    "kfold_accuracy",
    "make_folds",
    "noise_ceiling",
    "normal_quantile",
    "paired_result",
    "pearson_r",
    "percentile_interval",
    "probe_ranks",
    "rdm_from_embeddings",
    "rdm_noise_ceiling",
    "relative_difference",
    "resampled_correlation",
    "resampled_noise_ceiling",
    "roc_auc",
    "set_progress",
    "spearman_r",
    "split_half_reliability",
    "stimulus_bootstrap",
    "stimulus_bootstrap_ceiling",
    "stratified_folds",
    "tar_at_far",
    "weight_blocks",
    "weighted_mean",
]
