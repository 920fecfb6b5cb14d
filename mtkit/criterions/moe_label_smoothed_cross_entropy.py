"""``moe_label_smoothed_cross_entropy``: label-smoothed CE + balance (gate) loss + CMR loss.

``loss = ls_ce + moe_gate_loss_wt * sample_size * gate_loss + cmr_gate_loss_wt * sample_size * cmr_loss``
with ``gate_loss`` = sum (NLLB) or average over MoE layers of each layer's ``l_aux`` (micro or
global balance, chosen by the model's ``--moe-balance``).

Logged: gate_loss, overflow_expert1/2 (% of assignments dropped by capacity), expert1_balance_max
(largest expert share times E; 1 = balanced), unused_expert1_count (per layer), cmr_gate (mean
fraction routed to the MoE), and, with ``--moe-log-lang-usage``, per-language first-choice
counts ``moe_use:{lang}:{expert}`` (encoder layers by source language, decoder layers by target
language) plus ``moe_lang_specialisation`` = I(language; expert) / H(language) of those counts
(0: experts ignore the language, 1: the expert determines the language), computed from the counts
summed over the whole logging window (log interval, epoch, validation), not averaged per batch.
"""



from dataclasses import dataclass, field

import torch
from fairseq import metrics
from fairseq.criterions import register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import (
    LabelSmoothedCrossEntropyCriterion,
    LabelSmoothedCrossEntropyCriterionConfig,
)

from mtkit.modules.moe import CMRGate, MoELayer, cmr_loss

_AVG_KEYS = ("overflow_expert1", "overflow_expert2", "expert1_balance_max", "unused_expert1_count")


@dataclass
class MoELabelSmoothedCrossEntropyConfig(LabelSmoothedCrossEntropyCriterionConfig):
    moe_gate_loss_wt: float = field(default=0.01, metadata={"help": "weight of the balance loss"})
    moe_gate_loss_combine_method: str = field(default="sum", metadata={"help": "sum|average over MoE layers"})
    cmr_gate_loss_wt: float = field(default=0.0, metadata={"help": "weight of the CMR budget loss"})
    cmr_gate_loss_p: float = field(default=1.0, metadata={"help": "target share of tokens routed to the MoE"})
    moe_log_lang_usage: bool = field(default=False, metadata={"help": "log per-language expert usage"})


def lang_specialisation(counts: torch.Tensor) -> float:
    """I(lang; expert) / H(lang) of a (languages, experts) count matrix (0 when undefined)."""
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts.double() / total
    pl, pe = p.sum(1, keepdim=True), p.sum(0, keepdim=True)
    nz = p > 0
    mi = (p[nz] * torch.log(p[nz] / (pl @ pe)[nz])).sum()
    h = -(pl[pl > 0] * torch.log(pl[pl > 0])).sum()
    return float(mi / h) if h > 0 else 0.0


def _specialisation_of_counts(meters) -> float:  # noqa: ANN001
    counts = meters["_moe_use_counts"].sum
    return round(lang_specialisation(counts), 4) if torch.is_tensor(counts) else 0.0


@register_criterion("moe_label_smoothed_cross_entropy", dataclass=MoELabelSmoothedCrossEntropyConfig)
class MoELabelSmoothedCrossEntropyCriterion(LabelSmoothedCrossEntropyCriterion):
    def __init__(self, task, sentence_avg, label_smoothing, ignore_prefix_size=0, report_accuracy=False,  # noqa: ANN001
                 moe_gate_loss_wt=0.01, moe_gate_loss_combine_method="sum", cmr_gate_loss_wt=0.0,  # noqa: ANN001
                 cmr_gate_loss_p=1.0, moe_log_lang_usage=False):  # noqa: ANN001
        super().__init__(task, sentence_avg, label_smoothing, ignore_prefix_size, report_accuracy)
        if moe_gate_loss_combine_method not in ("sum", "average"):
            raise ValueError("--moe-gate-loss-combine-method must be sum or average")
        self.gate_wt, self.combine = moe_gate_loss_wt, moe_gate_loss_combine_method
        self.cmr_wt, self.cmr_p = cmr_gate_loss_wt, cmr_gate_loss_p
        self.langs = list(getattr(task, "langs", None) or []) if moe_log_lang_usage else []
        self._tok2lang = None
        if self.langs:
            d = task.source_dictionary
            lut = torch.full((len(d),), -1, dtype=torch.long)
            for i, lang in enumerate(self.langs):
                idx = d.index(f"__{lang}__")
                if idx != d.unk():
                    lut[idx] = i
            self._tok2lang = lut

    def forward(self, model, sample, reduce=True):  # noqa: ANN001, ANN201
        net_output = model(**sample["net_input"])
        loss, nll_loss = self.compute_loss(model, net_output, sample, reduce=reduce)
        sample_size = sample["target"].size(0) if self.sentence_avg else sample["ntokens"]
        core = model
        while isinstance(getattr(core, "module", None), torch.nn.Module):  # unwrap DDP wrappers
            core = core.module
        moe_layers = [m for m in core.modules() if isinstance(m, MoELayer) and m.l_aux is not None]
        gate_loss = loss.new_zeros(())
        for m in moe_layers:
            gate_loss = gate_loss + m.l_aux.to(loss.dtype)
        if moe_layers and self.combine == "average":
            gate_loss = gate_loss / len(moe_layers)
        gates = [g for g in core.modules() if isinstance(g, CMRGate) and g.last_sum is not None]
        cmr = loss.new_zeros(())
        if gates:
            cmr = cmr_loss(sum(g.last_sum for g in gates), sum(g.last_count for g in gates), self.cmr_p)
        total = loss + self.gate_wt * sample_size * gate_loss + self.cmr_wt * sample_size * cmr
        log = {
            "loss": total.data, "nll_loss": nll_loss.data, "ntokens": sample["ntokens"],
            "nsentences": sample["target"].size(0), "sample_size": sample_size,
            "gate_loss": float(gate_loss.detach()), "moe_n": 1,
        }
        for key in _AVG_KEYS:
            vals = [m.metadata[key] for m in moe_layers if key in m.metadata]
            log[key] = sum(vals) / len(vals) if vals else 0.0
        if gates:
            log["cmr_loss"] = float(cmr.detach())
            log["cmr_gate"] = float(sum(g.last_sum.detach() for g in gates) / sum(g.last_count for g in gates).clamp_min(1))
        if self.langs:
            log.update(self._lang_usage(core, sample, moe_layers))
        if self.report_accuracy:
            n_correct, n_total = self.compute_accuracy(model, net_output, sample)
            log["n_correct"], log["total"] = int(n_correct), int(n_total)
        return total, sample_size, log

    def _lang_usage(self, model, sample, moe_layers) -> dict:  # noqa: ANN001
        """First-choice counts per (language, expert), as fixed keys so ranks can sum them."""
        E = moe_layers[0].num_experts if moe_layers else 0
        counts = torch.zeros(len(self.langs), max(E, 1), dtype=torch.long)
        lut = self._tok2lang
        src_lang = lut[sample["net_input"]["src_tokens"].cpu()].max(dim=1).values
        tgt_lang = lut[sample["net_input"]["prev_output_tokens"].cpu()].max(dim=1).values
        for m in moe_layers:
            in_decoder = any(m is mm for mm in model.decoder.modules() if isinstance(mm, MoELayer))
            lang = tgt_lang if in_decoder else src_lang
            expert1, pad = m.metadata["expert1"].cpu(), m.metadata["pad_mask"].cpu()
            B = lang.shape[0]
            if expert1.shape[0] % B:
                continue
            sent_lang = lang.repeat(expert1.shape[0] // B)  # tokens are (T, B) flattened
            ok = (~pad) & (sent_lang >= 0)
            counts.index_put_((sent_lang[ok], expert1[ok]), torch.ones(int(ok.sum()), dtype=torch.long),
                              accumulate=True)
        return {f"moe_use:{lang}:{e}": int(counts[i, e]) for i, lang in enumerate(self.langs) for e in range(E)}

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:  # noqa: ANN001
        super().reduce_metrics(logging_outputs)
        n = sum(log.get("moe_n", 0) for log in logging_outputs)
        if not n:
            return
        metrics.log_scalar("gate_loss", sum(log.get("gate_loss", 0) for log in logging_outputs) / n, n, round=4)
        for key in _AVG_KEYS:
            metrics.log_scalar(key, sum(log.get(key, 0) for log in logging_outputs) / n, n, round=3)
        if any("cmr_gate" in log for log in logging_outputs):
            for key in ("cmr_loss", "cmr_gate"):
                metrics.log_scalar(key, sum(log.get(key, 0) for log in logging_outputs) / n, n, round=4)
        use_keys = sorted({k for log in logging_outputs for k in log if k.startswith("moe_use:")})
        if use_keys:
            langs = sorted({k.split(":")[1] for k in use_keys})
            experts = sorted({int(k.split(":")[2]) for k in use_keys})
            counts = torch.tensor([[float(sum(log.get(f"moe_use:{la}:{e}", 0) for log in logging_outputs))
                                    for e in experts] for la in langs], dtype=torch.float64)
            # the counts add up over everything the aggregator sees (a log interval, an epoch, a whole
            # validation); the score is computed from the sums, not averaged over batches (one batch
            # may hold a single language: then its own score says nothing). "_" keeps the counts out
            # of the printed logs.
            metrics.log_scalar_sum("_moe_use_counts", counts)
            metrics.log_derived("moe_lang_specialisation", _specialisation_of_counts)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True



