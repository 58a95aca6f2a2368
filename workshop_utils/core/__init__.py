"""The layer every lab stands on, with no torch and no framework: errors, argument checks, paths, profiles,
hardware, timing, results, data manifests and downloads, and the registry of labs.

Modules here import only each other and the standard library plus light packages (numpy, pooch, filelock,
nvidia-ml-py). Notebooks reach the public names as ``wu.<name>`` (see :mod:`workshop_utils`).
"""
