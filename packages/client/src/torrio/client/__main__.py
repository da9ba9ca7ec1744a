import sys

from torrio.client._cli import main

sys.exit(main())
