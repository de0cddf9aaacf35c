"""emoser.experiments: whole runs of the course's pipeline, over seeds, and the original.

* :mod:`~emoser.experiments.pipeline`: :func:`prepare` → :func:`train_and_test` (a :class:`Run`);
* :mod:`~emoser.experiments.seeds`: the same run over several seeds, and tables over seeds;
* :mod:`~emoser.experiments.defects`: the original's defects put back, one at a time;
* :mod:`~emoser.experiments.inference`: a saved model applied to a new recording;
* :mod:`~emoser.experiments.original`: the original exercise's code, defects included;
* :mod:`~emoser.experiments.baselines`: pitch, MFCC and CNN-only baselines on the same splits.

Chapter: chapters/07_evaluation.ipynb
"""
from . import original
from .baselines import (
    BASELINES,
    MeanPooledCnn,
    baseline_table,
    run_baselines,
    utterance_features,
)
from .defects import (
    DEFECT_TITLES,
    DEFECTS,
    DefectRun,
    ToldLengths,
    defect_table,
    first_epoch_at,
    misaligned_lengths,
    plateau_epochs,
    put_back,
    run_with_defect,
)
from .inference import REQUIRED_META, load_trained, normalizer_from_meta, predict_wave
from .pipeline import Prepared, Run, prepare, run_protocol, train_and_test
from .seeds import (
    SeedRuns,
    confused_pairs,
    misclassified,
    multi_seed,
    pooled_confusion,
    recall_table,
    retest_per_speaker,
    run_seeds,
    run_split_seeds,
    seed_table,
    spread_table,
)

__all__ = [
    "original", "Prepared", "prepare", "train_and_test", "Run", "run_protocol", "misclassified",
    "SeedRuns", "multi_seed", "run_seeds", "seed_table", "run_split_seeds", "retest_per_speaker",
    "pooled_confusion", "recall_table", "spread_table", "confused_pairs", "DEFECTS",
    "DEFECT_TITLES", "misaligned_lengths", "ToldLengths", "DefectRun", "put_back",
    "run_with_defect", "plateau_epochs", "first_epoch_at", "defect_table", "REQUIRED_META",
    "load_trained", "normalizer_from_meta", "predict_wave", "BASELINES", "MeanPooledCnn",
    "baseline_table", "run_baselines", "utterance_features",
]
