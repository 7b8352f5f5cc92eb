import sys

from condsel.cli import main

sys.exit(main())
