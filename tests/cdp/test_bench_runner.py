"""``python -m bench``: runs each benchmark as a child process and collects the figures of
its ``BENCH_RESULT`` line into bench/results/latest.json (here with stand-in scripts)."""

from __future__ import annotations

import json

import pytest

import bench.__main__ as runner


def test_the_runner_collects_each_benchmarks_result_line(tmp_path, monkeypatch):
    good = tmp_path / "good.py"
    good.write_text('print("figures…")\nprint(\'BENCH_RESULT {"name": "good", "ok": true, "figures": {"rps": 10}}\')\n')
    silent = tmp_path / "silent.py"
    silent.write_text("import sys\nprint('no result')\nsys.exit(3)\n")
    monkeypatch.setattr(runner, "BENCHMARKS", {"good": (str(good), []), "silent": (str(silent), [])})
    out = tmp_path / "results" / "latest.json"

    code = runner.main(["--out", str(out)])

    report = json.loads(out.read_text())
    assert code == 1  # one benchmark gave no result
    assert report["results"]["good"]["figures"] == {"rps": 10} and report["results"]["good"]["ok"] is True
    assert report["results"]["silent"]["exit_code"] == 3 and "error" in report["results"]["silent"]
    assert report["machine"]["cpus"] >= 1


def test_only_refuses_an_unknown_name(capsys):
    with pytest.raises(SystemExit) as refused:
        runner.main(["--only", "nope"])
    assert refused.value.code == 2
    assert "unknown benchmark" in capsys.readouterr().err
