"""`studio train` and `studio estimate`: the training core from the command line, no server."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Fine-tuning Studio.")


def quiet_libraries() -> None:
    """Keep the terminal for our progress bar and errors: library chatter goes to ERROR level."""
    import logging
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # "Failed to load CPU gemm_4bit_forward" is harmless
    warnings.filterwarnings("ignore", category=FutureWarning)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def fail(message: str, code: int = 2) -> None:
    """One clear line on stderr, no traceback."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def load_job(path: Path):
    from .spec import SpecError, parse_spec

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    if not isinstance(body, dict):
        fail(f"{path} must hold a JSON object (the body of POST /v1/fine_tuning/jobs)")
    for key in ("training_file", "validation_file"):
        value = body.get(key)
        if isinstance(value, str) and not os.path.isabs(value) and (path.parent / value).exists():
            body[key] = str((path.parent / value).resolve())  # paths in JOB.json are relative to it
    try:
        return parse_spec(body)
    except SpecError as exc:
        fail(f"invalid job spec: {exc}")


@app.command()
def train(
    job: Path = typer.Argument(..., help="Job spec JSON (the body of POST /v1/fine_tuning/jobs)."),
    output_dir: Path = typer.Option(Path("out"), "--output-dir", "-o", help="Where the artifact folder goes."),
    resume_from: Path = typer.Option(None, "--resume-from", help="A checkpoint folder to continue from."),
    events: Path = typer.Option(None, "--events", help="Also write every event as JSONL here ('-' = stdout)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Fine-tune a model from JOB.json and write the artifact folder to --output-dir."""
    spec = load_job(job)
    quiet_libraries()
    from .data import DataValidationError
    from .methods import MethodError
    from .models import ModelError
    from .reporting import FanoutReporter, JsonlReporter, ProgressReporter
    from .train import TrainingError, run

    output_dir.mkdir(parents=True, exist_ok=True)
    stream = sys.stdout if str(events) == "-" else (open(events, "w", encoding="utf-8") if events else None)
    jsonl = JsonlReporter(stream=stream)
    progress = None if quiet else ProgressReporter()
    try:
        result = run(spec, output_dir=output_dir, reporter=FanoutReporter(jsonl, progress),
                     resume_from=resume_from)
    except DataValidationError as exc:
        fail(str(exc))
    except (ModelError, MethodError, TrainingError) as exc:
        fail(str(exc))
    except FileNotFoundError as exc:
        fail(f"file not found: {exc.filename}")
    finally:
        if progress:
            progress.close()
        jsonl.close()
    m = result.metrics
    typer.echo(f"{result.status}: {result.global_step} steps, train loss {m.get('first_train_loss')} -> "
               f"{m.get('train_loss')}, {m.get('tokens_per_second')} tokens/s; artifact in {output_dir}")


@app.command()
def estimate(
    job: Path = typer.Argument(..., help="Job spec JSON."),
    device: str = typer.Option("cuda", help="Device to estimate for: cuda or cpu."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Parameters and memory for JOB.json, from the model's config alone (no weights loaded)."""
    spec = load_job(job)
    quiet_libraries()
    from .estimate import estimate as run_estimate
    from .estimate import format_estimate
    from .methods import MethodError
    from .models import ModelError

    try:
        result = run_estimate(spec, device=device)
    except (ModelError, MethodError) as exc:
        fail(str(exc))
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else format_estimate(result))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
