"""Training: datasets for models, splits, algorithm adapters (scikit-learn, LightGBM)."""
