"""The packaged Hydra configs. Importing this package (Hydra does, to read it) stores the
structured-config schemas that ``config.yaml`` and every group option extend."""

from compress_train.runner.config.schema import register

register()
