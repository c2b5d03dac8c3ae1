"""`python -m worker.finetune train JOB.json` — the same CLI as `studio`."""

from .cli import main

main()
