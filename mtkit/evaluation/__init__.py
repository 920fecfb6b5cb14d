"""Evaluation: BLEU / spBLEU / chrF++ / chrF through sacrebleu, NLLB-style added toxicity,
fairseq-generate parsing, and reports over many directions.

Public API (imported lazily, so ``import mtkit.evaluation`` stays cheap)::

    score_direction(hyps, refs, tgt_lang, src=None, metrics=("bleu", "chrf++"), spm_model=None, **kw) -> dict
    score_files(hyp, ref, tgt_lang, src=None, metrics=..., **kw) -> dict
    evaluate_folder(hyp_dir, ref_dir, out_dir, metrics=..., **kw) -> dict
    parse_generate_output(path, expected_lines=None, ...) -> list[str]
    compare_systems(directions, systems, settings=CompareSettings(...), ...) -> dict   (mtkit compare)
    write_report(result, out_dir) -> [compare.html, report.md, compare.json]
    load_folders(systems, ref_dir, ...) / load_files(systems, ref, tgt_lang, src_lang, ...)
"""
from __future__ import annotations

from typing import Any

_API = {
    "score_direction": "mtkit.evaluation.scoring",
    "score_files": "mtkit.evaluation.scoring",
    "parse_metrics": "mtkit.evaluation.scoring",
    "METRICS": "mtkit.evaluation.scoring",
    "evaluate_folder": "mtkit.evaluation.folder",
    "parse_generate_output": "mtkit.evaluation.generate_output",
    "ToxicityLists": "mtkit.evaluation.toxicity",
    "read_lines": "mtkit.evaluation.inputs",
    "compare_systems": "mtkit.evaluation.compare",
    "CompareSettings": "mtkit.evaluation.compare",
    "write_report": "mtkit.evaluation.compare",
    "parse_systems": "mtkit.evaluation.compare_inputs",
    "load_folders": "mtkit.evaluation.compare_inputs",
    "load_files": "mtkit.evaluation.compare_inputs",
}
__all__ = list(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'mtkit.evaluation' has no attribute {name!r}")
