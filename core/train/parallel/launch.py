"""Train in N processes: the app prepares the run folder, starts ``accelerate launch -m core.train.worker RUN_DIR``
and republishes the events process 0 appends to history.jsonl into the job's own event log, so the Train tab,
the CLI and re-attaching after a reload work as for one process. Stop writes a STOP file the workers watch."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from ...common.errors import ConfigError
from ...runs import events as ev
from ...runs.run_folder import CANCELLED, RunFolder

FOLLOW_INTERVAL_S = 0.1  # how often the app looks for new lines in history.jsonl
EXIT_GRACE_S = 20  # after the last event, how long the processes get to exit on their own
STOP_GRACE_S = 60  # after Stop, how long process 0 gets to save and report before the group is ended
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def max_processes() -> int:
    """How many data-parallel processes this machine can run: one per GPU, else one per CPU core."""
    import torch

    return torch.cuda.device_count() or os.cpu_count() or 1


def describe_devices() -> str:
    """What data-parallel training can use here, e.g. '2 x NVIDIA H100' or 'no GPU; 2 CPU cores'."""
    import torch

    gpus = torch.cuda.device_count()
    if gpus:
        names = sorted({torch.cuda.get_device_name(i) for i in range(gpus)})
        return f"{gpus} x {' / '.join(names)}"
    return f"no GPU; {os.cpu_count() or 1} CPU cores"


def launch_command(run_dir: Path, processes: int) -> tuple[list[str], dict[str, str]]:
    """The ``accelerate launch`` command and environment: one process per GPU (NCCL), or N CPU processes (gloo)
    sharing the cores between them."""
    import torch

    gpus = torch.cuda.device_count()
    if gpus and processes > gpus:
        raise ConfigError(f"{processes} processes need {processes} GPUs, but this machine has {gpus}.")
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_machines", "1",
               "--num_processes", str(processes), "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_ip", "127.0.0.1", "--main_process_port", str(free_port()),
               "-m", "core.train.worker", str(run_dir)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    if not gpus:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // processes))
    return command, env


def train_in_processes(job) -> None:
    """Run ``job`` (its run folder already open) in ``job.config.processes`` worker processes; returns once a
    final event has been republished."""
    folder = job.folder
    if not job.resuming:
        job.save_dataset()
    (folder / RunFolder.STOP).unlink(missing_ok=True)
    start = folder.history_size()  # a resumed run's earlier events are not replayed
    command, env = launch_command(folder.path, job.config.processes)
    job.events.publish(ev.Status(f"Starting {job.config.processes} training processes"))
    with open(folder / RunFolder.WORKERS_LOG, "ab") as log:
        process = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        follow(job, process, start)
    finally:
        end_processes(process, EXIT_GRACE_S if job.done else 0)


def follow(job, process: subprocess.Popen, offset: int) -> None:
    """Republish the workers' events until a final one; Stop is passed on through the STOP file."""
    stop_sent_at = None
    while True:
        exited = process.poll() is not None
        offset, events = job.folder.read_events(offset)
        for event in events:
            job.events.publish(event)
        if job.done:
            return
        if exited:
            return stopped_unexpectedly(job, process.returncode)
        if job.cancel_requested and stop_sent_at is None:
            (job.folder / RunFolder.STOP).touch()
            stop_sent_at = time.time()
        if stop_sent_at and time.time() - stop_sent_at > STOP_GRACE_S:
            job.folder.set_status(CANCELLED)
            return job.events.publish(ev.Cancelled(str(job.run_dir), {}))
        time.sleep(FOLLOW_INTERVAL_S)


def stopped_unexpectedly(job, code: int) -> None:
    """The processes ended without a final event (killed, out of memory, a crash before training)."""
    lines = (job.folder / RunFolder.WORKERS_LOG).read_text(encoding="utf-8", errors="replace").strip().splitlines()
    last = f" Last log line: {lines[-1].strip()[:300]}" if lines else ""
    job.mark_interrupted(f"The training processes stopped before the run finished (exit code {code}).{last}")


def end_processes(process: subprocess.Popen, grace_s: float) -> None:
    """Let the launcher and its workers exit within ``grace_s``, then terminate them (workers run in sessions of
    their own, so they are found as the launcher's children)."""
    import psutil

    try:
        process.wait(grace_s)
        return
    except subprocess.TimeoutExpired:
        pass
    with_children = [psutil.Process(process.pid)]
    try:
        with_children += with_children[0].children(recursive=True)
    except psutil.NoSuchProcess:
        pass
    for proc in with_children:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(with_children, timeout=10)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    process.wait()
