"""Settings of the ``lj-neural-potential`` workflow."""

from __future__ import annotations

import dataclasses

from .._settings import WorkflowSettings

__all__ = ["FULL", "QUICK", "LJSettings"]

NVE_SAVE_EVERY = 10  # steps between saved total energies in the NVE runs


@dataclasses.dataclass(frozen=True)
class LJSettings(WorkflowSettings):
    """Sizes of the experiment (reduced LJ units; times in steps of ``dt``).

    The defaults are the full run; `QUICK` is the CI size. ``cells`` fcc unit cells per
    side make ``4 cells^3`` atoms; the ``schnet_*`` settings size the message-passing model
    and its smaller system (used when ``message_passing`` is on). ``core_radius`` (sigma)
    is the pair potential's repulsive prior ``(core_radius / r)^12`` (see
    `hybrax.md.NeuralPairPotential`): it keeps the learned potential repulsive below the
    closest approach in the training data (about 0.85 sigma at T = 1.2), where the network
    alone extrapolates softly and atoms can fuse; 0 turns it off.
    """

    cells: int = 5
    density: float = 0.8442
    temperature: float = 1.2
    melt_temperature: float = 3.0
    cutoff: float = 2.5
    skin: float = 0.3
    dt: float = 0.005
    friction: float = 1.0
    melt_steps: int = 2000
    equilibration_steps: int = 4000
    num_frames: int = 200
    frame_spacing: int = 200
    held_out_fraction: float = 0.2
    num_basis: int = 16
    width: int = 32
    depth: int = 2
    num_knots: int = 1024
    core_radius: float = 0.9
    train_steps: int = 3000
    batch_frames: int = 4
    learning_rate: float = 2e-2
    energy_weight: float = 5.0  # relative to the force term
    nve_steps: int = 5000
    rdf_equilibration_steps: int = 2000
    rdf_steps: int = 10000
    rdf_every: int = 100
    rdf_bins: int = 100
    message_passing: bool = True
    schnet_cells: int = 3
    schnet_num_frames: int = 60
    schnet_features: int = 16
    schnet_interactions: int = 2
    schnet_train_steps: int = 1500
    schnet_batch_frames: int = 2
    schnet_learning_rate: float = 2e-3
    schnet_rdf_steps: int = 4000
    seed: int = 0

    def validate(self) -> None:
        self.require_positive("cells", "density", "temperature", "melt_temperature", "cutoff")
        self.require_positive("dt", "friction", "melt_steps", "equilibration_steps")
        self.require_positive("frame_spacing", "num_basis", "width", "depth", "batch_frames")
        self.require_positive("learning_rate", "rdf_equilibration_steps", "rdf_every")
        self.require_positive("rdf_bins", "schnet_cells", "schnet_features")
        self.require_positive("schnet_interactions", "schnet_batch_frames")
        self.require_positive("schnet_learning_rate")
        self.require_nonnegative("skin", "train_steps", "energy_weight", "schnet_train_steps")
        self.require_nonnegative("core_radius")
        self.require(
            "core_radius",
            self.core_radius < self.cutoff,
            f"below the cutoff {self.cutoff} (0 turns the repulsive prior off), e.g. 0.9",
        )
        self.require("num_knots", self.num_knots >= 2, "at least 2")
        self.require("num_frames", self.num_frames >= 2, "at least 2 (train and held out)")
        self.require("schnet_num_frames", self.schnet_num_frames >= 2, "at least 2")
        self.require(
            "held_out_fraction", 0 < self.held_out_fraction < 1, "between 0 and 1, e.g. 0.2"
        )
        every = NVE_SAVE_EVERY
        self.require(
            "nve_steps",
            self.nve_steps >= 2 * every and self.nve_steps % every == 0,
            f"a multiple of {every} and at least {2 * every} (energies are saved every "
            f"{every} steps and a line is fitted through them)",
        )
        for name in ("rdf_steps", "schnet_rdf_steps"):
            steps = getattr(self, name)
            self.require(
                name,
                steps >= self.rdf_every and steps % self.rdf_every == 0,
                f"a positive multiple of rdf_every={self.rdf_every}",
            )

    @property
    def num_atoms(self) -> int:
        """Atoms of the main system: ``4 cells^3``."""
        return 4 * self.cells**3


FULL = LJSettings()
QUICK = LJSettings(
    cells=3,
    melt_steps=1000,
    equilibration_steps=1000,
    num_frames=40,
    frame_spacing=100,
    train_steps=1000,
    nve_steps=1000,
    rdf_equilibration_steps=500,
    rdf_steps=3000,
    rdf_every=50,
    rdf_bins=50,
    message_passing=False,
)
