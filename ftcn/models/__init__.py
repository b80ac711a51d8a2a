"""Model front door: ``build_model(cfg)`` builds FTCN+TT of any size from its config.

The face networks (RetinaFace, the 68-point landmark net) are only ever built from official weight files, so they
are built by their loaders in :mod:`ftcn.checkpoints`.
"""

from ftcn.models.config import FTCNConfig, config_for_size, full_config, small_config, tiny_config
from ftcn.models.ftcn_tt import FTCN


def build_model(cfg: FTCNConfig | None = None) -> FTCN:
    """Build FTCN+TT from a config (default: the official full-size network), in eval mode."""
    model = FTCN(cfg or full_config())
    return model.eval()


__all__ = ["FTCN", "FTCNConfig", "build_model", "config_for_size", "full_config", "small_config", "tiny_config"]
