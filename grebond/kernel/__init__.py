"""Reading and changing the running kernel through pyroute2 (imported only here and in backends).

pyroute2 is imported lazily and lean (``lean_import``): a cold command pays only for what it uses.
"""

from grebond.kernel import lean_import

lean_import.install()
