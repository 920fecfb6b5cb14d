"""mtkit.moe_usage (per-layer, per-language top-k expert frequencies) and mtkit.flops (FLOPs per
token), checked by hand on small tensors and on real fairseq models against independent counts:
the criterion's own per-language expert counts, the data's token counts, torch's FLOP counter."""
from __future__ import annotations

import pytest
import torch
from multi_data import LANGS, PAIRS, build_databin, make_task

from mtkit.criterions.moe_label_smoothed_cross_entropy import lang_specialisation
from mtkit.flops import ModelShape, flops_per_token, forward_flops, parameters
from mtkit.moe_usage import ExpertUsage, run_directions, topk_counts

SHAPE = ["--encoder-layers", "2", "--decoder-layers", "2", "--encoder-embed-dim", "32", "--decoder-embed-dim", "32",
         "--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64", "--encoder-attention-heads", "2",
         "--decoder-attention-heads", "2", "--share-all-embeddings", "--dropout", "0"]
DENSE = ["--arch", "transformer", *SHAPE]
MOE = ["--arch", "transformer_moe", *SHAPE, "--moe-expert-count", "4", "--moe-freq", "1", "--moe-expert-ffn-dim", "32",
       "--moe-second-expert-policy", "all"]


@pytest.fixture(scope="module")
def databin(tmp_path_factory):  # noqa: ANN201
    return build_databin(tmp_path_factory.mktemp("usage"))


def test_topk_counts_by_hand() -> None:
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.9, 0.05, 0.05]])
    counts, first = topk_counts(probs, 2, pad_mask=torch.tensor([False, False, True]))
    assert counts.tolist() == [1, 2, 1] and first.tolist() == [1, 0, 1]
    counts, first = topk_counts(probs, 1)
    assert counts.tolist() == first.tolist() == [2, 0, 1]


def test_summary_by_hand() -> None:
    usage = ExpertUsage(["en_XX", "de_DE"], top_k=2)
    from mtkit.moe_usage import LayerUsage

    usage.layers["encoder.layers.0.moe_layer"] = LayerUsage(
        "encoder.layers.0.moe_layer", "encoder", topk=torch.tensor([[10, 6, 2, 2], [0, 0, 0, 0]]),
        top1=torch.tensor([[7, 3, 0, 0], [0, 0, 0, 0]]), tokens=torch.tensor([10, 0]))
    s = usage.summary(threshold=0.2, relative=1.5)["encoder.layers.0.moe_layer"]
    assert s["uniform_frequency"] == 0.5 and s["relative_threshold"] == 0.75
    en = s["languages"]["en_XX"]
    assert en["frequency"] == [1.0, 0.6, 0.2, 0.2] and en["max"] == 1.0
    assert en["above_threshold"] == 2 and en["above_relative"] == 1  # 0.2 is not above 0.2
    assert "de_DE" not in s["languages"]  # no tokens
    assert s["lang_specialisation"] == 0.0  # one language: nothing to identify


def _valid_batches(task):  # noqa: ANN001, ANN202
    task.load_dataset("valid")
    itr = task.get_batch_iterator(task.dataset("valid"), max_tokens=200, max_positions=(64, 64))
    return [b for b in itr.next_epoch_itr(shuffle=False) if b]


def _lang(task, tokens: torch.Tensor) -> str:  # noqa: ANN001
    d = task.source_dictionary
    ids = {d.index(f"__{x}__"): x for x in task.langs}
    found = {ids[t] for t in tokens.flatten().tolist() if t in ids}
    assert len(found) == 1
    return found.pop()


def test_usage_matches_the_criterion_and_the_data(databin) -> None:  # noqa: ANN001
    args, task = make_task(*databin, *MOE, "--homogeneous-batches", "--criterion", "moe_label_smoothed_cross_entropy",
                           "--moe-log-lang-usage")
    torch.manual_seed(0)
    model, criterion = task.build_model(args).eval(), task.build_criterion(args)
    usage = ExpertUsage(list(task.langs))
    criterion_counts = {}
    pad = task.source_dictionary.pad()
    src_tokens = dict.fromkeys(LANGS, 0)
    tgt_tokens = dict.fromkeys(LANGS, 0)
    with torch.no_grad(), usage.record(model, top_k=2):
        for b in _valid_batches(task):
            src, tgt = _lang(task, b["net_input"]["src_tokens"]), _lang(task, b["net_input"]["prev_output_tokens"])
            usage.set_languages(src, tgt)
            log = criterion(model, b)[2]
            for k, v in log.items():
                if k.startswith("moe_use:"):
                    criterion_counts[k] = criterion_counts.get(k, 0) + v
            src_tokens[src] += int(b["net_input"]["src_tokens"].ne(pad).sum())
            tgt_tokens[tgt] += int(b["net_input"]["prev_output_tokens"].ne(pad).sum())
    assert sorted(usage.layers) == [f"{s}.layers.{i}.moe_layer" for s in ("decoder", "encoder") for i in (0, 1)]
    for layer in usage.layers.values():
        want = src_tokens if layer.side == "encoder" else tgt_tokens
        assert layer.tokens.tolist() == [want[x] for x in task.langs]
        assert (layer.topk.sum(1) == 2 * layer.tokens).all()  # every token picks 2 experts
        assert (layer.top1.sum(1) == layer.tokens).all()
    # the criterion counts first choices over all MoE layers in one matrix: the layers' top-1 sum
    total = sum(layer.top1 for layer in usage.layers.values())
    for i, lang in enumerate(task.langs):
        for e in range(4):
            assert total[i, e] == criterion_counts[f"moe_use:{lang}:{e}"]
    summary = usage.summary()
    for name, layer in usage.layers.items():
        assert summary[name]["lang_specialisation"] == pytest.approx(lang_specialisation(layer.top1), abs=1e-5)


def test_run_directions_counts_every_valid_token(databin) -> None:  # noqa: ANN001
    args, task = make_task(*databin, *MOE)
    torch.manual_seed(0)
    model = task.build_model(args)
    tasks = []
    for pair in PAIRS.split(","):
        src, tgt = pair.split("-")
        tasks.append((src, tgt, make_task(*databin, *MOE, "--source-lang", src, "--target-lang", tgt)[1]))
    usage = run_directions(model, tasks, ExpertUsage(list(task.langs)), split="valid", max_tokens=300)
    src_sizes = dict.fromkeys(task.langs, 0)
    tgt_sizes = dict.fromkeys(task.langs, 0)
    for src, tgt, t in tasks:
        (ds,) = t.dataset("valid").datasets  # one direction: fairseq's LanguagePairDataset
        src_sizes[src] += int(ds.src_sizes.sum())
        tgt_sizes[tgt] += int(ds.tgt_sizes.sum())
    for layer in usage.layers.values():
        want = src_sizes if layer.side == "encoder" else tgt_sizes
        assert layer.tokens.tolist() == [want[x] for x in task.langs]


def _measured_flops(model, batch: dict) -> int:  # noqa: ANN001
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter, torch.no_grad():
        model(**batch["net_input"])
    return counter.get_total_flops()


@pytest.mark.parametrize("moe", [False, True])
def test_forward_flops_match_torchs_counter(databin, moe) -> None:  # noqa: ANN001
    args, task = make_task(*databin, *(MOE if moe else DENSE))
    torch.manual_seed(0)
    model = task.build_model(args)
    shape = ModelShape.from_args(args, vocab=len(task.source_dictionary))
    assert (shape.moe_experts > 0) == moe
    for b in _valid_batches(task)[:3]:
        B, Ls = b["net_input"]["src_tokens"].shape
        Lt = b["net_input"]["prev_output_tokens"].shape[1]
        for training in (False, True):
            model.train(training)
            want = forward_flops(shape, B, Ls, Lt, experts="buffer", training=training)["total"]
            layers = [m for m in model.modules() if hasattr(m, "tight_capacity")]
            assert bool(layers) == moe
            for m in layers:  # every expert over all C slots of the capacity rule
                m.tight_capacity = False
            assert _measured_flops(model, b) == want
            for m in layers:  # the default: C cut to the largest expert load
                m.tight_capacity = True
            if moe:  # at evaluation the rule's C is every token (fraction 1.0): most slots were empty
                assert _measured_flops(model, b) < want if not training else _measured_flops(model, b) <= want
        if not moe:
            assert forward_flops(shape, B, Ls, Lt, experts="active") == forward_flops(shape, B, Ls, Lt, experts="buffer")


def test_active_flops_equal_dense_for_top2_over_half_width_experts() -> None:
    dense = ModelShape(encoder_layers=2, decoder_layers=2, embed_dim=128, ffn_dim=512, vocab=2000)
    moe = ModelShape(encoder_layers=2, decoder_layers=2, embed_dim=128, ffn_dim=512, vocab=2000, moe_experts=8,
                     encoder_moe_freq=2, decoder_moe_freq=2, expert_ffn_dim=256, top_k=2)
    fd, fm = forward_flops(dense, 4, 20, 20), forward_flops(moe, 4, 20, 20)
    # the same except the gates: d*E multiply-adds per token in each of the 2 MoE layers
    assert fm["total"] - fd["total"] == 2 * 2 * (4 * 20) * 128 * 8
    # in training, when E divides the tokens, mtkit's buffer holds exactly k slots per token
    assert forward_flops(moe, 4, 20, 20, "buffer", training=True) == fm
    assert forward_flops(moe, 4, 21, 21, "buffer", training=True)["total"] > forward_flops(moe, 4, 21, 21)["total"]
    p_dense, p_moe = parameters(dense), parameters(moe)
    assert p_moe["total"] - p_dense["total"] == 2 * (8 * 2 * 128 * 256 + 128 * 8 - 2 * 128 * 512)
    assert p_moe["active"] - p_dense["active"] == 2 * 128 * 8
    per = flops_per_token(dense, 20, 22)
    assert per["per_token"] == forward_flops(dense, 1, 20, 22)["total"] / 42


def test_criterion_specialisation_sums_counts_over_the_window() -> None:
    """Two batches of one language each, each language on its own expert: every batch alone has
    H(language) = 0 (score 0), the window identifies the language from the expert (score 1)."""
    from fairseq import metrics

    from mtkit.criterions.moe_label_smoothed_cross_entropy import (
        MoELabelSmoothedCrossEntropyCriterion,
    )

    def log(lang_expert: dict[str, int]) -> dict:
        out = {"loss": 1.0, "nll_loss": 1.0, "ntokens": 10, "nsentences": 2, "sample_size": 10, "gate_loss": 1.0,
               "moe_n": 1}
        out.update({f"moe_use:{la}:{e}": (10 if lang_expert.get(la) == e else 0) for la in ("de_DE", "en_XX")
                    for e in range(2)})
        return out

    with metrics.aggregate() as agg:
        MoELabelSmoothedCrossEntropyCriterion.reduce_metrics([log({"en_XX": 0})])
        assert agg.get_smoothed_values()["moe_lang_specialisation"] == 0.0
        MoELabelSmoothedCrossEntropyCriterion.reduce_metrics([log({"de_DE": 1})])
        values = agg.get_smoothed_values()
    assert values["moe_lang_specialisation"] == 1.0
    assert not any(k.startswith("_") for k in values)  # the counts stay out of the printed logs
