"""The model's Markdown report (report.md): the card's figures laid out by a template.

The layout lives in templates/report.md.j2; this module only gathers what it shows.
"""

from pathlib import Path

from recognition.card import ModelCard

REPORT_FILENAME = "report.md"
TEMPLATE = "report.md.j2"
TEMPLATES = Path(__file__).parent / "templates"
ORDER = ("default", "seed")


def pct(x: float, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f}%"


def _comparison(card: ModelCard, names: list[str]) -> list[tuple[str, list[str]]]:
    """(label, one cell per model) rows of the default-vs-seed table."""
    m, h = card.metrics, card.hyperparameters
    test = {n: m[n]["test"] for n in names}
    cells = {
        "test accuracy": lambda n: pct(test[n]["accuracy"]),
        "test errors": lambda n: str(test[n]["errors"]),
        f"accuracy on {m['default']['scans']['count']:,} test digits re-rendered as scans": (
            lambda n: pct(m[n]["scans"]["accuracy"])
        ),
        "ECE before temperature scaling": lambda n: pct(test[n]["ece_uncalibrated"]),
        "ECE after temperature scaling": lambda n: pct(test[n]["ece_calibrated"]),
        "temperature (fitted on validation)": (
            lambda n: f"{m[n]['calibration']['temperature']:.3f}"
        ),
        "review threshold (chosen on validation)": lambda n: f"{m[n]['review']['threshold']:.4f}",
        "sent to review at that threshold": lambda n: pct(test[n]["review_rate"]),
        "error among auto-accepted": lambda n: (
            f"{pct(test[n]['auto_accept_error'], 3)} ({test[n]['auto_accepted_errors']} digits)"
        ),
        "error at 97% coverage": lambda n: pct(test[n]["risk_at_coverage"]["0.97"], 3),
        "parameters": lambda n: f"{h[n]['parameters']:,}",
        "epochs run (best)": lambda n: (
            f"{h[n]['epochs_run']} of {h[n]['hyperparameters']['epochs']} ({h[n]['best_epoch']})"
        ),
        "training wall time (2 CPU cores)": lambda n: f"{h[n]['train_wall_seconds']:.0f} s",
        "training CPU time": lambda n: f"{h[n].get('train_cpu_seconds', float('nan')):.0f} s",
        "augmentation": lambda n: "yes" if h[n]["hyperparameters"]["augment"] else "no",
    }
    return [(label, [cell(n) for n in names]) for label, cell in cells.items()]


def _seed_note(card: ModelCard) -> str:
    h = card.hyperparameters
    note = "The seed architecture keeps its original recipe (Adam 1e-3, no augmentation)"
    if "seed" in h:
        seed, default = h["seed"]["hyperparameters"]["epochs"], h["default"]["hyperparameters"]
        if seed < default["epochs"]:
            note += f" and trains for fewer epochs ({seed} vs {default['epochs']})"
    return note + "; the shipped model is the default."


def render_report(card: ModelCard, plots: dict[str, str]) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # Markdown, not HTML
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pct"] = pct
    names = [n for n in ORDER if n in card.metrics]
    extra = card.model_dump()
    return env.get_template(TEMPLATE).render(
        card=card,
        names=names,
        test=card.metrics["default"]["test"],
        sizes=card.data["split_sizes"],
        comparison=_comparison(card, names),
        seed_note=_seed_note(card),
        rejection=card.metrics["default"].get("not_a_digit"),
        field=extra.get("field_review"),
        plots=plots,
        parity=extra["tflite_max_abs_difference"],
    )


def write_report(card: ModelCard, out: Path, plots: dict[str, str]) -> Path:
    """A human-readable summary of the card, with the plots and default-vs-seed side by side."""
    path = Path(out) / REPORT_FILENAME
    path.write_text(render_report(card, plots))
    return path
