"""A small real multilingual databin with unequal directions (en<->de 600 pairs, en<->fr 150) and
the mtkit multilingual task set up in-process on it: shared by the task, FLOPs and expert-usage tests."""
from __future__ import annotations

from pathlib import Path

from mtkit.testing import encode_and_binarize, train_spm, write_raw

TASK = "translation_multi_simple_epoch_mtkit"
PAIRS = "en_XX-de_DE,de_DE-en_XX,en_XX-fr_XX,fr_XX-en_XX"
LANGS = ["en_XX", "de_DE", "fr_XX"]


def build_databin(root: Path) -> tuple[Path, Path]:
    """(databin, language list) under ``root``."""
    raw = root / "raw"
    write_raw(raw, LANGS, n_train=600, n_valid=30, n_test=10)
    for side in ("en_XX", "fr_XX"):
        p = raw / f"train.en_XX-fr_XX.{side}"
        p.write_text("".join(p.read_text(encoding="utf-8").splitlines(keepends=True)[:150]), encoding="utf-8")
    spm_model = train_spm(raw, root / "spm")
    langs = root / "langs.txt"
    langs.write_text("\n".join(LANGS) + "\n", encoding="utf-8")
    return encode_and_binarize(raw, spm_model, root, LANGS), langs


def make_task(databin: Path, langs: Path, *extra: str):  # noqa: ANN201
    """(args, task) of ``fairseq-train DATABIN --task translation_multi_simple_epoch_mtkit ... EXTRA``."""
    from fairseq import options, tasks

    from mtkit.plugin import register, user_dir

    register()
    argv = [str(databin), "--user-dir", user_dir(), "--task", TASK, "--lang-dict", str(langs),
            "--lang-pairs", PAIRS, "--encoder-langtok", "src", "--decoder-langtok",
            "--sampling-method", "temperature", "--sampling-temperature", "5", "--arch", "transformer",
            "--max-tokens", "200", "--max-source-positions", "64", "--max-target-positions", "64", *extra]
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    return args, tasks.setup_task(args)
