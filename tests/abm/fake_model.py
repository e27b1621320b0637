"""A stand-in for :class:`abm.model.JointModel` with the same interface and tiny dynamics.

Used by the observer, runner and replay tests so they do not depend on the biology: a small
lattice, four fields, a few random-walking cells that divide now and then, and metrics collected
by mesa's DataCollector every step. Randomness is counter-based (a generator seeded by
``(seed, step)``), so :meth:`FakeModel.from_state` continues bit for bit.
"""

from __future__ import annotations

import time
from typing import Any

import mesa
import numpy as np
from omegaconf import DictConfig, OmegaConf

from abm.backend import get_backend

FIELDS = {"IL1b": "ng/mL", "TNF": "ng/mL", "AGG": "fraction", "COL2": "fraction"}
CELL_TYPES = {0: "macrophage", 1: "fls", 2: "msc"}
PHENOTYPES = {0: "m0", 1: "m1", 2: "m2"}
COMPARTMENTS = {0: "bone", 1: "cartilage", 2: "fluid", 3: "synovium"}


class SimulationError(RuntimeError):
    """Raised by step() when a field goes bad (here: at ``FakeModel.fail_at_step``)."""


def fake_config(**overrides: Any) -> DictConfig:
    """A config with the keys the runner and observers read; dotted-key ``overrides``."""
    cfg = OmegaConf.create(
        {
            "seed": 7,
            "backend": "numpy",
            "resume": None,
            "sim": {"days": 0.25, "dt_min": 10.0},
            "lattice": {"shape": [12, 8], "dx_um": 20.0},
            "output": {
                "snapshot_every_min": 60.0,
                "checkpoint_every_min": 120.0,
                "summary_png": False,
                "progress": False,
            },
            "fake": {"n_cells": 6},
        }
    )
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


class FakeModel(mesa.Model):
    # Test knobs kept out of the config (a resumed run must not inherit them):
    fail_at_step: int | None = None  # step() raises SimulationError at this step
    step_sleep_s: float = 0.0  # slow each step down (crash tests)

    def __init__(self, cfg: DictConfig, *, _collect: bool = True) -> None:
        super().__init__(seed=int(cfg.seed))
        self.cfg = cfg
        self.backend = get_backend(cfg.backend)
        self.dt_min = float(cfg.sim.dt_min)
        self.shape = tuple(int(n) for n in cfg.lattice.shape)
        xp = self.backend.xp
        rng = np.random.default_rng([int(cfg.seed), 0])
        self.fields = xp.asarray(rng.random((len(FIELDS), *self.shape)), dtype=xp.float64)
        n = int(cfg.fake.n_cells)
        self.cell_id = np.arange(n, dtype=np.int64)
        self.cell_pos = rng.integers(0, self.shape, size=(n, len(self.shape))).astype(np.int32)
        self.cell_type = (np.arange(n) % len(CELL_TYPES)).astype(np.int8)
        self.cell_phenotype = np.zeros(n, np.int8)
        self.cell_state = np.zeros(n, np.float32)
        self.next_id = n
        comp = np.zeros(self.shape, np.int8)
        for code in COMPARTMENTS:
            comp[code * self.shape[0] // len(COMPARTMENTS) :] = code
        self.compartment = comp
        self.datacollector = mesa.DataCollector(model_reporters=self._reporters())
        if _collect:
            self.datacollector.collect(self)

    @property
    def time_min(self) -> float:
        return self.steps * self.dt_min

    def _reporters(self) -> dict[str, Any]:
        def mean(i: int, code: int):
            return lambda m: float(m.fields[i][m.compartment == code].mean())

        return {
            "time_min": lambda m: m.time_min,
            "il1b_fluid": mean(0, 2),
            "il1b_synovium": mean(0, 3),
            "tnf_fluid": mean(1, 2),
            "tnf_synovium": mean(1, 3),
            "macrophage_m1": lambda m: float(np.sum(m.cell_phenotype == 1)),
            "macrophage_m0": lambda m: float(np.sum(m.cell_phenotype == 0)),
            "macrophage_m2": lambda m: float(np.sum(m.cell_phenotype == 2)),
            "cartilage_agg": mean(2, 1),
            "cartilage_col2": mean(3, 1),
        }

    def step(self) -> None:
        k = self.steps  # mesa increments steps before calling this; k >= 1
        if k == self.fail_at_step:
            raise SimulationError(f"field IL1b became negative in fluid at step {k}")
        rng = np.random.default_rng([int(self.cfg.seed), k])
        self.fields = 0.9 * self.fields + 0.1 * rng.random(self.fields.shape)
        moves = rng.integers(-1, 2, size=self.cell_pos.shape)
        self.cell_pos = np.clip(self.cell_pos + moves, 0, np.asarray(self.shape) - 1).astype(
            np.int32
        )
        self.cell_phenotype = (
            (self.cell_phenotype + (rng.random(len(self.cell_id)) < 0.3)) % 3
        ).astype(np.int8)
        self.cell_state += np.float32(self.dt_min)
        if k % 5 == 0:  # a division
            self.cell_id = np.append(self.cell_id, self.next_id)
            self.next_id += 1
            self.cell_pos = np.vstack([self.cell_pos, self.cell_pos[:1]])
            self.cell_type = np.append(self.cell_type, self.cell_type[0])
            self.cell_phenotype = np.append(self.cell_phenotype, np.int8(0))
            self.cell_state = np.append(self.cell_state, np.float32(0))
        self.datacollector.collect(self)
        if self.step_sleep_s:
            time.sleep(self.step_sleep_s)

    def static_info(self) -> dict[str, Any]:
        return {
            "shape": self.shape,
            "ndim": len(self.shape),
            "dx_um": float(self.cfg.lattice.dx_um),
            "dt_min": self.dt_min,
            "seed": int(self.cfg.seed),
            "backend": self.backend.name,
            "config_yaml": OmegaConf.to_yaml(self.cfg, resolve=True),
            "abm_version": "0.0.0-fake",
            "compartment": self.compartment,
            "compartment_names": COMPARTMENTS,
            "cell_types": CELL_TYPES,
            "phenotypes": PHENOTYPES,
            "field_units": FIELDS,
        }

    def snapshot(self) -> dict[str, Any]:
        fields = self.backend.to_numpy(self.fields)
        return {
            "time_min": self.time_min,
            "fields": {n: fields[i].astype(np.float32) for i, n in enumerate(FIELDS)},
            "cells": {
                "id": self.cell_id.copy(),
                "type": self.cell_type.copy(),
                "pos": self.cell_pos.copy(),
                "phenotype": self.cell_phenotype.copy(),
                "state": self.cell_state.copy(),
            },
        }

    @property
    def metrics(self):
        return self.datacollector.get_model_vars_dataframe()

    def get_state(self) -> dict[str, np.ndarray]:
        state = {
            "fields": self.backend.to_numpy(self.fields).copy(),
            "cells/id": self.cell_id.copy(),
            "cells/pos": self.cell_pos.copy(),
            "cells/type": self.cell_type.copy(),
            "cells/phenotype": self.cell_phenotype.copy(),
            "cells/state": self.cell_state.copy(),
            "steps": np.asarray(self.steps),
            "seed": np.asarray(int(self.cfg.seed)),
            "next_id": np.asarray(self.next_id),
        }
        for name, values in self.datacollector.model_vars.items():
            state[f"metrics/{name}"] = np.asarray(values, dtype=np.float64)
        return state

    @classmethod
    def from_state(cls, cfg: DictConfig, state: dict[str, np.ndarray]) -> FakeModel:
        model = cls(cfg, _collect=False)
        model.fields = model.backend.asarray(state["fields"])
        model.cell_id = state["cells/id"].copy()
        model.cell_pos = state["cells/pos"].copy()
        model.cell_type = state["cells/type"].copy()
        model.cell_phenotype = state["cells/phenotype"].copy()
        model.cell_state = state["cells/state"].copy()
        model.steps = int(state["steps"])
        model.next_id = int(state["next_id"])
        for name in model.datacollector.model_vars:
            model.datacollector.model_vars[name] = [float(v) for v in state[f"metrics/{name}"]]
        return model
