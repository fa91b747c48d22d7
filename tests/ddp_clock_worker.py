"""A DDP job whose rank 1 has a clock running 4x fast: writes each rank's lr_scale per step."""

import json
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


def recording_step(self, scale):
    scales.append(scale)
    return original(self, scale)


loop.Trainer.train_step = recording_step
trainer = loop.Trainer(cfg, None, sources_from_config(cfg), env, RunLog(None))
trainer.run()
(out / f"scales{env.rank}.json").write_text(json.dumps(scales))
shutdown(env)
