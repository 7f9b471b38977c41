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

from weightspace.evaluate.results import generator_mode, identical_generator_modes
from weightspace.io import atomic_write_bytes
from weightspace.report import figures

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0} td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}
th{background:#f4f4f4} td.l,th.l{text-align:left} .ok{color:#17663a} .bad{color:#a11}
.verdict{padding:.5rem .8rem;border-radius:6px;margin:.3rem 0;background:#f7f7f7}
.figs{display:flex;flex-wrap:wrap;gap:1rem} figure{margin:0;max-width:100%} figcaption{font-size:.8rem;color:#555;max-width:640px}
img.plot{max-width:100%;height:auto} .figs.analysis figure{flex:0 1 530px} h3{margin:1.2rem 0 .4rem}
code,pre{background:#f6f6f6;padding:.1rem .3rem;border-radius:3px;font-size:.8rem} pre{padding:.6rem;overflow-x:auto}
.muted{color:#666;font-size:.85rem}
"""


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return base64.b64encode(buf.getvalue()).decode()


def _file_img(path: Path, caption: str) -> str:
    return _img(base64.b64encode(path.read_bytes()).decode(), caption, path.stem, source=path.name)


def _img(data_b64: str, caption: str, alt: str, source: str | None = None) -> str:
    src = f' data-source="{html.escape(source)}"' if source else ""
    return (f'<figure><img class="plot" alt="{html.escape(alt)}"{src} src="data:image/png;base64,{data_b64}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _fmt(v: Any, digits: int = 3) -> str:
    """A table cell: numbers rounded, booleans as yes/no, mappings as 'key: value' lists."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != v:
            return "–"
        return f"{v:.{digits}g}" if abs(v) < 1e-2 or abs(v) >= 1e3 else f"{v:.{digits}f}"
    if isinstance(v, Mapping):
        items = [(k, x) for k, x in v.items() if x not in (0, None, False)] or list(v.items())
        return ", ".join(f"{html.escape(str(k))}: {_fmt(x, digits)}" for k, x in items) or "–"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x, digits) for x in v) or "–"
    return html.escape(str(v))


def _ratio(x: float | None) -> str:
    """A speed-up to the precision timings support: 2 significant figures, integers from 10 up."""
    if x is None or x != x:
        return "–"
    return f"{x:.0f}" if x >= 10 else f"{x:.1f}"


def _steps(x: float | None) -> str:
    """Steps are whole numbers; a mean over tasks is rounded to one."""
    return "–" if x is None else f"{int(x + 0.5)}"


def _table(header: list[str], rows: list[list[Any]], left: int = 1) -> str:
    th = "".join(f'<th class="{"l" if i < left else ""}">{html.escape(h)}</th>' for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{_fmt(c)}</td>' for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


DATA_WORDS = {"support": "on the support set", "train": "on the full training data"}


START_WORDS = {"shared": "the shared pretrained start", "scratch": "a fresh init", "zoo-best": "the best zoo start"}


def _cost_text(results: Mapping[str, Any], keys: list[str]) -> str:
    """What fine-tuning each start needs to match the model, per data source; '≥' where it is a
    lower bound. ``keys`` are the generator modes that gave this same model (their timings differ).
    overall.cost[GENERATOR][START][DATA] (evaluate/cost.py)."""
    cost = results.get("overall", {}).get("cost", {})
    out = []
    for start, per_data in (cost.get(keys[0]) or {}).items():
        for data, c in per_data.items():
            others = [((cost.get(k) or {}).get(start) or {}).get(data) or {} for k in keys]
            speeds = [o["adaptation_speedup"] for o in others if o.get("adaptation_speedup") is not None]
            bound = any(o.get("speedup_is_lower_bound") for o in others)
            ge = "≥ " if bound else ""
            text = (f"Fine-tuning {START_WORDS.get(start, start)} {DATA_WORDS.get(data, f'on {data}')} needs "
                    f"{ge}{_steps(c.get('finetune_steps_to_match_median', c.get('finetune_steps_to_match')))} steps "
                    "(median over tasks) to match it")
            missed, n = c.get("tasks_not_reached"), len(c.get("per_task_steps") or results.get("tasks", []))
            if bound and missed:
                text += (f" ({missed} of {n} tasks never did within the {_steps(c.get('budget_steps'))}-step budget "
                         "and are charged all of it)")
            if not speeds:
                text += "; the speed-up is not measurable (generation took no measurable time)"
            else:
                text += f": speed-up {ge}{_ratio(min(speeds))}×"
                if len(speeds) > 1 and max(speeds) > 1.05 * min(speeds):
                    text += f" (the slowest of the identical modes; {_ratio(min(speeds))}–{_ratio(max(speeds))}× across them)"
            out.append(text + ".")
    return " ".join(out)


def _verdicts(results: Mapping[str, Any]) -> str:
    """One verdict per distinct model: generator modes with identical per-task accuracies (a
    deterministic generator's sample, central and best-of-K) share one."""
    out = []
    overall = results.get("overall", {})
    methods = results.get("methods", {})
    groups = identical_generator_modes(methods)
    rep_of = {k: rep for rep, keys in groups.items() for k in keys}
    verdicts = overall.get("verdict", {})
    for key, v in verdicts.items():
        rep = v.get("duplicate_of") or rep_of.get(key, key)
        if rep != key and rep in verdicts:
            continue
        keys = groups.get(key, [key])
        good = v.get("beats_retrieval_and_baselines")
        cls = "ok" if good else "bad"
        mark = "✓" if good else "✗"
        muted = _cost_text(results, keys)
        if len(keys) > 1:
            modes = ", ".join(generator_mode(k, methods[k]) for k in keys)
            muted = (f"Modes {modes} gave identical per-task accuracies: one model, one verdict. " + muted).strip()
        out.append(f'<div class="verdict"><span class="{cls}">{mark}</span> {html.escape(v.get("sentence", key))}'
                   + (f'<br><span class="muted">{html.escape(muted)}</span>' if muted else "") + "</div>")
    for line, cls in (((overall.get("best_fewshot") or {}).get("sentence"), "ok"),
                      (overall.get("above_reference_sentence"), "bad")):
        if line:
            out.append(f'<div class="verdict"><span class="{cls}">{"★" if cls == "ok" else "!"}</span> {html.escape(line)}</div>')
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
    groups = identical_generator_modes(methods)  # one column per distinct model
    gens = list(groups)[:3]
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
    labels = [figures.group_label(methods, groups[c]) if c in groups else methods.get(c, {}).get("label", c) for c in cols]
    return _table(["task", *labels, "best memorization"], rows)


def _analysis_caption(stem: str, zoos: Mapping[str, Mapping[str, Any]], trained_on: str | None) -> str:
    """A sentence saying what an analysis figure shows, from its file name (cli/analyze_cmd.py)."""
    if stem == "spectrum":
        return ("PCA spectrum: cumulative share of weight variance on the leading principal components, per zoo "
                "and weight variant (raw, or aligned by weight matching). Few components = low-dimensional zoo.")
    for slug, z in sorted(zoos.items(), key=lambda kv: -len(kv[0])):
        if not stem.startswith(slug + "-"):
            continue
        rest = stem[len(slug) + 1:]
        name = z.get("name", slug)
        own = " The generator was trained on this zoo." if trained_on and slug == trained_on and rest.startswith("map-") else ""
        variants = " and ".join(sorted(z.get("variants") or ["raw"], key=lambda v: (v != "raw", v)))
        init = {"shared": "members fine-tuned from one shared start", "independent": "members trained from "
                "independent random inits"}.get(str(z.get("init_kind")), "")
        init = f" ({init})" if init else ""
        if rest.startswith("map-"):
            variant = rest[4:]
            what = "after weight matching to a barycentre" if variant == "aligned" else "as trained (raw)"
            desc = (z.get("descriptor_names") or ["descriptor"])[0]
            colour = "rotation angle in degrees, on a cyclic colour scale" if desc.endswith("_deg") else desc
            return (f"{name}{init}: members on the zoo's two leading principal axes, weights {what}, coloured by "
                    f"task ({colour}). Similar colours close together = weight space is organised by task.{own}")
        if rest in ("barrier-acc", "barrier-loss"):
            metric = "test accuracy" if rest.endswith("acc") else "test loss"
            pairing = str((z.get("connectivity") or {}).get("pairing", "member")).replace("_", " ")
            shape = "a dip" if metric == "test accuracy" else "a bump"
            return (f"{name}{init}: {metric} along the straight line between two members ({pairing} pairs; mean "
                    f"± std), {variants}. {shape.capitalize()} in the middle is a barrier between the members' "
                    f"basins; none = linearly mode-connected.{own}")
        if rest == "layer-variance":
            return f"{name}{init}: share of the zoo's weight variance that each layer carries.{own}"
        if rest == "layer-descriptor-r2":
            return (f"{name}{init}: how well each layer's weights predict the task descriptor (out-of-sample R²; "
                    f"0 = not at all).{own}")
    return stem.replace("_", " ").replace("-", " ")


def _analysis_figures(analysis: Mapping[str, Any] | None, analysis_dir: Path,
                      trained_on: str | None) -> str:
    """Every PNG in the analysis folder (none is left out), grouped by zoo, each with a caption."""
    zoos = {z.get("slug") or Path(str(z.get("path", ""))).name: z for z in (analysis or {}).get("zoos", [])}
    pngs = sorted(analysis_dir.glob("*.png"))
    order = ["map-raw", "map-aligned", "barrier-acc", "barrier-loss", "layer-variance", "layer-descriptor-r2"]
    sections: dict[str, list[Path]] = {"": []}
    for p in pngs:
        slug = next((s for s in sorted(zoos, key=len, reverse=True) if p.stem.startswith(s + "-")), "")
        sections.setdefault(slug, []).append(p)

    def rank(p: Path, slug: str) -> tuple:
        rest = p.stem[len(slug) + 1:] if slug else p.stem
        return (order.index(rest) if rest in order else len(order), p.name)

    parts = []
    for slug in ["", *sorted(s for s in sections if s)]:
        files = sorted(sections.get(slug, []), key=lambda p: rank(p, slug))
        if not files:
            continue
        if slug:
            z = zoos[slug]
            note = " — the zoo the generator was trained on" if slug == trained_on else ""
            parts.append(f"<h3>{html.escape(z.get('name', slug))} "
                         f"<span class=\"muted\">({html.escape(str(z.get('init_kind', '')))} init, "
                         f"{_fmt(z.get('n_members'))} members{html.escape(note)})</span></h3>")
        parts.append('<div class="figs analysis">' + "".join(
            _file_img(p, _analysis_caption(p.stem, zoos, trained_on)) for p in files) + "</div>")
    return "\n".join(parts)


def _analysis_section(analysis: Mapping[str, Any] | None, analysis_dir: Path | None,
                      trained_on: str | None = None) -> str:
    if not analysis and (analysis_dir is None or not any(analysis_dir.glob("*.png"))):
        return ""
    rows = []
    for z in (analysis or {}).get("zoos", []):
        for name, var in z.get("variants", {}).items():
            spectrum = var.get("spectrum", {})
            idim = var.get("intrinsic_dim", {})
            barrier = (z.get("connectivity") or {}).get(name, {}).get("acc_barrier", {})
            rows.append([z.get("name", Path(str(z.get("path", ""))).name), name, z.get("init_kind"), z.get("n_members"),
                         spectrum.get("dims_90"), spectrum.get("dims_99"), idim.get("two_nn"), idim.get("mle"),
                         barrier.get("mean")])
    parts = ["<h2>Structure of the zoo</h2>"]
    if rows:
        parts.append(_table(["zoo", "weights", "init", "members", "PCs for 90%", "PCs for 99%", "TwoNN dim", "MLE dim",
                             "acc barrier"], rows, left=3))
    if analysis_dir is not None:
        parts.append(_analysis_figures(analysis, analysis_dir, trained_on))
    return "\n".join(parts)


def render_report(results: Mapping[str, Any], analysis: Mapping[str, Any] | None = None,
                  analysis_dir: Path | None = None, sweep: Mapping[str, Any] | None = None,
                  title: str = "weightspace report", other_figures: list[Path] | None = None,
                  other_reports: list[str] | None = None) -> str:
    novelty_notes: list[str] = []
    time_notes: list[str] = []
    novelty = figures.accuracy_vs_novelty(results, notes=novelty_notes)
    timing = figures.accuracy_vs_time(results, notes=time_notes)
    window = f"The accuracy axis spans the methods within {figures.ACCURACY_WINDOW:.2f} of the best."
    figs = [
        (novelty, " ".join(["Each method's held-out accuracy against the overlap of its test errors with the most "
                            "similar zoo member: copies of the zoo sit at the right.", window, *novelty_notes]),
         "accuracy vs novelty"),
        (timing, " ".join(["Accuracy against the seconds it takes to get weights for a new task; lines are "
                           "fine-tuning trajectories (dashed: on the support set only).", window, *time_notes]),
         "accuracy vs adaptation time"),
    ]
    wmap = figures.weight_space_map(results)
    if wmap is not None:
        figs.append((wmap, "Zoo members (coloured by their task), held-out references and generated weights on the "
                     "zoo's two leading principal axes (outside weights permuted into the zoo's frame first); red "
                     "lines join a generated model to its task's reference.", "weight-space map"))
    if sweep:
        figs.append((figures.sweep_curves(sweep), "Held-out accuracy as the zoo grows.", "zoo-size sweep"))
    fig_html = '<div class="figs">' + "".join(_img(_png(f), cap, alt) for f, cap, alt in figs) + "</div>"
    if other_figures:
        fig_html += "<h3>Other figures of this run</h3>" + '<div class="figs">' + "".join(
            _file_img(p, f"{p.parent.name}/{p.name}") for p in other_figures) + "</div>"
    if other_reports:
        fig_html += "<p>Other reports of this run: " + ", ".join(
            f'<a href="{html.escape(r)}">{html.escape(r)}</a>' for r in other_reports) + ".</p>"
    card = results.get("card", {})
    overall = results.get("overall", {})
    budget = (overall.get("finetune") or {}).get("budget_steps")
    facts = _table(["fact", "value"], [
        ["zoo", results.get("zoo")],
        ["zoo members", overall.get("zoo_members")],
        ["zoo aligned to a barycentre (weight matching)", overall.get("zoo_aligned")],
        ["parameters per model", overall.get("n_params")],
        ["held-out tasks", len(results.get("tasks", []))],
        ["median aligned distance between zoo neighbours", overall.get("zoo_nn_dist_median")],
        ["reference models", overall.get("reference_source")],
        ["fine-tuning budget (steps)", budget],
    ], left=2)
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
{_analysis_section(analysis, analysis_dir, _trained_on(results, analysis))}
<h2>Setup</h2>
{facts}
<h2>What the numbers mean</h2>
{notes_html}
<h2>Card</h2>
<pre>{html.escape(json.dumps(card, indent=2, sort_keys=True, default=str))}</pre>
</body></html>
"""


def _trained_on(results: Mapping[str, Any], analysis: Mapping[str, Any] | None) -> str | None:
    """The analysis slug of the zoo the generators were trained on (the evaluation's zoo)."""
    zoo = results.get("zoo")
    for z in (analysis or {}).get("zoos", []):
        if zoo and (str(z.get("path")) == str(zoo) or Path(str(z.get("path", ""))).name == Path(str(zoo)).name):
            return z.get("slug") or Path(str(z.get("path"))).name
    return None


def write_report(out_dir: str | Path, results: Mapping[str, Any], analysis_dir: str | Path | None = None,
                 sweep: Mapping[str, Any] | None = None, title: str = "weightspace report") -> Path:
    """Write ``out_dir/report.html`` (atomically) and return its path. Every PNG the run wrote
    (the analysis folder's, and any in ``out_dir`` or one folder below it) is in the page."""
    out = Path(out_dir)
    analysis, adir = None, None
    if analysis_dir is not None and Path(analysis_dir).is_dir():
        adir = Path(analysis_dir)
        if (adir / "analysis.json").is_file():
            analysis = json.loads((adir / "analysis.json").read_text())
    shown = {p.resolve() for p in adir.glob("*.png")} if adir is not None else set()
    other = sorted(p for p in [*out.glob("*.png"), *out.glob("*/*.png")] if p.resolve() not in shown)
    reports = sorted(p.relative_to(out).as_posix() for p in out.glob("*/report.html"))
    page = render_report(results, analysis, adir, sweep, title, other_figures=other, other_reports=reports)
    path = out / "report.html"
    atomic_write_bytes(path, page.encode("utf-8"))
    return path
