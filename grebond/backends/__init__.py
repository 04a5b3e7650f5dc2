"""Backends: the I/O side. Each does one kind of installation behind ``base.Backend``.

Backend modules import pyroute2 or dbus-next only inside the methods that need them, so
listing backends and rendering stay fast.
"""
