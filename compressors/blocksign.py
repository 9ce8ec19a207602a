"""Block-Sign, comp_ams Definition 2: per block B, sign(x_B) ||x_B||_1 / |B|.

Blocks are the network's layers (comp_ams §3.1): the runner calls this once per parameter
tensor when ``compressor.scope=layer`` (this compressor's default); with ``scope=model`` the
whole model is one block, which is sketched_ams's scaled sign. Per block: one fp32 scale + packed
signs. q-deviate with q^2 = 1 - min_B 1/|B| (comp_ams Remark 1).
"""

from __future__ import annotations

from compress_train.compressors.scaled_sign import ScaledSign


class BlockSign(ScaledSign):
    name = "blocksign"


IMPLEMENTATION = BlockSign
