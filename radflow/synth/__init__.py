"""A deterministic synthetic chest CR/DX/CT DICOM cohort (PHI, planted defects) for the demo and tests."""
