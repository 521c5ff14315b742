"""What each code's population does, generation by generation, side by side: HalfCheetah-v4, the paper's settings.

    python results/halfcheetah_gap/population_figures.py      # prints a Markdown table per frame window

Reads only committed rows: the authors' code's per-generation figures (``results/authors_code/*seed*/stats.jsonl``,
written by the resumable wrapper from their own variables, for the seeds run through it) and this project's
``progress.csv`` (the default arm of ``compare.py``). Per run and frame window: the mean over generations of the
H-step fitness's maximum and mean over the population (H = 200 steps plus the PeVFA's bootstrap), of full-episode
fitness's maximum, of the champion's and the RL agent's test scores, of the critic's and the PeVFA's losses; and at
the window's last generation, the share of syncs after which the RL head was kept as an elite, selected or
discarded by the next SSNE epoch. Generations before the first fitness (the warm-up) are left out.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parents[1]
AUTHORS = RESULTS / "authors_code"
PROJECT = (RESULTS / "halfcheetah_gap" / "critic_reference", RESULTS / "halfcheetah_gap" / "more_seeds")
WINDOWS = ((10_001, 60_000), (60_001, 150_000))
COLUMNS = ("H-step fitness max", "H-step fitness mean", "episode fitness max", "champion test", "RL test",
           "critic loss", "PeVFA loss", "RL head elite / selected / discarded")


def seed_of(path: Path) -> int:
    return int(path.name.rsplit("seed", 1)[1])


def _float(v: str | None) -> float:
    return float(v) if v not in ("", None) else np.nan


def authors_rows(stats: Path) -> list[dict]:
    out = []
    for line in stats.read_text().splitlines():
        r = json.loads(line)
        if not any(r["fitness"]):
            continue  # the warm-up: no fitness yet
        out.append({"frames": r["frames"], "h_step": r["gen_frames"] <= 2_000, "fmax": max(r["fitness"]),
                    "fmean": float(np.mean(r["fitness"])), "champion": r["champion_score"], "rl": r["rl_score"],
                    "critic": r["critic_loss"], "pevfa": r["pevfa_loss"],
                    "rates": (r["elite_rate"], r["selected_rate"], r["discarded_rate"])})
    return out


def project_rows(progress: Path) -> list[dict]:
    out = []
    with open(progress, newline="") as f:
        for r in csv.DictReader(f):
            if r["fitness_kind"] not in ("h_step", "mc"):
                continue
            out.append({"frames": int(float(r["frames"])), "h_step": r["fitness_kind"] == "h_step",
                        "fmax": _float(r["fitness_max"]), "fmean": _float(r["fitness_mean"]),
                        "champion": _float(r["champion_score"]), "rl": _float(r["rl_score"]),
                        "critic": _float(r["critic_loss"]), "pevfa": _float(r["pevfa_loss"]),
                        "rates": tuple(_float(r[k]) for k in ("elite_rate", "selected_rate", "discarded_rate"))})
    return out


def window_figures(rows: list[dict], lo: int, hi: int) -> list[float] | None:
    w = [r for r in rows if lo <= r["frames"] <= hi]
    if not w or rows[-1]["frames"] < hi - 2_000:
        return None  # the run has not got through this window
    h = [r for r in w if r["h_step"]]
    ep = [r for r in w if not r["h_step"]]

    def mean(rs, k):
        return float(np.nanmean([r[k] for r in rs])) if rs else np.nan

    return [mean(h, "fmax"), mean(h, "fmean"), mean(ep, "fmax"), mean(w, "champion"), mean(w, "rl"),
            mean(w, "critic"), mean(w, "pevfa"), *w[-1]["rates"]]


def fmt(v: list[float]) -> list[str]:
    cells = [f"{x:,.0f}" if i < 5 else f"{x:.1f}" for i, x in enumerate(v[:7])]
    return cells + [" / ".join(f"{100 * x:.0f} %" for x in v[7:])]


def main() -> None:
    runs = {("the authors' code", seed_of(p.parent)): authors_rows(p) for p in sorted(AUTHORS.glob("*seed*/stats.jsonl"))}
    for folder in PROJECT:
        for p in sorted(folder.glob("*seed*/progress.csv")):
            runs[("this project", seed_of(p.parent))] = project_rows(p)
    for lo, hi in WINDOWS:
        print(f"\n### frames {lo // 1000}k–{hi // 1000}k\n")
        print("| code | seed | " + " | ".join(COLUMNS) + " |")
        print("|---|---|" + "---:|" * len(COLUMNS))
        by_code: dict[str, list[list[float]]] = {}
        for (code, seed), rows in sorted(runs.items(), key=lambda kv: (kv[0][0] != "the authors' code", kv[0][1])):
            v = window_figures(rows, lo, hi)
            if v is None:
                continue
            by_code.setdefault(code, []).append(v)
            print(f"| {code} | {seed} | " + " | ".join(fmt(v)) + " |")
        for code, vs in by_code.items():
            m = np.nanmean(np.array(vs), axis=0)
            print(f"| **{code}** | mean of {len(vs)} | " + " | ".join(fmt(list(m))) + " |")


if __name__ == "__main__":
    main()
