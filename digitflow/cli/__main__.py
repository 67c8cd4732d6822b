import sys

from digitflow.cli import main

sys.exit(main())
