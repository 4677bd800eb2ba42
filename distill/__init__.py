"""Experience pools, teacher adaptation and student distillation (torch lives here)."""
