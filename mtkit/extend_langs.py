"""Add languages (and optionally SentencePiece pieces) to a pretrained mBART.

This is the surgery that turned mBART-25 into mBART-50 (fairseq ``BARTModel.upgrade_state_dict_named``):
the embedding matrix of a fairseq mBART-style model is laid out as

    [<s> <pad> </s> <unk>] [dict.txt pieces] [one token per language, in list order] [<mask>]

(``<mask>`` only for mBART-style models; ``translation_multi_simple_epoch`` with
``--lang-tok-style multilingual`` has no mask row). New language rows go after the old language rows
and before ``<mask>``, which stays last, so every old token keeps its id and its row: the extended
model computes exactly what the old one did for inputs in the old languages. New pieces (``--add-pieces``)
are appended to ``dict.txt``, so they sit before the language tokens; old ids are then remapped, and
:class:`ExtendResult.index_map` says how.

Every tensor whose first dimension is the vocabulary (encoder/decoder ``embed_tokens``, the output
projection, Adam's moment estimates for those) is extended the same way; tensors that were shared in
the checkpoint stay shared. Checkpoints are read and written only through :mod:`mtkit.checkpoint`.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mtkit import checkpoint as ckpt_io
from mtkit.errors import InputError, MtkitError
from mtkit.io import atomic_copy, write_bytes, write_text
from mtkit.langs import mbart_lang_token, multilingual_lang_token, parse_lang_list

logger = logging.getLogger(__name__)

NUM_SPECIALS = 4  # <s> <pad> </s> <unk>, which fairseq's Dictionary always puts first
LANG_TOKEN_STYLES = {"mbart": mbart_lang_token, "multilingual": multilingual_lang_token}


# --------------------------------------------------------------------------------------------------
# reading the inputs


def read_dict_symbols(path: str | os.PathLike) -> list[str]:
    """The symbols of a fairseq ``dict.txt`` (first field of each line), in order."""
    symbols: list[str] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            sym = line.rsplit(" ", 1)[0] if " " in line else line
            if line.endswith(" #fairseq:overwrite"):
                sym = line[: -len(" #fairseq:overwrite")].rsplit(" ", 1)[0]
            if not sym:
                raise InputError(f"{path}:{lineno}: empty symbol in dictionary line {line!r}")
            symbols.append(sym)
    return symbols


def read_langs(value: str | os.PathLike | Sequence[str]) -> list[str]:
    """The language list of a model (file, codes or sequence): mBART codes for ML50 languages,
    other well-formed codes (a language being added) as written."""
    return parse_lang_list(value, allow_other=True)


@dataclass
class VocabLayout:
    """Where the special, piece, language and mask rows of an embedding matrix are."""

    num_pieces: int  # symbols in dict.txt
    langs: list[str]
    has_mask: bool
    style: str = "mbart"

    @property
    def lang_start(self) -> int:
        return NUM_SPECIALS + self.num_pieces

    @property
    def size(self) -> int:
        return self.lang_start + len(self.langs) + int(self.has_mask)

    def lang_tokens(self) -> list[str]:
        return [LANG_TOKEN_STYLES[self.style](c) for c in self.langs]


def infer_layout(rows: int, dict_symbols: list[str], langs: list[str], style: str | None = None,
                 where: str = "checkpoint") -> VocabLayout:
    """Match an embedding row count against dict + language tokens (+ <mask>); explain mismatches."""
    # a dictionary that already lists language tokens / <mask> (hand-edited, issue #3474) would be
    # counted twice by fairseq: catch it here
    tokens_in_dict = [s for s in dict_symbols
                      if s == "<mask>" or (len(s) > 2 and ((s[0] == "[" and s[-1] == "]")
                                                            or (s.startswith("__") and s.endswith("__"))))]
    if tokens_in_dict:
        raise InputError(
            f"the dictionary already contains language/mask tokens ({' '.join(tokens_in_dict[:5])}"
            f"{' ...' if len(tokens_in_dict) > 5 else ''}); fairseq adds these itself from the language "
            "list, so they would be counted twice. Use the plain dict.txt (SentencePiece pieces only).")
    base = NUM_SPECIALS + len(dict_symbols)
    extra = rows - base - len(langs)
    if extra in (0, 1):
        return VocabLayout(len(dict_symbols), list(langs), has_mask=bool(extra), style=style or "mbart")
    if rows - base in (0, 1):
        msg = (f"{where} has {rows} embedding rows = {NUM_SPECIALS} specials + {len(dict_symbols)} dictionary "
               f"entries{' + <mask>' if rows - base else ''}, i.e. NO language tokens, but the language list "
               f"has {len(langs)} languages. Was it trained without language tokens (e.g. "
               "multilingual_denoising without --add-lang-token)?")
    elif extra > 1:
        msg = (f"{where} has {rows} embedding rows, {extra - 1} to {extra} more than {NUM_SPECIALS} specials + "
               f"{len(dict_symbols)} dictionary entries + {len(langs)} language tokens (+ <mask>): the language "
               f"list is probably shorter than the one the model was trained with (it would need "
               f"{rows - base - 1} or {rows - base} languages), or the dictionary is not the model's.")
    else:
        msg = (f"{where} has {rows} embedding rows, fewer than {NUM_SPECIALS} specials + {len(dict_symbols)} "
               f"dictionary entries + {len(langs)} language tokens: the dictionary is not the model's "
               f"({len(dict_symbols)} entries; the model has room for at most {rows - NUM_SPECIALS}) or the "
               "language list is longer than the model's.")
    raise InputError(msg)


def vocab_tensors(state: dict[str, torch.Tensor], rows: int, dim: int) -> list[str]:
    """Names of the model tensors indexed by vocabulary id (shape ``rows x dim``)."""
    return [k for k, v in state.items()
            if torch.is_tensor(v) and v.dim() == 2 and v.shape[0] == rows and v.shape[1] == dim]


# --------------------------------------------------------------------------------------------------
# SentencePiece


def _load_spm_proto(path: str | os.PathLike) -> Any:
    try:
        from sentencepiece import sentencepiece_model_pb2
    except ImportError as e:  # protobuf missing
        raise MtkitError(f"--add-pieces needs the 'protobuf' package to edit SentencePiece models ({e}); "
                         "install it with: pip install protobuf") from None
    proto = sentencepiece_model_pb2.ModelProto()
    with open(path, "rb") as f:
        proto.ParseFromString(f.read())
    return proto


def read_pieces_file(path: str | os.PathLike) -> list[str]:
    """New pieces, one a line (first whitespace-separated field; '#' starts a comment line)."""
    out: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if s and not s.startswith("#"):
                p = s.split()[0]
                if p not in out:
                    out.append(p)
    return out


def decompose_pieces(spm_model: str | os.PathLike, pieces: list[str]) -> dict[str, list[str]]:
    """How the *old* SentencePiece model splits the surface text of each new piece."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    out: dict[str, list[str]] = {}
    for piece in pieces:
        word_start = piece.startswith("\u2581")
        parts = sp.encode(piece.replace("\u2581", " ").strip() or piece, out_type=str)
        if not word_start and parts:
            # the encoder adds a word-start marker; a mid-word piece should not carry it
            if parts[0] == "\u2581":
                parts = parts[1:]
            elif parts[0].startswith("\u2581") and sp.piece_to_id(parts[0][1:]) != sp.unk_id():
                parts[0] = parts[0][1:]
        out[piece] = parts
    return out


def extend_spm_model(spm_model: str | os.PathLike, pieces: list[str], out_path: str | os.PathLike) -> list[str]:
    """Write a copy of the SPM model with ``pieces`` appended; returns the pieces actually added.

    Unigram models get NORMAL pieces scored like the most likely existing piece, so the Viterbi
    segmentation prefers them; other model types (BPE) get USER_DEFINED pieces, which are always
    matched as a whole.
    """
    proto = _load_spm_proto(spm_model)
    existing = {p.piece for p in proto.pieces}
    normal = proto.SentencePiece.Type.NORMAL
    user = proto.SentencePiece.Type.USER_DEFINED
    unigram = proto.trainer_spec.model_type == proto.trainer_spec.UNIGRAM
    best = max((p.score for p in proto.pieces if p.type == normal), default=0.0)
    added = []
    for piece in pieces:
        if piece in existing:
            logger.info("piece %r is already in %s; not added", piece, spm_model)
            continue
        new = proto.pieces.add()
        new.piece = piece
        new.score = best if unigram else 0.0
        new.type = normal if unigram else user
        added.append(piece)
    write_bytes(Path(out_path), proto.SerializeToString())
    return added


# --------------------------------------------------------------------------------------------------
# the surgery


@dataclass
class ExtendResult:
    """What :func:`extend_checkpoint` / :func:`extend_model_dir` did."""

    old_size: int
    new_size: int
    old_langs: list[str]
    new_langs: list[str]
    added_langs: list[str]
    added_pieces: list[str]
    index_map: list[int]  # old vocabulary id -> new vocabulary id
    tensors: list[str]
    init: dict[str, str] = field(default_factory=dict)  # added language -> how it was initialised
    files: dict[str, str] = field(default_factory=dict)


def _code(code: str) -> str:
    return read_langs([code])[0]


def _parse_init_from(items: Sequence[str] | dict[str, str] | None) -> dict[str, str]:
    if not items:
        return {}
    if isinstance(items, dict):
        return {_code(k): _code(v) for k, v in items.items()}
    out: dict[str, str] = {}
    for item in items:
        for part in item.replace(",", " ").split():
            if "=" not in part:
                raise InputError(f"--init-from expects NEW=OLD pairs such as gl_ES=es_XX, got {part!r}")
            new, old = part.split("=", 1)
            out[_code(new)] = _code(old)
    return out


def _check_request(old_langs: list[str], new_langs: list[str], init: str, copy_map: dict[str, str],
                   added_pieces: list[str]) -> list[str]:
    """Validate what is asked for; return the added languages."""
    if init not in ("normal", "mean"):
        raise InputError(f"--init must be 'normal' or 'mean', not {init!r} (use --init-from NEW=OLD to copy)")
    if list(new_langs[: len(old_langs)]) != list(old_langs):
        raise InputError(
            "the new language list must start with the old one, in the same order (token ids follow the "
            f"order): old = {' '.join(old_langs)}; new starts with {' '.join(new_langs[:len(old_langs)])}")
    added_langs = list(new_langs[len(old_langs):])
    if not added_langs and not added_pieces:
        raise InputError("nothing to add: the new language list equals the old one and no pieces were given")
    for new, old in copy_map.items():
        if new not in added_langs:
            raise InputError(f"--init-from {new}={old}: {new} is not among the added languages "
                             f"({' '.join(added_langs) or 'none'})")
        if old not in new_langs or new_langs.index(old) >= new_langs.index(new):
            raise InputError(f"--init-from {new}={old}: {old} must be an old language or an added one listed "
                             f"before {new}")
    return added_langs


def _embedding_key(model: dict[str, Any]) -> str:
    for k in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight"):
        if k in model:
            return k
    raise InputError("checkpoint has no encoder.embed_tokens.weight / decoder.embed_tokens.weight: "
                     "not a fairseq encoder-decoder (mBART / transformer) checkpoint")


@dataclass
class _RowPlan:
    """How the rows of one vocabulary tensor are extended (the same for every such tensor)."""

    layout: VocabLayout
    old_langs: list[str]
    added_langs: list[str]
    added_pieces: list[str]
    piece_parts: dict[str, list[str]]
    dict_symbols: list[str]
    copy_map: dict[str, str]
    init: str

    @property
    def index_map(self) -> list[int]:
        """old id -> new id: pieces keep their id; language tokens and <mask> shift by the added pieces."""
        rows, start, n_pieces = self.layout.size, self.layout.lang_start, len(self.added_pieces)
        out = list(range(start)) + [i + n_pieces for i in range(start, rows)]
        if self.layout.has_mask:
            out[-1] = rows - 1 + n_pieces + len(self.added_langs)
        return out

    @property
    def new_size(self) -> int:
        return self.layout.size + len(self.added_pieces) + len(self.added_langs)

    def describe_init(self, dim: int) -> dict[str, str]:
        return {lang: (f"copy of {self.copy_map[lang]}" if lang in self.copy_map
                       else "mean of old language tokens" if self.init == "mean" and self.old_langs
                       else f"normal(0, {dim}^-0.5)") for lang in self.added_langs}

    def _piece_rows(self, old32: torch.Tensor) -> list[torch.Tensor]:
        """A new piece starts as the mean of the old pieces it used to be split into."""
        sym_to_old = {s: NUM_SPECIALS + i for i, s in enumerate(self.dict_symbols)}
        return [old32[[sym_to_old.get(p, 3) for p in self.piece_parts[piece]] or [3]].mean(dim=0)  # 3 = <unk>
                for piece in self.added_pieces]

    def _lang_rows(self, old32: torch.Tensor, randoms: torch.Tensor) -> list[torch.Tensor]:
        start = self.layout.lang_start
        rows: dict[str, torch.Tensor] = {}
        for j, lang in enumerate(self.added_langs):
            if lang in self.copy_map:
                src = self.copy_map[lang]
                rows[lang] = rows[src] if src in rows else old32[start + self.old_langs.index(src)]
            elif self.init == "mean" and self.old_langs:
                rows[lang] = old32[start:start + len(self.old_langs)].mean(dim=0)
            else:
                rows[lang] = randoms[j]
        return [rows[lg] for lg in self.added_langs]

    def extend(self, old: torch.Tensor, randoms: torch.Tensor) -> torch.Tensor:
        """[specials + pieces] [new pieces] [old language tokens] [new language tokens] [<mask>]."""
        old32 = old.float()
        start = self.layout.lang_start
        parts = [old32[:start]]
        pieces = self._piece_rows(old32)
        if pieces:
            parts.append(torch.stack(pieces))
        parts.append(old32[start:start + len(self.old_langs)])
        if self.added_langs:
            parts.append(torch.stack(self._lang_rows(old32, randoms)))
        if self.layout.has_mask:
            parts.append(old32[-1:])
        out = torch.cat(parts).to(old.dtype)
        # keep the old rows bit for bit (the float round trip is exact, but say so explicitly)
        out[torch.tensor(self.index_map)] = old
        return out


def extend_state(
    state: dict[str, Any],
    dict_symbols: list[str],
    old_langs: list[str],
    new_langs: list[str],
    init: str = "normal",
    init_from: Sequence[str] | dict[str, str] | None = None,
    piece_parts: dict[str, list[str]] | None = None,
    style: str | None = None,
    seed: int = 1,
) -> ExtendResult:
    """Extend a loaded fairseq checkpoint dict in place (model weights and Adam state).

    ``piece_parts`` maps each new piece to the old pieces it used to be split into (its row starts as
    their mean). ``init`` is 'normal' (N(0, d^-0.5), as fairseq), 'mean' (mean of the old language
    rows) for languages that ``init_from`` does not name.
    """
    copy_map = _parse_init_from(init_from)
    added_pieces = list(piece_parts or {})
    added_langs = _check_request(old_langs, new_langs, init, copy_map, added_pieces)
    model = state["model"]
    rows, dim = model[_embedding_key(model)].shape
    layout = infer_layout(rows, dict_symbols, old_langs, style)
    plan = _RowPlan(layout, list(old_langs), added_langs, added_pieces, dict(piece_parts or {}),
                    dict_symbols, copy_map, init)
    keys = vocab_tensors(model, rows, dim)
    gen = torch.Generator().manual_seed(seed)
    replaced: dict[int, torch.Tensor] = {}  # storage ptr -> new tensor, to keep tied weights tied
    for k in keys:
        ptr = model[k].untyped_storage().data_ptr()
        if ptr not in replaced:
            randoms = torch.randn(max(len(added_langs), 1), dim, generator=gen) * dim ** -0.5
            replaced[ptr] = plan.extend(model[k], randoms)
        model[k] = replaced[ptr]
    if len(replaced) < len(keys):
        logger.info("tied vocabulary tensors stay tied: %d tensors, %d distinct", len(keys), len(replaced))

    _extend_optimizer_state(state, rows, dim, plan.new_size, plan.index_map)
    _update_cfg(state, new_langs)
    logger.info("extended %s: %d -> %d rows (+%d languages, +%d pieces)",
                ", ".join(keys), rows, plan.new_size, len(added_langs), len(added_pieces))
    return ExtendResult(old_size=rows, new_size=plan.new_size, old_langs=list(old_langs),
                        new_langs=list(new_langs), added_langs=added_langs, added_pieces=added_pieces,
                        index_map=plan.index_map, tensors=keys, init=plan.describe_init(dim))


def _extend_optimizer_state(state: dict[str, Any], rows: int, dim: int, new_size: int,
                            index_map: list[int]) -> None:
    """Give Adam's moments zero rows for the new tokens, so --restore-file can keep the optimizer."""
    opt = state.get("last_optimizer_state")
    if not isinstance(opt, dict) or not isinstance(opt.get("state"), dict):
        return
    idx = torch.tensor(index_map)
    for pstate in opt["state"].values():
        if not isinstance(pstate, dict):
            continue
        for name, v in list(pstate.items()):
            if torch.is_tensor(v) and v.dim() == 2 and tuple(v.shape) == (rows, dim):
                new = v.new_zeros(new_size, dim)
                new[idx] = v
                pstate[name] = new
            elif torch.is_tensor(v) and v.dim() == 1 and v.numel() > rows * dim and v.numel() % dim == 0:
                # flattened fp16 optimizer state: the layout cannot be recovered safely
                logger.warning("optimizer state is flattened; dropping it (continue with --reset-optimizer)")
                state["last_optimizer_state"] = None
                return


def _update_cfg(state: dict[str, Any], new_langs: list[str]) -> None:
    """Record the new language list where fairseq keeps it (task.langs for multilingual_denoising)."""
    for holder in (state.get("cfg", {}) or {}).get("task"), state.get("args"):
        if holder is None:
            continue
        try:
            if getattr(holder, "langs", None) and isinstance(holder.langs, str):
                holder.langs = ",".join(new_langs)
        except Exception:  # omegaconf read-only nodes
            logger.debug("could not update langs in checkpoint cfg")


def write_dict(src_dict: str | os.PathLike, added_pieces: list[str], out_path: str | os.PathLike) -> None:
    """Copy a fairseq dict.txt, appending new pieces (count 1) at its end."""
    text = Path(src_dict).read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text += "\n"
    text += "".join(f"{p} 1\n" for p in added_pieces)
    write_text(Path(out_path), text)


def extend_model_dir(
    checkpoint: str | os.PathLike,
    dictionary: str | os.PathLike,
    old_langs: str | os.PathLike | Sequence[str],
    new_langs: str | os.PathLike | Sequence[str],
    out_dir: str | os.PathLike,
    init: str = "normal",
    init_from: Sequence[str] | dict[str, str] | None = None,
    add_pieces: str | os.PathLike | None = None,
    spm_model: str | os.PathLike | None = None,
    style: str | None = None,
    seed: int = 1,
    trust: bool = False,
) -> ExtendResult:
    """Python API of ``mtkit extend-langs``: write ``out_dir/{model.pt,dict.txt,langs.txt}``
    (+ ``spm.model`` when given, extended with ``add_pieces``) and ``extend_langs.json``."""
    out = Path(out_dir)
    old = read_langs(old_langs)
    new = read_langs(new_langs)
    symbols = read_dict_symbols(dictionary)
    piece_parts: dict[str, list[str]] | None = None
    if add_pieces:
        if not spm_model:
            raise InputError("--add-pieces needs --spm-model (the SentencePiece model the dictionary was built with)")
        pieces = read_pieces_file(add_pieces)
        known = set(symbols)
        new_pieces = [p for p in pieces if p not in known]
        for p in pieces:
            if p in known:
                logger.info("piece %r is already in %s; skipped", p, dictionary)
        piece_parts = decompose_pieces(spm_model, new_pieces)
    state = ckpt_io.load(checkpoint, trust=trust)
    result = extend_state(state, symbols, old, new, init=init, init_from=init_from,
                          piece_parts=piece_parts, style=style, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    files = {"checkpoint": str(out / "model.pt"), "dict": str(out / "dict.txt"), "langs": str(out / "langs.txt")}
    if spm_model:
        files["spm"] = str(out / "spm.model")
        if result.added_pieces:
            added = extend_spm_model(spm_model, result.added_pieces, out / "spm.model")
            missing = sorted(set(result.added_pieces) - set(added))
            if missing:
                raise InputError(f"pieces already in {spm_model} but not in {dictionary}: {' '.join(missing)}; "
                                 "the dictionary does not belong to this SentencePiece model")
        else:
            atomic_copy(spm_model, out / "spm.model")
    write_dict(dictionary, result.added_pieces, out / "dict.txt")
    write_text(out / "langs.txt", "\n".join(new) + "\n")
    ckpt_io.save(state, out / "model.pt")
    result.files = files
    manifest = {
        "source_checkpoint": str(checkpoint), "old_size": result.old_size, "new_size": result.new_size,
        "old_langs": old, "new_langs": new, "added_langs": result.added_langs, "init": result.init,
        "added_pieces": {p: (piece_parts or {}).get(p, []) for p in result.added_pieces},
        "tensors": result.tensors, "seed": seed, "files": files,
    }
    write_text(out / "extend_langs.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    logger.info("wrote %s", ", ".join(files.values()))
    return result
