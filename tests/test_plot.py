import itertools
import json
import math

import numpy as np
import pytest

from core import plot, run_data, stats, tables
from core.plot import main
from core.run_data import align, find_runs, frame_grid, group_runs
from core.tables import aggregate_table, summary_table


@pytest.fixture(autouse=True)
def few_bootstrap_reps(monkeypatch):
    """The figures tested here do not depend on the number of replications; fewer keep tests fast."""
    monkeypatch.setattr(stats, "REPS", 300)
    monkeypatch.setattr(stats, "CURVE_REPS", 100)

COLUMNS = [
    "frames", "generation", "games", "time_s", "fps", "champion_score", "rl_score", "best_reward",
    "fitness_kind", "fitness_max", "fitness_mean", "critic_loss", "actor_loss", "pevfa_loss",
    "ea_loss", "elite_rate", "selected_rate", "discarded_rate",
]


def write_run(root, seed, frames, rewards, env="HalfCheetah-v4", variant="ERL-Re2", name=None,
              recorded_before_reference_defaults=False, times=None, commit=None, **settings):
    """A run dir under ``root`` with one progress row per (frame, reward), recording today's settings (or,
    with ``recorded_before_reference_defaults``, a config.json without -pevfa_rows, -phi_grad, -elite_clone,
    -reported_score and -critic_actions)."""
    if not recorded_before_reference_defaults:
        settings = {"pevfa_rows": "reference", "phi_grad": "reference", "elite_clone": "reference",
                    "reported_score": "reference", "critic_actions": "reference", **settings}
    run = root / (name or f"{env}__{variant.replace(' ', '')}__seed{seed}__20261121-101500")
    run.mkdir(parents=True)
    lines = [",".join(COLUMNS)]
    for gen, (f, r) in enumerate(zip(frames, rewards)):
        row = dict.fromkeys(COLUMNS, "")
        row.update(frames=f, generation=gen, best_reward=r, rl_score=r, fitness_kind="mc",
                   time_s="" if times is None else times[gen])
        lines.append(",".join(str(row[c]) for c in COLUMNS))
    (run / "progress.csv").write_text("\n".join(lines) + "\n")
    config = {"run_name": run.name, "env": env, "task": env.split("-v")[0], "seed": seed,
              "variant": variant,
              "settings": {"seed": seed, "logdir": str(root), "num_frames": 1_000_000,
                           "wandb_mode": "disabled", "theta": 0.3, "pop_size": 5, **settings},
              "sources": {}, "versions": {}, "git_commit": commit}
    (run / "config.json").write_text(json.dumps(config))
    return run


@pytest.fixture
def two_seeds(tmp_path):
    write_run(tmp_path, 1, [1000, 2500, 4000], [10.0, 20.0, 30.0])
    write_run(tmp_path / "nested" / "deeper", 2, [1500, 3000, 4500, 6000], [5.0, 15.0, 25.0, 35.0])
    return tmp_path


def test_find_runs_reads_columns(two_seeds):
    runs = find_runs([two_seeds])
    assert len(runs) == 2
    by_seed = {r.config["seed"]: r for r in runs}
    np.testing.assert_array_equal(by_seed[2].columns["frames"], [1500, 3000, 4500, 6000])
    assert np.isnan(by_seed[1].columns["champion_score"]).all()  # empty cells -> NaN
    assert list(by_seed[1].columns["fitness_kind"]) == ["mc"] * 3


def test_align_is_a_step_function_on_frames(two_seeds):
    runs = sorted(find_runs([two_seeds]), key=lambda r: r.config["seed"])
    got = align(runs, [1000, 1499, 1500, 2999, 3000, 4000, 6000, 7000])
    nan = np.nan
    np.testing.assert_array_equal(got[0], [10, 10, 10, 20, 20, 30, 30, 30])
    np.testing.assert_array_equal(got[1], [nan, nan, 5, 5, 15, 15, 35, 35])
    grid = frame_grid(runs)
    assert grid[0] == 1000 and grid[-1] == 4000 and len(grid) == run_data.GRID_POINTS


def test_table_scores_at_last_frame_all_seeds_reached(two_seeds):
    groups = group_runs(find_runs([two_seeds]))
    assert list(groups) == [("HalfCheetah", "ERL-Re2")]
    table = summary_table(groups)
    # At 4000 frames: seed 1 -> 30, seed 2 -> 15 (its row at 3000); mean 22.5, pop. std 7.5.
    row = next(line for line in table.splitlines() if line.startswith("| HalfCheetah"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:4] == ["HalfCheetah", "ERL-Re2", "4,000", "22.5 ± 7.5 (n=2)"]
    assert cells[5:] == ["4,000", "22.5 ± 7.5 (n=2)", "11100", "9300",  # one variant: its own frames are the task's
                         "Tianshou 10,201 ± 773; TD3 paper 9,637 ± 859"]
    # IQM of two seeds is their mean; a bootstrap over 2 seeds is flagged as not meaningful.
    assert cells[4].startswith("22.5 [") and cells[4].endswith("] †")
    assert "ddof=0" in table and "not meaningful at this n" in table


def test_grouping(tmp_path):
    write_run(tmp_path / "a", 1, [1000], [1.0])
    write_run(tmp_path / "b", 2, [1000], [2.0])  # differs only in seed and logdir
    write_run(tmp_path / "c", 1, [1000], [3.0], variant="RL only")
    write_run(tmp_path / "d", 1, [1000], [4.0], env="Hopper-v4", theta=0.5)
    write_run(tmp_path / "e", 2, [1000], [5.0], env="Hopper-v4", theta=0.8)
    groups = group_runs(find_runs([tmp_path]))
    assert {k: len(v) for k, v in groups.items()} == {
        ("HalfCheetah", "ERL-Re2"): 2,
        ("HalfCheetah", "RL only"): 1,
        ("Hopper", "ERL-Re2 theta=0.5"): 1,
        ("Hopper", "ERL-Re2 theta=0.8"): 1,
    }


def test_main_writes_png_and_table(two_seeds, tmp_path, capsys):
    write_run(tmp_path / "rl", 1, [1000, 5000], [7.0, 9.0], variant="RL only")
    write_run(tmp_path / "sw", 1, [1000, 5000], [7.0, 9.0], env="MyTask-v0")
    out = tmp_path / "out"
    assert main([str(two_seeds), "-out", str(out)]) == 0
    for name in ("learning_curves.png", "sample_efficiency.png"):
        png = (out / name).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    md = (out / "results.md").read_text()
    assert "11100" in md and "9300" in md and "RL only" in md and "MyTask" in md
    assert md in capsys.readouterr().out


def test_header_only_run_is_skipped(two_seeds, capsys):
    empty = write_run(two_seeds, 3, [], [])
    assert (empty / "progress.csv").read_text().count("\n") == 1
    runs = find_runs([two_seeds])
    assert sorted(r.config["seed"] for r in runs) == [1, 2]
    assert str(empty) in capsys.readouterr().err
    assert main([str(two_seeds)]) == 0
    assert (two_seeds / "results.md").is_file()


def _cells(table: str, first: str, second: str) -> list[str]:
    row = next(line for line in table.splitlines() if line.startswith(f"| {first} | {second} |"))
    return [c.strip() for c in row.strip("|").split("|")]


def test_identical_seeds_collapse_the_interval(tmp_path):
    assert stats.iqm_with_ci(np.full((4, 1), 123.0)) == (123.0, 123.0, 123.0)
    for seed in (1, 2, 3):
        write_run(tmp_path, seed, [1000, 2000], [10.0 * seed, 250.0], env="Hopper-v4")
    table = summary_table(group_runs(find_runs([tmp_path])))
    assert _cells(table, "Hopper", "ERL-Re2")[4] == "250.0 [250.0, 250.0]"  # n = 3: no dagger
    assert "†" not in table


@pytest.mark.parametrize(("finals", "by_hand"), [
    ([1.0, 2.0, 3.0, 4.0, 100.0], (2 + 3 + 4) / 3),  # 5 seeds: the lowest and the highest dropped
    ([10.0, 1.0, 7.0, 3.0, 5.0, 2.0, 8.0, 100.0], (3 + 5 + 7 + 8) / 4),  # 8 seeds: two dropped at each end
])
def test_iqm_of_known_finals(tmp_path, finals, by_hand):
    for seed, final in enumerate(finals, start=1):
        write_run(tmp_path, seed, [1000, 5000], [0.0, final])
    groups = group_runs(find_runs([tmp_path]))
    point, lo, hi = stats.iqm_with_ci(run_data.final_scores(groups[("HalfCheetah", "ERL-Re2")])[1][:, None])
    assert point == pytest.approx(by_hand)
    assert _cells(summary_table(groups), "HalfCheetah", "ERL-Re2")[4] == f"{by_hand:.2f} [{tables._num(lo)}, {tables._num(hi)}]"


def exact_bootstrap_quantile(finals: list[float]):
    """The quantile function of the IQM over every resample (with replacement) of ``finals``: each
    multiset of seeds weighted by its multinomial probability. IQM of n seeds: the mean of the sorted
    middle, int(n/4) cut at each end (rliable's trimmed mean)."""
    n = len(finals)
    combos = np.array(list(itertools.combinations_with_replacement(range(n), n)))
    counts = np.stack([np.bincount(c, minlength=n) for c in combos])
    weight = math.factorial(n) / np.prod([[math.factorial(k) for k in row] for row in counts], axis=1) / n**n
    cut = n // 4
    values = np.sort(np.asarray(finals)[combos], axis=1)[:, cut:n - cut].mean(axis=1)
    order = np.argsort(values)
    cdf = np.cumsum(weight[order])
    assert cdf[-1] == pytest.approx(1.0)
    return lambda q: values[order][np.searchsorted(cdf, q)]


def test_interval_is_the_95_percent_bootstrap_interval():
    """The reported interval is the 95 % percentile interval of the bootstrap distribution of the IQM:
    its ends lie between the exact distribution's 1.5 % and 3.5 % (96.5 % and 98.5 %) quantiles, a band
    of ±4.5 standard errors of a 2.5 % quantile estimated from 5000 resamples, which excludes the ends of
    a 90 % or a 99 % interval for these scores."""
    finals = [10.0, 1.0, 7.0, 3.0, 5.0, 2.0, 8.0, 100.0]
    quantile = exact_bootstrap_quantile(finals)
    _, lo, hi = stats.iqm_with_ci(np.array(finals)[:, None], reps=5000)
    assert quantile(0.015) <= lo <= quantile(0.035) and quantile(0.965) <= hi <= quantile(0.985), (lo, hi)
    # The band tells the levels apart here: a 90 % interval ends outside it, and so does a 99 % one.
    assert quantile(0.05) > quantile(0.035) and quantile(0.95) < quantile(0.965)
    assert quantile(0.005) < quantile(0.015) and quantile(0.995) > quantile(0.985)


def test_bootstrap_is_reproducible_and_leaves_numpy_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    scores = np.random.default_rng(0).normal(size=(6, 2))
    assert stats.iqm_with_ci(scores) == stats.iqm_with_ci(scores)
    assert np.array_equal(np.random.get_state()[1], before)


def test_across_tasks_normalised_by_paper_td3(tmp_path):
    for seed in (1, 2, 3):
        write_run(tmp_path, seed, [1000, 1_000_000], [0.0, 9300.0])  # HalfCheetah: 1.0 x TD3 at 1M
        write_run(tmp_path, seed, [1000, 1_000_000], [0.0, 6300.0], env="Hopper-v4")  # Hopper: 2.0 x TD3
        write_run(tmp_path, seed, [1000, 1_000_000], [0.0, 5.0], env="MyTask-v0")  # no paper figure: left out
    table = aggregate_table(group_runs(find_runs([tmp_path])))
    at_1m = table[table.index("Across tasks at 1,000,000 frames"):]
    assert "the paper's TD3 at 1M" in at_1m
    # IQM of {1, 1, 1, 2, 2, 2}: one value cut at each end -> 1.5; every resample is the same.
    assert _cells(at_1m, "ERL-Re2", "HalfCheetah, Hopper") == ["ERL-Re2", "HalfCheetah, Hopper", "3", "1.50 [1.50, 1.50]", "1.50"]
    # At 100k (Tianshou's TD3 there) each seed still has its row at 1000 frames: 0.
    assert _cells(table, "ERL-Re2", "HalfCheetah, Hopper")[3:] == ["0.00 [0.00, 0.00]", "0.00"]


def test_no_aggregate_mixes_frame_budgets(tmp_path):
    """HalfCheetah's full method ran to 200k, its RL-only ablation and Hopper's runs to 100k (Tianshou's TD3
    at 100k: 5336 and 597; the paper's TD3 at 1M: 9300 and 3150). Every comparison is made at 100k."""
    for seed in (1, 2, 3):
        write_run(tmp_path, seed, [50_000, 100_000, 150_000, 200_000], [1.0, 5336.0, 9999.0, 18600.0])  # 1.0 at 100k
        write_run(tmp_path, seed, [50_000, 100_000], [1.0, 2 * 5336.0], variant="RL only")  # 2.0 at 100k
        # Hopper's rows fall just past 100k: at 100k each seed still has its 60k row (1.0).
        write_run(tmp_path, seed, [60_000, 100_050, 100_200], [1.0, 597.0, 1000.0], env="Hopper-v4")
        write_run(tmp_path, seed, [60_000, 100_100], [1.0, 3 * 597.0], env="Hopper-v4", variant="RL only")
    groups = group_runs(find_runs([tmp_path]))
    table = summary_table(groups)
    # The variants of a task side by side at the frames both reached, then each at its own last frames.
    assert _cells(table, "HalfCheetah", "ERL-Re2")[2:4] == ["100,000", "5336.0 ± 0.0 (n=3)"]
    assert _cells(table, "HalfCheetah", "ERL-Re2")[5:7] == ["200,000", "18600.0 ± 0.0 (n=3)"]
    assert _cells(table, "HalfCheetah", "RL only")[2:7:3] == ["100,000", "100,000"]
    assert _cells(table, "Hopper", "ERL-Re2")[2:4] == ["100,100", "597.0 ± 0.0 (n=3)"]
    assert _cells(table, "Hopper", "ERL-Re2")[5:7] == ["100,200", "1000.0 ± 0.0 (n=3)"]
    assert _cells(table, "Hopper", "RL only")[2:4] == ["100,100", "1791.0 ± 0.0 (n=3)"]
    # Across tasks only at 100k, over TD3's score at 100k: HalfCheetah 1.0 and Hopper 1/597 for ERL-Re2,
    # 2.0 and 1/597 for RL only; never the 200k score, never the 1M reference.
    across = aggregate_table(groups)
    assert [line for line in across.splitlines() if line.startswith("Across tasks")] == [
        ("Across tasks at 100,000 frames: each seed's score at 100,000 frames divided by Tianshou's TD3 at 100k for its "
         "task, aggregated over tasks and seeds.")]
    low = 1.0 / 597.0
    for label, high in (("ERL-Re2", 1.0), ("RL only", 2.0)):
        cells = _cells(across, label, "HalfCheetah, Hopper")
        assert cells[2] == "3" and cells[4] == f"{(high + low) / 2:.2f}"
    # A budget that no run of a second task reached gives no table, and says why.
    single = tmp_path / "single"
    for seed in (1, 2, 3):
        write_run(single, seed, [50_000, 200_000], [1.0, 7000.0])
        write_run(single, seed, [50_000, 90_000], [1.0, 500.0], env="Hopper-v4")
    text = aggregate_table(group_runs(find_runs([single])))
    assert text.startswith("Across tasks: no table.") and text.count("\n") == 1 and "|" not in text
    md = summary_table(group_runs(find_runs([single])))
    assert "score / TD3" not in md and "Across tasks: no table." in md


def test_curve_iqm_is_rliables_per_point():
    from rliable import metrics

    scores = np.random.default_rng(1).normal(size=(5, 2, 7))
    mid, lo, hi = stats.iqm_curve(scores)
    assert np.allclose(mid, [metrics.aggregate_iqm(scores[..., j]) for j in range(7)])
    assert np.all(lo <= mid) and np.all(mid <= hi) and np.all(lo < hi)


def test_scores_at_fixed_frames(two_seeds):
    """Seed 1 rows at 1000/2500/4000 (10/20/30), seed 2 at 1500/3000/4500/6000 (5/15/25/35)."""
    groups = group_runs(find_runs([two_seeds]))
    table = tables.scores_at_table(groups, [3000, 4500, 7000])
    # At 3000: 20 and 15 -> 17.5 ± 2.5; at 4500 only seed 2 ran that far (25); at 7000 none did.
    assert _cells(table, "HalfCheetah", "ERL-Re2")[2:] == ["17.5 ± 2.5 (2) [20.0, 15.0]", "25.0 ± 0.0 (1) [25.0]", "—"]


def test_best_so_far_every_frames(tmp_path):
    write_run(tmp_path, 1, [1000, 2000, 3000, 4000], [10.0, 40.0, 20.0, 30.0])
    write_run(tmp_path, 2, [1500, 2500], [5.0, 1.0])
    table = tables.best_so_far_table(group_runs(find_runs([tmp_path])), 1000)
    rows = {c[0]: c[1] for c in (line.strip("|").split("|") for line in table.splitlines()
                                  if line.startswith("| ") and line[2].isdigit())}
    rows = {k.strip(): v.strip() for k, v in rows.items()}
    # 1000: seed 2 has no row yet (not counted); 2000: max(10, 40) = 40 and 5 -> 22.5;
    # 3000 and 4000: 40 (later dips ignored), seed 2 stopped at 2500 -> n = 1.
    assert rows == {"1,000": "10.0 (1)", "2,000": "22.5 (2)", "3,000": "40.0 (1)", "4,000": "40.0 (1)"}


def test_plot_rejects_bad_frame_counts(two_seeds, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(two_seeds), "-every", "0"])
    assert exc.value.code == 2 and "-every takes positive frame counts" in capsys.readouterr().err
    assert main([str(two_seeds), "-at", "3000", "-every", "2000", "-out", str(two_seeds / "o")]) == 0
    md = (two_seeds / "o" / "results.md").read_text()
    assert "Score at fixed frame counts" in md and "Best-so-far score every 2,000 frames" in md


def test_runs_recorded_before_the_reference_defaults_are_labelled_with_their_variants(tmp_path):
    """A run whose config.json predates -pevfa_rows / -phi_grad ran with the paper's rows and gradient, elites
    cloned from a snapshot and the best test that ran as its score: it is named by them; one that predates
    only -elite_clone / -reported_score by those two; a run with today's defaults (the authors' versions)
    is plain "ERL-Re2"."""
    write_run(tmp_path, 1, [1000, 2000], [1.0, 2.0], name="old", recorded_before_reference_defaults=True)
    write_run(tmp_path, 1, [1000, 2000], [1.5, 2.5], name="mid", recorded_before_reference_defaults=True,
              pevfa_rows="reference", phi_grad="reference")
    write_run(tmp_path, 1, [1000, 2000], [3.0, 4.0], name="new")
    labels = {runs[0].path.name: label for (_, label), runs in group_runs(find_runs([tmp_path])).items()}
    assert labels == {"old": "ERL-Re2 critic_actions=batch elite_clone=snapshot pevfa_rows=paper phi_grad=paper reported_score=tests_run",
                      "mid": "ERL-Re2 critic_actions=batch elite_clone=snapshot reported_score=tests_run", "new": "ERL-Re2"}


def test_a_group_away_from_a_default_is_named_even_when_alone(tmp_path):
    """Runs that all share a setting away from its built-in default (here: recorded before the reference
    defaults) are named by it even with no other group of their task to differ from; a per-task setting
    (theta, no built-in default) is not."""
    for seed in (1, 2):
        write_run(tmp_path, seed, [1000, 2000], [1.0, 2.0], env="Hopper-v4", name=f"old{seed}",
                  recorded_before_reference_defaults=True)
    write_run(tmp_path, 1, [1000, 2000], [5.0, 6.0], name="flag", skip_warmup_evolution=True)
    labels = {key: sorted(r.path.name for r in runs) for key, runs in group_runs(find_runs([tmp_path])).items()}
    assert labels == {("HalfCheetah", "ERL-Re2 skip_warmup_evolution=True"): ["flag"],
                      ("Hopper", ("ERL-Re2 critic_actions=batch elite_clone=snapshot pevfa_rows=paper phi_grad=paper "
                                  "reported_score=tests_run")):
                          ["old1", "old2"]}


def test_per_seed_best_so_far_and_rl_test_windows(tmp_path, capsys):
    """-best_at: each seed's highest best_reward up to the frame count (seed 1 first), mean ± population std
    over the seeds that got there; -rl_window: each seed's mean rl_score over its rows inside LO:HI."""
    write_run(tmp_path, 2, [1000, 2000, 3000, 4000], [1000.0, 3000.0, 2000.0, 5000.0])
    write_run(tmp_path, 1, [1000, 2000, 3000], [2000.0, 1000.0, 4000.0])
    assert main([str(tmp_path), "-out", str(tmp_path / "o"), "-best_at", "2500", "4000",
                 "-rl_window", "1500:3000", "3500:4000"]) == 0
    md = (tmp_path / "o" / "results.md").read_text()

    def cells(section: str) -> list[str]:
        body = md.split(f"## {section}", 1)[1]
        row = next(line for line in body.splitlines() if line.startswith("| HalfCheetah | ERL-Re2 |"))
        return [c.strip() for c in row.strip("| ").split(" | ")][2:]

    # at 2,500: seed 1 max(2000, 1000) = 2000, seed 2 max(1000, 3000) = 3000; at 4,000 only seed 2 ran that far
    assert cells("Best-so-far score per seed") == ["2,500 ± 500 (2) [2,000, 3,000]", "5,000 ± 0 (1) [5,000]"]
    # 1,500–3,000: seed 1 mean(1000, 4000) = 2500, seed 2 mean(3000, 2000) = 2500; 3,500–4,000: seed 2 alone
    assert cells("Mean RL test score over frame windows") == ["2,500 ± 0 (2) [2,500, 2,500]", "5,000 ± 0 (1) [5,000]"]
    capsys.readouterr()
    for bad in ("3000:1000", "x:1", "1000"):
        with pytest.raises(SystemExit) as exc:
            main([str(tmp_path), "-rl_window", bad])
        assert exc.value.code == 2 and "argument -rl_window/--rl_window: must be LO:HI" in capsys.readouterr().err


def test_cost_table_reads_each_runs_last_row(tmp_path, capsys):
    """Wall time and frames/s come from the last row's time_s (seconds summed over resumes), per run, seed 1
    first; a run that logged no time gets a dash, not a number."""
    write_run(tmp_path, 2, [1000, 3600, 7200], [1.0, 2.0, 3.0], times=[10.0, 1800.0, 3600.0], commit="0123456789abc")
    write_run(tmp_path, 1, [1000, 2000], [1.0, 2.0])
    assert main([str(tmp_path), "-out", str(tmp_path / "out"), "-cost"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| HalfCheetah | ERL-Re2 |")]
    cost = [[c.strip() for c in row.strip("|").split("|")][2:] for row in rows if len(row.split("|")) == 9]
    assert cost == [["1", "2,000", "—", "—", "—"], ["2", "7,200", "1.00 h", "2.0", "0123456"]]


def test_seed_curves_reach_each_seeds_last_row(two_seeds, tmp_path):
    """The mean stops at the frames every seed reached; with -seeds each seed's own line goes on to its last row."""
    groups = group_runs(find_runs([two_seeds]))
    plain = plot.learning_curves(groups).axes[0]
    assert not [line for line in plain.get_lines() if (line.get_gid() or "").startswith("seed")]
    ax = plot.learning_curves(groups, seeds=True).axes[0]
    mean = next(line for line in ax.get_lines() if "(n=2)" in line.get_label())
    assert max(mean.get_xdata()) == 4000  # seed 1's last row
    seeds = {line.get_gid(): line for line in ax.get_lines() if (line.get_gid() or "").startswith("seed")}
    assert sorted(seeds) == ["seed 1", "seed 2"]
    np.testing.assert_array_equal(seeds["seed 2"].get_xdata(), [1500, 3000, 4500, 6000])
    np.testing.assert_array_equal(seeds["seed 2"].get_ydata(), [5, 15, 25, 35])
    assert seeds["seed 1"].get_color() == mean.get_color()
    out = tmp_path / "out"
    assert main([str(two_seeds), "-out", str(out), "-seeds"]) == 0
    assert (out / "learning_curves.png").read_bytes().startswith(b"\x89PNG")
