"""radflow: retrain medical-imaging diagnosis models from DICOM, reproducibly."""

__version__ = "0.1.0"
