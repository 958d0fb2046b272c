"""``python3 -m femc.import CHECKPOINT [--config CONFIG.json] -o OUT``:
import one trained FreeEnergyMixer layer (see femc.importer)."""

import sys

from .importer import main

if __name__ == "__main__":
    sys.exit(main())
