"""Simulators and their Gymnasium envs. Imports numpy and gymnasium, never torch.

Registered ids: ``mamba4net/ABR-v0`` (vector entry point: the batched core), ``mamba4net/VP-v0``, ``mamba4net/CJS-v0``.
"""

from gymnasium.envs.registration import register, registry

ENV_IDS = ("mamba4net/ABR-v0", "mamba4net/VP-v0", "mamba4net/CJS-v0")

if "mamba4net/ABR-v0" not in registry:
    register(
        id="mamba4net/ABR-v0",
        entry_point="envs.abr.env:ABREnv",
        vector_entry_point="envs.abr.env:ABRVectorEnv",
    )

if "mamba4net/VP-v0" not in registry:
    register(id="mamba4net/VP-v0", entry_point="envs.vp.env:VPEnv")

if "mamba4net/CJS-v0" not in registry:
    register(id="mamba4net/CJS-v0", entry_point="envs.cjs.env:CJSEnv")
