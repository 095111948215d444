"""Metrics to tensorboard (tensorboardX, under <workdir>/tb) and JSON lines.

    logger = MetricLogger(workdir)
    logger.scalars(step, {"loss": 0.1}, prefix="autoencoder/")
    logger.image("goal/strip", step, image_hwc_uint8)
    logger.video("goal/video", step, frames_thwc_uint8)   # animated GIF in tensorboard
"""
import json
import math
import os
import time

import numpy as np
from tensorboardX import SummaryWriter
from tensorboardX.proto.summary_pb2 import Summary

from vidrl_jax.utils.video_io import _uint8, gif_bytes


def _jsonable(v):
    v = np.asarray(v).item() if np.ndim(v) == 0 else np.asarray(v).tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


class MetricLogger:
    """Writes scalars, images and videos for one workdir; cheap to construct."""

    def __init__(self, workdir, use_tensorboard=True, use_jsonl=True):
        """use_tensorboard/use_jsonl False: nothing is written there (the processes
        other than process 0 of a multi-process run log nothing)."""
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a") if use_jsonl else None
        self._tb = SummaryWriter(os.path.join(workdir, "tb")) if use_tensorboard else None

    def scalars(self, step, metrics, prefix=""):
        """Logs a dict of scalars (numbers or 0-d arrays) at `step`."""
        metrics = {prefix + k: _jsonable(v) for k, v in metrics.items()}
        record = {"step": int(step), "time": time.time(), **metrics}
        if self._jsonl is not None:
            self._jsonl.write(json.dumps(record) + "\n")
            self._jsonl.flush()
        if self._tb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, int(step))

    def image(self, tag, step, image):
        """Logs an HxWx3 image (uint8, or float in [0,1])."""
        if self._tb is not None:
            self._tb.add_image(tag, _uint8(image), int(step), dataformats="HWC")

    def video(self, tag, step, frames, fps=10):
        """Logs a TxHxWx3 video as an animated GIF (tensorboard's image tab plays it)."""
        if self._tb is None:
            return
        frames = _uint8(frames)
        t, h, w = frames.shape[:3]
        summary = Summary(value=[Summary.Value(tag=tag, image=Summary.Image(
            height=h, width=w, colorspace=3,
            encoded_image_string=gif_bytes(frames, fps)))])
        self._tb.file_writer.add_summary(summary, int(step))

    def flush(self):
        if self._jsonl is not None:
            self._jsonl.flush()
        if self._tb is not None:
            self._tb.flush()

    def close(self):
        if self._jsonl is not None:
            self._jsonl.close()
        if self._tb is not None:
            self._tb.close()
