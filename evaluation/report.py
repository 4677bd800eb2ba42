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


# A fixed-width table's columns: (heading, row key, width, format); the first is left-aligned, the rest right.
ABR_TABLE = (("agent", "agent", 16, ""), ("traces", "traces", 7, ""), ("QoE", "qoe", 9, ".4f"),
             ("of opt", "of_opt", 8, ""), ("bitrate", "bitrate_mbps", 9, ".3f"), ("rebuf s", "rebuffer_s", 9, ".4f"),
             ("smooth", "smooth_mbps", 9, ".3f"), ("p10", "qoe_p10", 8, ".3f"), ("p50", "qoe_p50", 8, ".3f"),
             ("p90", "qoe_p90", 8, ".3f"))
VP_TABLE = (("agent", "agent", 10, ""), ("windows", "windows", 8, ""), ("MAE", "mae", 8, ".2f"),
            ("RMSE", "rmse", 8, ".2f"), ("roll", "mae_roll", 8, ".2f"), ("pitch", "mae_pitch", 8, ".2f"),
            ("yaw", "mae_yaw", 8, ".2f"), ("≤1 s", "mae_1s", 8, ".2f"), ("@4 s", "mae_4s_step", 8, ".2f"))
CJS_TABLE = (("agent", "agent", 14, ""), ("seeds", "seeds", 6, ""), ("mean JCT s", "mean_jct_s", 12, ".1f"),
             ("± std", "mean_jct_std_s", 8, ".1f"), ("median", "median_jct_s", 9, ".1f"), ("p90", "p90_jct_s", 9, ".1f"),
             ("makespan s", "makespan_s", 12, ".0f"), ("decisions", "decisions", 11, ".0f"))


def table(rows: list[dict], title: str, columns, extra=None) -> str:
    """``rows`` under ``title`` in ``columns``; ``extra``, if given, is (heading, row -> text) appended to each
    line."""
    (h0, k0, w0, _), rest = columns[0], columns[1:]
    head = f"{h0:<{w0}}" + "".join(f"{h:>{w}}" for h, _, w, _ in rest) + (extra[0] if extra else "")
    lines = [title, head, "-" * len(head)]
    for r in rows:
        line = f"{r[k0]:<{w0}}" + "".join(f"{r[k]:>{w}{f}}" for _, k, w, f in rest)
        lines.append(line + (extra[1](r) if extra else ""))
    return "\n".join(lines)


def _paired_extra(reference: str, digits: int):
    """The (heading, row -> text) columns of a row's paired difference to ``reference`` (keys vs_REF_*)."""
    p = f"vs_{reference}_"

    def cell(r: dict) -> str:
        if p + "diff" not in r:
            return ""
        ci = f"{r[p + 'diff']:+.{digits}f} [{r[p + 'diff_ci_low']:+.{digits}f}, {r[p + 'diff_ci_high']:+.{digits}f}]"
        return f"  {ci:<34}{str(r[p + 'wins']) + '/' + str(r[p + 'ties']) + '/' + str(r[p + 'losses']):>10}"

    return f"  {'Δ vs ' + reference + ' [95% CI]':<34}{'W/T/L':>10}", cell


def abr_table(rows: list[dict], title: str, reference: str | None = None) -> str:
    rows = [{**r, "of_opt": "" if r.get("of_optimum") is None else f"{100 * r['of_optimum']:.1f}%"} for r in rows]
    return table(rows, title, ABR_TABLE, _paired_extra(reference, 4) if reference else None)


def vp_table(rows: list[dict], title: str) -> str:
    return table(rows, title, VP_TABLE)


def cjs_table(rows: list[dict], title: str, reference: str | None = None) -> str:
    return table(rows, title, CJS_TABLE, _paired_extra(reference, 2) if reference else None)


def write_csv(path: Path, rows: list[dict], columns) -> None:
    write_csv_atomic(path, rows, columns)


def write_json(path: Path, result: dict) -> None:
    write_text_atomic(path, json.dumps(result, indent=2, default=float))
