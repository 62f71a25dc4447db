"""Write the ai8x checkpoint unpu prepared (an .npz of int64 arrays) as the PyTorch file ai8xize reads.

Run by unpu with the ai8x-synthesis virtualenv's Python (which has torch; unpu's own does not):
    python ai8x_checkpoint.py weights.npz model.pth.tar --arch unpu
The file holds what izer/checkpoint.py requires: `arch`, `epoch` and a `state_dict` of tensors.
Standalone on purpose: it imports nothing from unpu.
"""

import argparse

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("npz")
    parser.add_argument("out")
    parser.add_argument("--arch", required=True)
    args = parser.parse_args()

    import torch

    with np.load(args.npz) as data:
        state = {key: torch.from_numpy(np.ascontiguousarray(data[key])) for key in data.files}
    torch.save({"arch": args.arch, "epoch": 0, "state_dict": state}, args.out)
    print(f"wrote {args.out}: {len(state)} tensors")


if __name__ == "__main__":
    main()
