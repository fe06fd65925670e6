"""One training process of a data-parallel run: ``accelerate launch -m core.train.worker RUN_DIR`` (the app starts it).

Every process rebuilds the job from the run folder the app prepared; process 0 writes the checkpoints,
status and the events the app follows in history.jsonl.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import torch


def watch_stop_file(job, path: Path, interval_s: float = 0.2) -> None:
    """Stop the job once the app writes the STOP file; end this process at once if its launcher is gone (the
    app then reports the run as interrupted, so it must not go on writing to it)."""
    launcher = os.getppid()
    while not path.exists():
        if os.getppid() != launcher:
            os._exit(1)
        time.sleep(interval_s)
    job.cancel()


def main(argv: list[str] | None = None) -> int:
    from accelerate import PartialState

    from ..runs.run_folder import RunFolder
    from .engine import TrainingJob
    from .parallel.peers import DataParallel

    run_dir = Path((argv or sys.argv[1:])[0])
    state = PartialState(cpu=not torch.cuda.is_available())
    job = TrainingJob.from_folder(run_dir, parallel=DataParallel(state))
    threading.Thread(target=watch_stop_file, args=(job, run_dir / RunFolder.STOP), daemon=True).start()
    job.run()
    state.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
