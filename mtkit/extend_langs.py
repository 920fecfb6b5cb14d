"""``mtkit extend-langs``: add languages (and optionally SentencePiece pieces) to a pretrained mBART.

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

import argparse
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mtkit import checkpoint as ckpt_io
from mtkit.errors import InputError, MtkitError
from mtkit.langs import (
    UnknownLanguageError,
    mbart_lang_token,
    multilingual_lang_token,
    normalize,
    read_lang_file,
)

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
    """A language list from a file (one code a line) or a comma/space separated string.

    Codes are kept as written when they are mBART codes; Flores-200 codes are mapped to mBART codes.
    """
    if not isinstance(value, (str, os.PathLike)):
        codes = list(value)
    elif os.path.isfile(value):
        codes = read_lang_file(str(value))
    else:
        codes = [c for c in str(value).replace(",", " ").split() if c]
    out = [_lang_code(c) for c in codes]
    dups = sorted({c for c in out if out.count(c) > 1})
    if dups:
        raise InputError(f"language list {value!s} has duplicates: {' '.join(dups)}")
    return out


_CODE_SHAPE = re.compile(r"^[a-z]{2,3}_[A-Za-z]{2,4}$")


def _lang_code(code: str) -> str:
    """mBART code for ML50 languages (either form accepted); any other well-formed code (a language
    outside ML50, e.g. ast_ES or ast_Latn) is kept as written: extending beyond ML50 is the point."""
    try:
        return normalize(code)
    except UnknownLanguageError:
        if _CODE_SHAPE.match(code):
            logger.info("%s is not an ML50 language; its token will be %s", code, mbart_lang_token(code))
            return code
        raise


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
    _atomic_write_bytes(Path(out_path), proto.SerializeToString())
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


def _parse_init_from(items: Sequence[str] | dict[str, str] | None) -> dict[str, str]:
    if not items:
        return {}
    if isinstance(items, dict):
        return {_lang_code(k): _lang_code(v) for k, v in items.items()}
    out: dict[str, str] = {}
    for item in items:
        for part in item.replace(",", " ").split():
            if "=" not in part:
                raise InputError(f"--init-from expects NEW=OLD pairs such as gl_ES=es_XX, got {part!r}")
            new, old = part.split("=", 1)
            out[_lang_code(new)] = _lang_code(old)
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
    if init not in ("normal", "mean"):
        raise InputError(f"--init must be 'normal' or 'mean', not {init!r} (use --init-from NEW=OLD to copy)")
    if list(new_langs[: len(old_langs)]) != list(old_langs):
        raise InputError(
            "the new language list must start with the old one, in the same order (token ids follow the "
            f"order): old = {' '.join(old_langs)}; new starts with {' '.join(new_langs[:len(old_langs)])}")
    added_langs = list(new_langs[len(old_langs):])
    added_pieces = list(piece_parts or {})
    if not added_langs and not added_pieces:
        raise InputError("nothing to add: the new language list equals the old one and no pieces were given")
    copy_map = _parse_init_from(init_from)
    for new, old in copy_map.items():
        if new not in added_langs:
            raise InputError(f"--init-from {new}={old}: {new} is not among the added languages "
                             f"({' '.join(added_langs) or 'none'})")
        if old not in new_langs or new_langs.index(old) >= new_langs.index(new):
            raise InputError(f"--init-from {new}={old}: {old} must be an old language or an added one listed "
                             f"before {new}")

    model = state["model"]
    emb_key = next((k for k in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight") if k in model), None)
    if emb_key is None:
        raise InputError("checkpoint has no encoder.embed_tokens.weight / decoder.embed_tokens.weight: "
                         "not a fairseq encoder-decoder (mBART / transformer) checkpoint")
    rows, dim = model[emb_key].shape
    layout = infer_layout(rows, dict_symbols, old_langs, style)
    keys = vocab_tensors(model, rows, dim)

    sym_to_old = {s: NUM_SPECIALS + i for i, s in enumerate(dict_symbols)}
    n_new_pieces = len(added_pieces)
    # old id -> new id: pieces keep their id; language tokens and <mask> shift by the added pieces
    index_map = list(range(layout.lang_start)) + [i + n_new_pieces for i in range(layout.lang_start, rows)]
    if layout.has_mask:
        index_map[-1] = rows - 1 + n_new_pieces + len(added_langs)
    new_size = rows + n_new_pieces + len(added_langs)

    gen = torch.Generator().manual_seed(seed)
    lang_rows = {lang: layout.lang_start + i for i, lang in enumerate(old_langs)}
    init_desc: dict[str, str] = {}

    def build(old: torch.Tensor, randoms: torch.Tensor) -> torch.Tensor:
        old32 = old.float()
        new_piece_rows = []
        for piece in added_pieces:
            ids = [sym_to_old.get(p, 3) for p in piece_parts[piece]] or [3]  # 3 = <unk>
            new_piece_rows.append(old32[ids].mean(dim=0))
        lang_new: dict[str, torch.Tensor] = {}
        for j, lang in enumerate(added_langs):
            if lang in copy_map:
                src = copy_map[lang]
                lang_new[lang] = lang_new[src] if src in lang_new else old32[lang_rows[src]]
            elif init == "mean" and old_langs:
                lang_new[lang] = old32[layout.lang_start:layout.lang_start + len(old_langs)].mean(dim=0)
            else:
                lang_new[lang] = randoms[j]
        parts = [old32[: layout.lang_start]]
        if new_piece_rows:
            parts.append(torch.stack(new_piece_rows))
        parts.append(old32[layout.lang_start: layout.lang_start + len(old_langs)])
        if added_langs:
            parts.append(torch.stack([lang_new[lg] for lg in added_langs]))
        if layout.has_mask:
            parts.append(old32[-1:])
        out = torch.cat(parts).to(old.dtype)
        # keep the old rows bit for bit (the float round trip is exact, but say so explicitly)
        out[torch.tensor(index_map)] = old
        return out

    for lang in added_langs:
        init_desc[lang] = (f"copy of {copy_map[lang]}" if lang in copy_map
                           else "mean of old language tokens" if init == "mean" and old_langs
                           else f"normal(0, {dim}^-0.5)")

    replaced: dict[int, torch.Tensor] = {}  # storage ptr -> new tensor, to keep tied weights tied
    for k in keys:
        t = model[k]
        ptr = t.untyped_storage().data_ptr()
        if ptr not in replaced:
            randoms = torch.randn(max(len(added_langs), 1), dim, generator=gen) * dim ** -0.5
            replaced[ptr] = build(t, randoms)
        model[k] = replaced[ptr]
    if len(replaced) < len(keys):
        logger.info("tied vocabulary tensors stay tied: %d tensors, %d distinct", len(keys), len(replaced))

    _extend_optimizer_state(state, rows, dim, new_size, index_map)
    _update_cfg(state, new_langs)
    logger.info("extended %s: %d -> %d rows (+%d languages, +%d pieces)",
                ", ".join(keys), rows, new_size, len(added_langs), n_new_pieces)
    return ExtendResult(old_size=rows, new_size=new_size, old_langs=list(old_langs), new_langs=list(new_langs),
                        added_langs=added_langs, added_pieces=added_pieces, index_map=index_map,
                        tensors=keys, init=init_desc)


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


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _atomic_write_text(path: Path, text: str) -> None:
    _atomic_write_bytes(path, text.encode("utf-8"))


def write_dict(src_dict: str | os.PathLike, added_pieces: list[str], out_path: str | os.PathLike) -> None:
    """Copy a fairseq dict.txt, appending new pieces (count 1) at its end."""
    text = Path(src_dict).read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text += "\n"
    text += "".join(f"{p} 1\n" for p in added_pieces)
    _atomic_write_text(Path(out_path), text)


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
            tmp = out / ".spm.model.tmp"
            shutil.copyfile(spm_model, tmp)
            os.replace(tmp, out / "spm.model")
    write_dict(dictionary, result.added_pieces, out / "dict.txt")
    _atomic_write_text(out / "langs.txt", "\n".join(new) + "\n")
    ckpt_io.save(state, out / "model.pt")
    result.files = files
    manifest = {
        "source_checkpoint": str(checkpoint), "old_size": result.old_size, "new_size": result.new_size,
        "old_langs": old, "new_langs": new, "added_langs": result.added_langs, "init": result.init,
        "added_pieces": {p: (piece_parts or {}).get(p, []) for p in result.added_pieces},
        "tensors": result.tensors, "seed": seed, "files": files,
    }
    _atomic_write_text(out / "extend_langs.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    logger.info("wrote %s", ", ".join(files.values()))
    return result


# --------------------------------------------------------------------------------------------------
# CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Add languages to a pretrained mBART-style fairseq checkpoint, as the mBART-25 -> mBART-50 extension "
        "did: new language-token rows go before <mask> (which stays last) in the encoder and decoder "
        "embeddings and the output projection. Old tokens keep their ids and rows, so outputs for the old "
        "languages do not change. Writes OUT/model.pt, OUT/dict.txt, OUT/langs.txt (+ OUT/spm.model) "
        "and OUT/extend_langs.json.")
    parser.add_argument("--checkpoint", "-c", required=True, help="fairseq checkpoint (model.pt / checkpoint_*.pt)")
    parser.add_argument("--dict", required=True, dest="dictionary",
                        help="the model's dict.txt (SentencePiece pieces only, no language tokens)")
    parser.add_argument("--langs", required=True,
                        help="the model's language list: a file (one code a line, e.g. ML50_langs.txt) or codes")
    parser.add_argument("--new-langs", required=True,
                        help="the extended list (file or codes); must start with --langs in the same order")
    parser.add_argument("--out", "-o", required=True, help="output folder")
    parser.add_argument("--init", choices=("normal", "mean"), default="normal",
                        help="new language rows: normal(0, d^-0.5) as fairseq does (default), or the mean of "
                             "the existing language tokens")
    parser.add_argument("--init-from", action="append", metavar="NEW=OLD",
                        help="copy the row of a related language, e.g. gl_ES=es_XX (repeatable)")
    parser.add_argument("--add-pieces", metavar="FILE",
                        help="new SentencePiece pieces, one a line; extends the SPM model and the dictionary; each "
                             "new row starts as the mean of the pieces the old model split it into")
    parser.add_argument("--spm-model", help="the model's SentencePiece model (copied to OUT/spm.model)")
    parser.add_argument("--lang-tok-style", choices=("mbart", "multilingual"), default=None,
                        help="language token style, only recorded for messages (default: mbart)")
    parser.add_argument("--seed", type=int, default=1, help="seed for the random initialisation")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="load with full unpickling (only for checkpoints whose origin you trust)")


def run(args: argparse.Namespace) -> int:
    for path, what in ((args.checkpoint, "--checkpoint"), (args.dictionary, "--dict")):
        if not os.path.isfile(path):
            raise InputError(f"{what} {path}: no such file")
    if args.add_pieces and not os.path.isfile(args.add_pieces):
        raise InputError(f"--add-pieces {args.add_pieces}: no such file")
    res = extend_model_dir(
        args.checkpoint, args.dictionary, args.langs, args.new_langs, args.out, init=args.init,
        init_from=args.init_from, add_pieces=args.add_pieces, spm_model=args.spm_model,
        style=args.lang_tok_style, seed=args.seed, trust=args.trust_checkpoint)
    logger.info("added languages: %s; added pieces: %d; vocabulary %d -> %d rows",
                " ".join(f"{lg} ({res.init[lg]})" for lg in res.added_langs) or "none",
                len(res.added_pieces), res.old_size, res.new_size)
    return 0
