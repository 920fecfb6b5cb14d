"""Batched translation with fairseq's SequenceGenerator (in-process) or CTranslate2.

Both engines share the contract of :meth:`Translator.translate_lines`: one output per input line,
in order; empty input lines give empty outputs without running the model; over-long lines are
truncated to the model's positions with a warning, never dropped.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mtkit.errors import InputError, MtkitError
from mtkit.model_folder import LangInfo, build_model, find_files
from mtkit.translate.workers import WorkerPool, cuda_indices, resolve_devices

logger = logging.getLogger(__name__)


RANKINGS = ("fairseq", "ct2")


@dataclass
class Options:
    beam: int = 5
    lenpen: float = 1.0
    max_len: int = 200
    nbest: int = 1
    max_tokens: int = 4000
    #: lines per batch at most; None: the engine's default (fairseq 128, CTranslate2 32)
    max_sentences: int | None = None
    #: CTranslate2 engine only: "fairseq" ranks hypotheses as fairseq does (the forced target-language
    #: token's log-probability counted in the length-normalised score; one more encoder pass over the
    #: lines whose top hypothesis that can change); "ct2" keeps CTranslate2's own ranking (the token
    #: counted as 0)
    ranking: str = "fairseq"

    def __post_init__(self) -> None:
        for name, low in (("beam", 1), ("nbest", 1), ("max_len", 1), ("max_tokens", 1)):
            if getattr(self, name) < low:
                flag = name.replace("_", "-")
                raise InputError(f"--{flag} must be at least {low} (got {getattr(self, name)})")
        if self.max_sentences is not None and self.max_sentences < 1:
            raise InputError(f"--batch-size must be at least 1 (got {self.max_sentences})")
        if self.ranking not in RANKINGS:
            raise InputError(f"--ct2-ranking must be one of {', '.join(RANKINGS)} (got {self.ranking!r})")
        if self.nbest > self.beam:
            raise InputError(f"--nbest {self.nbest} is more than --beam {self.beam}: beam search keeps "
                             f"only {self.beam} hypotheses; raise --beam or lower --nbest")


class _Spm:
    def __init__(self, path: Path | None):
        self.sp = None
        if path is not None:
            import sentencepiece as spm

            self.sp = spm.SentencePieceProcessor(model_file=str(path))

    def encode(self, line: str) -> list[str]:
        return self.sp.encode(line, out_type=str) if self.sp else line.split()

    def encode_many(self, lines: list[str]) -> list[list[str]]:
        """Pieces of each line, in one call into SentencePiece."""
        if self.sp is None:
            return [line.split() for line in lines]
        return self.sp.encode(lines, out_type=str, num_threads=1) if lines else []

    def decode(self, pieces: list[str]) -> str:
        if self.sp is None:
            return " ".join(pieces)
        return self.sp.decode_pieces(pieces)

    def decode_many(self, pieces: list[list[str]]) -> list[str]:
        if self.sp is None:
            return [" ".join(p) for p in pieces]
        return self.sp.decode_pieces(pieces, num_threads=1) if pieces else []


def _batches(lengths: list[int], order: list[int], max_tokens: int, max_sentences: int) -> Iterator[list[int]]:
    """Group indices (sorted by length) so that batch_size * longest <= max_tokens."""
    batch: list[int] = []
    longest = 0
    for i in order:
        n = lengths[i]
        if batch and (max(longest, n) * (len(batch) + 1) > max_tokens or len(batch) >= max_sentences):
            yield batch
            batch, longest = [], 0
        batch.append(i)
        longest = max(longest, n)
    if batch:
        yield batch


def _file_id(path: Path) -> dict[str, Any]:
    """What identifies a model file for a resumed run: its path and size."""
    return {"path": str(path.resolve()), "bytes": path.stat().st_size}


class Translator:
    """Translate lines with a model folder (fairseq engine) or an exported CTranslate2 folder.

    >>> t = Translator.from_folder("runs/tiny", src_lang="en_XX", tgt_lang="de_DE")
    >>> t.translate_lines(["the cat", "", "a dog"])
    """

    def __init__(self, engine: Any, info: LangInfo, spm: _Spm, src: str, tgt: str, options: Options,
                 max_src_positions: int, model_id: dict[str, Any] | None = None):
        self.engine, self.info, self.spm = engine, info, spm
        self.options = options
        self.max_src_positions = max_src_positions
        self.model_id = model_id or {}
        self.set_direction(src, tgt)

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_folder(cls, model: str | os.PathLike, src_lang: str, tgt_lang: str, *, engine: str = "fairseq",
                    options: Options | None = None, trust_checkpoint: bool = False, device: str = "cpu",
                    dtype: str = "fp32", checkpoint: str | None = None, dict_path: str | None = None,
                    spm_path: str | None = None, langs_path: str | None = None, ct2_dir: str | None = None,
                    threads: int = 1) -> Translator:
        """``device``: ``cpu``, ``cuda`` (every visible GPU, one worker each), ``cuda:N`` or a
        comma-separated list of them (see :func:`mtkit.translate.workers.resolve_devices`)."""
        options = options or Options()
        if engine == "ct2":
            folder = Path(ct2_dir) if ct2_dir else _find_ct2(Path(model))
            eng = Ct2Engine(folder, device=device, threads=threads, dtype=dtype)
            spm = _Spm(Path(spm_path) if spm_path else eng.spm_path)
            return cls(eng, eng.info, spm, src_lang, tgt_lang, options, eng.max_source_positions,
                       model_id={"engine": "ct2", **_file_id(folder / "model.bin")})
        if engine != "fairseq":
            raise InputError(f"unknown engine {engine!r}: use fairseq or ct2")
        import torch

        devices = resolve_devices(device, torch.cuda.device_count)
        torch.set_num_threads(max(1, threads))
        files = find_files(model, checkpoint=checkpoint, dict_path=dict_path, spm_path=spm_path,
                           langs_path=langs_path)
        lm = build_model(files, trust=trust_checkpoint)
        eng = FairseqEngine(lm, devices=devices, dtype=dtype)
        return cls(eng, lm.info, _Spm(files.spm), src_lang, tgt_lang, options, lm.max_source_positions,
                   model_id={"engine": "fairseq", **_file_id(files.checkpoint)})

    def set_direction(self, src: str, tgt: str) -> None:
        self.src = self.info.resolve(src, "source")
        self.tgt = self.info.resolve(tgt, "target")
        self.info.check_direction(self.src, self.tgt)
        self.engine.set_direction(self.src, self.tgt)

    @property
    def languages(self) -> list[str]:
        return list(self.info.langs)

    def settings(self) -> dict[str, Any]:
        """Everything that decides the output text (model, direction, options, precision): a run
        resumed with other settings would not continue the same output."""
        return {**self.model_id, "src": self.src, "tgt": self.tgt, "options": asdict(self.options),
                "dtype": self.engine.dtype, "device": self.engine.device_kind,
                "batching": self.engine.batching(self.options)}

    # ---- translation ----------------------------------------------------------------------
    def _budget(self) -> int:
        """Room for SPM pieces once language token and </s> are added."""
        extra = 1 + (1 if self.info.multilingual and self.info.encoder_langtok else 0)
        return self.max_src_positions - extra

    def translate_lines(self, lines: Iterable[str], progress: bool = False,
                        nbest: bool = False) -> list[str] | list[list[str]]:
        """Translate ``lines``; returns one string per line (or a list of n-best strings)."""
        lines = list(lines)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(lines), unit="line", desc=f"{self.src}-{self.tgt}", leave=False)
        try:
            results = self.translate_chunk(lines, on_lines=bar.update if bar is not None else None)
        finally:
            if bar is not None:
                bar.close()
        if nbest:
            return results
        return [r[0] for r in results]

    def translate_chunk(self, lines: list[str], on_lines: Callable[[int], Any] | None = None,
                        first_line: int = 1) -> list[list[str]]:
        """The ``options.nbest`` hypotheses of each line, in order (empty strings for blank lines).

        Lines are sorted by length for batching and put back in order; ``on_lines(n)`` is called as
        batches finish (n lines each, blank lines included); ``first_line`` numbers lines in warnings.
        """
        n_best = self.options.nbest
        pieces = self._encode(lines, first_line)
        results: list[list[str]] = [[""] * n_best for _ in lines]
        todo = [i for i, p in enumerate(pieces) if p]
        if on_lines is not None and len(todo) < len(lines):
            on_lines(len(lines) - len(todo))
        order = sorted(todo, key=lambda i: len(pieces[i]))
        lengths = [len(p) + 2 for p in pieces]
        batches = self.engine.batches(lengths, order, self.options)
        outs = self.engine.translate_batches([[pieces[i] for i in b] for b in batches], self.options)
        for batch, hyps_of in zip(batches, outs):
            flat = [h for hyps in hyps_of for h in hyps[:n_best]]
            texts = iter(self.spm.decode_many(flat))
            for i, hyps in zip(batch, hyps_of):
                got = [next(texts) for _ in hyps[:n_best]]
                results[i] = got + [""] * (n_best - len(got))
            if on_lines is not None:
                on_lines(len(batch))
        return results

    def _encode(self, lines: list[str], first_line: int) -> list[list[str]]:
        """SentencePiece pieces of each line (``[]`` for a blank line), truncated to the model's positions."""
        budget = self._budget()
        texts = [line.rstrip("\r\n").strip() for line in lines]
        filled = [i for i, t in enumerate(texts) if t]
        pieces: list[list[str]] = [[] for _ in lines]
        for i, p in zip(filled, self.spm.encode_many([texts[i] for i in filled])):
            if len(p) > budget:
                logger.warning("line %d has %d pieces, more than the model's %d positions allow: "
                               "truncated to %d", first_line + i, len(p), self.max_src_positions, budget)
                p = p[:budget]
            pieces[i] = p
        return pieces


@dataclass
class _Replica:
    """One copy of the fairseq model on one device, with its generators (one per option set)."""

    model: Any
    device: Any  # torch.device
    generators: dict[tuple, Any] = field(default_factory=dict)


class FairseqEngine:
    """fairseq's SequenceGenerator on a model built in-process (no hub interface).

    One model replica per device of ``devices``; batches go to whichever replica is free
    (:class:`~mtkit.translate.workers.WorkerPool`).
    """

    max_sentences = 128

    def __init__(self, lm: Any, devices: list[str] | None = None, dtype: str = "fp32"):
        import torch

        devices = devices or ["cpu"]
        self.lm = lm
        self.device_kind = "cuda" if devices[0].startswith("cuda") else "cpu"
        if self.device_kind == "cuda" and not torch.cuda.is_available():
            raise MtkitError("--device cuda asked for, but torch sees no CUDA device")
        if dtype != "fp32" and self.device_kind != "cuda":
            raise InputError(f"--{dtype} needs --device cuda")
        self.dtype = dtype
        # copies are made on the CPU before the original moves to its own device
        models = [lm.model] + [copy.deepcopy(lm.model) for _ in devices[1:]]
        self.replicas = [_Replica(self._place(m, torch.device(d), dtype), torch.device(d))
                         for m, d in zip(models, devices)]
        self.model = self.replicas[0].model
        self.pool = WorkerPool(self.replicas)
        self.task = None

    @staticmethod
    def _place(model: Any, device: Any, dtype: str) -> Any:
        import torch

        model = model.to(device)
        if dtype == "fp16":
            model = model.half()
        elif dtype == "bf16":
            model = model.to(torch.bfloat16)
        return model

    def batching(self, o: Options) -> dict[str, int]:
        """What decides the batches of a chunk (each batch goes whole to one replica, so the number of
        replicas does not change them)."""
        return {"max_tokens": o.max_tokens, "max_sentences": o.max_sentences or self.max_sentences}

    def batches(self, lengths: list[int], order: list[int], o: Options) -> list[list[int]]:
        """Batches by tokens (``max_tokens``) and lines (``max_sentences``) over length-sorted ``order``."""
        return list(_batches(lengths, order, o.max_tokens, o.max_sentences or self.max_sentences))

    def set_direction(self, src: str, tgt: str) -> None:
        self.task = self.lm.task_for(src, tgt)
        for r in self.replicas:
            r.generators = {}

    def _generator(self, replica: _Replica, o: Options) -> Any:
        key = (o.beam, o.lenpen, o.max_len, o.nbest)
        if key not in replica.generators:
            gargs = argparse.Namespace(beam=o.beam, lenpen=o.lenpen, max_len_a=0, max_len_b=o.max_len,
                                       min_len=1, nbest=max(o.nbest, 1), unkpen=0, sampling=False,
                                       unnormalized=False, no_repeat_ngram_size=0, match_source_len=False,
                                       temperature=1.0, keep_inference_langtok=False)
            replica.generators[key] = self.task.build_generator([replica.model], gargs)
        return replica.generators[key]

    def translate_batches(self, batches: list[list[list[str]]], o: Options) -> Iterator[list[list[list[str]]]]:
        """Each batch's hypotheses (as pieces), in batch order, the batches spread over the replicas."""
        return self.pool.map(lambda replica, batch: self._translate(replica, batch, o), batches)

    def translate(self, batch: list[list[str]], o: Options) -> list[list[list[str]]]:
        return next(iter(self.translate_batches([batch], o)))

    def _translate(self, replica: _Replica, batch: list[list[str]], o: Options) -> list[list[list[str]]]:
        import torch
        from fairseq import utils

        d = self.task.source_dictionary
        toks = [d.encode_line(" ".join(p), add_if_not_exist=False, append_eos=True).long() for p in batch]
        ds = self.task.build_dataset_for_inference(toks, [t.numel() for t in toks])
        sample = ds.collater([ds[i] for i in range(len(toks))])
        if replica.device.type == "cuda":
            sample = utils.move_to_cuda(sample, device=replica.device)
        gen = self._generator(replica, o)
        with torch.inference_mode():
            hypos = self.task.inference_step(gen, [replica.model], sample)
        tgt_dict = self.task.target_dictionary
        out: list[list[list[str]]] = [[] for _ in batch]
        for sid, hs in zip(sample["id"].tolist(), hypos):
            for h in hs:
                s = tgt_dict.string(h["tokens"].int().cpu(), extra_symbols_to_ignore=gen.symbols_to_strip_from_output)
                out[sid].append(s.split())
        return out


def _find_ct2(model: Path) -> Path:
    from mtkit.export.ct2 import CT2_META

    for cand in (model, model / "ct2"):
        if (cand / CT2_META).is_file() and (cand / "model.bin").is_file():
            return cand
    raise InputError(
        f"{model} is not a CTranslate2 export from `mtkit export ct2` (no {CT2_META} and model.bin "
        f"there or under {model}/ct2); run `mtkit export ct2 -m MODEL --out DIR` first"
    )


class Ct2Engine:
    """CTranslate2 on an exported folder; language tokens placed as fairseq did in training.

    On CPU, ``threads`` are CTranslate2 workers (``inter_threads``) of one intra-op thread each, each
    translating its own batch of ``max_sentences`` lines: for files this uses the cores better than
    intra-op threads (benchmarks/translate_speed/README.md has the measurements). The workers share
    the weights. With CUDA devices, CTranslate2 keeps one replica per GPU of the device list. Lines
    come in chunks of :meth:`chunk_lines` so the workers stay busy.
    """

    max_sentences = 32  # lines per CTranslate2 batch (the batch size chosen in benchmarks/translate_speed)

    def __init__(self, folder: Path, device: str = "cpu", threads: int = 1, dtype: str = "fp32"):
        import ctranslate2

        from mtkit.export.ct2 import CT2_META

        devices = resolve_devices(device, ctranslate2.get_cuda_device_count)
        meta = json.loads((folder / CT2_META).read_text(encoding="utf-8"))
        self.meta = meta
        self.info = LangInfo(**meta["lang_info"])
        self.max_source_positions = int(meta["max_source_positions"])
        self.max_target_positions = int(meta["max_target_positions"])
        self.spm_path = folder / meta["spm"] if meta.get("spm") else None
        compute = {"fp32": "default", "fp16": "float16", "bf16": "bfloat16"}[dtype]
        self.dtype = dtype
        if devices[0] == "cpu":
            if dtype != "fp32":
                raise InputError(f"--{dtype} needs --device cuda")
            self.device_kind = "cpu"
            workers = max(1, threads) * len(devices)
            self.translator = ctranslate2.Translator(str(folder), device="cpu", compute_type=compute,
                                                     intra_threads=1, inter_threads=workers)
        else:
            self.device_kind = "cuda"
            workers = len(devices)
            self.translator = ctranslate2.Translator(str(folder), device="cuda", compute_type=compute,
                                                     device_index=cuda_indices(devices))
        self.workers = workers
        self.src_prefix: list[str] = []
        self.tgt_prefix: list[str] = []

    def chunk_lines(self, o: Options) -> int:
        """Lines handed to CTranslate2 per call: 8 batches per worker (progress is updated per call)."""
        return 8 * self.workers * (o.max_sentences or self.max_sentences)

    def batching(self, o: Options) -> dict[str, int]:
        """What decides the batches: CTranslate2 sorts and cuts each call's lines itself, and the lines
        per call grow with the workers."""
        return {"max_sentences": o.max_sentences or self.max_sentences, "lines_per_call": self.chunk_lines(o)}

    def batches(self, lengths: list[int], order: list[int], o: Options) -> list[list[int]]:
        """Chunks of the length-sorted ``order``; CTranslate2 batches and parallelises inside each."""
        chunk = self.chunk_lines(o)
        return [order[i:i + chunk] for i in range(0, len(order), chunk)]

    def translate_batches(self, batches: list[list[list[str]]], o: Options) -> Iterator[list[list[list[str]]]]:
        for batch in batches:
            yield self.translate(batch, o)

    def set_direction(self, src: str, tgt: str) -> None:
        info = self.info
        self.src_prefix, self.tgt_prefix = [], []
        if info.multilingual:
            if info.encoder_langtok == "src":
                self.src_prefix = [info.token(src)]
            elif info.encoder_langtok == "tgt":
                self.src_prefix = [info.token(tgt)]
            if info.decoder_langtok:
                self.tgt_prefix = [info.token(tgt)]

    def translate(self, batch: list[list[str]], o: Options) -> list[list[list[str]]]:
        source = [self.src_prefix + p for p in batch]
        kw: dict[str, Any] = {}
        if self.tgt_prefix:
            kw["target_prefix"] = [list(self.tgt_prefix) for _ in batch]
        max_len = min(o.max_len, self.max_target_positions - 1)
        mbs = o.max_sentences or self.max_sentences
        n = len(self.tgt_prefix)
        rescore = bool(self.tgt_prefix) and o.lenpen != 0 and o.ranking == "fairseq"
        k = max(o.nbest, o.beam if rescore else 1, 1)
        res = self.translator.translate_batch(
            source, beam_size=o.beam, length_penalty=o.lenpen, num_hypotheses=k, return_scores=True,
            max_decoding_length=max_len + n, min_decoding_length=0, max_batch_size=mbs, **kw)
        hyps = [r.hypotheses for r in res]  # each access converts to Python lists: do it once
        if not rescore:
            return [[h[n:] for h in hs[: max(o.nbest, 1)]] for hs in hyps]
        # CTranslate2 gives forced prefix tokens score 0 but still counts them in the length
        # normalisation; fairseq adds their log-probability c. Add it back (the same c for every
        # hypothesis of a sentence, so only the ranking between lengths changes) and re-rank like
        # fairseq. c <= 0, so with one output and a positive length penalty c can only lift a
        # hypothesis longer than CTranslate2's best: sentences without one need no scoring pass.
        need = [j for j, hs in enumerate(hyps)
                if o.nbest > 1 or o.lenpen < 0 or any(len(h) > len(hs[0]) for h in hs[1:])]
        prefix_lp = [0.0] * len(res)
        if need:
            scored = self.translator.score_batch([source[j] for j in need], [list(self.tgt_prefix)] * len(need),
                                                 max_batch_size=2 * mbs)
            for j, sc in zip(need, scored):
                prefix_lp[j] = sc.log_probs[0]
        out = []
        for hs, r, c in zip(hyps, res, prefix_lp):
            if c == 0.0:  # nothing to add: CTranslate2's order stands
                out.append([h[n:] for h in hs[: max(o.nbest, 1)]])
                continue
            ranked = []
            for h, sc in zip(hs, r.scores):
                length = len(h) + 1  # prefix and hypothesis tokens plus </s>
                ranked.append((sc + c / length ** o.lenpen, h[n:]))
            ranked.sort(key=lambda t: -t[0])
            out.append([h for _, h in ranked[: max(o.nbest, 1)]])
        return out
