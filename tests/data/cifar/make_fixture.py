#!/usr/bin/python3
"""Writes a tiny CIFAR-100 python release (cifar-100-python/{train,test,meta}) exactly as numpy and pickle
protocol 2 write it, plus train_py2: the same training batch as Python 2's cPickle wrote the real release
(str as BINSTRING, bytes without _codecs.encode).

Regenerate from the repository root:  /usr/bin/python3 tests/data/cifar/make_fixture.py
Image i, byte j (of the 3072 in R, G, B plane order) is (7 * i + 13 * j) % 256; training image i has fine label
(37 * i) % 100 and coarse label (3 * i) % 20; test image i has fine label 99 - i and coarse label 19 - i.
"""
import os
import pickle
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FINE = ("apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can "
        "castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin "
        "elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster "
        "man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck "
        "pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk "
        "skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television "
        "tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm").split()
COARSE = ("aquatic_mammals fish flowers food_containers fruit_and_vegetables household_electrical_devices "
          "household_furniture insects large_carnivores large_man-made_outdoor_things large_natural_outdoor_scenes "
          "large_omnivores_and_herbivores medium_mammals non-insect_invertebrates people reptiles small_mammals trees "
          "vehicles_1 vehicles_2").split()
assert len(FINE) == 100 and len(COARSE) == 20


def images(n):
    i = np.arange(n).reshape(n, 1)
    j = np.arange(3072).reshape(1, 3072)
    return ((7 * i + 13 * j) % 256).astype(np.uint8)


def batch(name, n, fine, coarse):
    return {"filenames": ["img_%d.png" % k for k in range(n)], "batch_label": name, "fine_labels": fine,
            "coarse_labels": coarse, "data": images(n)}


class Python2Pickler(pickle._Pickler):
    """Python 2 wrote both str and bytes as (SHORT_)BINSTRING."""
    dispatch = dict(pickle._Pickler.dispatch)

    def save_binstring(self, obj):
        if isinstance(obj, str):
            obj = obj.encode("latin1")
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + n.to_bytes(4, "little") + obj)
        self.memoize(obj)

    dispatch[str] = save_binstring
    dispatch[bytes] = save_binstring


def main():
    out = os.path.join(HERE, "cifar-100-python")
    os.makedirs(out, exist_ok=True)
    train = batch("training batch 1 of 1", 10, [(37 * i) % 100 for i in range(10)], [(3 * i) % 20 for i in range(10)])
    test = batch("testing batch 1 of 1", 4, [99 - i for i in range(4)], [19 - i for i in range(4)])
    for name, obj in (("train", train), ("test", test), ("meta", {"fine_label_names": FINE,
                                                                  "coarse_label_names": COARSE})):
        with open(os.path.join(out, name), "wb") as f:
            pickle.dump(obj, f, protocol=2)
    with open(os.path.join(HERE, "train_py2"), "wb") as f:
        Python2Pickler(f, protocol=2).dump(train)
    # Both read back as written.
    for path in (os.path.join(out, "train"), os.path.join(HERE, "train_py2")):
        with open(path, "rb") as f:
            back = pickle.load(f, encoding="bytes")
        data = back.get("data", back.get(b"data"))
        assert (data == images(10)).all(), path


if __name__ == "__main__":
    sys.exit(main())
