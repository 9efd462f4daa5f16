"""F5-TTS: upstream's model classes driven by an own sampler, split by optimisation axis (attention, graphs,
kernels). Importing this package does not import torch: ``options`` and ``checkpoint`` are torch-free."""
