"""Pixel decoding speed: radflow's `decode_frames` against pydicom's default decode, and every plugin.

    nice .venv/bin/python benchmarks/bench_pixels.py [--repeats 7]

For one file per transfer syntax in ../shared/corpus/dicom (dcm_qa_ts, dcm_qa_frag, pydicom_data),
prints one table, side by side: pydicom's `Decoder.as_array` with its default plugin order (the
baseline), `radflow.dicom.pixels.decode_frames` (our plugin order plus the header and shape checks)
and their ratio, then each installed plugin alone — the measurements behind `_PLUGIN_ORDER`. A last
row times a CT slice through decode + modality LUT + padding against pydicom's `pixel_array` +
`apply_modality_lut`. Each figure is the best of --repeats rounds; rounds interleave the variants so
that load from other processes hits them alike.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "dicom"
FILES = [
    "dcm_qa_ts/In/1.dcm",
    "dcm_qa_ts/In/3.dcm",
    "dcm_qa_ts/In/4.dcm",
    "dcm_qa_ts/In/5.dcm",
    "dcm_qa_ts/In/7.dcm",
    "dcm_qa_ts/In/9.dcm",
    "pydicom_data/693_J2KR.dcm",
    "pydicom_data/MR2_J2KR.dcm",
    "pydicom_data/HTJ2KLossless_08_RGB.dcm",
    "pydicom_data/JPEG-LL.dcm",
    "odd_dicom/pydicom_test_files/JPGExtended.dcm",
    "odd_dicom/pydicom_test_files/SC_rgb_small_odd_jpeg.dcm",
]


def race(variants: dict[str, Callable[[], object]], repeats: int, budget_s: float = 0.03) -> dict[str, float]:
    """Best seconds per call of each variant; rounds interleave the variants, failures give NaN."""
    calls: dict[str, int] = {}
    for name, fn in variants.items():
        try:
            start = time.perf_counter()
            fn()
            calls[name] = max(1, int(budget_s / max(time.perf_counter() - start, 1e-6)))
        except Exception:
            continue
    best = {name: float("inf") if name in calls else float("nan") for name in variants}
    for _ in range(repeats):
        for name, n in calls.items():
            fn = variants[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / n)
    return best


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        sys.exit("../shared/corpus/dicom is absent; nothing to measure")
    logging.disable(logging.CRITICAL)  # plugin failures (e.g. gdcm on 12-bit JPEG) are expected here
    warnings.simplefilter("ignore")
    import pydicom
    from pydicom.pixels import apply_modality_lut, get_decoder

    from radflow.dicom.pixels import decode_frames, decoder_plugins, modality_lut, pad_to_air

    print(
        f"{'file':44} {'transfer syntax':30} {'pydicom ms':>10} {'radflow ms':>10} {'ratio':>6}  plugins (ms)"
    )
    for name in FILES:
        ds = pydicom.dcmread(CORPUS / name)
        uid = ds.file_meta.TransferSyntaxUID
        decoder = get_decoder(uid)
        variants: dict[str, Callable[[], object]] = {
            "baseline": partial(decoder.as_array, ds),
            "radflow": partial(decode_frames, ds),
        }
        for plugin in decoder_plugins(uid):
            variants[plugin] = partial(decoder.as_array, ds, decoding_plugin=plugin)
        t = race(variants, args.repeats)
        plugins = " ".join(f"{k}={v * 1e3:.2f}" for k, v in t.items() if k not in ("baseline", "radflow"))
        print(f"{name[-44:]:44} {uid.name[:30]:30} {_row(t)}  {plugins}")

    ct = pydicom.dcmread(CORPUS / "pydicom_data" / "693_UNCR.dcm")
    ct.PixelPaddingValue = -2000

    def radflow() -> object:
        stored = decode_frames(ct)
        return pad_to_air(ct, stored, modality_lut(ct, stored))

    def baseline() -> object:
        return apply_modality_lut(pydicom.pixels.pixel_array(ct), ct)

    t = race({"baseline": baseline, "radflow": radflow}, args.repeats)
    print(f"{'CT slice to HU (radflow also pads to air)':44} {'Explicit VR Little Endian':30} {_row(t)}")


def _row(t: dict[str, float]) -> str:
    """Baseline ms, radflow ms and their ratio."""
    return f"{t['baseline'] * 1e3:10.2f} {t['radflow'] * 1e3:10.2f} {t['radflow'] / t['baseline']:6.2f}"


if __name__ == "__main__":
    main()
