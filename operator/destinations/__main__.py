import sys

from destinations.cli import main

sys.exit(main())
