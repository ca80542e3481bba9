import multiprocessing
import sys

from tlstudio.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # frozen (PyInstaller) builds start worker processes through this entry
    sys.exit(main())
