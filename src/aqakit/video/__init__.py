"""From video files to clip features: decoding (PyAV), backbones (I3D, Video Swin) and their
weights, extraction.

Importing this package needs no video library; decoding imports PyAV (``pip install 'aqakit[video]'``)
when first used.
"""
