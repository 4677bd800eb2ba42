"""Viewport prediction: Jin2022 replay env and the angular-error metric."""

from .core import angular_error, mae, rmse
from .env import VPEnv

__all__ = ["VPEnv", "angular_error", "mae", "rmse"]
