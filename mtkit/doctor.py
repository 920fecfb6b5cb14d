"""What is installed and usable (``mtkit doctor``): versions, CUDA, fairseq extensions, mtkit's patches."""
from __future__ import annotations

import importlib
import platform
import sys
from dataclasses import dataclass


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
    return checks
