"""Fused kernels standing in for upstream modules on CUDA, each checked against the module it replaces."""
