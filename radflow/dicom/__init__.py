"""DICOM: header scan, series assembly, pixel decoding and de-identification."""
