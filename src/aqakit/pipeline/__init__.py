"""The jobs a trained model does, each a function a Python caller and the CLI share.

- :mod:`aqakit.pipeline.evaluate`: re-evaluate a run's checkpoint on its benchmark;
- :mod:`aqakit.pipeline.predict`: score a folder of clip features;
- :mod:`aqakit.pipeline.score_video`: video -> features -> Prediction -> a report.
"""
