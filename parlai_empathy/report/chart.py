"""The report's PNG: grouped bars of the comparable metrics, ours next to the anchors.

Left: one group per metric (``mbleu``, ``dist1``, ``dist2`` for ED), one bar per model of
ours (solid) and per anchor row that has the number (hatched). Right, on its own axis:
``ppl`` (log scale when the values span more than :data:`LOG_SCALE_RATIO`). An anchor
cell with several decoding variants (``2.76 greedy / 3.13 beam``) is drawn with the
variant our models used when they all used one of them, else its first variant; the legend
names it. Drawn with matplotlib's Agg canvas (no display, no pyplot state); the image is
always :data:`CHART_SIZE_PX`.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from parlai_empathy.report.anchors import AnchorRow, AnchorTable
from parlai_empathy.report.evaluate import ModelEvaluation

CHART_DPI = 100
CHART_SIZE_INCHES = (12.0, 6.5)
CHART_SIZE_PX = (int(CHART_SIZE_INCHES[0] * CHART_DPI), int(CHART_SIZE_INCHES[1] * CHART_DPI))
DEFAULT_CHART_METRICS = ("mbleu", "dist1", "dist2")
LOG_SCALE_RATIO = 20.0


@dataclass
class Series:
    """One bar colour: a model of ours or an anchor row."""

    label: str
    values: Dict[str, float]  # metric -> number (metrics without a number are absent)
    ours: bool


def _short_path(path: str, parts: int = 2) -> str:
    pieces = path.replace("\\", "/").rstrip("/").split("/")
    return path if len(pieces) <= parts else ".../" + "/".join(pieces[-parts:])


def _anchor_series(
    row: AnchorRow, table: AnchorTable, metrics: Sequence[str], prefer: Optional[str]
) -> Optional[Series]:
    values, variants_used = {}, []
    for metric in metrics:
        value = row.value(table, metric)
        if isinstance(value, dict):
            variant = prefer if prefer in value else next(iter(value))
            variants_used.append(variant)
            value = value[variant]
        if value is not None:
            values[metric] = value
    if not values:
        return None
    label = f"{row.model} [{row.short}]"
    if variants_used:
        label += f" ({'/'.join(sorted(set(variants_used)))})"
    return Series(label, values, ours=False)


def chart_series(
    evaluations: Sequence[ModelEvaluation],
    anchors: Optional[AnchorTable],
    metrics: Sequence[str],
) -> List[Series]:
    """Ours first, then the anchors that have at least one of ``metrics`` (or ppl)."""
    wanted = [*metrics, "ppl"]
    series = []
    for i, evaluation in enumerate(evaluations, start=1):
        values = {
            m: float(evaluation.report[m])
            for m in wanted
            if isinstance(evaluation.report.get(m), (int, float))
        }
        series.append(Series(f"#{i} {_short_path(evaluation.model_file)}", values, ours=True))
    if anchors is not None:
        inferences = {e.settings["inference"] for e in evaluations}
        prefer = inferences.pop() if len(inferences) == 1 else None
        for row in anchors.rows:
            anchor = _anchor_series(row, anchors, wanted, prefer)
            if anchor is not None:
                series.append(anchor)
    return series


def _draw_groups(axes, series: List[Series], metrics: Sequence[str], styles):
    """One group of bars per metric, packed: only the series with a number get a bar."""
    present = [[k for k, one in enumerate(series) if metric in one.values] for metric in metrics]
    width = 0.8 / max([len(ks) for ks in present] + [1])
    bars_of = {k: ([], []) for k in range(len(series))}
    for g, ks in enumerate(present):
        start = g - width * len(ks) / 2
        for j, k in enumerate(ks):
            bars_of[k][0].append(start + width * (j + 0.5))
            bars_of[k][1].append(series[k].values[metrics[g]])
    for k, (one, style) in enumerate(zip(series, styles)):
        xs, heights = bars_of[k]
        if xs:
            bars = axes.bar(xs, heights, width, label=one.label, **style)
            axes.bar_label(bars, fmt="%.2f", fontsize=6, rotation=90, padding=2)
    axes.set_xticks(range(len(metrics)), metrics)
    axes.set_xlim(-0.5, len(metrics) - 0.5)
    axes.margins(y=0.15)


def write_chart(
    path: str,
    evaluations: Sequence[ModelEvaluation],
    anchors: Optional[AnchorTable],
    title: str,
):
    """Write the PNG chart to ``path``."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    metrics = anchors.chart_metrics if anchors is not None else DEFAULT_CHART_METRICS
    series = chart_series(evaluations, anchors, metrics)
    ours_colors, anchor_colors = colormaps["tab10"], colormaps["Pastel1"]
    styles, n_ours, n_anchors = [], 0, 0
    for one in series:
        if one.ours:
            styles.append({"facecolor": ours_colors(n_ours % 10), "edgecolor": "black"})
            n_ours += 1
        else:
            styles.append(
                {"facecolor": anchor_colors(n_anchors % 9), "edgecolor": "dimgray", "hatch": "//"}
            )
            n_anchors += 1

    figure = Figure(figsize=CHART_SIZE_INCHES, dpi=CHART_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2, width_ratios=[len(metrics) * 1.5, 1.2])
    _draw_groups(left, series, metrics, styles)
    left.set_ylabel("score (x100)")
    left.set_title("overlap and diversity")

    with_ppl = [(one, style) for one, style in zip(series, styles) if "ppl" in one.values]
    if with_ppl:
        _draw_groups(right, [one for one, _ in with_ppl], ["ppl"], [s for _, s in with_ppl])
        values = [one.values["ppl"] for one, _ in with_ppl]
        if min(values) > 0 and max(values) / min(values) > LOG_SCALE_RATIO:
            right.set_yscale("log")
        right.set_title("perplexity")
    else:
        right.set_axis_off()

    handles = [Patch(label=one.label, **style) for one, style in zip(series, styles)]
    figure.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8)
    figure.suptitle(title)
    figure.savefig(path, format="png", dpi=CHART_DPI)
