"""No controller: the compressor's parameters stay as configured."""

from compress_train.algorithms.controllers import Controller

IMPLEMENTATION = Controller
