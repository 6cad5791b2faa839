"""Hyperparameter tuning with Optuna, the study stored in the metadata store's database.

>>> name = study_name("demo", dataset_sha256, spec_hash)                       # doctest: +SKIP
>>> result = run_study(dataset=path, model_spec=spec.model, time_column=None,  # doctest: +SKIP
...                    storage_url=settings.db_url, study_name=name, workers=2)
>>> result.best_params                                                          # doctest: +SKIP
{'num_leaves': 31, 'learning_rate': 0.08}

Every worker, on this machine or another with the same database URL and study name, joins
the same study; ``model.tune.n_trials`` is the total over all of them. Optuna, MLflow and the
learning libraries are imported by the functions that use them.
"""

from conveyor.train.tuning._space import check_space, suggest
from conveyor.train.tuning._study import TuneResult, run_study, study_name
from conveyor.train.tuning._tracking import TrialTracking

__all__ = [
    "TrialTracking",
    "TuneResult",
    "check_space",
    "run_study",
    "study_name",
    "suggest",
]
