"""Launchers (``launcher.name`` = module stem): ``IMPLEMENTATION(cfg, run_dir) -> summary | None``
starts the run's workers once ``launch.py`` has frozen the config into ``run_dir``."""
