"""Tables and files of a comparison: fixed-width tables for the terminal, CSV and JSON written atomically."""

from __future__ import annotations

import json
from pathlib import Path

from traces.atomic import write_csv_atomic, write_text_atomic

ABR_COLUMNS = ("agent", "traces", "qoe", "of_optimum", "bitrate_mbps", "rebuffer_s", "smooth_mbps", "qoe_p10",
               "qoe_p50", "qoe_p90")
VP_COLUMNS = ("agent", "windows", "mae", "rmse", "mae_roll", "mae_pitch", "mae_yaw", "mae_1s", "mae_4s_step")
CJS_COLUMNS = ("agent", "seeds", "mean_jct_s", "mean_jct_std_s", "median_jct_s", "p90_jct_s", "makespan_s",
               "decisions")


def abr_table(rows: list[dict], title: str, reference: str | None = None) -> str:
    head = (f"{'agent':<16}{'traces':>7}{'QoE':>9}{'of opt':>8}{'bitrate':>9}{'rebuf s':>9}{'smooth':>9}"
            f"{'p10':>8}{'p50':>8}{'p90':>8}")
    if reference:
        head += f"  {'Δ vs ' + reference + ' [95% CI]':<34}{'W/T/L':>10}"
    lines = [title, head, "-" * len(head)]
    for r in rows:
        frac = "" if r.get("of_optimum") is None else f"{100 * r['of_optimum']:.1f}%"
        line = (f"{r['agent']:<16}{r['traces']:>7}{r['qoe']:>9.4f}{frac:>8}{r['bitrate_mbps']:>9.3f}"
                f"{r['rebuffer_s']:>9.4f}{r['smooth_mbps']:>9.3f}{r['qoe_p10']:>8.3f}{r['qoe_p50']:>8.3f}{r['qoe_p90']:>8.3f}")
        key = f"vs_{reference}_diff"
        if reference and key in r:
            p = f"vs_{reference}_"
            ci = f"{r[key]:+.4f} [{r[p + 'diff_ci_low']:+.4f}, {r[p + 'diff_ci_high']:+.4f}]"
            line += f"  {ci:<34}{str(r[p + 'wins']) + '/' + str(r[p + 'ties']) + '/' + str(r[p + 'losses']):>10}"
        lines.append(line)
    return "\n".join(lines)


def vp_table(rows: list[dict], title: str) -> str:
    head = f"{'agent':<10}{'windows':>8}{'MAE':>8}{'RMSE':>8}{'roll':>8}{'pitch':>8}{'yaw':>8}{'≤1 s':>8}{'@4 s':>8}"
    lines = [title, head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['agent']:<10}{r['windows']:>8}{r['mae']:>8.2f}{r['rmse']:>8.2f}{r['mae_roll']:>8.2f}"
                     f"{r['mae_pitch']:>8.2f}{r['mae_yaw']:>8.2f}{r['mae_1s']:>8.2f}{r['mae_4s_step']:>8.2f}")
    return "\n".join(lines)


def cjs_table(rows: list[dict], title: str) -> str:
    head = f"{'agent':<14}{'seeds':>6}{'mean JCT s':>12}{'± std':>8}{'median':>9}{'p90':>9}{'makespan s':>12}{'decisions':>11}"
    lines = [title, head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['agent']:<14}{r['seeds']:>6}{r['mean_jct_s']:>12.1f}{r['mean_jct_std_s']:>8.1f}"
                     f"{r['median_jct_s']:>9.1f}{r['p90_jct_s']:>9.1f}{r['makespan_s']:>12.0f}{r['decisions']:>11.0f}")
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict], columns) -> None:
    write_csv_atomic(path, rows, columns)


def write_json(path: Path, result: dict) -> None:
    write_text_atomic(path, json.dumps(result, indent=2, default=float))
