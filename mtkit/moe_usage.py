"""Which experts each language uses: per MoE layer and language, how often each expert is among
a token's top-k gate choices (Qiu et al. 2025, Fig. 4/5: "how many experts exceed 0.2").

Encoder MoE layers are keyed by the sentence's source language, decoder layers by its target
language (as ``moe_lang_specialisation`` in the criterion). The counts come from the gate itself
(a forward hook on every ``MoELayer.gate``): top-k of the softmax probabilities over the
non-padding tokens, i.e. the experts the gate picks before capacity dropping (at evaluation the
second expert is the arg-max of the rest, mtkit's "sampling" policy without noise).

    usage = ExpertUsage(langs)
    with usage.record(model, top_k=2):
        for src, tgt, batch in batches:         # teacher-forced forward passes
            usage.set_languages(src, tgt)
            model(**batch["net_input"])
    summary = usage.summary(threshold=0.2)
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mtkit.criterions.moe_label_smoothed_cross_entropy import lang_specialisation
from mtkit.modules.moe import MoELayer


def topk_counts(probs: torch.Tensor, k: int, pad_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per expert: how many non-padding tokens have it among their top-``k`` gate probabilities,
    and how many have it first. ``probs`` (S, E), ``pad_mask`` (S,) True on padding; returns two (E,)
    int64 tensors."""
    if pad_mask is not None:
        probs = probs[~pad_mask]
    E = probs.shape[-1]
    if probs.shape[0] == 0:
        zero = torch.zeros(E, dtype=torch.long)
        return zero, zero.clone()
    top = probs.topk(min(k, E), dim=-1).indices
    counts = torch.bincount(top.reshape(-1).cpu(), minlength=E)
    first = torch.bincount(top[:, 0].cpu(), minlength=E)
    return counts, first


@dataclass
class LayerUsage:
    """Counts of one MoE layer: (languages, experts) top-k and first-choice counts, tokens per language."""

    name: str
    side: str  # "encoder" (source language) or "decoder" (target language)
    topk: torch.Tensor
    top1: torch.Tensor
    tokens: torch.Tensor

    def frequency(self) -> torch.Tensor:
        """(languages, experts): share of the language's tokens that select the expert among their top-k."""
        return self.topk.double() / self.tokens.clamp_min(1).double()[:, None]


@dataclass
class ExpertUsage:
    """Accumulates per-layer, per-language expert selection counts over forward passes."""

    langs: list[str]
    layers: dict[str, LayerUsage] = field(default_factory=dict)
    top_k: int = 2
    _src: int | None = None
    _tgt: int | None = None

    def set_languages(self, src: str, tgt: str) -> None:
        """The direction of the sentences of the next forward passes."""
        self._src, self._tgt = self.langs.index(src), self.langs.index(tgt)

    def _hook(self, name: str, side: str, num_experts: int) -> Any:
        def hook(module: Any, inputs: tuple, routing: Any) -> None:  # noqa: ARG001
            lang = self._src if side == "encoder" else self._tgt
            if lang is None:
                raise RuntimeError("ExpertUsage: call set_languages(src, tgt) before the forward pass")
            pad = inputs[1] if len(inputs) > 1 else None
            counts, first = topk_counts(routing.probs.detach(), self.top_k, pad)
            layer = self.layers.get(name)
            if layer is None:
                L = len(self.langs)
                layer = self.layers[name] = LayerUsage(
                    name, side, torch.zeros(L, num_experts, dtype=torch.long),
                    torch.zeros(L, num_experts, dtype=torch.long), torch.zeros(L, dtype=torch.long))
            layer.topk[lang] += counts
            layer.top1[lang] += first
            layer.tokens[lang] += int(first.sum())

        return hook

    @contextlib.contextmanager
    def record(self, model: Any, top_k: int = 2) -> Iterator[ExpertUsage]:
        """Count while the block runs (forward hooks on the gate of every MoE layer of ``model``)."""
        self.top_k = top_k
        handles = []
        for name, module in model.named_modules():
            if isinstance(module, MoELayer):
                side = "decoder" if ".decoder." in f".{name}." else "encoder"
                handles.append(module.gate.register_forward_hook(self._hook(name, side, module.num_experts)))
        if not handles:
            raise ValueError("the model has no MoE layer (mtkit.modules.moe.MoELayer)")
        try:
            yield self
        finally:
            for h in handles:
                h.remove()

    def summary(self, threshold: float = 0.2, relative: float | None = None) -> dict[str, Any]:
        """Per layer and language: the experts' top-k frequencies, how many exceed ``threshold``
        (and ``relative`` × the uniform share k/E, if given), the largest; per layer the
        language specialisation I(language; first choice) / H(language)."""
        out: dict[str, Any] = {}
        for name, layer in self.layers.items():
            E = layer.topk.shape[1]
            uniform = min(self.top_k, E) / E
            freq = layer.frequency()
            langs = {}
            for i, lang in enumerate(self.langs):
                if int(layer.tokens[i]) == 0:
                    continue
                f = freq[i]
                row = {"tokens": int(layer.tokens[i]), "frequency": [round(float(x), 5) for x in f],
                       "max": round(float(f.max()), 5), "above_threshold": int((f > threshold).sum())}
                if relative is not None:
                    row["above_relative"] = int((f > relative * uniform).sum())
                langs[lang] = row
            out[name] = {"side": layer.side, "experts": E, "uniform_frequency": uniform, "threshold": threshold,
                         "relative_threshold": None if relative is None else relative * uniform,
                         "lang_specialisation": round(lang_specialisation(layer.top1), 5), "languages": langs}
        return out


def run_directions(model: Any, loaded_tasks: Sequence[tuple[str, str, Any]], usage: ExpertUsage,
                   split: str = "valid", max_tokens: int = 4000, top_k: int = 2,
                   progress: bool = False) -> ExpertUsage:
    """Teacher-forced forward passes of ``model`` over ``split`` of each (src, tgt, fairseq task),
    counting expert selections into ``usage``. Each task is a translation task set up for its
    direction (e.g. :meth:`mtkit.model_folder.LoadedModel.task_for`)."""
    from tqdm import tqdm

    model.eval()
    with usage.record(model, top_k=top_k), torch.no_grad():
        for src, tgt, task in tqdm(loaded_tasks, desc="expert usage", disable=not progress):
            task.load_dataset(split)
            itr = task.get_batch_iterator(task.dataset(split), max_tokens=max_tokens,
                                          max_positions=model.max_positions(), ignore_invalid_inputs=True)
            usage.set_languages(src, tgt)
            for batch in itr.next_epoch_itr(shuffle=False):
                if batch:
                    model(**batch["net_input"])
    return usage
