"""Knobs of the evaluate stage."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from radflow.config.base import Section

Subgroup = Literal["site_key", "manufacturer", "sex", "age_band", "modality"]
PositiveFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]


class RobustnessParams(Section):
    """Perturbations applied to the preprocessed test images; each severity is one row of the table."""

    noise_std: list[PositiveFloat] = Field(
        default=[0.1, 0.25],
        description="Gaussian noise SD as a fraction of the test images' intensity SD.",
    )
    contrast_gamma: list[PositiveFloat] = Field(
        default=[0.6, 1.6],
        description="Gamma applied within each image's intensity range (1 = unchanged).",
    )
    resolution_scale: list[Fraction] = Field(
        default=[0.5, 0.25],
        description="Downsampling factor per axis before resampling back (1 = unchanged).",
    )


class GradCamParams(Section):
    """Which examples get Grad-CAM overlays and which layer explains them."""

    per_outcome: int = Field(
        default=4, ge=0, description="Examples per outcome (TP, FP, FN); 0 disables Grad-CAM."
    )
    layer: str | None = Field(
        default=None, description="Target layer name; null finds the last layer with a spatial output."
    )


class EvaluateParams(Section):
    """How metrics, intervals and the operating point are computed."""

    bootstrap: int = Field(
        default=1000, ge=0, description="Bootstrap resamples for 95% confidence intervals; 0 disables them."
    )
    operating_point: Literal["youden", "sensitivity", "accuracy"] = Field(
        default="youden",
        description="How the threshold is chosen on the validation split: Youden's J, a target "
        "sensitivity, or the highest accuracy (at the validation split's prevalence).",
    )
    target_sensitivity: float = Field(
        default=0.9, gt=0, lt=1, description="Used when operating_point is 'sensitivity'."
    )
    seed: int = 0
    batch_size: int = Field(default=64, ge=1, description="Images per forward pass when predicting.")
    calibration_bins: int = Field(
        default=10, ge=2, description="Equal-width probability bins for ECE and the reliability plot."
    )
    subgroups: list[Subgroup] = Field(
        default=["site_key", "manufacturer", "sex", "age_band"],
        description="Attributes the test split is broken down by.",
    )
    subgroup_min_n: int = Field(
        default=20, ge=1, description="Subgroups with fewer images are flagged as too small to trust."
    )
    robustness: RobustnessParams = RobustnessParams()
    gradcam: GradCamParams = GradCamParams()
