"""Write a human evaluation's analysis as Markdown (the papers' table layout), PNG and JSON."""
import json
import os
from typing import Optional

from parlai_empathy.atomic import atomic_write_text
from parlai_empathy.human_eval.potato_task import RATING_SCALES


def _fmt(value: Optional[float], digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _rating_cell(cell: dict) -> str:
    if cell["mean"] is None:
        return "–"
    if cell["ci95"] is None:
        return _fmt(cell["mean"])
    return f"{cell['mean']:.2f} ± {cell['ci95']:.2f}"


def render_markdown(result: dict) -> str:
    lines = ["# Human evaluation", ""]
    if result["ratings"]:
        lines += [
            "## Ratings (1–5)",
            "",
            "Mean of all ratings ± half-width of the 95% confidence interval (Student's t over "
            "the per-response mean ratings).",
            "",
            "| Model | Empathy | Relevance | Fluency | Responses | Ratings |",
            "|---|---|---|---|---|---|",
        ]
        for model, cells in result["ratings"].items():
            lines.append(
                f"| {model} | "
                + " | ".join(_rating_cell(cells[s]) for s in RATING_SCALES)
                + f" | {cells['empathy']['responses']} | {cells['empathy']['ratings']} |"
            )
        lines.append("")
    if result["ab"]:
        lines += [
            "## A/B preference",
            "",
            "Percent of judgements; p: two-sided sign test over items (an item counts for a "
            "model when it got more wins than losses across its annotators).",
            "",
            "| Models | Win | Lose | Tie | Judgements | Items | p |",
            "|---|---|---|---|---|---|---|",
        ]
        for ab in result["ab"].values():
            a, b = ab["models"]
            pct = ab["percent"]
            lines.append(
                f"| {a} vs {b} | {_fmt(pct['win'])} | {_fmt(pct['lose'])} | "
                f"{_fmt(pct['tie'])} | {ab['judgements']} | {ab['items']} | "
                f"{_fmt(ab['sign_test_p'], 4)} |"
            )
        lines.append("")
    lines += ["## Agreement and annotators", "",
              "| Task | Krippendorff's alpha | Annotators | Excluded (failed checks) | "
              "Without a check | Ignored answers to unassigned items |",
              "|---|---|---|---|---|---|"]
    for task, alphas in result["agreement"].items():
        alpha = ", ".join(f"{name} {_fmt(value, 3)}" for name, value in alphas.items())
        people = result["annotators"][task]
        lines.append(
            f"| {task} | {alpha} | {people['total']} | {people['excluded_failed_checks']} | "
            f"{people['without_checks']} | {people['ignored_unassigned_answers']} |"
        )
    lines += ["", "Alpha: ordinal for ratings, nominal for A/B (win / lose / tie).", ""]
    return "\n".join(lines)


def render_chart(result: dict, path: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (1 if result["ratings"] else 0) + (1 if result["ab"] else 0)
    fig, axes = plt.subplots(1, max(panels, 1), figsize=(6 * max(panels, 1), 4), squeeze=False)
    column = 0
    if result["ratings"]:
        ax = axes[0][column]
        models = list(result["ratings"])
        width = 0.8 / max(len(models), 1)
        for n, model in enumerate(models):
            cells = [result["ratings"][model][s] for s in RATING_SCALES]
            ax.bar([i + n * width for i in range(len(RATING_SCALES))],
                   [c["mean"] or 0 for c in cells], width,
                   yerr=[c["ci95"] or 0 for c in cells], capsize=3, label=model)
        ax.set_xticks([i + width * (len(models) - 1) / 2 for i in range(len(RATING_SCALES))])
        ax.set_xticklabels([s.capitalize() for s in RATING_SCALES])
        ax.set_ylim(1, 5)
        ax.set_ylabel("mean rating (95% CI)")
        ax.legend()
        column += 1
    if result["ab"]:
        ax = axes[0][column]
        names = [" vs ".join(ab["models"]) for ab in result["ab"].values()]
        left = [0.0] * len(names)
        for outcome, colour in (("win", "tab:green"), ("tie", "tab:gray"), ("lose", "tab:red")):
            values = [ab["percent"][outcome] or 0 for ab in result["ab"].values()]
            ax.barh(names, values, left=left, color=colour, label=outcome)
            left = [l + v for l, v in zip(left, values)]
        ax.set_xlim(0, 100)
        ax.set_xlabel("% of judgements (first model's win / tie / lose)")
        ax.legend(loc="lower right")
    fig.tight_layout()
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    partial = path + ".partial.png"
    fig.savefig(partial, dpi=100)
    plt.close(fig)
    os.replace(partial, path)


def write_report(result: dict, out_prefix: str) -> dict:
    """``<out>.md``, ``<out>.png`` and ``<out>.json``; returns their paths."""
    files = {"markdown": out_prefix + ".md", "png": out_prefix + ".png",
             "json": out_prefix + ".json"}
    render_chart(result, files["png"])
    atomic_write_text(files["markdown"], render_markdown(result))
    atomic_write_text(files["json"], json.dumps(result, indent=2))
    return files
