"""The emulator's routers: apps, plugins, presigned storage and the control plane."""
