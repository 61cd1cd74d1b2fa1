"""Sweeps: many aqakit runs over a search space of ``--set`` keys, on Ray Tune (``aqakit sweep``).

:mod:`~aqakit.sweep.spec` reads and checks the YAML spec, :mod:`~aqakit.sweep.trial` trains one
trial (one configuration over all its seeds) into an ordinary run folder,
:mod:`~aqakit.sweep.summary` tabulates the trials and marks the one chosen on validation, and
:mod:`~aqakit.sweep.tune` runs the trials on Ray Tune (the only module that imports Ray or Optuna).
"""
