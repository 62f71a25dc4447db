"""Every board in conf/board/, composed as a run would compose it (family bases merged) and checked
against its adapter's contract: the one list of boards that tables, tests and messages derive from.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from unpu import config_dir
from unpu.boards.base import adapter_class, board_spec
from unpu.boards.spec import BoardSpec


def board_names() -> list[str]:
    """The choices of `board=`: one YAML each in conf/board/ (family bases live in conf/board/family/)."""
    return sorted(p.stem for p in (Path(config_dir()) / "board").glob("*.yaml"))


@contextmanager
def _hydra() -> Iterator[None]:
    """Compose with the running Hydra app's config, or with conf/ when none runs."""
    if GlobalHydra.instance().is_initialized():
        yield
        return
    with initialize_config_dir(version_base="1.3", config_dir=config_dir()):
        yield


def board_config(name: str, overrides: list[str] | None = None) -> DictConfig:
    """conf/board/<name>.yaml with its family bases, as `python -m unpu board=<name>` composes it.
    Only the board group is composed (no board interpolates outside its own node): a third faster
    than the whole job config, which matters when listing every board."""
    with _hydra():
        cfg = compose(config_name=None, overrides=[f"+board={name}", *(overrides or [])])
    return cfg.board


def specs() -> dict[str, BoardSpec]:
    """Every board's checked spec, by name (BoardConfigError at the first that breaks the contract)."""
    with _hydra():
        return {name: board_spec(board_config(name)) for name in board_names()}


def runnable_boards() -> list[str]:
    """Boards whose YAML names an adapter."""
    with _hydra():
        return [name for name in board_names() if adapter_class(board_config(name)) is not None]
