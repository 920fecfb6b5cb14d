"""Exports of fairseq checkpoints, read through mtkit's safe loader: CTranslate2
(:mod:`mtkit.export.ct2`) and Hugging Face transformers (:mod:`mtkit.export.hf`)."""
