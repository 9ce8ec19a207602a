"""CLI, config checks, launch, training loop, metrics and reports."""

import math

from omegaconf import OmegaConf

# Resolvers the experiment presets use (e.g. fig2's lr = base * sqrt(n)).
OmegaConf.register_new_resolver("sqrt", lambda x: math.sqrt(float(x)), replace=True)
OmegaConf.register_new_resolver("mul", lambda a, b: float(a) * float(b), replace=True)
# Sweep job directories: "method=comp_ams/topk_ef_0.01" must not open a sub-directory.
OmegaConf.register_new_resolver("slug", lambda s: str(s).replace("/", "-"), replace=True)
