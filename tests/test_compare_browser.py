"""mtkit compare's HTML report in a real headless Chromium: the page renders without console errors,
the overview and direction sections are in the DOM, tables sort, links and the back button work, and
a screenshot is taken. The slow test compares real fairseq-generate output of the tiny model; with
MTKIT_COMPARE_SCREENSHOT=docs/compare_report.png it keeps its screenshot there (the README's)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from browser import chromium, console_errors, page_url
from compare_data import make_systems

from mtkit.cli import main as mtkit_main

BIN = Path(sys.executable).parent
FAST = ["--bootstrap", "200", "--ar-trials", "300", "--examples", "3", "--ngrams", "4"]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _column(driver, table_id: str, index: int) -> list[str]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")
    return [r.find_elements(By.TAG_NAME, "td")[index].text for r in rows]


def check_report(driver, html: Path, direction: str, screenshot: Path) -> None:
    """The checks every report must pass in the browser."""
    from selenium.webdriver.common.by import By

    driver.get(page_url(html))
    assert console_errors(driver) == []
    assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-sortable-tables") not in (None, "0")
    overview = driver.find_element(By.ID, "overview")
    assert "All directions" in overview.text and direction in overview.text
    section = driver.find_element(By.ID, f"dir-{direction}")
    assert direction in section.find_element(By.TAG_NAME, "h2").text
    for heading in ("Sentence-level chrF++", "Scores by source length", "N-grams matched",
                    "Sentences where the systems differ most"):
        assert heading in section.text, heading
    driver.save_screenshot(str(screenshot))
    width, height = _png_size(screenshot)
    assert width >= 800 and height >= 600


def test_console_errors_are_caught(tmp_path):
    """The console check can fail: a page with a script error is reported."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>notDefined();</script></body></html>", encoding="utf-8")
    with chromium() as driver:
        driver.get(page_url(bad))
        errors = console_errors(driver)
    assert len(errors) == 1 and "notDefined is not defined" in errors[0]


def test_report_sorts_links_and_goes_back(tmp_path):
    from selenium.webdriver.common.by import By

    make_systems(tmp_path, {"de_DE": 110, "fr_XX": 30}, {"base": 0.35, "new": 0.25})
    out = tmp_path / "cmp"
    assert mtkit_main(["compare", f"base={tmp_path / 'base'}", f"new={tmp_path / 'new'}", "--ref-dir",
                       str(tmp_path / "raw"), "--out", str(out), *FAST]) == 0
    with chromium() as driver:
        check_report(driver, out / "compare.html", "en_XX-de_DE", tmp_path / "shot.png")
        # sort the overview by its "lines" column (numbers, not text), both ways
        header = driver.find_element(By.CSS_SELECTOR, "#overview thead th:nth-child(4)")
        assert header.text == "lines"
        header.click()
        assert _column(driver, "overview", 3) == ["30 \u2020", "30 \u2020", "110", "110"]
        assert header.get_attribute("aria-sort") == "ascending"
        header.click()
        assert _column(driver, "overview", 3) == ["110", "110", "30 \u2020", "30 \u2020"]
        # a direction link moves to its section; the back button returns to the top
        driver.find_element(By.LINK_TEXT, "fr_XX-en_XX").click()
        assert driver.current_url.endswith("#dir-fr_XX-en_XX")
        driver.back()
        assert not driver.current_url.endswith("#dir-fr_XX-en_XX")
        assert console_errors(driver) == []


def _generate(model, src: str, tgt: str, beam: int, results: Path, batch_size: int = 32) -> Path:
    from mtkit.plugin import user_dir

    cmd = [str(BIN / "fairseq-generate"), str(model.databin), "--user-dir", user_dir(),
           "--path", str(model.checkpoint), "--task", "translation_multi_simple_epoch",
           "--lang-dict", str(model.langs_file), "--lang-pairs", model.lang_pairs,
           "--source-lang", src, "--target-lang", tgt, "--encoder-langtok", "src", "--decoder-langtok",
           "--gen-subset", "test", "--beam", str(beam), "--cpu", "--batch-size", str(batch_size),
           "--results-path", str(results)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert res.returncode == 0, res.stderr[-3000:]
    return results / "generate-test.txt"


@pytest.mark.slow
def test_real_comparison_of_the_tiny_model_in_the_browser(tiny_model, tmp_path, capsys):
    """Greedy search against beam 4 on the tiny model's four directions (fairseq-generate output)."""
    directions = [("en_XX", "de_DE"), ("de_DE", "en_XX"), ("en_XX", "fr_XX"), ("fr_XX", "en_XX")]
    for name, beam in (("greedy", 1), ("beam4", 4)):
        for src, tgt in directions:
            _generate(tiny_model, src, tgt, beam, tmp_path / name / f"{src}-{tgt}")
    # a batch size that is not a multiple of 8: fairseq-generate silently drops sentences
    lossy = tmp_path / "lossy"
    _generate(tiny_model, "de_DE", "en_XX", 4, lossy / "de_DE-en_XX", batch_size=7)
    out = tmp_path / "cmp"
    common = ["--ref-dir", str(tiny_model.raw), "--train-dir", str(tiny_model.raw), "--min-lines", "40",
              "--out", str(out), *FAST]
    assert mtkit_main(["compare", f"greedy={tmp_path / 'greedy'}", f"lossy={lossy}", *common]) == 2
    assert "no hypothesis for 5 of 40 sentence ids" in capsys.readouterr().err and not out.exists()
    assert mtkit_main(["compare", f"greedy={tmp_path / 'greedy'}", f"beam4={tmp_path / 'beam4'}",
                       f"lossy={lossy}", "--missing", "drop", *common[:-len(FAST) - 2],
                       "--out", str(tmp_path / "dropped"), *FAST]) == 0
    dropped = json.loads((tmp_path / "dropped" / "compare.json").read_text(encoding="utf-8"))
    assert list(dropped["directions"]) == ["de_DE-en_XX"] and dropped["directions"]["de_DE-en_XX"]["n_lines"] == 35
    assert len(dropped["left_out"]) == 3 and "5 sentence ids left out" in dropped["directions"]["de_DE-en_XX"]["notes"][0]

    assert mtkit_main(["compare", f"greedy={tmp_path / 'greedy'}", f"beam4={tmp_path / 'beam4'}", *common]) == 0
    r = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    assert len(r["directions"]) == 4 and r["groups"]["all"]["directions"] == list(r["directions"])
    assert all(d["scores"]["bleu"]["greedy"]["score"] > 20 for d in r["directions"].values())  # it learned
    with chromium() as driver:
        check_report(driver, out / "compare.html", "en_XX-de_DE", tmp_path / "tiny.png")
    keep = os.environ.get("MTKIT_COMPARE_SCREENSHOT")  # e.g. docs/compare_report.png for the README
    if keep:
        shutil.copyfile(tmp_path / "tiny.png", keep)
