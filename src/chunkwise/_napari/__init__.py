"""The napari plugin: a thin adapter over chunkwise's public API.

Only this package imports qtpy, napari and magicgui.
"""
