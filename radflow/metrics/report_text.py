"""The report's plain-language prose: the one-sentence summary and the note on limits."""

from __future__ import annotations

import html

from radflow.metrics.binary import confusion_counts, predict_labels
from radflow.metrics.evaluation import Evaluation

# Above this ECE, predicted probabilities should not be read as the chance of disease.
ECE_CONCERN = 0.05


GLOSSARY = {
    "AUC": "how well the score ranks a case with the finding above one without (0.5 = chance, 1 = perfect); "
    "independent of the threshold.",
    "Sensitivity": "share of images with the finding that the model flagged.",
    "Specificity": "share of images without the finding that the model cleared.",
    "PPV": "share of flagged images that truly had the finding (depends on how common the finding is).",
    "NPV": "share of cleared images that truly did not have it (depends on how common the finding is).",
    "95% CI": "the range the value would plausibly fall in on another sample of the same size from the same "
    "population.",
}


def glossary() -> str:
    """Plain definitions of the headline metrics, for readers who are not statisticians."""
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in GLOSSARY.items())
    return f'<dl class="muted">{items}</dl>'


def summary_sentence(ev: Evaluation) -> str:
    """What the model did on the test split, in counts a clinician can check against the table."""
    t = ev.operating_point.threshold
    tn, fp, fn, tp = confusion_counts(ev.test_labels, predict_labels(ev.test_probs, t))
    n = tn + fp + fn + tp
    if n == 0:
        return "The test split is empty, so nothing could be measured."
    return (
        f"On {n} test images ({tp + fn} with the finding), the model at threshold {t:.3g} flagged "
        f"{tp} of the {tp + fn} positive images and cleared {tn} of the {tn + fp} negative images; "
        f"{_count(fp, 'negative')} {'was' if fp == 1 else 'were'} flagged (false positives) and "
        f"{_count(fn, 'positive')} missed (false negatives)."
    )


def _count(n: int, noun: str) -> str:
    """'1 negative', '4 negatives': the summary is read aloud in case conferences."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def limits_section(ev: Evaluation) -> str:
    """A plain-language list of what these numbers do not show."""
    items = [_population(ev), _prevalence(ev), _calibration(ev), *_fixed_points(ev)]
    flagged = int((ev.subgroups["flag"] != "").sum()) if not ev.subgroups.empty else 0
    if flagged:
        items.append(
            f"{flagged} subgroup(s) are flagged as too small or single-class; their metrics are "
            "anecdotes, not evidence, and say little about performance at those sites or in those groups."
        )
    listed = "".join(f"<li>{html.escape(item)}</li>" for item in items)
    return f"<h2>Limits: read before relying on this model</h2><ul>{listed}</ul>"


def _population(ev: Evaluation) -> str:
    return (
        f"These results come from {ev.test['n']} test images of {ev.test['n_patients']} patients. They "
        "describe this data set; a different hospital, scanner, protocol or patient population can give "
        "different, usually worse, results. Check the subgroup table for your sites and scanners, and "
        "validate locally before clinical use."
    )


def _prevalence(ev: Evaluation) -> str:
    prevalence = ev.test["n_positive"] / ev.test["n"] if ev.test["n"] else 0.0
    return (
        f"The finding was present in {prevalence:.0%} of test images. PPV and NPV depend on how common "
        "the finding is: where it is rarer, more of the model's positive calls will be false alarms."
    )


def _calibration(ev: Evaluation) -> str:
    ece = ev.test["ece"]
    if ece is None:
        return "Calibration could not be measured."
    if ece > ECE_CONCERN:
        return (
            f"The probabilities are not well calibrated (ECE {ece:.3f}): read the model's score as a "
            "ranking, not as the chance that the finding is present."
        )
    return (
        f"The probabilities are reasonably calibrated on this data (ECE {ece:.3f}), which may not hold "
        "elsewhere."
    )


def _fixed_points(ev: Evaluation) -> list[str]:
    notes = [
        "The 95% intervals reflect the limited size of the test set only; they do not cover the choice of "
        "threshold, a change of population, or errors in the reference labels.",
        "Robustness perturbations are synthetic stand-ins for noise, contrast and resolution changes; real "
        "artefacts (motion, devices, positioning) are not covered.",
        "Grad-CAM maps are coarse and can highlight the right area for the wrong reason; they are not a "
        "segmentation and not proof that the model's reasoning is sound.",
        "This is a research evaluation, not a regulatory clearance; diagnostic decisions rest with "
        "clinicians.",
    ]
    if ev.operating_point.method == "fallback":
        notes.insert(0, ev.operating_point.description)
    return notes
