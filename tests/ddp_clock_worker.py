"""A DDP job whose rank 1 has a clock running 4x fast: writes each rank's lr_scale per step and how the
run ended. With a third argument N, rank 1 alone is asked to stop (as by a signal) during step N."""

import json
import signal
import sys
import time
import types
from pathlib import Path

from golflab.config.loader import from_toml_file
from golflab.train import loop
from golflab.train.distributed import init_distributed, shutdown
from golflab.train.runlog import RunLog
from golflab.train.sources import sources_from_config

cfg = from_toml_file(sys.argv[1])
out = Path(sys.argv[2])
env = init_distributed()
if env.rank == 1:
    t0 = time.perf_counter()
    loop.time = types.SimpleNamespace(perf_counter=lambda: t0 + 4 * (time.perf_counter() - t0),
                                      monotonic=time.monotonic)
scales = []
original = loop.Trainer.train_step


stop_at = int(sys.argv[3]) if len(sys.argv) > 3 else 0


def recording_step(self, scale, progress=0.0):
    scales.append(scale)
    if env.rank == 1 and self.clock.step + 1 == stop_at:
        self.request_stop(signal.SIGTERM)
    return original(self, scale, progress)


loop.Trainer.train_step = recording_step
trainer = loop.Trainer(cfg, None, sources_from_config(cfg), env, RunLog(None))
ended = trainer.run()
(out / f"scales{env.rank}.json").write_text(json.dumps(scales))
(out / f"ended{env.rank}.json").write_text(json.dumps({k: ended[k] for k in ("status", "steps")}))
del trainer  # nothing may hold the process group when shutdown destroys it
shutdown(env)
