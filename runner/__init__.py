"""CLI, config checks, launch, training loop, metrics and reports."""

import hashlib
import math

from omegaconf import OmegaConf

# Resolvers the experiment presets use (e.g. fig2's lr = base * sqrt(n)).
OmegaConf.register_new_resolver("sqrt", lambda x: math.sqrt(float(x)), replace=True)
OmegaConf.register_new_resolver("mul", lambda a, b: float(a) * float(b), replace=True)
SLUG_MAX = 200  # characters of a job directory's name (file systems allow 255 bytes)


def slug(text: object) -> str:
    """A sweep job's directory name from its overrides: "method=comp_ams/topk_ef_0.01" must not open a
    sub-directory, and a long override list must not pass the file system's name limit (it is cut and
    a hash of the whole list keeps names apart)."""
    name = str(text).replace("/", "-")
    if len(name.encode()) <= SLUG_MAX:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:12]
    return name.encode()[: SLUG_MAX - 13].decode(errors="ignore") + "~" + digest


OmegaConf.register_new_resolver("slug", slug, replace=True)
