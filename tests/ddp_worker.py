"""Run one training job in this process (under torchrun or alone) and save this rank's final weights."""

import sys
from pathlib import Path

import torch

from golflab.config.loader import from_toml_file
from golflab.train.distributed import init_distributed, shutdown
from golflab.train.loop import Trainer
from golflab.train.runlog import RunLog
from golflab.train.sources import sources_from_config

cfg = from_toml_file(sys.argv[1])
out = Path(sys.argv[2])
env = init_distributed()
trainer = Trainer(cfg, None, sources_from_config(cfg), env, RunLog(None))
trainer.run()
torch.save(trainer.model.state_dict(), out / f"rank{env.rank}_of{env.world_size}.pt")
del trainer  # nothing may hold the process group when shutdown destroys it
shutdown(env)
