import sys

from voxgate.cli import main

sys.exit(main())
