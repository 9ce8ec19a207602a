"""``compress-report``: figures and tables from run directories. ``cli`` parses the arguments,
``comp_ams``, ``aiade`` and ``hard_threshold`` draw each paper's figures and tables from the shared
``plots`` and ``tables``, and ``load`` reads the runs."""
