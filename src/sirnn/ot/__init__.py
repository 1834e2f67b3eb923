"""Oblivious transfer: AES PRG and hash, Chou–Orlandi base OT, IKNP and KK13 extension."""

from .aes import PRG, CRHash
from .engine import IKNP_WIDTH, KK_WIDTH, OTEngine

__all__ = ["PRG", "CRHash", "OTEngine", "IKNP_WIDTH", "KK_WIDTH"]
