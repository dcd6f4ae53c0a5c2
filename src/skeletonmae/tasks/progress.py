"""What a training run tells its user while it runs: one summary line per epoch and the progress bar.

:class:`EpochSummary` prints, after every epoch, the epoch's training loss and accuracy, the validation metric
(when ``data.val_fraction`` holds out a validation split), the learning rate, the time spent and an estimate of
the time left for the whole run (``ETA``). The line goes to stdout with the progress bar, also when the bar is
off (``trainer.progress=false``), so a log file of a batch job shows how the run goes. :class:`RunProgressBar` is
Lightning's bar with the epoch counted from 1 of the total and the run's ETA in its description.
"""

from __future__ import annotations

import time

from lightning.pytorch.callbacks import Callback, TQDMProgressBar

# the epoch metrics a summary line shows, in this order, under these names
SHOWN = {"train/loss_epoch": "loss", "train/top1_epoch": "top1", "val/top1": "val top1"}


def duration(seconds: float) -> str:
    """``seconds`` as ``H:MM:SS`` (``M:SS`` under an hour)."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class EpochSummary(Callback):
    """One line per finished epoch on stdout: its metrics, the learning rate, time spent and the run's ETA.

    The ETA is the mean time of the epochs this process has run (validation included) times the epochs left; a
    resumed run estimates from the epochs it has run itself."""

    def __init__(self):
        self.start: float | None = None
        self.first_epoch = 0

    def on_train_start(self, trainer, pl_module) -> None:
        self.start, self.first_epoch = time.monotonic(), trainer.current_epoch

    def seconds_left(self, trainer, epochs_done: int) -> float | None:
        """The estimated seconds until the last epoch ends, once an epoch of this process has finished."""
        ran = epochs_done - self.first_epoch
        if self.start is None or ran <= 0:
            return None
        return (time.monotonic() - self.start) / ran * (trainer.max_epochs - epochs_done)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        done = trainer.current_epoch + 1
        metrics = trainer.callback_metrics
        parts = [f"epoch {done}/{trainer.max_epochs}"]
        parts += [f"{name} {float(metrics[key]):.4f}" for key, name in SHOWN.items() if key in metrics]
        if trainer.optimizers:
            parts.append(f"lr {trainer.optimizers[0].param_groups[0]['lr']:.3g}")
        left = self.seconds_left(trainer, done)
        parts.append(f"{duration(time.monotonic() - self.start)} elapsed" +
                     (f", ETA {duration(left)}" if left else ""))
        from tqdm import tqdm

        tqdm.write("  ".join(parts))  # above an active progress bar, not through it


class RunProgressBar(TQDMProgressBar):
    """Lightning's progress bar; its description counts epochs from 1 of the total and shows the run's ETA."""

    def __init__(self, summary: EpochSummary, refresh_rate: int = 1):
        super().__init__(refresh_rate=refresh_rate)
        self.summary = summary

    def on_train_epoch_start(self, trainer, *args) -> None:
        super().on_train_epoch_start(trainer, *args)
        left = self.summary.seconds_left(trainer, trainer.current_epoch)
        eta = f" (run ETA {duration(left)})" if left is not None else ""
        self.train_progress_bar.set_description(f"Epoch {trainer.current_epoch + 1}/{trainer.max_epochs}{eta}")
