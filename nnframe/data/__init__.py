"""Data: batching, preprocessing, augmentation, the IDX format and the MNIST / Fashion-MNIST / CIFAR-10 loaders.

::

    from nnframe import data

    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist()   # uint8 (N, 28, 28, 1)
    x_train = data.scale_pixels(x_train)                              # float32 in [0, 1]
    (x_tr, y_tr), (x_val, y_val) = data.train_val_split(x_train, y_train, 0.1, rng=0)
    for xb, yb in data.batches(x_tr, y_tr, batch_size=128, shuffle=True, rng=0):
        ...
"""

from nnframe.data import text
from nnframe.data.augment import random_crop, random_erasing, random_horizontal_flip
from nnframe.data.batching import BatchIterator, batches, is_multi, num_samples
from nnframe.data.datasets import (
    CHECKSUMS,
    CLASS_NAMES,
    MIRRORS,
    SYSTEM_DATA_DIRS,
    DatasetFormatError,
    DatasetNotFoundError,
    load_cifar10,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
    locate_dataset,
    user_cache_dir,
)
from nnframe.data.download import DownloadError, download_file
from nnframe.data.idx import IDXFormatError, read_idx, write_idx
from nnframe.data.images import ImageError, decode_image, fit_image
from nnframe.data.png import PNGFormatError, read_png
from nnframe.data.preprocessing import (
    apply_stored_preprocessing,
    check_pixel_values,
    one_hot,
    scale_pixels,
    standardize,
    stored_pixel_range,
    stored_standardization,
    train_val_split,
    value_range,
)

__all__ = [
    "CHECKSUMS", "CLASS_NAMES", "MIRRORS", "SYSTEM_DATA_DIRS", "BatchIterator", "DatasetFormatError",
    "DatasetNotFoundError", "DownloadError", "IDXFormatError", "ImageError", "PNGFormatError",
    "apply_stored_preprocessing", "batches", "check_pixel_values", "decode_image", "download_file", "fit_image",
    "is_multi",
    "load_cifar10", "load_dataset", "load_fashion_mnist", "load_mnist", "locate_dataset", "num_samples", "one_hot",
    "read_idx",
    "random_crop", "random_erasing", "random_horizontal_flip", "read_png", "scale_pixels", "standardize",
    "stored_pixel_range",
    "stored_standardization", "text",
    "train_val_split",
    "user_cache_dir", "value_range", "write_idx",
]
