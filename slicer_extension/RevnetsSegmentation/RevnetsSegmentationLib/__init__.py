"""The plain-Python part of the RevnetsSegmentation Slicer module (no MRML, testable with pytest).

``bundles`` (which bundles there are and what they take), ``geometry`` (do channels share a voxel grid),
``workspace`` (the temporary folder of a run), ``runner`` (``revnets predict`` as a subprocess: progress,
cancel, errors) and ``outputs`` (checking, splitting and exporting the five result files).
"""
