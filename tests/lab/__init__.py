"""Real-kernel test lab: boots a virtme-ng VM when needed (vm), builds router topologies (topology),
and wires both into pytest (plugin). Imported as ``lab`` because tests/conftest.py puts tests/ on sys.path."""
