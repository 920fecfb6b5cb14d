"""What is installed and usable (``mtkit doctor``): versions, CUDA, fairseq extensions, mtkit's
patches, and an import of every installed package that fairseq or transformers may import."""
from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
import platform
import sys
from collections import deque
from dataclasses import dataclass

from mtkit.requirements import normalize, parse

#: distributions whose declared requirements (followed to the end) doctor imports when installed
DECLARED_ROOTS = ("fairseq-fixed", "transformers", "ctranslate2", "mtkit")

#: Modules that fairseq 0.12 or transformers 5 import when they are installed, beyond what they
#: declare (read off their ``import`` statements; tests/test_doctor.py re-reads them and checks
#: that each one installed is covered). A broken one (torchaudio built for another torch, say)
#: crashes fairseq or transformers the moment they reach it, so doctor imports each one present.
#: ``apex`` has a check of its own (PyPI's ``apex`` is another project).
SOFT_IMPORTS = (
    # torch's companions and kernels
    "torchaudio", "torchvision", "torchcodec", "torchao", "torchdistx", "torch_xla", "xformers",
    "flash_attn", "flash_attn_interface", "fbgemm_gpu", "liger_kernel", "kernels", "natten", "mambapy",
    "fast_hadamard_transform", "amp_C", "dynamicconv_cuda", "lightconv_cuda", "xentropy_cuda",
    "habana_frameworks", "torch_mlu", "torch_musa", "torch_neuronx", "torch_npu", "triton",
    # training, distribution, quantisation, optimisers
    "accelerate", "deepspeed", "fairscale", "peft", "bitsandbytes", "optimum", "aqlm", "auto_round",
    "compressed_tensors", "gptqmodel", "hqq", "quark", "vptq", "spqr_quant", "fp_quant", "flute",
    "fouroversix", "sinq", "nncf", "openvino", "executorch", "onnx", "onnx_ir", "onnxruntime",
    "onnxscript", "apollo_torch", "galore_torch", "grokadamw", "lomo_optim", "optimi", "schedulefree",
    "smdistributed", "xielu", "xlstm", "mlx", "jax",
    # logging and experiment tracking
    "tensorboardX", "tensorboard", "wandb", "aim", "mlflow", "neptune", "comet_ml", "clearml",
    "dvclive", "swanlab", "trackio", "flytekit", "flytekitplugins", "dagshub", "codecarbon",
    "azureml", "optuna", "ray",
    # audio, vision, video
    "soundfile", "librosa", "soxr", "av", "decord", "essentia", "pretty_midi", "pyctcdecode", "kenlm",
    "phonemizer", "g2p_en", "g2pc", "uroman", "amfm_decompy", "cv2", "PIL", "timm", "detectron2",
    "pycocotools", "pytesseract", "yt_dlp",
    # text processing
    "sacremoses", "subword_nmt", "fastBPE", "editdistance", "Levenshtein", "nltk", "spacy", "ftfy",
    "emoji", "num2words", "tiktoken", "mistral_common", "fugashi", "ipadic", "unidic", "unidic_lite",
    "sudachipy", "rhoknp", "Mykytea", "nagisa", "pythainlp", "rjieba", "soynlp", "hanziconv",
    "unishox2", "bs4", "bert_score", "simuleval",
    # data, files and services
    "pyarrow", "pandas", "datasets", "faiss", "iopath", "boto3", "botocore", "requests", "urllib3",
    "psutil", "libcst", "gguf", "diffusers", "openai", "fastapi", "uvicorn", "jurigged", "IPython",
)

#: top-level modules of declared packages that are not worth importing (aliases, scripts, plugins)
_SKIP_MODULES = {"pylab", "isympy", "pyximport", "pydevd_plugins", "py", "pkg_resources", "mtkit", "data_prep"}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def _version(module: str) -> Check:
    try:
        mod = importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - report any import failure
        return Check(module, False, f"import failed: {type(e).__name__}: {e}")
    return Check(module, True, str(getattr(mod, "__version__", "unknown version")))


def _fairseq_extensions() -> list[Check]:
    out = []
    for ext, why in (
        ("fairseq.data.data_utils_fast", "fast batching"),
        ("fairseq.data.token_block_utils_fast", "token blocks (denoising/LM)"),
        ("fairseq.libbleu", "fairseq's BLEU scorer"),
        ("fairseq.libnat", "non-autoregressive models"),
        ("fairseq.libbase", "BASE layers"),
    ):
        required = ext in ("fairseq.data.data_utils_fast", "fairseq.data.token_block_utils_fast")
        try:
            importlib.import_module(ext)
            out.append(Check(f"extension {ext}", True, f"loads ({why})", required))
        except Exception as e:  # noqa: BLE001
            out.append(Check(f"extension {ext}", False, f"{type(e).__name__}: {e} ({why})", required))
    return out


def _modules_of(dist: str, provided: dict[str, list[str]]) -> list[str]:
    """Top-level modules of an installed distribution, less private ones and :data:`_SKIP_MODULES`."""
    return sorted({m for m in provided.get(dist, []) if m.isidentifier() and not m.startswith("_")} - _SKIP_MODULES)


def _declared_closure() -> dict[str, str]:
    """Installed distributions that :data:`DECLARED_ROOTS` require (all the way down) -> a root.

    mtkit's requirements are followed with all of its extras (only installed ones count); other
    packages' extras only where a requirement asks for them (``sacrebleu[ja]``).
    """
    found: dict[str, str] = {}
    todo = deque((normalize(r), frozenset(), normalize(r)) for r in DECLARED_ROOTS)
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:  # breadth first: a package is attributed to the first root that needs it
        name, extras, root = todo.popleft()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        found.setdefault(name, root)
        for line in dist.requires or []:
            req = parse(line)
            if req.extra is not None and not (name == "mtkit" or req.extra in extras):
                continue
            todo.append((req.name, req.extras, root))
    return found


def import_targets() -> dict[str, str]:
    """module -> why doctor imports it: every installed module fairseq or transformers may import."""
    provided: dict[str, list[str]] = {}
    for mod, dists in md.packages_distributions().items():
        for d in dists:
            provided.setdefault(normalize(d), []).append(mod)
    targets: dict[str, str] = {}
    for dist, root in sorted(_declared_closure().items()):
        if dist == root == "mtkit":
            continue
        why = f"installed as a dependency of {root}" if dist != root else "installed"
        for mod in _modules_of(dist, provided):
            targets.setdefault(mod, why)
    for mod in SOFT_IMPORTS:
        if mod not in targets and importlib.util.find_spec(mod) is not None:
            targets[mod] = "fairseq or transformers import it when it is installed"
    return targets


def _import_checks() -> list[Check]:
    """Import each of :func:`import_targets`; one failed check per broken module, else one summary."""
    targets = import_targets()
    bad = []
    # torch first: torch C++ extensions (fairseq's libbase, libnat, ...) load only after it
    for mod, why in sorted(targets.items(), key=lambda kv: kv[0] != "torch"):
        try:
            importlib.import_module(mod)
        except Exception as e:  # noqa: BLE001 - any failure is the finding
            try:
                owner = ", ".join(f"{d} {md.version(d)}" for d in md.packages_distributions().get(mod, []))
            except Exception:  # noqa: BLE001
                owner = ""
            where = f" (installed: {owner})" if owner else ""
            bad.append(Check(
                f"import {mod}", False,
                f"{type(e).__name__}: {e}{where}; {why}, and a failed import there crashes them: "
                f"reinstall it in a build that matches torch {_installed('torch')}, or pip uninstall it "
                "if nothing needs it"))
    if bad:
        return bad
    return [Check("imports", True, f"{len(targets)} installed packages that fairseq or transformers may "
                                   "import all import")]


def _installed(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "(not installed)"


def _patches() -> list[Check]:
    from mtkit import patches

    state = patches.installed()
    return [Check(f"patch {p.name}", state[p.name], f"{p.target} ({p.versions})") for p in patches.PATCHES]


def broken(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.required and not c.ok]


def run_checks() -> list[Check]:
    checks = [Check("python", sys.version_info >= (3, 10), platform.python_version())]
    torch_check = _version("torch")
    checks.append(torch_check)
    if torch_check.ok:
        import torch

        major_minor = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])
        if major_minor < (2, 6):
            torch_check.ok = False
            torch_check.detail += " (mtkit needs torch >= 2.6)"
        cuda = torch.cuda.is_available()
        gpu = torch.cuda.get_device_name(0) if cuda else "none"
        checks.append(Check("cuda", True, f"available={cuda}, gpu={gpu}, torch cuda={torch.version.cuda}",
                            required=False))
        checks.append(Check("bf16", True, f"cuda bf16 supported={cuda and torch.cuda.is_bf16_supported()}",
                            required=False))
    fairseq_check = _version("fairseq")
    checks.append(fairseq_check)
    if fairseq_check.ok:
        checks.extend(_fairseq_extensions())
        try:
            from mtkit import plugin

            plugin.register()
            checks.append(Check("mtkit plugin", True, f"registered; --user-dir {plugin.user_dir()}"))
            checks.extend(_patches())
        except Exception as e:  # noqa: BLE001
            checks.append(Check("mtkit plugin", False, f"{type(e).__name__}: {e}"))
    checks.append(_version("sentencepiece"))
    checks.append(_version("sacrebleu"))
    try:
        importlib.import_module("apex")
        try:
            importlib.import_module("apex.normalization")
            apex = Check("apex", True, "NVIDIA apex importable (fused kernels used by fairseq)", False)
        except Exception:  # noqa: BLE001
            apex = Check("apex", False, "a package named 'apex' is installed but it is not NVIDIA apex "
                         "(PyPI's 'apex' is an unrelated project: pip uninstall apex)", False)
    except Exception:  # noqa: BLE001
        apex = Check("apex", True, "not installed (optional; native torch AMP/bf16 and fused AdamW are used)",
                     False)
    checks.append(apex)
    for optional, extra in (("ctranslate2", "ct2"), ("transformers", "hf"), ("ray", "tune")):
        c = _version(optional)
        c.required = False
        if not c.ok:
            c.detail = f"not installed (optional: pip install 'mtkit[{extra}]')"
            c.ok = True
        checks.append(c)
    checks.extend(_import_checks())
    return checks
