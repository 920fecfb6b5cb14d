"""A model folder: find the pieces of a trained model and build its fairseq task and model in-process.

Used by ``mtkit translate``, ``mtkit export`` and the benchmarks: every path that runs a checkpoint
outside fairseq's own commands loads it here, through the safe loader.

A *model folder* holds (names searched in this order; the first hit wins):

- checkpoint: ``checkpoint.pt``, ``model.pt``, ``checkpoint_best.pt``, ``checkpoint_last.pt``, then the
  same names under ``checkpoints/``; otherwise the only ``*.pt`` file in the folder;
- dictionary: ``dict.txt``, otherwise ``dict.<lang>.txt`` (all languages share one dictionary);
  also looked for under ``databin/``;
- SentencePiece model: ``spm.model``, ``sentencepiece.bpe.model``, ``sentencepiece.model``, otherwise
  the only ``*.model`` file;
- language list (multilingual models only): ``langs.txt``, ``ML50_langs.txt``, ``lang_list.txt``, the
  basename of the ``--lang-dict`` the model was trained with, otherwise the training path itself if
  it still exists. Its order fixes the language-token ids, so it must be the training file.

Each can also be given explicitly (``checkpoint=``, ``dict_path=``, ``spm_path=``, ``langs_path=``), and
``model`` may be a checkpoint file, in which case the rest is looked for next to it and in its parent.
"""
from __future__ import annotations

import argparse
import copy
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtkit import langs as mlangs
from mtkit.errors import InputError, MtkitError

logger = logging.getLogger(__name__)

CHECKPOINT_NAMES = ("checkpoint.pt", "model.pt", "checkpoint_best.pt", "checkpoint_last.pt",
                    # MoE checkpoints (mtkit.moe_checkpoint layout): <prefix>-shared.pt + <prefix>-rank-<r>.pt
                    "checkpoint-shared.pt", "checkpoint_best-shared.pt", "checkpoint_last-shared.pt")
SPM_NAMES = ("spm.model", "sentencepiece.bpe.model", "sentencepiece.model")
LANGS_NAMES = ("langs.txt", "ML50_langs.txt", "lang_list.txt")
#: fairseq's multilingual task and mtkit's subclass of it (mtkit.tasks.translation_multi: same data, more options)
MULTI_TASKS = ("translation_multi_simple_epoch", "translation_multi_simple_epoch_mtkit")


@dataclass
class ModelFiles:
    """Where the pieces of one model live."""

    checkpoint: Path
    dictionary: Path
    spm: Path | None
    langs: Path | None
    folder: Path


def _first(dirs: list[Path], names: tuple[str, ...]) -> Path | None:
    for d in dirs:
        for n in names:
            if (d / n).is_file():
                return d / n
    return None


def _only(dirs: list[Path], pattern: str) -> Path | None:
    for d in dirs:
        hits = sorted(p for p in d.glob(pattern) if p.is_file()) if d.is_dir() else []
        if len(hits) == 1:
            return hits[0]
    return None


def find_files(
    model: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    dict_path: str | os.PathLike | None = None,
    spm_path: str | os.PathLike | None = None,
    langs_path: str | os.PathLike | None = None,
) -> ModelFiles:
    """Resolve the checkpoint, dictionary, SPM model and language list of ``model``.

    Raises :class:`InputError` naming the missing piece and the places searched.
    """
    model = Path(model)
    if not model.exists():
        raise InputError(f"model {model} does not exist (give a model folder or a checkpoint file)")
    if model.is_file():
        ckpt = model
        folder = model.parent
        dirs = [folder, folder.parent]
    else:
        folder = model
        dirs = [folder, folder / "checkpoints"]
        ckpt = _first(dirs, CHECKPOINT_NAMES) or _only(dirs, "*.pt") or _only(dirs, "*-shared.pt")
        dirs = [folder, folder.parent] if folder.name == "checkpoints" else [folder]
    if checkpoint:
        ckpt = Path(checkpoint)
    searched = ", ".join(str(d) for d in dirs)
    if ckpt is None or not Path(ckpt).is_file():
        raise InputError(
            f"model folder {folder} has no checkpoint: expected one of {', '.join(CHECKPOINT_NAMES)} "
            f"(also under checkpoints/) or a single *.pt file; or pass --checkpoint FILE"
        )
    ddirs = dirs + [d / "databin" for d in dirs]
    dct = Path(dict_path) if dict_path else (_first(ddirs, ("dict.txt",)) or _first_glob(ddirs, "dict.*.txt"))
    if dct is None or not dct.is_file():
        raise InputError(
            f"model {model} has no dictionary: expected dict.txt or dict.<lang>.txt in {searched} "
            "(or databin/ below it); or pass --dict FILE"
        )
    spm = Path(spm_path) if spm_path else (_first(dirs, SPM_NAMES) or _only(dirs, "*.model"))
    if spm is not None and not spm.is_file():
        raise InputError(f"SentencePiece model {spm} does not exist")
    lp = Path(langs_path) if langs_path else _first(dirs, LANGS_NAMES)
    if lp is not None and not lp.is_file():
        raise InputError(f"language list {lp} does not exist")
    return ModelFiles(checkpoint=Path(ckpt), dictionary=dct, spm=spm, langs=lp, folder=folder)


def _first_glob(dirs: list[Path], pattern: str) -> Path | None:
    for d in dirs:
        hits = sorted(d.glob(pattern)) if d.is_dir() else []
        if hits:
            return hits[0]
    return None


def checkpoint_args(state: dict[str, Any]) -> argparse.Namespace:
    """The training arguments of a loaded checkpoint as one Namespace (``args`` or ``cfg``)."""
    if state.get("args") is not None:
        return copy.deepcopy(state["args"])
    cfg = state.get("cfg")
    if cfg is None:
        raise MtkitError("checkpoint has neither 'args' nor 'cfg': not a fairseq checkpoint")
    merged: dict[str, Any] = {}
    for part in ("common", "task", "model"):
        section = cfg.get(part) if isinstance(cfg, dict) else getattr(cfg, part, None)
        if section is None:
            continue
        if isinstance(section, argparse.Namespace):
            merged.update(vars(section))
        else:  # omegaconf DictConfig or plain dict
            try:
                from omegaconf import OmegaConf

                section = OmegaConf.to_container(section, resolve=True)
            except Exception:  # noqa: BLE001 - plain dict already
                pass
            merged.update(dict(section))
    ns = argparse.Namespace(**copy.deepcopy(merged))
    if not hasattr(ns, "arch") and hasattr(ns, "_name"):
        ns.arch = ns._name
    return ns


@dataclass
class LangInfo:
    """How a model marks languages, read from its training configuration."""

    multilingual: bool
    langs: list[str] = field(default_factory=list)
    lang_pairs: list[str] = field(default_factory=list)
    style: str = "multilingual"  # or "mbart"
    encoder_langtok: str | None = None  # "src", "tgt" or None
    decoder_langtok: bool = False
    source_lang: str | None = None  # bilingual models
    target_lang: str | None = None

    def token(self, lang: str) -> str:
        return mlangs.mbart_lang_token(lang) if self.style == "mbart" else mlangs.multilingual_lang_token(lang)

    def resolve(self, code: str, side: str) -> str:
        """Map a user code (mBART or Flores form) to the model's own code, or raise listing them."""
        if not self.multilingual:
            known = [c for c in (self.source_lang, self.target_lang) if c]
        else:
            known = self.langs
        if code in known or not known:
            return code
        for conv in (mlangs.to_mbart, mlangs.to_flores):
            try:
                alt = conv(code)
            except Exception:  # noqa: BLE001 - not convertible, try the other form
                continue
            if alt in known:
                return alt
        raise mlangs.UnknownLanguageError(
            f"the model does not know the {side} language {code!r}. Its languages are: {' '.join(known)}"
        )

    def check_direction(self, src: str, tgt: str) -> None:
        if self.multilingual and self.lang_pairs and f"{src}-{tgt}" not in self.lang_pairs:
            logger.warning(
                "direction %s-%s was not among the training directions (%s); output may be poor",
                src, tgt, ",".join(self.lang_pairs),
            )


def lang_info(args: argparse.Namespace, langs_file: Path | None) -> LangInfo:
    """Language-token conventions of a checkpoint (needs the language list for multilingual ones)."""
    if getattr(args, "task", None) not in MULTI_TASKS:
        return LangInfo(multilingual=False, source_lang=getattr(args, "source_lang", None),
                        target_lang=getattr(args, "target_lang", None))
    pairs = args.lang_pairs
    if isinstance(pairs, str):
        pairs = pairs.split(",")
    if getattr(args, "langs", None):
        langs = list(args.langs) if not isinstance(args.langs, str) else args.langs.split(",")
    else:
        if langs_file is None and getattr(args, "lang_dict", None):
            trained = Path(args.lang_dict)
            if trained.is_file():
                langs_file = trained
        if langs_file is None:
            raise InputError(
                "the multilingual model needs its language list (the --lang-dict file it was trained "
                f"with, {getattr(args, 'lang_dict', None)}): put it in the model folder as langs.txt "
                "or pass --langs FILE"
            )
        langs = mlangs.read_lang_file(str(langs_file))
    return LangInfo(
        multilingual=True, langs=langs, lang_pairs=list(pairs or []),
        style=getattr(args, "lang_tok_style", "multilingual"),
        encoder_langtok=getattr(args, "encoder_langtok", None),
        decoder_langtok=bool(getattr(args, "decoder_langtok", False)),
    )


def resolve_lang_file(files: ModelFiles, args: argparse.Namespace) -> Path | None:
    if files.langs is not None:
        return files.langs
    ld = getattr(args, "lang_dict", None)
    if ld:
        cand = files.folder / Path(ld).name
        if cand.is_file():
            return cand
        if Path(ld).is_file():
            return Path(ld)
    return None


@dataclass
class LoadedModel:
    """A fairseq model built in-process from a safely loaded checkpoint."""

    files: ModelFiles
    args: argparse.Namespace
    info: LangInfo
    model: Any  # fairseq model (eval mode)
    dictionary: Any  # source (= target for shared) fairseq Dictionary with language tokens
    tgt_dictionary: Any
    _tasks: dict[tuple[str, str], Any] = field(default_factory=dict)

    def task_for(self, src: str, tgt: str) -> Any:
        key = (src, tgt)
        if key not in self._tasks:
            self._tasks[key] = _setup_task(self.args, self.files, self.info, src, tgt)
        return self._tasks[key]

    @property
    def max_source_positions(self) -> int:
        return int(self.model.max_positions()[0])

    @property
    def max_target_positions(self) -> int:
        return int(self.model.max_decoder_positions())


def _task_args(args: argparse.Namespace, files: ModelFiles, info: LangInfo, src: str, tgt: str) -> argparse.Namespace:
    a = copy.deepcopy(args)
    a.source_lang, a.target_lang = src, tgt
    if info.multilingual:
        a.fixed_dictionary = str(files.dictionary)
        a.source_dict = a.target_dict = None
        a.lang_dict = str(files.langs) if files.langs else getattr(a, "lang_dict", None)
        a.langtoks = None  # rebuilt from encoder_langtok/decoder_langtok by the data manager
    a.data = str(files.dictionary.parent)
    return a


def _setup_task(args: argparse.Namespace, files: ModelFiles, info: LangInfo, src: str, tgt: str) -> Any:
    from fairseq import tasks

    a = _task_args(args, files, info, src, tgt)
    if not info.multilingual:
        for lang in (src, tgt):
            if not (files.dictionary.parent / f"dict.{lang}.txt").is_file():
                raise InputError(
                    f"bilingual model needs dict.{lang}.txt next to {files.dictionary} (fairseq's layout)"
                )
    return tasks.setup_task(a)


def load_state(path: Path, trust: bool = False) -> dict[str, Any]:
    """The checkpoint's state through the safe loader; MoE checkpoints with all experts merged."""
    from mtkit import moe_checkpoint

    if moe_checkpoint.is_moe_checkpoint(path):
        logger.info("MoE checkpoint %s: loading the shared file and every expert into this process", path)
        return moe_checkpoint.load_moe_for_inference(str(path), trust=trust)
    from mtkit import checkpoint

    return checkpoint.load(str(path), map_location="cpu", trust=trust)


def build_model(files: ModelFiles, trust: bool = False, state: dict[str, Any] | None = None) -> LoadedModel:
    """Load ``files.checkpoint`` through the safe loader and build task and model in-process."""
    from mtkit import plugin

    plugin.register()
    if state is None:
        state = load_state(files.checkpoint, trust=trust)
    args = checkpoint_args(state)
    if getattr(args, "task", None) in MULTI_TASKS:
        files.langs = resolve_lang_file(files, args)
    info = lang_info(args, files.langs)
    if info.multilingual:
        src, tgt = (info.lang_pairs[0].split("-") if info.lang_pairs else (info.langs[0], info.langs[-1]))
    else:
        src, tgt = info.source_lang, info.target_lang
        if not src or not tgt:
            raise InputError("bilingual checkpoint does not record source_lang/target_lang")
    task = _setup_task(args, files, info, src, tgt)
    margs = copy.deepcopy(args)
    model = task.build_model(margs)
    try:
        model.load_state_dict(state["model"], strict=True, model_cfg=margs)
    except RuntimeError as e:
        raise MtkitError(
            f"checkpoint {files.checkpoint} does not fit the model built from its own configuration "
            f"with dictionary {files.dictionary} and language list {files.langs}: {str(e)[:500]}. "
            "Check that the dictionary and language list are the ones the model was trained with."
        ) from None
    model.eval()
    lm = LoadedModel(files=files, args=args, info=info, model=model,
                     dictionary=task.source_dictionary, tgt_dictionary=task.target_dictionary)
    lm._tasks[(src, tgt)] = task
    return lm
