"""Arm Ethos-U boards (HX-WE2, Alif E7, Corstone-300): Vela compile, estimate mode, hardware hooks.

Two modes, chosen by one key:
- estimate (`board.attached=false`, the default): Vela compiles for real; the run's latency is
  Vela's estimate (`source.latency=estimated`, tag `unpu.measured=false`), memory is Vela's plus
  the CPU operators' tensors, and nothing else is claimed.
- hardware (`board.attached=true`): the vendor subclass checks its SDK/tools/port, builds the
  firmware around Vela's output, flashes or launches it and measures through the DUT protocol;
  Vela's numbers stay in the run as `estimate/*`, so `estimate/ratio` shows the gap.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from unpu.boards.base import Board, BoardError, Firmware, QuantizedModel
from unpu.protocol import DutClient, Transcript

log = logging.getLogger(__name__)

ETHOSU_OP = "CUSTOM:ethos-u"


class EthosUBoard(Board):
    hardware_source_latency = "measured"

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self._compiled: dict[str, Any] = {}
        self._cpu: dict[str, int] = {}

    # -- mode ----------------------------------------------------------------------------------
    @property
    def hardware(self) -> bool:
        return bool(self.board.get("attached"))

    @property
    def source_latency(self) -> str:  # type: ignore[override]
        return self.hardware_source_latency if self.hardware else "estimated"

    # -- hooks a vendor subclass implements for hardware mode ------------------------------------
    def check_hardware(self) -> None:
        """Raise BoardError (one line: what is missing, where to get it) unless SDK, tools and board are there."""
        raise BoardError(f"board '{self.board.name}' has no hardware mode yet")

    def build_firmware(self, model: QuantizedModel, vela, workdir: Path) -> Firmware:
        raise BoardError(f"board '{self.board.name}' has no firmware build")

    def open(self, firmware: Firmware, transcript: Transcript, workdir: Path) -> AbstractContextManager[DutClient]:
        raise BoardError(f"board '{self.board.name}' has no device to open in estimate mode")

    def device_metrics(self, client: DutClient, firmware: Firmware) -> dict[str, float]:
        """The Ethos-U PMU of the last window (`pmu%`), per inference, beside Vela's cycle estimate."""
        from unpu.protocol import DeviceError

        try:
            counters = client.pmu()
        except DeviceError as exc:  # firmware built without -DUNPU_PMU
            log.warning("no Ethos-U PMU counters from the device: %s", exc)
            return {}
        out = {f"npu/{name}": float(value) for name, value in counters.items()}
        if counters.get("npu_cycles") and firmware.metrics.get("estimate/cycles"):
            out["estimate/cycles_ratio"] = counters["npu_cycles"] / firmware.metrics["estimate/cycles"]
        return out

    # -- Vela ------------------------------------------------------------------------------------
    def vela_options(self):
        from unpu.compilers.vela import VelaError, VelaOptions

        opts = self.board.get("vela") or {}
        npu = self.board.npu
        try:
            return VelaOptions(
                accelerator=str(opts.get("accelerator_config") or npu.name),
                system_config=opts.get("system_config"), memory_mode=opts.get("memory_mode"),
                optimise=str(opts.get("optimise") or "Performance"),
                config_files=tuple(str(p) for p in (opts.get("config_files") or [])),
                npu_clock_hz=float(npu.clock_hz) if npu.get("clock_hz") else None)
        except VelaError as exc:
            raise BoardError(str(exc)) from None

    def compile(self, model: QuantizedModel):
        """Vela's result for this model on this board (cached on disk, memoised per job)."""
        if model.digest not in self._compiled:
            from unpu.cache import Cache
            from unpu.compilers.vela import VelaError, compile_model

            try:
                self._compiled[model.digest] = compile_model(model.path, model.digest, self.vela_options(),
                                                             Cache(self.cfg.cache.dir))
            except VelaError as exc:
                raise BoardError(str(exc)) from None
        return self._compiled[model.digest]

    def _cpu_bytes(self, vela) -> int:
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

    def _check_fits(self, model: QuantizedModel, vela) -> None:
        mem, name, acc = self.board.memory, self.board.name, vela.accelerator
        sram = vela.sram_bytes + self._cpu_bytes(vela)
        sram_limit = mem.get("npu_data_bytes") or mem.sram_bytes
        if sram_limit and sram > sram_limit:
            raise BoardError(f"{model.name} does not fit {name}: Vela ({acc}) needs {sram:,} B of SRAM "
                             f"(NPU {vela.sram_bytes:,} B + CPU operators' tensors), the board has {int(sram_limit):,} B")
        flash = max(vela.flash_bytes, vela.optimised.stat().st_size)
        flash_limit = mem.get("npu_weight_bytes") or mem.flash_bytes
        if flash_limit and flash > flash_limit:
            raise BoardError(f"{model.name} does not fit {name}: Vela ({acc}) needs {flash:,} B of flash "
                             f"for weights and command stream, the board has {int(flash_limit):,} B")

    def build(self, model: QuantizedModel, workdir: Path) -> Firmware:
        from unpu.cache import file_digest

        vela = self.compile(model)
        metrics, tags, artifacts = self._vela_record(vela)
        if not self.hardware:
            digest = file_digest(vela.optimised)
            return Firmware(image=vela.optimised, digest=digest, build_id=f"vela-{digest[:12]}",
                            metrics=metrics, tags=tags, artifacts=artifacts, extra={"estimate_only": True})
        firmware = self.build_firmware(model, vela, workdir)
        firmware.metrics = {**metrics, **firmware.metrics}
        firmware.tags = {**tags, **firmware.tags}
        firmware.artifacts = {**artifacts, **firmware.artifacts}
        return firmware

    def _vela_record(self, vela) -> tuple[dict[str, float], dict[str, str], dict[str, Path]]:
        cpu_bytes = self._cpu_bytes(vela)
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


def cpu_tensor_bytes(tflite: bytes) -> int:
    """Bytes of the non-constant tensors CPU operators read or write in a Vela-optimised model (also
    those they exchange with the NPU): what the TFLM arena needs beyond Vela's SRAM area. An upper
    bound: no lifetime reuse is assumed, and Vela may already count the exchanged ones."""
    from ai_edge_litert import schema_py_generated as schema

    from unpu.graph import inspect_tflite

    model = schema.ModelT.InitFromPackedBuf(tflite, 0)
    graph = model.subgraphs[0]
    ops = inspect_tflite(tflite).ops
    cpu_tensors = {t for op in ops if op.op != ETHOSU_OP for t in op.inputs + op.outputs if t >= 0}
    total = 0
    for index in cpu_tensors:
        tensor = graph.tensors[index]
        buffer = model.buffers[tensor.buffer] if tensor.buffer < len(model.buffers) else None
        if buffer is not None and (buffer.data is not None and len(buffer.data) or buffer.size):
            continue  # constant: lives in flash
        total += _tensor_bytes(tensor)
    return total


_DTYPE_BYTES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1, 10: 8}  # TensorType -> bytes


def _tensor_bytes(tensor) -> int:
    count = 1
    for dim in (tensor.shape if tensor.shape is not None else []):
        count *= max(int(dim), 1)
    return count * _DTYPE_BYTES.get(int(tensor.type), 4)

