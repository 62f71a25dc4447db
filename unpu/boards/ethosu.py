"""Arm Ethos-U boards (HX-WE2, Alif E7, Corstone-300): Vela compile, estimate mode, hardware hooks.

Two modes, chosen by one key:
- estimate (`board.attached=false`, the default): Vela compiles for real; the firmware is an
  ESTIMATE (nothing runs): the run's latency is Vela's estimate (`source.latency=estimated`, tag
  `unpu.measured=false`), memory is Vela's plus the CPU operators' tensors, nothing else is claimed.
- hardware (`board.attached=true`): the vendor subclass checks its SDK/tools/port, builds the
  firmware around Vela's output, flashes or launches it and measures through the DUT protocol;
  Vela's numbers stay in the run as `estimate/*`, so `estimate/ratio` shows the gap.
"""

from __future__ import annotations

import logging
from dataclasses import field
from pathlib import Path
from typing import ClassVar, List, Optional


from unpu.artifacts import Firmware, FirmwareKind, QuantizedModel
from unpu.boards.base import Board
from unpu.boards.spec import BoardSpec, NpuSpec, Spec
from unpu.cache import file_digest
from unpu.compilers.vela import VelaError, VelaOptions, VelaResult, compile_model
from unpu.errors import BoardError
from unpu.graph import inspect_tflite
from unpu.protocol import DeviceError, DutClient

log = logging.getLogger(__name__)

ETHOSU_OP = "CUSTOM:ethos-u"


class VelaSpec(Spec):
    accelerator_config: str
    system_config: Optional[str] = None    # null: Vela's default for the accelerator family
    memory_mode: Optional[str] = None
    optimise: str = "Performance"
    config_files: List[str] = field(default_factory=list)   # extra vela.ini files


class EthosUSpec(BoardSpec):
    npu: NpuSpec              # required: the NPU Vela compiles for
    vela: VelaSpec
    attached: bool = False    # true: hardware mode (a board or simulator runs the firmware)


def cpu_tensor_bytes(tflite: bytes) -> int:
    """Bytes of the non-constant tensors CPU operators read or write in a Vela-optimised model (also
    those they exchange with the NPU): what the TFLM arena needs beyond Vela's SRAM area. An upper
    bound: no lifetime reuse is assumed, and Vela may already count the exchanged ones."""
    graph = inspect_tflite(tflite)
    touched = {t.index: t for op in graph.ops if op.op != ETHOSU_OP for t in graph.touched(op)}
    return sum(t.nbytes for t in touched.values() if not t.constant)


class EthosUBoard(Board):
    Spec = EthosUSpec
    hardware_source_latency: ClassVar[str] = "measured"

    def __init__(self, spec: EthosUSpec, context) -> None:
        super().__init__(spec, context)
        self._compiled: dict[str, VelaResult] = {}
        self._cpu: dict[str, int] = {}

    @property
    def hardware(self) -> bool:
        return self.spec.attached

    @property
    def source_latency(self) -> str:
        return self.hardware_source_latency if self.hardware else "estimated"

    # -- hooks a vendor subclass implements for hardware mode ------------------------------------
    def check_hardware(self) -> None:
        """Raise BoardError (one line: what is missing, where to get it) unless SDK, tools and board are there."""
        raise BoardError(f"board '{self.spec.name}' has no hardware mode yet")

    def build_firmware(self, model: QuantizedModel, vela: VelaResult, workdir: Path) -> Firmware:
        raise BoardError(f"board '{self.spec.name}' has no firmware build")

    # -- Vela ------------------------------------------------------------------------------------
    def vela_options(self) -> VelaOptions:
        vela, npu = self.spec.vela, self.spec.npu
        try:
            return VelaOptions(accelerator=vela.accelerator_config, system_config=vela.system_config,
                               memory_mode=vela.memory_mode, optimise=vela.optimise,
                               config_files=tuple(vela.config_files), npu_clock_hz=npu.clock_hz)
        except VelaError as exc:
            raise BoardError(str(exc)) from None

    def compile(self, model: QuantizedModel) -> VelaResult:
        """Vela's result for this model on this board (cached on disk, memoised per job)."""
        if model.digest not in self._compiled:
            try:
                self._compiled[model.digest] = compile_model(model.path, model.digest, self.vela_options(),
                                                             self.context.cache)
            except VelaError as exc:
                raise BoardError(str(exc)) from None
        return self._compiled[model.digest]

    def cpu_bytes(self, vela: VelaResult) -> int:
        """cpu_tensor_bytes of Vela's output, once per model (pre-flight and the record both need it)."""
        key = str(vela.optimised)
        if key not in self._cpu:
            self._cpu[key] = cpu_tensor_bytes(vela.optimised.read_bytes())
        return self._cpu[key]

    # -- pipeline --------------------------------------------------------------------------------
    def check_environment(self) -> None:
        if self.hardware:
            self.check_hardware()

    def preflight(self, model: QuantizedModel) -> None:
        vela = self.compile(model)
        if vela.cpu_ops:
            log.warning("%s: Vela leaves %d operator(s) to the CPU (%s); Vela's estimate does not include them",
                        model.name, vela.cpu_operators, ", ".join(vela.cpu_ops))
        self._check_fits(model, vela)

    def _check_fits(self, model: QuantizedModel, vela: VelaResult) -> None:
        mem, name, acc = self.spec.memory, self.spec.name, vela.accelerator
        sram = vela.sram_bytes + self.cpu_bytes(vela)
        sram_limit = mem.npu_data_bytes or mem.sram_bytes
        if sram_limit and sram > sram_limit:
            raise BoardError(f"{model.name} does not fit {name}: Vela ({acc}) needs {sram:,} B of SRAM "
                             f"(NPU {vela.sram_bytes:,} B + CPU operators' tensors), the board has {int(sram_limit):,} B")
        flash = max(vela.flash_bytes, vela.optimised.stat().st_size)
        flash_limit = mem.npu_weight_bytes or mem.flash_bytes
        if flash_limit and flash > flash_limit:
            raise BoardError(f"{model.name} does not fit {name}: Vela ({acc}) needs {flash:,} B of flash "
                             f"for weights and command stream, the board has {int(flash_limit):,} B")

    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        vela = self.compile(model)
        metrics, tags, artifacts = self._vela_record(vela)
        if not self.hardware:
            digest = file_digest(vela.optimised)
            return Firmware(image=vela.optimised, digest=digest, build_id=f"vela-{digest[:12]}",
                            kind=FirmwareKind.ESTIMATE, metrics=metrics, tags=tags, artifacts=artifacts)
        firmware = self.build_firmware(model, vela, workdir)
        firmware.metrics = {**metrics, **firmware.metrics}
        firmware.tags = {**tags, **firmware.tags}
        firmware.artifacts = {**artifacts, **firmware.artifacts}
        return firmware

    def _vela_record(self, vela: VelaResult) -> tuple[dict[str, float], dict[str, str], dict[str, Path]]:
        cpu_bytes = self.cpu_bytes(vela)
        metrics = {**vela.metrics(), "memory/model_compiled": float(vela.optimised.stat().st_size)}
        tags = {**vela.tags(), "cache.vela": "hit" if vela.cache_hit else "miss",
                "estimate.scope": "NPU command stream only" if vela.cpu_ops else "whole model (all operators on the NPU)"}
        if not self.hardware:
            metrics.update({"memory/arena": float(vela.sram_bytes + cpu_bytes),
                            "memory/ram": float(vela.sram_bytes + cpu_bytes)})
            tags.update({"unpu.measured": "false", "memory.method": "vela sram + cpu operator tensors (estimate)"})
        out = vela.out_dir
        artifacts = {f"compiler/{vela.optimised.name}": vela.optimised,
                     f"compiler/{vela.summary_csv.name}": vela.summary_csv,
                     f"compiler/{vela.per_layer_csv.name}": vela.per_layer_csv,
                     "compiler/vela.log": out / "vela.log"}
        if (out.parent / "unpu_vela.ini").exists():
            artifacts["compiler/unpu_vela.ini"] = out.parent / "unpu_vela.ini"
        for csv_path in sorted((out.parent / "vela_default").glob("*_summary_*.csv")):
            artifacts[f"compiler/vela_default/{csv_path.name}"] = csv_path
        return metrics, tags, artifacts

    def estimate_metrics(self, firmware: Firmware) -> dict[str, float]:
        """Estimate mode's latency: Vela's inference estimate, the only stage it models."""
        return {"latency/inference_us": firmware.metrics["estimate/latency_us"]}

    def device_metrics(self, client: DutClient, firmware: Firmware) -> dict[str, float]:
        """The Ethos-U PMU of the last window (`pmu%`), per inference, beside Vela's cycle estimate."""
        try:
            counters = client.pmu()
        except DeviceError as exc:  # firmware built without -DUNPU_PMU
            log.warning("no Ethos-U PMU counters from the device: %s", exc)
            return {}
        out = {f"npu/{name}": float(value) for name, value in counters.items()}
        if counters.get("npu_cycles") and firmware.metrics.get("estimate/cycles"):
            out["estimate/cycles_ratio"] = counters["npu_cycles"] / firmware.metrics["estimate/cycles"]
        return out
