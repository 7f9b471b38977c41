"""One self-contained HTML report from results.json (plus the optional analysis and zoo sweep).

Self-contained means a single file: figures are inline PNG data URIs, styles are inline, and
there is no script, so the report opens anywhere, offline, and cannot fail to load a resource.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any, Mapping

from matplotlib.figure import Figure

from weightspace.io import atomic_write_bytes
from weightspace.report import figures

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0} td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}
th{background:#f4f4f4} td.l,th.l{text-align:left} .ok{color:#17663a} .bad{color:#a11}
.verdict{padding:.5rem .8rem;border-radius:6px;margin:.3rem 0;background:#f7f7f7}
.figs{display:flex;flex-wrap:wrap;gap:1rem} figure{margin:0} figcaption{font-size:.8rem;color:#555;max-width:640px}
code,pre{background:#f6f6f6;padding:.1rem .3rem;border-radius:3px;font-size:.8rem} pre{padding:.6rem;overflow-x:auto}
.muted{color:#666;font-size:.85rem}
"""


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return base64.b64encode(buf.getvalue()).decode()


def _img(data_b64: str, caption: str, alt: str) -> str:
    return (f'<figure><img class="plot" alt="{html.escape(alt)}" src="data:image/png;base64,{data_b64}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if v != v:
            return "–"
        return f"{v:.{digits}g}" if abs(v) < 1e-2 or abs(v) >= 1e3 else f"{v:.{digits}f}"
    return html.escape(str(v))


def _table(header: list[str], rows: list[list[Any]], left: int = 1) -> str:
    th = "".join(f'<th class="{"l" if i < left else ""}">{html.escape(h)}</th>' for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{_fmt(c)}</td>' for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _verdicts(results: Mapping[str, Any]) -> str:
    out = []
    overall = results.get("overall", {})
    for key, v in overall.get("verdict", {}).items():
        good = v.get("beats_retrieval_and_baselines")
        cls = "ok" if good else "bad"
        mark = "✓" if good else "✗"
        speed = overall.get("adaptation_speedup", {}).get(key, {})
        steps = overall.get("finetune_steps_to_match", {}).get(key, {})
        extra = "; ".join(f"fine-tuning ({d}) needs {_fmt(steps.get(d))} steps to match, speed-up {_fmt(s)}×"
                          for d, s in speed.items())
        out.append(f'<div class="verdict"><span class="{cls}">{mark}</span> {html.escape(v.get("sentence", key))}'
                   f'<br><span class="muted">{html.escape(extra)}</span></div>')
    return "\n".join(out) or "<p>No generator was evaluated.</p>"


def _methods_table(results: Mapping[str, Any]) -> str:
    rows = []
    for key in results.get("ranking", results["methods"].keys()):
        m = results["methods"][key]
        rows.append([m.get("label", key), m["kind"], m["acc_mean"], m.get("acc_ratio_to_trained"),
                     m.get("novelty_iou_max_mean"), m.get("nn_aligned_dist_mean"), m.get("seconds_per_task")])
    return _table(["method", "kind", "accuracy", "÷ trained", "error IoU (max)", "aligned NN dist", "s / task"], rows, left=2)


def _per_task_table(results: Mapping[str, Any]) -> str:
    methods = results["methods"]
    gens = [k for k in methods if methods[k]["kind"] == "generator" and k.endswith(":central")] or \
        [k for k in methods if methods[k]["kind"] == "generator"][:2]
    memo = [k for k in methods if methods[k]["kind"] == "memorization"]
    cols = ["reference", *gens, "retrieval"]
    rows = []
    for i, task in enumerate(results.get("tasks", [])):
        row = [task]
        for k in cols:
            pt = methods.get(k, {}).get("per_task", [])
            row.append(pt[i]["acc"] if i < len(pt) else None)
        best = max((methods[k]["per_task"][i]["acc"] for k in memo if i < len(methods[k]["per_task"])), default=None)
        row.append(best)
        rows.append(row)
    return _table(["task", *[methods.get(c, {}).get("label", c) for c in cols], "best memorization"], rows)


def _analysis_section(analysis: Mapping[str, Any] | None, analysis_dir: Path | None) -> str:
    if not analysis:
        return ""
    rows = []
    for z in analysis.get("zoos", []):
        for name, var in z.get("variants", {}).items():
            spectrum = var.get("spectrum", {})
            idim = var.get("intrinsic_dim", {})
            barrier = (z.get("connectivity") or {}).get(name, {}).get("acc_barrier", {})
            rows.append([z.get("name", Path(str(z.get("path", ""))).name), name, z.get("init_kind"), z.get("n_members"),
                         spectrum.get("dims_90"), spectrum.get("dims_99"), idim.get("two_nn"), idim.get("mle"),
                         barrier.get("mean")])
    parts = ["<h2>Structure of the zoo</h2>",
             _table(["zoo", "weights", "init", "members", "PCs for 90%", "PCs for 99%", "TwoNN dim", "MLE dim", "acc barrier"], rows, left=3)]
    if analysis_dir is not None:
        imgs = sorted(analysis_dir.glob("*.png"))[:8]
        parts.append('<div class="figs">' + "".join(
            _img(base64.b64encode(p.read_bytes()).decode(), p.stem.replace("_", " "), p.stem) for p in imgs) + "</div>")
    return "\n".join(parts)


def render_report(results: Mapping[str, Any], analysis: Mapping[str, Any] | None = None,
                  analysis_dir: Path | None = None, sweep: Mapping[str, Any] | None = None,
                  title: str = "weightspace report") -> str:
    figs = [
        (figures.accuracy_vs_novelty(results), "Each method's held-out accuracy against the overlap of its test errors "
         "with the most similar zoo member: copies of the zoo sit at the right.", "accuracy vs novelty"),
        (figures.accuracy_vs_time(results), "Accuracy against the seconds it takes to get weights for a new task; lines "
         "are fine-tuning trajectories (dashed: on the support set only).", "accuracy vs adaptation time"),
    ]
    wmap = figures.weight_space_map(results)
    if wmap is not None:
        figs.append((wmap, "Zoo members, held-out references and generated weights on the zoo's two leading principal "
                     "axes (outside weights permuted into the zoo's frame first); red lines join a generated model "
                     "to its task's reference.", "weight-space map"))
    if sweep:
        figs.append((figures.sweep_curves(sweep), "Held-out accuracy as the zoo grows.", "zoo-size sweep"))
    fig_html = '<div class="figs">' + "".join(_img(_png(f), cap, alt) for f, cap, alt in figs) + "</div>"
    card = results.get("card", {})
    overall = results.get("overall", {})
    facts = _table(["fact", "value"], [
        ["zoo", results.get("zoo")],
        ["zoo members", overall.get("zoo_members")],
        ["aligned to a barycentre", overall.get("zoo_aligned")],
        ["parameters per model", overall.get("n_params")],
        ["held-out tasks", len(results.get("tasks", []))],
        ["median aligned distance between zoo neighbours", overall.get("zoo_nn_dist_median")],
        ["reference models", overall.get("reference_source")],
    ])
    notes = results.get("notes", {})
    notes_html = "<ul>" + "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in notes.items()) + "</ul>"
    sweep_html = ""
    if sweep:
        sweep_html = "<h2>Zoo-size sweep</h2>" + _table(
            ["method", *[str(s) for s in sweep["zoo_sizes"]]], [[k, *v] for k, v in sweep["acc"].items()])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="muted">Generated weights judged on held-out tasks only, beside the trained reference, fine-tuning, retrieval and
memorization baselines. Command: <code>{html.escape(str(card.get("command", "")))}</code></p>
<h2>Verdict</h2>
{_verdicts(results)}
<h2>Figures</h2>
{fig_html}
<h2>All methods</h2>
{_methods_table(results)}
<h2>Per held-out task</h2>
{_per_task_table(results)}
{sweep_html}
{_analysis_section(analysis, analysis_dir)}
<h2>Setup</h2>
{facts}
<h2>What the numbers mean</h2>
{notes_html}
<h2>Card</h2>
<pre>{html.escape(json.dumps(card, indent=2, sort_keys=True, default=str))}</pre>
</body></html>
"""


def write_report(out_dir: str | Path, results: Mapping[str, Any], analysis_dir: str | Path | None = None,
                 sweep: Mapping[str, Any] | None = None, title: str = "weightspace report") -> Path:
    """Write ``out_dir/report.html`` (atomically) and return its path."""
    out = Path(out_dir)
    analysis, adir = None, None
    if analysis_dir is not None and (Path(analysis_dir) / "analysis.json").is_file():
        adir = Path(analysis_dir)
        analysis = json.loads((adir / "analysis.json").read_text())
    page = render_report(results, analysis, adir, sweep, title)
    path = out / "report.html"
    atomic_write_bytes(path, page.encode("utf-8"))
    return path
