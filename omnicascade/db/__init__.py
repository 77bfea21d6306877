"""Application database: models, sessions, migrations and repository functions."""

# Erasure's tables live beside models.py (erasure_models.py); imported with the package so
# Base.metadata always has them, whichever module is imported first.
from omnicascade.db import erasure_models as erasure_models
from omnicascade.db import experiment_models as experiment_models  # experiments' tables
