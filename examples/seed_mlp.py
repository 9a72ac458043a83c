"""The seed document's training script, run on nnframe.

Only the import line and the data-loading lines differ from the seed: the data is
Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package (or ``--data-dir``),
read by a minimal IDX reader, with pixels standardised by the training set's mean
and standard deviation (as torchvision's ``Normalize`` does for MNIST). The training loop is
the seed's, unchanged — including its habit of printing the accuracy of the last
*training* batch. The true test accuracy is measured after the loop, on the
10,000 test images the net never saw.

    python examples/seed_mlp.py            # 20 epochs, Adam lr 2e-4, batch 128
"""

import gzip
import os
import sys

import numpy as np

DATA_DIR = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NNFRAME_DATA", "/usr/share/datasets/fashion-mnist")


def read_idx(path):
    """Read a gzipped IDX file (magic, dims, uint8 data) into an array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def get_one_hot(targets, nb_classes=10):
    return np.eye(nb_classes)[np.array(targets).reshape(-1)]


# --- data loading (changed from the seed: Fashion-MNIST IDX files, standardised pixels) ---
train_x = read_idx(os.path.join(DATA_DIR, "train-images-idx3-ubyte.gz")).astype(np.float32) / 255
train_x = np.reshape(train_x, [60000, 784])
train_y = get_one_hot(read_idx(os.path.join(DATA_DIR, "train-labels-idx1-ubyte.gz")))
test_x = read_idx(os.path.join(DATA_DIR, "t10k-images-idx3-ubyte.gz")).astype(np.float32).reshape(10000, 784) / 255
test_y = read_idx(os.path.join(DATA_DIR, "t10k-labels-idx1-ubyte.gz"))
mean, std = train_x.mean(), train_x.std()
train_x, test_x = (train_x - mean) / std, (test_x - mean) / std

# --- import line (changed from the seed: the package) ---
from nnframe import layer, loss, model, net, optimizer  # noqa: E402

# --- the seed's script, unchanged ---
net = net.Net([
    layer.Dense(200),
    layer.ReLU(),
    layer.Dense(100),
    layer.ReLU(),
    layer.Dense(70),
    layer.ReLU(),
    layer.Dense(30),
    layer.ReLU(),
    layer.Dense(10),
])
model = model.Model(net = net, loss = loss.SoftmaxCrossEntropy(), optimizer = optimizer.Adam(lr = 2e-4))
loss_list = list()
train_num = 60000 // 128
for epoch in range(20):
    train_loss = 0
    for i in range(train_num):
        start = i * 128
        end = (i + 1) * 128
        inputs = train_x[start:end]
        targets = train_y[start:end]
        pred = model.forward(inputs)
        loss, grads = model.backward(pred, targets)
        model.apply_grad(grads)
        if (i + 1) % 10 == 0 :
            test_pred = model.forward(inputs)
            test_pred_idx = np.argmax(test_pred, axis=1)
            real_pred_idx = np.argmax(targets, axis=1)
            counter = 0
            for pre, rel in zip(test_pred_idx, real_pred_idx):
                if pre == rel:
                    counter += 1
            print("train_loss: ", round(loss, 2), "accuracy: ", round(counter / 128, 2))

# --- added: the accuracy on the held-out test set (the seed printed only training batches) ---
test_acc = float(np.mean(np.argmax(model.forward(test_x), axis=1) == test_y))
print(f"test accuracy: {test_acc:.4f}")
