import sys

from compress_train.runner.worker import main

sys.exit(main())
