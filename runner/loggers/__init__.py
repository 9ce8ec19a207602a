"""Loggers (``logger.name`` = module stem): ``IMPLEMENTATION(cfg, run_dir) -> list[Sink]``, the
sinks the writer process feeds. ``metrics.jsonl`` and ``summary.json`` are always among them."""
